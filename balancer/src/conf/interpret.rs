//! What the directives mean: the walk over `http {}`, and the log
//! directives; upstreams and locations have files of their own.

use super::ignored::NEUTRAL;
use super::location::Level;
use super::model::*;
use super::{location, upstream, ConfError, Directive};

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) config: ProxyConfig,
    /// Directives nginx has and this does not know are ignored, not errors:
    /// for reading a real nginx.conf for its upstreams and log formats.
    pub(super) lenient: bool,
}

impl Ctx<'_> {
    pub(super) fn err(&self, d: &Directive, message: impl Into<String>) -> ConfError {
        ConfError::new(&d.file, d.line, &d.name, message)
    }

    /// A directive the reference does not model: an error when the
    /// config is to be run (it cannot honour it), listed as not modelled
    /// when it is only read.
    pub(super) fn unknown(&mut self, d: &Directive) -> Result<(), ConfError> {
        if self.lenient {
            let line = format!("{}:{}: {}", d.file, d.line, d.name);
            self.config.unmodelled.push(line);
            Ok(())
        } else {
            Err(self.err(
                d,
                "unknown directive, or one the reference balancer does not model; run this config on nginx",
            ))
        }
    }

    /// A neutral directive: listed, after the check nginx makes of an
    /// on/off argument.
    pub(super) fn ignore(&mut self, d: &Directive) -> Result<(), ConfError> {
        if super::ignored::ON_OFF.contains(&d.name.as_str()) {
            let ok = matches!(d.args.as_slice(), [v] if v == "on" || v == "off");
            if !ok {
                let v = d.args.join(" ");
                let why = format!("invalid value \"{v}\", it must be \"on\" or \"off\"");
                return Err(self.err(d, why));
            }
        }
        self.config
            .ignored
            .push(format!("{}:{}: {}", d.file, d.line, d.name));
        Ok(())
    }

    pub(super) fn args(&self, d: &Directive, min: usize, max: usize) -> Result<(), ConfError> {
        if d.args.len() < min || d.args.len() > max {
            return Err(self.err(
                d,
                format!("takes {} arguments, not {}", plural(min, max), d.args.len()),
            ));
        }
        Ok(())
    }
}

pub(super) fn plural(min: usize, max: usize) -> String {
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
        config: ProxyConfig::default(),
    };
    http_level(&mut cx, top, &Level::default())?;
    // proxy_pass must name an upstream that exists (or an address).
    for loc in &cx.config.locations {
        if let Action::Proxy { upstream } = &loc.action {
            if !cx.config.upstreams.iter().any(|u| &u.name == upstream) {
                let msg = format!("proxy_pass names upstream \"{upstream}\", which is not defined");
                return Err(ConfError::new(file, 0, "proxy_pass", msg));
            }
        }
    }
    let tls = &cx.config.tls;
    if tls.ssl && !lenient {
        let missing = match (&tls.certificate, &tls.certificate_key) {
            (None, _) => Some("ssl_certificate"),
            (_, None) => Some("ssl_certificate_key"),
            _ => None,
        };
        if let Some(name) = missing {
            let msg = format!("no \"{name}\" is defined for the \"listen ... ssl\" directive");
            return Err(ConfError::new(file, 0, "listen", msg));
        }
    }
    for log in &cx.config.access_logs {
        let known = logformat::presets::preset(&log.format).is_some()
            || cx.config.log_formats.iter().any(|f| f.name == log.format);
        if !known {
            let msg = format!("unknown log format \"{}\"", log.format);
            return Err(ConfError::new(file, log.line, "access_log", msg));
        }
    }
    Ok(cx.config)
}

