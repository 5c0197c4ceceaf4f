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
                    match extra.as_str() {
                        "ssl" => cx.config.tls.ssl = true,
                        "http2" => cx.config.tls.http2 = true,
                        "default_server" | "reuseport" => {}
                        e if e.starts_with("backlog=") => {}
                        _ => cx
                            .config
                            .ignored
                            .push(format!("{}:{}: listen {extra}", cx.file, d.line)),
                    }
                }
            }
            ("location", Some(inner)) => location(cx, d, inner)?,
            ("access_log", None) => access_log(cx, d)?,
            ("ssl_certificate" | "ssl_certificate_key", None) => certificate(cx, d)?,
            (name, None) if CLIENT_LIMITS.contains(&name) => client_limit(cx, d)?,
            (name, _) if IGNORED.contains(&name) => cx.ignore(d),
            _ => cx.unknown(d)?,
        }
    }
    Ok(())
}

/// `ssl_certificate FILE` or `ssl_certificate_key FILE` (server or http level).
pub(super) fn certificate(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 1, 1)?;
    let file = Some(d.args[0].clone());
    if d.name == "ssl_certificate" {
        cx.config.tls.certificate = file;
    } else {
        cx.config.tls.certificate_key = file;
    }
    Ok(())
}

/// A location's `proxy_ssl_*`, read before it is known whether its
/// proxy_pass is https://.
#[derive(Default)]
struct ProxySsl {
    verify: bool,
    trusted_certificate: Option<String>,
    server_name: bool,
    name: Option<String>,
}

fn on_off(cx: &Ctx<'_>, e: &Directive) -> Result<bool, ConfError> {
    cx.args(e, 1, 1)?;
    match e.args[0].as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(cx.err(
            e,
            format!("invalid value \"{other}\", it must be \"on\" or \"off\""),
        )),
    }
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
        upstream_tls: None,
    };
    let mut has_action = false;
    let mut ssl = ProxySsl::default();
    let mut https = None;
    for e in block {
        let time = |e: &Directive| -> Result<Duration, ConfError> {
            cx.args(e, 1, 1)?;
            parse_time(&e.args[0])
                .ok_or_else(|| cx.err(e, format!("invalid time \"{}\"", e.args[0])))
        };
        match e.name.as_str() {
            "proxy_pass" => {
                cx.args(e, 1, 1)?;
                let arg = &e.args[0];
                let target = match (arg.strip_prefix("http://"), arg.strip_prefix("https://")) {
                    (Some(t), _) => t,
                    (_, Some(t)) => {
                        https = Some(e);
                        t
                    }
                    _ => return Err(cx.err(e, "only http:// and https:// upstreams are supported")),
                };
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
            "proxy_ssl_verify" => ssl.verify = on_off(cx, e)?,
            "proxy_ssl_server_name" => ssl.server_name = on_off(cx, e)?,
            "proxy_ssl_trusted_certificate" | "proxy_ssl_name" => {
                cx.args(e, 1, 1)?;
                let value = Some(e.args[0].clone());
                if e.name == "proxy_ssl_name" {
                    ssl.name = value;
                } else {
                    ssl.trusted_certificate = value;
                }
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
    if let (Some(e), Action::Proxy { upstream }) = (https, &loc.action) {
        if ssl.verify && ssl.trusted_certificate.is_none() {
            return Err(cx.err(
                e,
                "no \"proxy_ssl_trusted_certificate\" for \"proxy_ssl_verify\"",
            ));
        }
        // The host of proxy_pass, without its port, as nginx's $proxy_host.
        let host = match upstream.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => upstream,
        };
        loc.upstream_tls = Some(UpstreamTls {
            verify: ssl.verify,
            trusted_certificate: ssl.trusted_certificate,
            server_name: ssl.server_name,
            name: ssl.name.unwrap_or_else(|| host.to_string()),
        });
    }
    cx.config.locations.push(loc);
    Ok(())
}
