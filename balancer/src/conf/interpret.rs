//! What the directives mean.

use std::time::Duration;

use super::{ConfError, Directive};
use crate::key::KeyExpr;
use crate::peer::Server;
use crate::upstream::{Method, SpecError, UpstreamSpec};

/// Everything the reverse proxy needs from nginx.conf.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    pub upstreams: Vec<UpstreamSpec>,
    /// `listen` addresses, as `host:port`.
    pub listen: Vec<String>,
    pub locations: Vec<Location>,
    pub log_formats: Vec<LogFormatDef>,
    pub access_log: Option<AccessLog>,
    /// `keepalive N` of the upstreams: idle connections kept per upstream.
    pub keepalive: Option<usize>,
    /// Directives nginx has that this balancer does not act on, as `file:line: name`.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormatDef {
    pub name: String,
    /// `default`, `json` or `none`, as nginx's `escape=`.
    pub escape: String,
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub path: String,
    pub format: String,
    /// Where it was configured (0 when not from a file).
    pub line: usize,
}

/// A `location` block: which requests, and what happens to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub path: String,
    /// `location = /path`: that path only.
    pub exact: bool,
    pub action: Action,
    pub next_upstream: NextUpstream,
    pub timeouts: Timeouts,
    pub health: Option<HealthSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Proxy { upstream: String },
    Return { status: u16, body: String },
}

/// `proxy_next_upstream` and its companions: when a request moves on to the
/// next server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextUpstream {
    pub on_error: bool,
    pub on_timeout: bool,
    /// Statuses that count as failures and are retried (`http_502` ...).
    pub statuses: Vec<u16>,
    /// Retry POST and other non-idempotent requests too.
    pub non_idempotent: bool,
    /// 0 is no limit beyond one try per server.
    pub tries: u32,
    pub timeout: Option<Duration>,
}

impl Default for NextUpstream {
    /// nginx's default: `proxy_next_upstream error timeout;`
    fn default() -> Self {
        NextUpstream {
            on_error: true,
            on_timeout: true,
            statuses: Vec::new(),
            non_idempotent: false,
            tries: 0,
            timeout: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub send: Duration,
}

impl Default for Timeouts {
    /// nginx's 60 s each.
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Timeouts {
            connect: minute,
            read: minute,
            send: minute,
        }
    }
}

/// nginx Plus's `health_check` (interval, fails, passes, uri), in a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub interval: Duration,
    pub fails: u32,
    pub passes: u32,
    pub uri: String,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            interval: Duration::from_secs(5),
            fails: 1,
            passes: 1,
            uri: "/".to_string(),
        }
    }
}

/// nginx directives that leave balancing alone: accepted and reported.
const IGNORED: &[&str] = &[
    "user",
    "worker_processes",
    "worker_rlimit_nofile",
    "pid",
    "include",
    "events",
    "worker_connections",
    "multi_accept",
    "use",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "types_hash_max_size",
    "types",
    "server_tokens",
    "server_names_hash_bucket_size",
    "server_name_in_redirect",
    "default_type",
    "ssl_protocols",
    "ssl_prefer_server_ciphers",
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_ciphers",
    "gzip",
    "gzip_vary",
    "gzip_proxied",
    "gzip_comp_level",
    "gzip_buffers",
    "gzip_http_version",
    "gzip_types",
    "error_log",
    "server_name",
    "add_header",
    "proxy_set_header",
    "proxy_http_version",
    "proxy_buffering",
    "proxy_buffers",
    "proxy_buffer_size",
    "proxy_request_buffering",
    "client_max_body_size",
    "keepalive_timeout",
    "keepalive_requests",
    "keepalive_time",
    "zone",
    "root",
    "index",
    "charset",
    "limit_req",
    "limit_req_zone",
    "limit_conn",
    "limit_conn_zone",
    "resolver",
    "proxy_cache",
    "proxy_cache_path",
    "proxy_redirect",
    "proxy_hide_header",
    "proxy_pass_header",
    "proxy_ignore_headers",
    "client_body_timeout",
    "client_header_timeout",
    "send_timeout",
    "reset_timedout_connection",
    "open_file_cache",
    "log_not_found",
    "mail",
    "stream",
    "load_module",
    "daemon",
    "master_process",
    "http2",
    "ssl",
    "proxy_ssl_server_name",
    "real_ip_header",
    "set_real_ip_from",
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
];

struct Ctx<'a> {
    file: &'a str,
    config: ProxyConfig,
    /// Directives nginx has and this does not know are ignored, not errors:
    /// for reading a real nginx.conf for its upstreams and log formats.
    lenient: bool,
}