/// The `http` level (or the top of a file that holds its contents, or
/// the main level around an `http {}` block): `inherited` is what the
/// proxy's directives of the levels above say.
fn http_level(
    cx: &mut Ctx<'_>,
    directives: &[Directive],
    inherited: &Level,
) -> Result<(), ConfError> {
    let level = Level::of(cx, directives)?.over(inherited);
    for d in directives {
        match (d.name.as_str(), &d.block) {
            ("http", Some(block)) => http_level(cx, block, &level)?,
            ("upstream", Some(block)) => upstream::upstream(cx, d, block)?,
            ("server", Some(block)) => location::server(cx, block, &level)?,
            ("worker_processes", None) => workers(cx, d)?,
            (name, None) if REAL_IP.contains(&name) => real_ip(cx, d)?,
            (_, None) if Level::default().read_directive(cx, d)? => {}
            ("log_format", None) => log_format(cx, d)?,
            ("access_log", None) => access_log(cx, d)?,
            ("ssl_certificate" | "ssl_certificate_key", None) => location::certificate(cx, d)?,
            ("events", Some(block)) => events(cx, block)?,
            (name, None) if CLIENT_LIMITS.contains(&name) => client_limit(cx, d)?,
            // Left only when the text was read without its files.
            ("include", None) if !cx.lenient => {
                return Err(cx.err(
                    d,
                    "read the configuration from its file so its includes are followed",
                ))
            }
            ("include", None) => cx.ignore(d)?,
            (name, _) if NEUTRAL.contains(&name) => cx.ignore(d)?,
            _ => cx.unknown(d)?,
        }
    }
    Ok(())
}

/// The realip module's directives, read at any level.
pub(super) const REAL_IP: &[&str] = &["set_real_ip_from", "real_ip_header", "real_ip_recursive"];

/// `set_real_ip_from CIDR`, `real_ip_header NAME`, `real_ip_recursive on|off`.
pub(super) fn real_ip(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 1, 1)?;
    let arg = &d.args[0];
    let mut r = cx.config.real_ip.take().unwrap_or_else(|| super::RealIp {
        from: Vec::new(),
        header: "x-real-ip".into(),
        recursive: false,
    });
    match d.name.as_str() {
        "set_real_ip_from" => {
            let cidr = super::Cidr::parse(arg)
                .ok_or_else(|| cx.err(d, format!("invalid parameter \"{arg}\"")))?;
            r.from.push(cidr);
        }
        "real_ip_header" if arg == "proxy_protocol" => {
            return Err(cx.err(
                d,
                "the reference balancer does not model the PROXY protocol",
            ));
        }
        "real_ip_header" => r.header = arg.to_ascii_lowercase(),
        _ => {
            r.recursive = match arg.as_str() {
                "on" => true,
                "off" => false,
                v => {
                    let why = format!("invalid value \"{v}\", it must be \"on\" or \"off\"");
                    return Err(cx.err(d, why));
                }
            }
        }
    }
    cx.config.real_ip = Some(r);
    Ok(())
}

/// `worker_processes N|auto`: each worker keeps its own upstream state
/// (unless the upstream has a `zone`) and its own idle connections.
fn workers(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 1, 1)?;
    cx.config.workers = match d.args[0].as_str() {
        "auto" => std::thread::available_parallelism().map_or(1, usize::from),
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| cx.err(d, format!("invalid value \"{n}\"")))?,
    };
    Ok(())
}

/// `events {}`: of it, only `worker_connections` bounds the proxy.
fn events(cx: &mut Ctx<'_>, block: &[Directive]) -> Result<(), ConfError> {
    for d in block {
        if d.name == "accept_mutex" {
            cx.args(d, 1, 1)?;
            cx.config.accept_mutex = match d.args[0].as_str() {
                "on" => true,
                "off" => false,
                v => {
                    let why = format!("invalid value \"{v}\", it must be \"on\" or \"off\"");
                    return Err(cx.err(d, why));
                }
            };
        } else if d.name == "worker_connections" {
            cx.args(d, 1, 1)?;
            let n = d.args[0]
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| cx.err(d, format!("invalid number \"{}\"", d.args[0])))?;
            cx.config.clients.connections = Some(n);
        } else if NEUTRAL.contains(&d.name.as_str()) {
            cx.ignore(d)?;
        } else {
            cx.unknown(d)?;
        }
    }
    Ok(())
}

