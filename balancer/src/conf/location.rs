//! `server {}` blocks: `listen`, and each `location` with what it does to
//! a request (proxy to an upstream, or answer), when it moves on to the
//! next server, its timeouts, what it sends upstream and its error pages.
//!
//! The proxy's directives may stand at the `http`, `server` or `location`
//! level. As nginx merges them, a level that writes a directive replaces
//! what it inherits, and one that does not inherits it; for
//! `proxy_set_header` and `error_page` that goes for the whole list.

use std::time::Duration;

use super::ignored::NEUTRAL;
use super::interpret::{access_log, client_limit, real_ip, Ctx, CLIENT_LIMITS, REAL_IP};
use super::model::*;
use super::{ConfError, Directive};
use crate::key::KeyExpr;
use crate::peer::Server;
use crate::upstream::{Method, UpstreamSpec};

/// The proxy's directives one level writes; `None` is inherited.
#[derive(Debug, Clone, Default)]
pub(super) struct Level {
    conditions: Option<NextUpstream>,
    tries: Option<u32>,
    next_timeout: Option<Option<Duration>>,
    connect: Option<Duration>,
    read: Option<Duration>,
    send: Option<Duration>,
    set_headers: Option<Vec<SetHeader>>,
    http11: Option<bool>,
    pass_request_headers: Option<bool>,
    pass_request_body: Option<bool>,
    buffer_size: Option<usize>,
    error_pages: Option<Vec<ErrorPage>>,
    intercept_errors: Option<bool>,
    recursive_error_pages: Option<bool>,
    max_body: Option<u64>,
    ssl_verify: Option<bool>,
    ssl_server_name: Option<bool>,
    ssl_trusted_certificate: Option<String>,
    ssl_name: Option<String>,
}

impl Level {
    /// This level over `parent`: what it writes, else what it inherits.
    pub(super) fn over(&self, parent: &Level) -> Level {
        fn pick<T: Clone>(mine: &Option<T>, theirs: &Option<T>) -> Option<T> {
            mine.clone().or_else(|| theirs.clone())
        }
        Level {
            conditions: pick(&self.conditions, &parent.conditions),
            tries: pick(&self.tries, &parent.tries),
            next_timeout: pick(&self.next_timeout, &parent.next_timeout),
            connect: pick(&self.connect, &parent.connect),
            read: pick(&self.read, &parent.read),
            send: pick(&self.send, &parent.send),
            set_headers: pick(&self.set_headers, &parent.set_headers),
            http11: pick(&self.http11, &parent.http11),
            pass_request_headers: pick(&self.pass_request_headers, &parent.pass_request_headers),
            pass_request_body: pick(&self.pass_request_body, &parent.pass_request_body),
            buffer_size: pick(&self.buffer_size, &parent.buffer_size),
            error_pages: pick(&self.error_pages, &parent.error_pages),
            intercept_errors: pick(&self.intercept_errors, &parent.intercept_errors),
            recursive_error_pages: pick(&self.recursive_error_pages, &parent.recursive_error_pages),
            max_body: pick(&self.max_body, &parent.max_body),
            ssl_verify: pick(&self.ssl_verify, &parent.ssl_verify),
            ssl_server_name: pick(&self.ssl_server_name, &parent.ssl_server_name),
            ssl_trusted_certificate: pick(
                &self.ssl_trusted_certificate,
                &parent.ssl_trusted_certificate,
            ),
            ssl_name: pick(&self.ssl_name, &parent.ssl_name),
        }
    }

    /// The level's directives among `block`'s (nested blocks are theirs).
    pub(super) fn of(cx: &Ctx<'_>, block: &[Directive]) -> Result<Level, ConfError> {
        let mut level = Level::default();
        for d in block.iter().filter(|d| d.block.is_none()) {
            level.read_directive(cx, d)?;
        }
        Ok(level)
    }

