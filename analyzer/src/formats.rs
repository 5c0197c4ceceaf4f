//! Which format a log is in: named, given as an nginx `log_format` string,
//! or recognised from its first lines.

use logformat::presets::{preset, PRESETS};
use logformat::{Escape, FormatError, LogFormat, ParseError};

use crate::entry::{Entry, Fields, Scratch};
use crate::{haproxy, jsonl, traefik};

/// Lines looked at to recognise a format.
pub const SAMPLE_LINES: usize = 20;

/// A format chosen for a log, with the name the report says it by.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub name: String,
    pub reader: Reader,
    /// Found by looking at the lines rather than named by the user.
    pub detected: bool,
}

/// How lines of a format become entries.
#[derive(Debug, Clone)]
// There is one per run: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Reader {
    /// An nginx `log_format` (a preset or the user's), read by variable name.
    Nginx { format: LogFormat, fields: Fields },
    /// HAProxy's `option httplog`.
    Haproxy,
    /// Traefik's CLF, in all its versions.
    Traefik,
    /// JSON lines, fields by name in any order.
    Json(jsonl::Keys),
}

/// The name `--format` takes for HAProxy's `option httplog`.
pub const HAPROXY: &str = "haproxy";

/// Other proxies' default formats, written as nginx `log_format` text with
/// the variable names the entry reader knows (`_ms`: milliseconds).
pub const TEMPLATES: &[(&str, &str)] = &[
    // Envoy's default access log format: START_TIME, the request line,
    // RESPONSE_CODE, RESPONSE_FLAGS, BYTES_RECEIVED, BYTES_SENT, DURATION,
    // X-ENVOY-UPSTREAM-SERVICE-TIME, X-FORWARDED-FOR, USER-AGENT,
    // X-REQUEST-ID, :AUTHORITY, UPSTREAM_HOST.
    (
        "envoy",
        r#"[$time_iso8601] "$request" $status $response_flags $bytes_received $bytes_sent $request_time_ms $upstream_response_time_ms "$http_x_forwarded_for" "$http_user_agent" "$request_id" "$authority" "$upstream_addr""#,
    ),
];

fn template(name: &str) -> Option<LogFormat> {
    let (_, text) = TEMPLATES.iter().find(|(n, _)| *n == name)?;
    LogFormat::compile(text, Escape::Default).ok()
}

impl Reader {
    fn nginx(format: LogFormat) -> Reader {
        let fields = Fields::of(&format);
        Reader::Nginx { format, fields }
    }