impl Ctx<'_> {
    fn err(&self, d: &Directive, message: impl Into<String>) -> ConfError {
        ConfError::new(self.file, d.line, &d.name, message)
    }

    /// A directive this does not know: an error when the config is to be
    /// run (it cannot honour it), one more ignored line when only read.
    fn unknown(&mut self, d: &Directive) -> Result<(), ConfError> {
        if self.lenient {
            self.ignore(d);
            Ok(())
        } else {
            Err(self.err(d, "unknown directive"))
        }
    }

    fn ignore(&mut self, d: &Directive) {
        self.config
            .ignored
            .push(format!("{}:{}: {}", self.file, d.line, d.name));
    }

    fn args(&self, d: &Directive, min: usize, max: usize) -> Result<(), ConfError> {
        if d.args.len() < min || d.args.len() > max {
            return Err(self.err(
                d,
                format!("takes {} arguments, not {}", plural(min, max), d.args.len()),
            ));
        }
        Ok(())
    }
}

fn plural(min: usize, max: usize) -> String {
    match (min, max) {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("at least {a}"),
        (a, b) => format!("{a} to {b}"),
    }
}

/// Interprets parsed directives: an `http {}` block, or its contents at the
/// top of the file (a conf.d snippet).
pub fn interpret(file: &str, top: &[Directive], lenient: bool) -> Result<ProxyConfig, ConfError> {
    let mut cx = Ctx {
        file,
        lenient,
        config: ProxyConfig {
            upstreams: Vec::new(),
            listen: Vec::new(),
            locations: Vec::new(),
            log_formats: Vec::new(),
            access_log: None,
            keepalive: None,
            ignored: Vec::new(),
        },
    };
    http_level(&mut cx, top)?;
    // proxy_pass must name an upstream that exists (or an address).
    for loc in &cx.config.locations {
        if let Action::Proxy { upstream } = &loc.action {
            if !cx.config.upstreams.iter().any(|u| &u.name == upstream) {
                let msg = format!("proxy_pass names upstream \"{upstream}\", which is not defined");
                return Err(ConfError::new(file, 0, "proxy_pass", msg));
            }
        }
    }
    if let Some(log) = &cx.config.access_log {
        let known = logformat::presets::preset(&log.format).is_some()
            || cx.config.log_formats.iter().any(|f| f.name == log.format);
        if !known {
            let msg = format!("unknown log format \"{}\"", log.format);
            return Err(ConfError::new(file, log.line, "access_log", msg));
        }
    }
    Ok(cx.config)
}

fn http_level(cx: &mut Ctx<'_>, directives: &[Directive]) -> Result<(), ConfError> {
    for d in directives {
        match (d.name.as_str(), &d.block) {
            ("http", Some(block)) => http_level(cx, block)?,
            ("upstream", Some(block)) => upstream(cx, d, block)?,
            ("server", Some(block)) => server(cx, block)?,
            ("log_format", None) => log_format(cx, d)?,
            ("access_log", None) => access_log(cx, d)?,
            (name, _) if IGNORED.contains(&name) => cx.ignore(d),
            _ => cx.unknown(d)?,
        }
    }
    Ok(())
}

