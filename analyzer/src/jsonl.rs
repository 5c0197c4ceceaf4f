//! JSON lines: one object per line, fields in any order, named as the
//! writer chose. Each field of an [`Entry`] is looked up under the nginx
//! variable name first, then under the names other writers use (Traefik's
//! `ServiceURL`, `DownstreamStatus`, `Duration` in nanoseconds, ...), unless
//! `--json-field` names it.

use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::entry::{last, node_name, seconds, time_iso8601, time_local, Entry};

/// The name `--format` takes.
pub const NAME: &str = "json";

/// The fields an entry is made of, by the nginx variable each stands for.
pub const ROLES: [&str; 6] = [
    "upstream_addr",
    "status",
    "request_time",
    "upstream_response_time",
    "remote_addr",
    "time",
];

/// Keys looked for when the user names none, with their unit. The nginx
/// names come first; then ingress/Envoy/Traefik/Caddy-style names.
const DEFAULTS: [&[(&str, Unit)]; 6] = [
    &[
        ("upstream_addr", Unit::S),
        ("upstream", Unit::S),
        ("upstream_host", Unit::S),
        // Traefik 2/3, then Traefik 1: the address, else the URL, which
        // Traefik writes as an object ({"Scheme": .., "Host": ..}).
        ("ServiceAddr", Unit::S),
        ("ServiceURL.Host", Unit::S),
        ("ServiceURL", Unit::S),
        ("BackendAddr", Unit::S),
        ("BackendURL.Host", Unit::S),
        ("BackendURL", Unit::S),
        ("backend", Unit::S),
    ],
    &[
        ("status", Unit::S),
        ("response_code", Unit::S),
        ("DownstreamStatus", Unit::S),
        ("status_code", Unit::S),
    ],
    &[
        ("request_time", Unit::S),
        ("duration_ms", Unit::Ms),
        ("Duration", Unit::Ns),
        ("duration", Unit::S),
    ],
    &[
        ("upstream_response_time", Unit::S),
        ("upstream_service_time", Unit::Ms),
        ("OriginDuration", Unit::Ns),
    ],
    &[
        ("remote_addr", Unit::S),
        ("client", Unit::S),
        ("ClientHost", Unit::S),
        ("downstream_remote_address", Unit::S),
    ],
    &[
        ("time_iso8601", Unit::S),
        ("msec", Unit::S),
        ("time_local", Unit::S),
        ("timestamp", Unit::S),
        ("time", Unit::S),
        ("StartUTC", Unit::S),
        ("start_time", Unit::S),
    ],
];

/// A duration's unit in the log; times of day ignore it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    S,
    Ms,
    Us,
    Ns,
}

impl Unit {
    fn to_seconds(self) -> f64 {
        match self {
            Unit::S => 1.0,
            Unit::Ms => 1e-3,
            Unit::Us => 1e-6,
            Unit::Ns => 1e-9,
        }
    }
}

/// For each role, the keys to try in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    roles: Vec<Vec<(String, Unit)>>,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys {
            roles: DEFAULTS
                .iter()
                .map(|keys| keys.iter().map(|(k, u)| (k.to_string(), *u)).collect())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--json-field {given:?}: {why}")]
pub struct KeyError {
    given: String,
    why: String,
}

impl Keys {
    /// The defaults with `ROLE=KEY[:UNIT]` pairs (`request_time=took:ms`)
    /// put in place of a role's defaults.
    pub fn with(pairs: &[String]) -> Result<Keys, KeyError> {
        let mut keys = Keys::default();
        for given in pairs {
            let err = |why: String| KeyError {
                given: given.clone(),
                why,
            };
            let (role, key) = given
                .split_once('=')
                .ok_or_else(|| err("expected ROLE=KEY, e.g. upstream_addr=backend".into()))?;
            let index = ROLES.iter().position(|r| *r == role).ok_or_else(|| {
                err(format!(
                    "unknown field {role:?}; one of {}",
                    ROLES.join(", ")
                ))
            })?;
            let (key, unit) = match key.rsplit_once(':') {
                Some((key, unit)) => (
                    key,
                    unit_named(unit).ok_or_else(|| {
                        err(format!("unknown unit {unit:?}; one of s, ms, us, ns"))
                    })?,
                ),
                None => (key, Unit::S),
            };
            if key.is_empty() {
                return Err(err("the key is empty".into()));
            }
            keys.roles[index] = vec![(key.to_string(), unit)];
        }
        Ok(keys)
    }

