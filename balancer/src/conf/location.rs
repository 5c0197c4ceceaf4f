//! `server {}` blocks: `listen`, and each `location` with what it does to
//! a request (proxy to an upstream, or answer), when it moves on to the
//! next server, and its timeouts.

use std::time::Duration;

use super::ignored::IGNORED;
use super::interpret::{access_log, client_limit, Ctx, CLIENT_LIMITS};
use super::model::*;
use super::{ConfError, Directive};
use crate::peer::Server;
use crate::upstream::{Method, UpstreamSpec};

pub(super) fn server(cx: &mut Ctx<'_>, block: &[Directive]) -> Result<(), ConfError> {
    for d in block {
        match (d.name.as_str(), &d.block) {
            ("listen", None) => {
                cx.args(d, 1, usize::MAX)?;
                let addr = &d.args[0];
                // `listen 80` is every address, as nginx reads it.
                let full = if addr.chars().all(|c| c.is_ascii_digit()) {
                    format!("0.0.0.0:{addr}")
                } else {
                    addr.clone()
                };
                cx.config.listen.push(full);
                for extra in &d.args[1..] {
                    if !matches!(extra.as_str(), "default_server" | "reuseport")
                        && !extra.starts_with("backlog=")
                    {
                        cx.config
                            .ignored
                            .push(format!("{}:{}: listen {extra}", cx.file, d.line));
                    }
                }
            }
            ("location", Some(inner)) => location(cx, d, inner)?,
            ("access_log", None) => access_log(cx, d)?,
            (name, None) if CLIENT_LIMITS.contains(&name) => client_limit(cx, d)?,
            (name, _) if IGNORED.contains(&name) => cx.ignore(d),
            _ => cx.unknown(d)?,
        }
    }
    Ok(())
}

fn location(cx: &mut Ctx<'_>, d: &Directive, block: &[Directive]) -> Result<(), ConfError> {
    let (path, exact) = match d.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [path] => (path.to_string(), false),
        ["=", path] => (path.to_string(), true),
        ["^~", path] => (path.to_string(), false),
        // Read for what it says about upstreams, a config may keep them.
        ["~" | "~*", _] if cx.lenient => {
            cx.ignore(d);
            return Ok(());
        }
        ["~" | "~*", _] => {
            return Err(cx.err(
                d,
                "regular-expression locations are not supported; use a prefix",
            ))
        }
        _ => return Err(cx.err(d, "takes a path, or = and a path")),
    };
    let mut loc = Location {
        path,
        exact,
        action: Action::Return {
            status: 404,
            body: String::new(),
        },
        next_upstream: NextUpstream::default(),
        timeouts: Timeouts::default(),
        health: None,
        logged: true,
    };
    let mut has_action = false;
    for e in block {
        let time = |e: &Directive| -> Result<Duration, ConfError> {
            cx.args(e, 1, 1)?;
            parse_time(&e.args[0])
                .ok_or_else(|| cx.err(e, format!("invalid time \"{}\"", e.args[0])))
        };
        match e.name.as_str() {
            "proxy_pass" => {
                cx.args(e, 1, 1)?;
                let target = e.args[0]
                    .strip_prefix("http://")
                    .ok_or_else(|| cx.err(e, "only http:// upstreams are supported"))?;
                if target.contains('/') {
                    return Err(cx.err(e, "a URI after the upstream name is not supported"));
                }
                // An address instead of an upstream name makes an implicit one.
                if !cx.config.upstreams.iter().any(|u| u.name == target) && target.contains(':') {
                    let spec =
                        UpstreamSpec::new(target, Method::RoundRobin, vec![Server::new(target)]);
                    cx.config.upstreams.push(spec);
                }
                loc.action = Action::Proxy {
                    upstream: target.to_string(),
                };
                has_action = true;
            }
            "return" => {
                cx.args(e, 1, 2)?;
                let status = e.args[0]
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| cx.err(e, format!("invalid status \"{}\"", e.args[0])))?;
                loc.action = Action::Return {
                    status,
                    body: e.args.get(1).cloned().unwrap_or_default(),
                };
                has_action = true;
            }
            "proxy_next_upstream" => {
                cx.args(e, 1, usize::MAX)?;
                let words: Vec<&str> = e.args.iter().map(String::as_str).collect();
                loc.next_upstream = loc
                    .next_upstream
                    .with_conditions(&words)
                    .map_err(|m| cx.err(e, m.0))?;
            }
            "proxy_next_upstream_tries" => {
                cx.args(e, 1, 1)?;
                loc.next_upstream.tries = e.args[0]
                    .parse()
                    .map_err(|_| cx.err(e, format!("invalid value \"{}\"", e.args[0])))?;
            }
            "proxy_next_upstream_timeout" => {
                loc.next_upstream.timeout = Some(time(e)?).filter(|t| !t.is_zero())
            }
            "proxy_connect_timeout" => loc.timeouts.connect = time(e)?,
            "proxy_read_timeout" => loc.timeouts.read = time(e)?,
            "proxy_send_timeout" => loc.timeouts.send = time(e)?,
            "health_check" => {
                let mut h = HealthSpec::default();
                for arg in &e.args {
                    let bad = || cx.err(e, format!("invalid parameter \"{arg}\""));
                    match arg.split_once('=') {
                        Some(("interval", v)) => h.interval = parse_time(v).ok_or_else(bad)?,
                        Some(("fails", v)) => h.fails = v.parse().map_err(|_| bad())?,
                        Some(("passes", v)) => h.passes = v.parse().map_err(|_| bad())?,
                        Some(("uri", v)) => h.uri = v.to_string(),
                        _ => return Err(bad()),
                    }
                }
                loc.health = Some(h);
            }
            "access_log" if e.args.first().is_some_and(|a| a == "off") => loc.logged = false,
            "access_log" => access_log(cx, e)?,
            name if CLIENT_LIMITS.contains(&name) => client_limit(cx, e)?,
            name if IGNORED.contains(&name) => cx.ignore(e),
            _ => cx.unknown(e)?,
        }
    }
    if !has_action {
        return Err(cx.err(d, "has neither proxy_pass nor return"));
    }
    cx.config.locations.push(loc);
    Ok(())
}