    /// Reads `d` into the level if it is one of the proxy's; whether it was.
    pub(super) fn read_directive(
        &mut self,
        cx: &Ctx<'_>,
        d: &Directive,
    ) -> Result<bool, ConfError> {
        let time = |d: &Directive| -> Result<Duration, ConfError> {
            cx.args(d, 1, 1)?;
            parse_time(&d.args[0])
                .ok_or_else(|| cx.err(d, format!("invalid value \"{}\"", d.args[0])))
        };
        match d.name.as_str() {
            "proxy_next_upstream" => {
                cx.args(d, 1, usize::MAX)?;
                let words: Vec<&str> = d.args.iter().map(String::as_str).collect();
                let read = NextUpstream::default()
                    .with_conditions(&words)
                    .map_err(|m| cx.err(d, m.0))?;
                self.conditions = Some(read);
            }
            "proxy_next_upstream_tries" => {
                cx.args(d, 1, 1)?;
                let n = d.args[0]
                    .parse()
                    .map_err(|_| cx.err(d, format!("invalid value \"{}\"", d.args[0])))?;
                self.tries = Some(n);
            }
            "proxy_next_upstream_timeout" => {
                self.next_timeout = Some(Some(time(d)?).filter(|t| !t.is_zero()))
            }
            "proxy_connect_timeout" => self.connect = Some(time(d)?),
            "proxy_read_timeout" => self.read = Some(time(d)?),
            "proxy_send_timeout" => self.send = Some(time(d)?),
            "proxy_set_header" => {
                if d.args.len() != 2 {
                    return Err(cx.err(d, "invalid number of arguments"));
                }
                let value = KeyExpr::parse(&d.args[1]).map_err(|e| cx.err(d, e.0))?;
                if let Some(unknown) = value.variables().find(|v| !known_variable(v)) {
                    return Err(cx.err(d, format!("unknown \"{unknown}\" variable")));
                }
                let header = SetHeader {
                    name: d.args[0].clone(),
                    value,
                };
                self.set_headers.get_or_insert_with(Vec::new).push(header);
            }
            "proxy_http_version" => {
                cx.args(d, 1, 1)?;
                self.http11 = Some(match d.args[0].as_str() {
                    "1.0" => false,
                    "1.1" => true,
                    v => return Err(cx.err(d, format!("invalid value \"{v}\""))),
                });
            }
            "proxy_pass_request_headers" => self.pass_request_headers = Some(on_off(cx, d)?),
            "proxy_pass_request_body" => self.pass_request_body = Some(on_off(cx, d)?),
            "proxy_intercept_errors" => self.intercept_errors = Some(on_off(cx, d)?),
            "recursive_error_pages" => self.recursive_error_pages = Some(on_off(cx, d)?),
            "proxy_buffer_size" => {
                cx.args(d, 1, 1)?;
                let size = super::upstream::parse_size(&d.args[0])
                    .filter(|n| *n > 0)
                    .ok_or_else(|| cx.err(d, format!("invalid value \"{}\"", d.args[0])))?;
                self.buffer_size = Some(size);
            }
            "client_max_body_size" => {
                cx.args(d, 1, 1)?;
                let size = super::upstream::parse_size(&d.args[0])
                    .ok_or_else(|| cx.err(d, format!("invalid value \"{}\"", d.args[0])))?;
                self.max_body = Some(size as u64);
            }
            "error_page" => {
                let page = error_page(cx, d)?;
                self.error_pages.get_or_insert_with(Vec::new).push(page);
            }
            "proxy_ssl_verify" => self.ssl_verify = Some(on_off(cx, d)?),
            "proxy_ssl_server_name" => self.ssl_server_name = Some(on_off(cx, d)?),
            "proxy_ssl_trusted_certificate" | "proxy_ssl_name" => {
                cx.args(d, 1, 1)?;
                let value = Some(d.args[0].clone());
                if d.name == "proxy_ssl_name" {
                    self.ssl_name = value;
                } else {
                    self.ssl_trusted_certificate = value;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The variables the reference can evaluate; nginx knows more, and a
/// config with one of those is refused rather than half run.
fn known_variable(name: &str) -> bool {
    matches!(
        name,
        "request_uri"
            | "uri"
            | "document_uri"
            | "args"
            | "query_string"
            | "is_args"
            | "remote_addr"
            | "remote_port"
            | "request_method"
            | "request"
            | "server_protocol"
            | "host"
            | "scheme"
            | "server_port"
            | "server_addr"
            | "proxy_host"
            | "proxy_port"
            | "proxy_add_x_forwarded_for"
            | "proxy_internal_body_length"
            | "proxy_internal_chunked"
            | "content_length"
            | "content_type"
    ) || ["http_", "cookie_", "arg_"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

/// `error_page CODE ... [=[STATUS]] URI|@NAME`, checked as nginx checks it.
fn error_page(cx: &Ctx<'_>, d: &Directive) -> Result<ErrorPage, ConfError> {
    if d.args.len() < 2 {
        return Err(cx.err(d, "invalid number of arguments"));
    }
    let target = d.args[d.args.len() - 1].clone();
    let mut codes = Vec::new();
    let mut answer = ErrorAnswer::Same;
    let rest = &d.args[..d.args.len() - 1];
    for (i, a) in rest.iter().enumerate() {
        if let Some(status) = a.strip_prefix('=') {
            if i + 1 != rest.len() {
                return Err(cx.err(d, format!("invalid value \"{a}\"")));
            }
            answer = if status.is_empty() {
                ErrorAnswer::Page
            } else {
                let code = status
                    .parse::<u16>()
                    .ok()
                    .filter(|c| *c <= 999)
                    .ok_or_else(|| cx.err(d, format!("invalid value \"{a}\"")))?;
                ErrorAnswer::Status(code)
            };
            continue;
        }
        let code = a
            .parse::<u16>()
            .ok()
            .filter(|c| *c != 499)
            .ok_or_else(|| cx.err(d, format!("invalid value \"{a}\"")))?;
        if !(300..=599).contains(&code) {
            return Err(cx.err(d, format!("value \"{code}\" must be between 300 and 599")));
        }
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(cx.err(d, "invalid number of arguments"));
    }
    if !target.starts_with('@') {
        return Err(cx.err(
            d,
            "the reference serves error pages from named locations (@name) only",
        ));
    }
    Ok(ErrorPage {
        codes,
        answer,
        target,
    })
}

pub(super) fn server(cx: &mut Ctx<'_>, block: &[Directive], http: &Level) -> Result<(), ConfError> {
    let level = Level::of(cx, block)?.over(http);
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
                        "reuseport" => cx.config.reuseport = true,
                        "default_server" => {}
                        e if e.starts_with("backlog=") => {}
                        _ => cx
                            .config
                            .ignored
                            .push(format!("{}:{}: listen {extra}", cx.file, d.line)),
                    }
                }
            }
            ("location", Some(inner)) => location(cx, d, inner, &level)?,
            ("server_name", None) => {
                cx.args(d, 1, usize::MAX)?;
                if cx.config.server_name.is_empty() {
                    cx.config.server_name = d.args[0].clone();
                }
            }
            ("access_log", None) => access_log(cx, d)?,
            ("ssl_certificate" | "ssl_certificate_key", None) => certificate(cx, d)?,
            (name, None) if CLIENT_LIMITS.contains(&name) => client_limit(cx, d)?,
            (name, None) if REAL_IP.contains(&name) => real_ip(cx, d)?,
            (_, None) if Level::default().read_directive(cx, d)? => {}
            (name, _) if NEUTRAL.contains(&name) => cx.ignore(d)?,
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

fn location(
    cx: &mut Ctx<'_>,
    d: &Directive,
    block: &[Directive],
    server: &Level,
) -> Result<(), ConfError> {
    let (path, exact) = match d.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [path] => (path.to_string(), false),
        ["=", path] => (path.to_string(), true),
        ["^~", path] => (path.to_string(), false),
        // Read for what it says about upstreams, a config may keep them.
        ["~" | "~*", _] if cx.lenient => return cx.unknown(d),
        ["~" | "~*", _] => {
            return Err(cx.err(
                d,
                "regular-expression locations are not supported; use a prefix",
            ))
        }
        _ => return Err(cx.err(d, "takes a path, or = and a path")),
    };
    let level = Level::of(cx, block)?.over(server);
    let mut loc = Location::new(
        &path,
        Action::Return {
            status: 404,
            body: String::new(),
        },
    );
    loc.exact = exact;
    loc.named = path.starts_with('@');
    let mut has_action = false;
    let mut https = None;
    for e in block {
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
            _ if e.block.is_none() && Level::default().read_directive(cx, e)? => {}
            name if CLIENT_LIMITS.contains(&name) => client_limit(cx, e)?,
            name if REAL_IP.contains(&name) => real_ip(cx, e)?,
            name if NEUTRAL.contains(&name) => cx.ignore(e)?,
            _ => cx.unknown(e)?,
        }
    }
    if !has_action {
        return Err(cx.err(d, "has neither proxy_pass nor return"));
    }
    apply(&mut loc, &level);
    if let (Some(e), Action::Proxy { upstream }) = (https, &loc.action) {
        if level.ssl_verify == Some(true) && level.ssl_trusted_certificate.is_none() {
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
            verify: level.ssl_verify.unwrap_or(false),
            trusted_certificate: level.ssl_trusted_certificate.clone(),
            server_name: level.ssl_server_name.unwrap_or(false),
            name: level.ssl_name.clone().unwrap_or_else(|| host.to_string()),
        });
    }
    cx.config.locations.push(loc);
    Ok(())
}

/// The merged level's settings, nginx's defaults where none is written.
fn apply(loc: &mut Location, level: &Level) {
    let mut next = level.conditions.clone().unwrap_or_default();
    next.tries = level.tries.unwrap_or(0);
    next.timeout = level.next_timeout.unwrap_or(None);
    loc.next_upstream = next;
    let defaults = Timeouts::default();
    loc.timeouts = Timeouts {
        connect: level.connect.unwrap_or(defaults.connect),
        read: level.read.unwrap_or(defaults.read),
        send: level.send.unwrap_or(defaults.send),
    };
    let mut request = UpstreamRequest::with_headers(level.set_headers.clone().unwrap_or_default());
    request.http11 = level.http11.unwrap_or(false);
    request.pass_request_headers = level.pass_request_headers.unwrap_or(true);
    request.pass_request_body = level.pass_request_body.unwrap_or(true);
    loc.upstream_request = request;
    loc.buffer_size = level.buffer_size.unwrap_or(4096);
    loc.error_pages = level.error_pages.clone().unwrap_or_default();
    loc.intercept_errors = level.intercept_errors.unwrap_or(false);
    loc.recursive_error_pages = level.recursive_error_pages.unwrap_or(false);
    loc.max_body = match level.max_body {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(1 << 20),
    };
}