    /// How many roles a sample object fills: detection prefers the format
    /// that reads more.
    pub fn filled(&self, line: &str) -> Option<usize> {
        let object = object(line).ok()?;
        Some(
            self.roles
                .iter()
                .filter(|keys| keys.iter().any(|(k, _)| lookup(&object, k).is_some()))
                .count(),
        )
    }

    /// The first key of `role` that holds a string or a number, with it.
    fn found<'k, 'a>(
        &'k self,
        object: &Object<'a>,
        role: usize,
    ) -> Option<(&'k str, Value<'a>, Unit)> {
        self.roles[role].iter().find_map(|(k, unit)| {
            let v = value(lookup(object, k)?);
            (!matches!(v, Value::Other)).then_some((k.as_str(), v, *unit))
        })
    }

    fn find<'a>(&self, object: &Object<'a>, role: usize) -> Option<(Value<'a>, Unit)> {
        self.found(object, role).map(|(_, v, unit)| (v, unit))
    }

    /// Which key the lines' durations come from, as the report names it:
    /// the first of `lines` that has one decides.
    pub fn timing_in(&self, lines: &[String]) -> Option<String> {
        lines.iter().find_map(|line| {
            let object = object(line).ok()?;
            let (role, (key, _, unit)) = [2, 3]
                .into_iter()
                .find_map(|role| Some((role, self.found(&object, role)?)))?;
            let what = if role == 2 { "request" } else { "upstream" };
            let unit = match unit {
                Unit::S => "seconds",
                Unit::Ms => "milliseconds",
                Unit::Us => "microseconds",
                Unit::Ns => "nanoseconds",
            };
            Some(format!(
                "the JSON field {key} (the {what}'s time, in {unit})"
            ))
        })
    }

    pub fn entry<'a>(&self, line: &'a str) -> Result<Entry<'a>, String> {
        let object = object(line)?;
        let text = |role: usize| match self.find(&object, role) {
            Some((Value::Text(t) | Value::Number(t), _)) => Some(t),
            _ => None,
        };
        let duration = |role: usize, last_attempt: bool| {
            let (v, unit) = self.find(&object, role)?;
            let (Value::Text(t) | Value::Number(t)) = v else {
                return None;
            };
            let t = if last_attempt { last(t).0? } else { t };
            seconds(t).map(|s| s * unit.to_seconds())
        };
        let (node, attempts) = text(0).map_or((None, 0), last);
        let node = node.and_then(node_name);
        Ok(Entry {
            cut: false,
            node,
            attempts: if node.is_some() { attempts } else { 0 },
            status: text(1).and_then(|s| s.parse().ok()).filter(|s| *s > 0),
            request_time: duration(2, false),
            upstream_time: duration(3, true),
            client: text(4).filter(|c| *c != "-"),
            at: text(5).and_then(|t| {
                t.parse::<f64>()
                    .ok()
                    .or_else(|| time_iso8601(t))
                    .or_else(|| time_local(t))
            }),
        })
    }
}

fn unit_named(unit: &str) -> Option<Unit> {
    Some(match unit {
        "s" => Unit::S,
        "ms" => Unit::Ms,
        "us" | "µs" => Unit::Us,
        "ns" => Unit::Ns,
        _ => return None,
    })
}

type Object<'a> = HashMap<&'a str, &'a RawValue>;

/// The value under `key`, or under a path of keys (`ServiceURL.Host`)
/// when no key is named so.
fn lookup<'a>(object: &Object<'a>, key: &str) -> Option<&'a RawValue> {
    if let Some(v) = object.get(key) {
        return Some(v);
    }
    let (head, rest) = key.split_once('.')?;
    let inner: Object<'a> = serde_json::from_str(object.get(head)?.get()).ok()?;
    lookup(&inner, rest)
}

fn object(line: &str) -> Result<Object<'_>, String> {
    // Keys with escapes cannot be borrowed; no log writer uses them.
    serde_json::from_str(line.trim()).map_err(|e| format!("not a JSON object: {e}"))
}