fn upstream(cx: &mut Ctx<'_>, d: &Directive, block: &[Directive]) -> Result<(), ConfError> {
    cx.args(d, 1, 1)?;
    let name = d.args[0].clone();
    if cx.config.upstreams.iter().any(|u| u.name == name) {
        return Err(cx.err(d, format!("upstream \"{name}\" is defined twice")));
    }
    let mut method = Method::RoundRobin;
    let mut servers: Vec<(Server, usize)> = Vec::new();
    for e in block {
        match e.name.as_str() {
            "server" => {
                let server = server_line(cx, e)?;
                if servers.iter().any(|(s, _)| s.addr == server.addr) {
                    return Err(cx.err(e, format!("server {} is listed twice", server.addr)));
                }
                servers.push((server, e.line));
            }
            "least_conn" => {
                cx.args(e, 0, 0)?;
                method = Method::LeastConn;
            }
            "ip_hash" => {
                cx.args(e, 0, 0)?;
                method = Method::IpHash;
            }
            "hash" => {
                cx.args(e, 1, 2)?;
                let key = KeyExpr::parse(&e.args[0]).map_err(|m| cx.err(e, m))?;
                let consistent = match e.args.get(1).map(String::as_str) {
                    None => false,
                    Some("consistent") => true,
                    Some(other) => return Err(cx.err(e, format!("invalid parameter \"{other}\""))),
                };
                method = Method::Hash { key, consistent };
            }
            "random" => {
                cx.args(e, 0, 2)?;
                let words: Vec<&str> = e.args.iter().map(String::as_str).collect();
                let two = match words[..] {
                    [] => false,
                    ["two"] | ["two", "least_conn"] => true,
                    _ => {
                        return Err(
                            cx.err(e, format!("invalid parameters \"{}\"", e.args.join(" ")))
                        )
                    }
                };
                method = Method::Random { two };
            }
            // nginx Plus's `least_time header|last_byte [inflight]`; in-flight
            // requests always count here, so `inflight` changes nothing.
            "least_time" => {
                cx.args(e, 0, 2)?;
                let mut last_byte = false;
                for arg in &e.args {
                    match arg.as_str() {
                        "header" | "inflight" => {}
                        "last_byte" => last_byte = true,
                        other => {
                            return Err(cx.err(
                                e,
                                format!(
                                    "invalid parameter \"{other}\"; header, last_byte or inflight"
                                ),
                            ))
                        }
                    }
                }
                method = Method::LeastTime { last_byte };
            }
            "keepalive" => {
                cx.args(e, 1, 1)?;
                let n = e.args[0]
                    .parse()
                    .map_err(|_| cx.err(e, format!("invalid value \"{}\"", e.args[0])))?;
                cx.config.keepalive = Some(n);
            }
            name if IGNORED.contains(&name) => cx.ignore(e),
            _ => cx.unknown(e)?,
        }
    }
    let spec = UpstreamSpec::new(
        name,
        method,
        servers.iter().map(|(s, _)| s.clone()).collect(),
    );
    spec.validate().map_err(|e| {
        // A misplaced backup is reported on its server line; the rest
        // (zero weights and duplicates were caught line by line) on the block.
        let line = match e {
            SpecError::BackupNotAllowed { .. } => servers
                .iter()
                .find(|(s, _)| s.backup)
                .map_or(d.line, |(_, l)| *l),
            _ => d.line,
        };
        ConfError::new(cx.file, line, "upstream", e.to_string())
    })?;
    cx.config.upstreams.push(spec);
    Ok(())
}

/// `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N] [backup] [down];`
fn server_line(cx: &Ctx<'_>, d: &Directive) -> Result<Server, ConfError> {
    cx.args(d, 1, usize::MAX)?;
    let mut s = Server::new(d.args[0].clone());
    let number = |v: &str, what: &str| -> Result<u32, ConfError> {
        v.parse::<u32>()
            .map_err(|_| cx.err(d, format!("invalid {what} \"{v}\"")))
    };
    for arg in &d.args[1..] {
        match arg.split_once('=') {
            Some(("weight", v)) => {
                s.weight = number(v, "weight")?;
                if s.weight == 0 {
                    return Err(cx.err(d, format!("invalid weight \"{v}\": weights start at 1")));
                }
            }
            Some(("max_fails", v)) => s.max_fails = number(v, "max_fails")?,
            Some(("max_conns", v)) => s.max_conns = number(v, "max_conns")?,
            Some(("fail_timeout", v)) => {
                // nginx reads this in whole seconds: 30, 30s, 1m, 1h.
                let t = parse_time(v).filter(|t| t.subsec_nanos() == 0 && !v.ends_with("ms"));
                s.fail_timeout = t
                    .ok_or_else(|| cx.err(d, format!("invalid fail_timeout \"{v}\"")))?
                    .as_secs();
            }
            None if arg == "backup" => s.backup = true,
            None if arg == "down" => s.down = true,
            _ => return Err(cx.err(d, format!("invalid parameter \"{arg}\""))),
        }
    }
    Ok(s)
}

fn server(cx: &mut Ctx<'_>, block: &[Directive]) -> Result<(), ConfError> {
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
                let mut next = NextUpstream {
                    on_error: false,
                    on_timeout: false,
                    ..loc.next_upstream.clone()
                };
                for word in &e.args {
                    match word.as_str() {
                        "error" => next.on_error = true,
                        "timeout" => next.on_timeout = true,
                        "non_idempotent" => next.non_idempotent = true,
                        "invalid_header" => {}
                        "off" => {
                            next = NextUpstream {
                                on_error: false,
                                on_timeout: false,
                                ..next
                            }
                        }
                        w => match w.strip_prefix("http_").and_then(|s| s.parse::<u16>().ok()) {
                            Some(s @ (500 | 502 | 503 | 504 | 403 | 404 | 429)) => {
                                next.statuses.push(s)
                            }
                            _ => return Err(cx.err(e, format!("invalid value \"{w}\""))),
                        },
                    }
                }
                loc.next_upstream = next;
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
            "access_log" => access_log(cx, e)?,
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

/// `log_format NAME [escape=default|json|none] STRING ...;`
fn log_format(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 2, usize::MAX)?;
    let mut rest = &d.args[1..];
    let mut escape = "default".to_string();
    if let Some(e) = rest[0].strip_prefix("escape=") {
        if !matches!(e, "default" | "json" | "none") {
            return Err(cx.err(d, format!("unknown escape \"{e}\"")));
        }
        escape = e.to_string();
        rest = &rest[1..];
    }
    cx.config.log_formats.push(LogFormatDef {
        name: d.args[0].clone(),
        escape,
        format: rest.concat(),
    });
    Ok(())
}