/// The directives that bound clients, read at any level.
pub(super) const CLIENT_LIMITS: &[&str] = &[
    "client_header_timeout",
    "client_body_timeout",
    "keepalive_timeout",
];

/// `client_header_timeout T;`, `client_body_timeout T;`,
/// `keepalive_timeout T [HEADER_T];` (the second value, for a Keep-Alive
/// response header, is not sent).
pub(super) fn client_limit(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    let max = if d.name == "keepalive_timeout" { 2 } else { 1 };
    cx.args(d, 1, max)?;
    let time = parse_time(&d.args[0])
        .ok_or_else(|| cx.err(d, format!("invalid time \"{}\"", d.args[0])))?;
    let limits = &mut cx.config.clients;
    match d.name.as_str() {
        "client_header_timeout" => limits.header_timeout = time,
        "client_body_timeout" => limits.body_timeout = time,
        _ => limits.keepalive_timeout = time,
    }
    Ok(())
}

/// `log_format NAME [escape=default|json|none] STRING ...;`
fn log_format(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
    cx.args(d, 2, usize::MAX)?;
    let mut rest = &d.args[1..];
    let mut escape = logformat::Escape::Default;
    if let Some(e) = rest[0].strip_prefix("escape=") {
        escape = e
            .parse()
            .map_err(|_| cx.err(d, format!("unknown escape \"{e}\"")))?;
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
pub(super) fn access_log(cx: &mut Ctx<'_>, d: &Directive) -> Result<(), ConfError> {
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
    let log = AccessLog {
        path: d.args[0].clone(),
        format,
        line: d.line,
    };
    cx.config.access_logs.push(log.clone());
    cx.config.access_log = Some(log);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::load;
    use super::*;
    use crate::peer::Server;
    use crate::upstream::Method;

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
        let options = c.upstream_options("ai_tools_backend");
        assert_eq!(options.keepalive.map(|k| k.connections), Some(32));
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
        // Everything in it is acted on: the upstream's keepalive_*, the
        // server_name ($host), the body limit, the Host header set.
        assert!(
            c.ignored.is_empty() && c.unmodelled.is_empty(),
            "{:?}",
            c.ignored
        );
        assert_eq!(c.server_name, "ai-tools.example.com");
        assert_eq!(c.locations[0].max_body, Some(10 << 20));
        let set = &c.locations[0].upstream_request.headers[0];
        assert_eq!((set.name.as_str(), set.value.source()), ("Host", "$host"));
        let keepalive = options_keepalive(&c);
        assert_eq!(
            (keepalive.requests, keepalive.timeout),
            (100, Duration::from_secs(60))
        );
    }

    fn options_keepalive(c: &ProxyConfig) -> crate::conf::Keepalive {
        c.upstream_options("ai_tools_backend").keepalive.unwrap()
    }

    #[test]
    fn client_limits_are_read_at_every_level_and_default_to_nginxs() {
        let c = load("x.conf", "upstream u { server h:1; keepalive_timeout 5s; }").unwrap();
        assert_eq!(
            c.clients,
            ClientLimits::default(),
            "the upstream's keepalive_timeout is its own"
        );
        let c = load(
            "x.conf",
            "events { worker_connections 64; multi_accept on; }
             http { client_header_timeout 5s; keepalive_timeout 30s 30;
               upstream u { server h:1; }
               server { client_body_timeout 7s; location / { proxy_pass http://u; keepalive_timeout 0; } } }",
        )
        .unwrap();
        let want = ClientLimits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(7),
            keepalive_timeout: Duration::ZERO,
            connections: Some(64),
        };
        assert_eq!(c.clients, want);
        for bad in [
            "events { worker_connections lots; }",
            "client_header_timeout soon;",
            "keepalive_timeout 1 2 3;",
        ] {
            assert!(load("x.conf", bad).is_err(), "{bad}");
        }
        assert!(
            parse_time("99999999999999999d").is_none(),
            "overflow is not a time"
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
            "bad.conf:3: sticky: unknown directive, or one the reference balancer does not model; run this config on nginx"
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
            "bad.conf:1: frobnicate: unknown directive, or one the reference balancer does not model; run this config on nginx"
        );
    }

    #[test]
    fn tls_at_both_ends_as_nginx_writes_it() {
        let c = load(
            "tls.conf",
            "upstream ai { server 127.0.0.1:8443; }\n\
             server { listen 127.0.0.1:443 ssl http2; ssl_certificate c.pem; ssl_certificate_key k.pem;\n\
               location / { proxy_pass https://ai; proxy_ssl_server_name on; } }",
        )
        .unwrap();
        let tls = &c.tls;
        assert_eq!((tls.ssl, tls.http2), (true, true));
        assert_eq!(tls.certificate.as_deref(), Some("c.pem"));
        assert_eq!(tls.certificate_key.as_deref(), Some("k.pem"));
        assert!(c.ignored.is_empty(), "{:?}", c.ignored);
        let upstream = c.locations[0].upstream_tls.as_ref().unwrap();
        assert_eq!(
            (
                upstream.verify,
                upstream.server_name,
                upstream.name.as_str()
            ),
            (false, true, "ai")
        );
        // An address in proxy_pass: the name is its host, as $proxy_host.
        let direct = load(
            "d.conf",
            "server { location / { proxy_pass https://127.0.0.1:8443; proxy_ssl_verify on;\n\
             proxy_ssl_trusted_certificate ca.pem; } }",
        )
        .unwrap();
        let upstream = direct.locations[0].upstream_tls.as_ref().unwrap();
        assert_eq!(
            (upstream.verify, upstream.name.as_str()),
            (true, "127.0.0.1")
        );
        assert_eq!(upstream.trusted_certificate.as_deref(), Some("ca.pem"));
        // Plain proxy_pass: no TLS, whatever proxy_ssl_* say.
        let plain = load(
            "p.conf",
            "server { location / { proxy_pass http://127.0.0.1:80; proxy_ssl_verify on; } }",
        )
        .unwrap();
        assert!(plain.locations[0].upstream_tls.is_none());
    }

    #[test]
    fn tls_mistakes_are_nginx_s_own() {
        assert_eq!(
            error("server { listen 443 ssl; ssl_certificate c.pem; location / { return 200; } }"),
            "bad.conf: listen: no \"ssl_certificate_key\" is defined for the \"listen ... ssl\" directive"
        );
        assert_eq!(
            error(
                "server {\n location / { proxy_pass https://127.0.0.1:1; proxy_ssl_verify on; } }"
            ),
            "bad.conf:2: proxy_pass: no \"proxy_ssl_trusted_certificate\" for \"proxy_ssl_verify\""
        );
        assert_eq!(
            error(
                "server { location / { proxy_pass https://127.0.0.1:1; proxy_ssl_verify yes; } }"
            ),
            "bad.conf:1: proxy_ssl_verify: invalid value \"yes\", it must be \"on\" or \"off\""
        );
        assert!(
            error("server { location / { proxy_pass grpc://127.0.0.1:1; } }")
                .contains("only http:// and https:// upstreams are supported")
        );
    }

    #[test]
    fn read_only_lists_what_it_does_not_know() {
        let text =
            "frobnicate on;\nupstream b {\n  server h:1 weight=2;\n  zone b 64k;\n}\nsendfile on;";
        let c = crate::conf::read("nginx.conf", text).unwrap();
        assert_eq!(c.upstreams[0].servers[0].weight, 2);
        assert_eq!(c.unmodelled, ["nginx.conf:1: frobnicate"]);
        assert_eq!(c.ignored, ["nginx.conf:6: sendfile"], "neutral");
        assert!(c.upstream_options("b").zone, "acted on");
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