    pub fn entry<'a>(&self, line: &'a str) -> Result<Entry<'a>, String> {
        self.read(line, &mut Scratch::default())
    }

    /// [`Reader::entry`] with a buffer for the values reused line after line.
    pub fn read<'a>(&self, line: &'a str, scratch: &mut Scratch<'a>) -> Result<Entry<'a>, String> {
        match self {
            Reader::Nginx { format, fields } => {
                match format.parse_into(line, &mut scratch.values) {
                    Ok(()) => fields.entry(scratch),
                    Err(e) => Err(e.to_string()),
                }
            }
            Reader::Haproxy => haproxy::entry(line),
            Reader::Traefik => traefik::entry(line),
            Reader::Json(keys) => keys.entry(line),
        }
    }

    /// Whether lines say which node answered.
    pub fn has_node(&self) -> bool {
        match self {
            Reader::Nginx { fields, .. } => fields.has_node(),
            // Known per line only; lines without one count as answered
            // by nginx itself.
            Reader::Haproxy | Reader::Traefik | Reader::Json(_) => true,
        }
    }

    /// Which timing latency figures come from, as the report names it,
    /// with `lines` (the first of the log) to tell the key JSON lines use.
    pub fn timing_in(&self, lines: &[String]) -> Option<String> {
        match self {
            Reader::Json(keys) => keys.timing_in(lines),
            other => other.timing().map(str::to_string),
        }
    }

    /// Which timing latency figures come from, as the report names it.
    pub fn timing(&self) -> Option<&'static str> {
        match self {
            Reader::Nginx { fields, .. } => fields.timing(),
            Reader::Haproxy => Some("HAProxy's Ta (total active time)"),
            Reader::Traefik => Some("Traefik's request duration"),
            Reader::Json(_) => Some("the JSON lines' request time"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatChoiceError {
    #[error("--format {0}: not a format this knows; use auto, {names}", names = preset_names())]
    Unknown(String),
    #[error("--log-format: {0}")]
    Invalid(#[from] FormatError),
    #[error("--log-format: lines in this format cannot be read back: {0}")]
    Unreadable(#[from] ParseError),
    #[error("--nginx-conf: log_format {name}: {why}")]
    FromConfig { name: String, why: String },
    #[error("--nginx-conf: {why}; name the format with --format")]
    WhichLog { why: String },
    #[error(
        "no known format matches the first lines (the first: {first:?}); name one with --format ({names}) or give nginx's log_format with --log-format '...'",
        names = preset_names()
    )]
    Unrecognised { first: String },
}

fn preset_names() -> String {
    let mut names: Vec<&str> = PRESETS.iter().chain(TEMPLATES).map(|(n, _)| *n).collect();
    names.extend([HAPROXY, traefik::NAME, jsonl::NAME]);
    names.join(", ")
}

/// A format by name (`--format`), or `None` for `auto`.
pub fn named(name: &str) -> Result<Option<Chosen>, FormatChoiceError> {
    if name == "auto" {
        return Ok(None);
    }
    let reader = if name == HAPROXY {
        Reader::Haproxy
    } else if name == traefik::NAME {
        Reader::Traefik
    } else if name == jsonl::NAME {
        Reader::Json(jsonl::Keys::default())
    } else {
        let format = preset(name).or_else(|| template(name));
        Reader::nginx(format.ok_or_else(|| FormatChoiceError::Unknown(name.to_string()))?)
    };
    Ok(Some(Chosen {
        name: name.to_string(),
        reader,
        detected: false,
    }))
}

/// A format from nginx `log_format` text (`--log-format`), with the escaping
/// nginx would use (`escape=json` as a prefix, as in nginx.conf).
pub fn custom(text: &str) -> Result<Chosen, FormatChoiceError> {
    let (escape, text) = match text.trim_start().strip_prefix("escape=") {
        Some(rest) => {
            let (mode, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            (mode.parse::<Escape>()?, text.trim_start())
        }
        None => (Escape::Default, text),
    };
    let format = LogFormat::compile(text, escape)?;
    format.check_parseable()?;
    Ok(Chosen {
        name: "log_format".to_string(),
        reader: Reader::nginx(format),
        detected: false,
    })
}

/// The format of the nginx.conf `access_log` that wrote `log` (the file
/// being read; with several, the one with its path or file name): a
/// `log_format` it defines, nginx's `combined`, or a preset by name;
/// `None` when it has no access log.
pub fn from_config(
    config: &balancer::conf::ProxyConfig,
    log: &str,
) -> Result<Option<Chosen>, FormatChoiceError> {
    let chosen = config
        .access_log_for(log)
        .map_err(|why| FormatChoiceError::WhichLog { why })?;
    let Some(log) = chosen else {
        return Ok(None);
    };
    if let Some(def) = config.log_formats.iter().find(|d| d.name == log.format) {
        let unusable = |why: String| FormatChoiceError::FromConfig {
            name: def.name.clone(),
            why,
        };
        let format =
            LogFormat::compile(&def.format, def.escape).map_err(|e| unusable(e.to_string()))?;
        format
            .check_parseable()
            .map_err(|e| unusable(format!("lines in this format cannot be read back: {e}")))?;
        return Ok(Some(Chosen {
            name: format!("log_format {}", def.name),
            reader: Reader::nginx(format),
            detected: false,
        }));
    }
    named(&log.format)
}

/// The known format that reads most of `lines`; among equals, the one that
/// reads more fields (`upstream_log` over `main`, which it extends).
pub fn detect(lines: &[&str]) -> Result<Chosen, FormatChoiceError> {
    let lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let nginx = PRESETS.iter().chain(TEMPLATES).filter_map(|(name, _)| {
        let format = preset(name).or_else(|| template(name))?;
        Some((*name, format.variables().len(), Reader::nginx(format)))
    });
    // httplog has 12 fields before its request.
    let keys = jsonl::Keys::default();
    let json_fields = lines
        .iter()
        .filter_map(|l| keys.filled(l))
        .max()
        .unwrap_or(0);
    let candidates = nginx.chain([
        (HAPROXY, 12, Reader::Haproxy),
        // Traefik's CLF is combined plus five fields.
        (traefik::NAME, 13, Reader::Traefik),
        (jsonl::NAME, json_fields, Reader::Json(keys)),
    ]);
    let mut best: Option<(usize, usize, &str, Reader)> = None;
    for (name, fields, reader) in candidates {
        let parsed = lines.iter().filter(|l| reader.entry(l).is_ok()).count();
        let better = match &best {
            None => parsed > 0,
            Some((p, f, _, _)) => (parsed, fields) > (*p, *f),
        };
        if better {
            best = Some((parsed, fields, name, reader));
        }
    }
    match best {
        Some((_, _, name, reader)) => Ok(Chosen {
            name: name.to_string(),
            reader,
            detected: true,
        }),
        None => Err(FormatChoiceError::Unrecognised {
            first: lines.first().map(|l| clip(l, 80)).unwrap_or_default(),
        }),
    }
}

/// `line` cut to `chars` characters, with an ellipsis when cut.
pub(crate) fn clip(line: &str, chars: usize) -> String {
    match line.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#;
    const COMBINED: &str = r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3""#;
    const UPSTREAM: &str = r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#;

    #[test]
    fn recognises_each_format_from_its_lines() {
        assert_eq!(detect(&[SEED, SEED]).unwrap().name, "upstream_log_port");
        assert_eq!(detect(&[COMBINED]).unwrap().name, "combined");
        assert_eq!(detect(&[UPSTREAM]).unwrap().name, "upstream_log");
        let loadgen = "1763712000.123 200 0.012 18 127.0.0.1:8001";
        assert_eq!(detect(&[loadgen]).unwrap().name, "loadgen");
        let lbkit = format!("{UPSTREAM} rt=0.012 urt=0.011 us=200 cl=18");
        assert_eq!(detect(&[&lbkit]).unwrap().name, "lbkit");
        let haproxy: Vec<&str> = include_str!("../tests/data/haproxy-httplog-syslog.log")
            .lines()
            .collect();
        assert_eq!(detect(&haproxy).unwrap().name, "haproxy");
        assert_eq!(detect(&[ENVOY]).unwrap().name, "envoy");
        assert_eq!(detect(&[TRAEFIK]).unwrap().name, "traefik");
        let ingress = r#"10.0.0.7 - - [21/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.0" 89 0.004 [default-ai-8080] [] 10.244.0.5:8080 5 0.004 200 7f3a"#;
        assert_eq!(detect(&[ingress]).unwrap().name, "upstreaminfo");
    }

    // Envoy's documentation example of its default format.
    const ENVOY: &str = r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#;
    const TRAEFIK: &str = r#"192.168.1.10 - - [21/Nov/2026:08:00:00 +0000] "GET /v1/models HTTP/1.1" 200 512 "-" "curl/8.0" 42 "ai@docker" "http://172.18.0.3:8000" 3ms"#;

    #[test]
    fn envoy_and_traefik_times_are_milliseconds() {
        let envoy = named("envoy")
            .unwrap()
            .unwrap()
            .reader
            .entry(ENVOY)
            .unwrap();
        assert_eq!(envoy.node, Some("10.0.2.1:80"), "without Envoy's scheme");
        assert_eq!(
            (envoy.status, envoy.request_time, envoy.upstream_time),
            (Some(204), Some(0.226), Some(0.1))
        );
        assert_eq!(envoy.at, Some(1_460_751_420.31));
        let traefik = named("traefik")
            .unwrap()
            .unwrap()
            .reader
            .entry(TRAEFIK)
            .unwrap();
        assert_eq!(traefik.node, Some("172.18.0.3:8000"));
        assert_eq!(traefik.request_time, Some(0.003));
    }

    #[test]
    fn the_majority_wins_over_a_stray_line() {
        let chosen = detect(&[COMBINED, UPSTREAM, UPSTREAM, "", "garbage"]).unwrap();
        assert_eq!(chosen.name, "upstream_log");
        assert!(chosen.detected);
    }

    #[test]
    fn unknown_names_and_lines_are_errors_naming_the_way_out() {
        let e = named("apache").unwrap_err().to_string();
        assert!(
            e.starts_with("--format apache:") && e.contains("upstream_log"),
            "{e}"
        );
        let e = detect(&["hello world"]).unwrap_err().to_string();
        assert!(
            e.contains("\"hello world\"") && e.contains("--log-format"),
            "{e}"
        );
        assert!(named("auto").unwrap().is_none());
    }

    #[test]
    fn a_custom_log_format() {
        let c = custom("$remote_addr $status $request_time $upstream_addr").unwrap();
        let e = c.reader.entry("10.0.0.1 200 0.004 127.0.0.1:8002").unwrap();
        assert_eq!(
            (e.node, e.request_time),
            (Some("127.0.0.1:8002"), Some(0.004))
        );
        let json = custom(r#"escape=json {"addr":"$upstream_addr","status":$status}"#).unwrap();
        let Reader::Nginx { format, .. } = &json.reader else {
            panic!("a log_format is read as nginx's")
        };
        assert_eq!(format.escape(), Escape::Json);
        let e = json
            .reader
            .entry(r#"{"addr":"127.0.0.1:8001","status":200}"#)
            .unwrap();
        assert_eq!(e.status, Some(200));
        let e = custom("escape=yaml $status").unwrap_err().to_string();
        assert!(e.starts_with("--log-format:") && e.contains("yaml"), "{e}");
        assert!(custom("$remote_addr$status")
            .unwrap_err()
            .to_string()
            .starts_with("--log-format:"));
    }
}