/// `access_log PATH [FORMAT];` or `access_log off;`
fn access_log(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 1, usize::MAX)?;
    if d.args[0] == "off" {
        return Ok(());
    }
    let format = d
        .args
        .get(1)
        .filter(|f| !f.contains('='))
        .cloned()
        .unwrap_or_else(|| "combined".to_string());
    cx.config.access_log = Some(AccessLog {
        path: d.args[0].clone(),
        format,
        line: d.line,
    });
    Ok(())
}

/// nginx time values: `30`, `30s`, `500ms`, `1m`, `1h`, `1d`.
pub fn parse_time(v: &str) -> Option<Duration> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    let unit = &v[digits..];
    Some(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;

    const SEED_000: &str = r#"
upstream ai_tools_backend {
    least_conn;
    server 10.0.0.1:8000 weight=3;
    server 10.0.0.2:8000 weight=3;
    server 10.0.0.3:8000 weight=2 backup;
    keepalive 32;
    keepalive_timeout 60s;
    keepalive_requests 100;
}
server {
    listen 80;
    server_name ai-tools.example.com;
    client_max_body_size 10M;
    location / {
        proxy_pass http://ai_tools_backend;
        proxy_set_header Host $host;
        proxy_connect_timeout 60s;
        proxy_read_timeout 300s;
    }
    location /health {
        access_log off;
        return 200 "healthy\n";
    }
}
"#;

    #[test]
    fn seed_000_configuration() {
        let c = load("ai.conf", SEED_000).unwrap();
        let u = &c.upstreams[0];
        assert_eq!(u.name, "ai_tools_backend");
        assert_eq!(u.method, Method::LeastConn);
        assert_eq!(u.servers.len(), 3);
        assert_eq!(u.servers[0].weight, 3);
        assert!(u.servers[2].backup);
        assert_eq!(c.keepalive, Some(32));
        assert_eq!(c.listen, ["0.0.0.0:80"]);
        assert_eq!(c.locations.len(), 2);
        assert_eq!(
            c.locations[0].action,
            Action::Proxy {
                upstream: "ai_tools_backend".into()
            }
        );
        assert_eq!(c.locations[0].timeouts.read, Duration::from_secs(300));
        assert_eq!(
            c.locations[1].action,
            Action::Return {
                status: 200,
                body: "healthy\n".into()
            }
        );
        let ignored: Vec<&str> = c
            .ignored
            .iter()
            .map(|s| s.rsplit(": ").next().unwrap())
            .collect();
        assert_eq!(
            ignored,
            [
                "keepalive_timeout",
                "keepalive_requests",
                "server_name",
                "client_max_body_size",
                "proxy_set_header"
            ]
        );
    }

    #[test]
    fn methods_and_server_parameters() {
        let c = load(
            "x.conf",
            "upstream a { hash $request_uri consistent; server h:1 weight=2 max_fails=3 fail_timeout=30s max_conns=5; server h:2 down; }
             upstream b { random two least_conn; server h:1; server h:2; }
             upstream c { ip_hash; server h:1; server h:2; }
             upstream d { least_time header; server h:1; server h:2 fail_timeout=1m; }",
        )
        .unwrap();
        let a = &c.upstreams[0];
        assert!(
            matches!(&a.method, Method::Hash { consistent: true, key } if key.source() == "$request_uri")
        );
        assert_eq!(
            a.servers[0],
            Server::new("h:1")
                .weight(2)
                .max_fails(3)
                .fail_timeout(30)
                .max_conns(5)
        );
        assert!(a.servers[1].down);
        assert_eq!(c.upstreams[1].method, Method::Random { two: true });
        assert_eq!(c.upstreams[2].method, Method::IpHash);
        assert_eq!(
            c.upstreams[3].method,
            Method::LeastTime { last_byte: false }
        );
        assert_eq!(c.upstreams[3].servers[1].fail_timeout, 60);
    }

    #[test]
    fn next_upstream_and_routing() {
        let c = load(
            "x.conf",
            "upstream text { server h:1; } upstream image { server h:2; }
             server { listen 127.0.0.1:8080;
               location /api/text/ { proxy_pass http://text; proxy_next_upstream error timeout http_502 http_503 non_idempotent; proxy_next_upstream_tries 2; proxy_next_upstream_timeout 5s; }
               location /api/image/ { proxy_pass http://image; health_check interval=2s fails=3 passes=2 uri=/health; }
               location = /direct { proxy_pass http://127.0.0.1:9000; } }",
        )
        .unwrap();
        let n = &c.locations[0].next_upstream;
        assert!(n.on_error && n.on_timeout && n.non_idempotent);
        assert_eq!(n.statuses, [502, 503]);
        assert_eq!((n.tries, n.timeout), (2, Some(Duration::from_secs(5))));
        let h = c.locations[1].health.as_ref().unwrap();
        assert_eq!(
            (h.interval, h.fails, h.passes, h.uri.as_str()),
            (Duration::from_secs(2), 3, 2, "/health")
        );
        assert!(c.locations[2].exact);
        assert!(c.upstreams.iter().any(|u| u.name == "127.0.0.1:9000"));
    }

    #[test]
    fn log_format_pieces_join_and_access_log_names_one() {
        let c = load(
            "x.conf",
            "http { log_format upstream_log '$remote_addr - $remote_user [$time_local] \"$request\" ' 'to: $upstream_addr';
               access_log /var/log/nginx/upstream.log upstream_log; upstream b { server h:1; } }",
        )
        .unwrap();
        assert_eq!(
            c.log_formats[0].format,
            "$remote_addr - $remote_user [$time_local] \"$request\" to: $upstream_addr"
        );
        assert_eq!(
            c.access_log,
            Some(AccessLog {
                path: "/var/log/nginx/upstream.log".into(),
                format: "upstream_log".into(),
                line: 2,
            })
        );
    }

    fn error(text: &str) -> String {
        load("bad.conf", text).unwrap_err().to_string()
    }

    #[test]
    fn bad_configurations_name_file_line_and_directive() {
        assert_eq!(
            error("upstream b {\n  server h:1;\n  sticky cookie;\n}"),
            "bad.conf:3: sticky: unknown directive"
        );
        assert_eq!(
            error("upstream b {\n  server h:1 weight=0;\n}"),
            "bad.conf:2: server: invalid weight \"0\": weights start at 1"
        );
        assert_eq!(
            error("upstream b {\n  server h:1 weight=x;\n}"),
            "bad.conf:2: server: invalid weight \"x\""
        );
        assert_eq!(
            error("upstream b {\n  server h:1;\n  server h:1;\n}"),
            "bad.conf:3: server: server h:1 is listed twice"
        );
        assert_eq!(
            error("upstream b {\n  least_conn;\n}"),
            "bad.conf:1: upstream: upstream \"b\" has no servers"
        );
        assert_eq!(
            error("upstream b {\n  server h:1 slow_start=10s;\n}"),
            "bad.conf:2: server: invalid parameter \"slow_start=10s\""
        );
        assert_eq!(
            error("upstream b {\n  server h:1 fail_timeout=500ms;\n}"),
            "bad.conf:2: server: invalid fail_timeout \"500ms\""
        );
        assert_eq!(
            error("upstream b {\n  ip_hash;\n  server h:1;\n  server h:2 backup;\n}"),
            "bad.conf:4: upstream: upstream \"b\": \"backup\" cannot be used with ip_hash"
        );
        assert_eq!(
            error("server {\n  location ~ \\.php$ { proxy_pass http://b; }\n}"),
            "bad.conf:2: location: regular-expression locations are not supported; use a prefix"
        );
        assert!(
            error("server { location / { proxy_pass http://nowhere; } }")
                .contains("\"nowhere\", which is not defined")
        );
        assert_eq!(
            error("frobnicate on;"),
            "bad.conf:1: frobnicate: unknown directive"
        );
    }

    #[test]
    fn read_only_lists_what_it_does_not_know() {
        let text = "frobnicate on;\nupstream b {\n  server h:1 weight=2;\n  zone b 64k;\n}";
        let c = crate::conf::read("nginx.conf", text).unwrap();
        assert_eq!(c.upstreams[0].servers[0].weight, 2);
        assert_eq!(
            c.ignored,
            ["nginx.conf:1: frobnicate", "nginx.conf:4: zone"]
        );
        assert!(crate::conf::load("nginx.conf", text).is_err());
    }

    #[test]
    fn nginx_times() {
        assert_eq!(parse_time("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_time("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_time("soon"), None);
    }
}