enum Value<'a> {
    /// A string's contents, as written (escapes are not undone: the fields
    /// read here are addresses, numbers and times, which have none).
    Text(&'a str),
    Number(&'a str),
    Other,
}

fn value(raw: &RawValue) -> Value<'_> {
    let s = raw.get();
    match s.as_bytes().first() {
        Some(b'"') => Value::Text(&s[1..s.len() - 1]),
        Some(b'-' | b'0'..=b'9') => Value::Number(s),
        _ => Value::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_escape_json_lines_in_any_order() {
        // As nginx writes `log_format j escape=json '{...}'`: every value a
        // string, retries in the address list.
        let line = r#"{"time_iso8601":"2026-11-21T08:00:00+00:00","remote_addr":"10.0.0.1","status":"502","request_time":"1.204","upstream_response_time":"1.001, 0.203","upstream_addr":"127.0.0.1:8001, 127.0.0.1:8002"}"#;
        let e = Keys::default().entry(line).unwrap();
        assert_eq!(e.node, Some("127.0.0.1:8002"));
        assert_eq!(e.attempts, 2);
        assert_eq!(e.status, Some(502));
        assert_eq!(e.request_time, Some(1.204));
        assert_eq!(e.upstream_time, Some(0.203));
        assert_eq!(e.client, Some("10.0.0.1"));
        assert_eq!(e.at, Some(1_795_248_000.0));
    }

    #[test]
    fn traefik_json_names_and_nanoseconds() {
        let line = r#"{"ClientHost":"192.168.1.10","DownstreamStatus":200,"Duration":3120000,"ServiceURL":"http://172.18.0.3:8000","StartUTC":"2026-11-21T08:00:00.5Z","RouterName":"ai@docker"}"#;
        let keys = Keys::default();
        let e = keys.entry(line).unwrap();
        assert_eq!(e.node, Some("172.18.0.3:8000"));
        assert_eq!(e.status, Some(200));
        assert!((e.request_time.unwrap() - 0.00312).abs() < 1e-12);
        assert_eq!(e.at, Some(1_795_248_000.5));
        assert_eq!(keys.filled(line), Some(5));
    }

    #[test]
    fn traefik_urls_are_objects_and_the_address_comes_first() {
        // As Traefik 2 and 3 write a line: ServiceURL is Go's url.URL.
        let v2 = r#"{"ClientHost":"10.1.2.3","DownstreamStatus":503,"Duration":41000000,"OriginDuration":40000000,"RouterName":"llm@file","ServiceAddr":"10.0.3.7:8000","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"10.0.3.7:8000","Path":"","RawPath":"","ForceQuery":false,"RawQuery":"","Fragment":"","RawFragment":""},"StartUTC":"2026-11-21T08:00:01.25Z","level":"info","msg":"","time":"2026-11-21T08:00:01Z"}"#;
        let keys = Keys::default();
        let e = keys.entry(v2).unwrap();
        assert_eq!(e.node, Some("10.0.3.7:8000"));
        assert_eq!((e.status, e.request_time), (Some(503), Some(0.041)));
        assert_eq!(e.upstream_time, Some(0.04));
        // Traefik 1: BackendURL, an object too, and no address field.
        let v1 = r#"{"BackendName":"backend-llm","BackendURL":{"Scheme":"http","Opaque":"","User":null,"Host":"10.0.3.8:8000","Path":"/","RawPath":"","ForceQuery":false,"RawQuery":"","Fragment":""},"DownstreamStatus":200,"Duration":5000000,"StartUTC":"2026-11-21T08:00:02Z"}"#;
        assert_eq!(keys.entry(v1).unwrap().node, Some("10.0.3.8:8000"));
        let lines = [v2.to_string()];
        assert_eq!(
            keys.timing_in(&lines).unwrap(),
            "the JSON field Duration (the request's time, in nanoseconds)"
        );
        let named = Keys::with(&["upstream_addr=ServiceURL.Host".into()]).unwrap();
        assert_eq!(named.entry(v2).unwrap().node, Some("10.0.3.7:8000"));
    }

    #[test]
    fn named_fields_replace_the_defaults() {
        let keys = Keys::with(&[
            "upstream_addr=backend_node".into(),
            "request_time=took:ms".into(),
        ])
        .unwrap();
        let e = keys
            .entry(r#"{"backend_node":"b","took":250,"status":200,"upstream":"not this"}"#)
            .unwrap();
        assert_eq!((e.node, e.request_time), (Some("b"), Some(0.25)));
        for bad in ["node=x", "status", "request_time=t:min", "status="] {
            let e = Keys::with(&[bad.into()]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--json-field {bad:?}:")), "{e}");
        }
    }

    #[test]
    fn missing_fields_are_absent_and_non_objects_malformed() {
        let e = Keys::default()
            .entry(r#"{"status":"-","upstream_addr":"-"}"#)
            .unwrap();
        assert_eq!((e.node, e.status, e.attempts), (None, None, 0));
        assert!(Keys::default().entry("127.0.0.1 - - [..]").is_err());
        assert!(Keys::default().entry("[1,2]").is_err());
    }
}
