//! The balancer a scenario describes with its `[balancer]` and backends
//! (when it gives no `config` file): as a value for the reference, and as
//! the nginx.conf that says the same for real nginx. Pure.

use std::net::SocketAddr;

use balancer::conf::{AccessLog, Action, Directive, Location, NextUpstream, ProxyConfig, Timeouts};
use balancer::{Method, Server, UpstreamSpec};

use super::nginx_conf::{block, directive, line};
use super::spec::{Backend, Scenario};

/// The upstream a backend is in when it names none.
pub const DEFAULT_POOL: &str = "backend";

/// The scenario's balancer, with each backend at `addrs[i]`, logging in
/// lbkit's format to `log`. Errors name the `[balancer]` key.
pub fn config(s: &Scenario, addrs: &[SocketAddr], log: &str) -> Result<ProxyConfig, String> {
    let b = &s.balancer;
    let method = match b.method.as_deref() {
        None => Method::RoundRobin,
        Some(line) => line
            .parse()
            .map_err(|why| format!("method {line:?}: {why}"))?,
    };
    let mut pools: Vec<&str> = Vec::new();
    for spec in &s.backends {
        let pool = spec.get_ref().pool.as_deref().unwrap_or(DEFAULT_POOL);
        if !pools.contains(&pool) {
            pools.push(pool);
        }
    }
    let mut upstreams = Vec::new();
    for pool in &pools {
        let servers = s
            .backends
            .iter()
            .zip(addrs)
            .filter(|(b, _)| b.get_ref().pool.as_deref().unwrap_or(DEFAULT_POOL) == *pool)
            .map(|(b, addr)| server(b.get_ref(), addr))
            .collect();
        let spec = UpstreamSpec::new(*pool, method.clone(), servers);
        spec.validate().map_err(|e| e.to_string())?;
        upstreams.push(spec);
    }
    let mut next_upstream = NextUpstream::default();
    if let Some(n) = &b.next_upstream {
        let words: Vec<&str> = n.split_whitespace().collect();
        next_upstream = next_upstream
            .with_conditions(&words)
            .map_err(|why| format!("next_upstream {n:?}: {why}"))?;
    }
    if let Some(n) = b.tries {
        next_upstream.tries = n;
    }
    let mut timeouts = Timeouts::default();
    if let Some(t) = b.timeout {
        timeouts.read = t.0;
    }
    if let Some(t) = b.connect_timeout {
        timeouts.connect = t.0;
    }
    let mut routes: Vec<(String, String)> = b
        .routes
        .iter()
        .map(|r| (r.get_ref().path.clone(), r.get_ref().pool.clone()))
        .collect();
    if !routes.iter().any(|(path, _)| path == "/") {
        let first = pools.first().unwrap_or(&DEFAULT_POOL).to_string();
        routes.push(("/".into(), first));
    }
    let locations = routes
        .into_iter()
        .map(|(path, upstream)| Location {
            next_upstream: next_upstream.clone(),
            timeouts: timeouts.clone(),
            ..Location::new(&path, Action::Proxy { upstream })
        })
        .collect();
    Ok(ProxyConfig {
        upstreams,
        locations,
        access_log: Some(lbkit_log(log)),
        access_logs: vec![lbkit_log(log)],
        ..ProxyConfig::default()
    })
}

/// The access log the runner reads: lbkit's format, at `path`.
pub fn lbkit_log(path: &str) -> AccessLog {
    AccessLog {
        path: path.to_string(),
        format: "lbkit".into(),
        line: 0,
    }
}

/// A backend's `server` line, as a value.
fn server(b: &Backend, addr: &SocketAddr) -> Server {
    let mut s = Server::new(addr.to_string());
    if let Some(w) = b.weight {
        s.weight = w;
    }
    if let Some(n) = b.max_fails {
        s.max_fails = n;
    }
    if let Some(t) = b.fail_timeout {
        // Whole seconds, as nginx counts it (the scenario is checked for it).
        s.fail_timeout = t.0.as_secs();
    }
    if let Some(n) = b.max_conns {
        s.max_conns = n;
    }
    s.backup = b.backup;
    s.down = b.down;
    s
}

/// The scenario's balancer as the nginx.conf that says the same, for real
/// nginx: one worker (so round robin's order is one sequence, as in the
/// reference), answers streamed as they come (`proxy_buffering off`, as the
/// reference relays them), every upstream, server line and location of
/// `config` written out. The runner's rewrite adds the listen, the paths
/// and the log.
pub fn nginx(config: &ProxyConfig) -> Vec<Directive> {
    let mut http = Vec::new();
    for u in &config.upstreams {
        let mut inner = Vec::new();
        if u.method != Method::RoundRobin {
            let line = u.method.directive();
            let words: Vec<&str> = line.split_whitespace().collect();
            inner.push(directive(words[0], &words[1..]));
        }
        for s in &u.servers {
            inner.push(line("server", server_args(s)));
        }
        let options = config.upstream_options(&u.name);
        if options.zone {
            inner.push(directive("zone", &[&u.name, "64k"]));
        }
        if let Some(k) = &options.keepalive {
            inner.push(directive("keepalive", &[&k.connections.to_string()]));
        }
        http.push(block("upstream", &[&u.name], inner));
    }
    let locations = config.locations.iter().map(|l| {
        let mut inner = Vec::new();
        match &l.action {
            Action::Proxy { upstream } => {
                inner.push(directive("proxy_pass", &[&format!("http://{upstream}")]));
                inner.push(directive("proxy_buffering", &["off"]));
                inner.push(line("proxy_next_upstream", next_words(&l.next_upstream)));
                if l.next_upstream.tries != 0 {
                    inner.push(directive(
                        "proxy_next_upstream_tries",
                        &[&l.next_upstream.tries.to_string()],
                    ));
                }
                if let Some(t) = l.next_upstream.timeout {
                    inner.push(directive("proxy_next_upstream_timeout", &[&ms(t)]));
                }
                inner.push(directive(
                    "proxy_connect_timeout",
                    &[&ms(l.timeouts.connect)],
                ));
                inner.push(directive("proxy_read_timeout", &[&ms(l.timeouts.read)]));
                inner.push(directive("proxy_send_timeout", &[&ms(l.timeouts.send)]));
                if l.upstream_request.http11 {
                    inner.push(directive("proxy_http_version", &["1.1"]));
                }
            }
            Action::Return { status, body } => {
                inner.push(directive("return", &[&status.to_string(), body]));
            }
        }
        if !l.logged {
            inner.push(directive("access_log", &["off"]));
        }
        let args: Vec<&str> = if l.exact {
            vec!["=", &l.path]
        } else {
            vec![&l.path]
        };
        block("location", &args, inner)
    });
    http.push(block("server", &[], locations.collect()));
    vec![
        directive("worker_processes", &["1"]),
        block(
            "events",
            &[],
            vec![directive("worker_connections", &["4096"])],
        ),
        block("http", &[], http),
    ]
}

/// A `server` line's arguments: the address, then what differs from
/// nginx's defaults.
fn server_args(s: &Server) -> Vec<String> {
    let mut args = vec![s.addr.clone()];
    let defaults = Server::new("");
    if s.weight != defaults.weight {
        args.push(format!("weight={}", s.weight));
    }
    if s.max_fails != defaults.max_fails {
        args.push(format!("max_fails={}", s.max_fails));
    }
    if s.fail_timeout != defaults.fail_timeout {
        args.push(format!("fail_timeout={}s", s.fail_timeout));
    }
    if s.max_conns != 0 {
        args.push(format!("max_conns={}", s.max_conns));
    }
    if s.backup {
        args.push("backup".into());
    }
    if s.down {
        args.push("down".into());
    }
    args
}

/// `proxy_next_upstream`'s words for these conditions (`off` for none).
fn next_words(n: &NextUpstream) -> Vec<String> {
    let flags = [
        ("error", n.on_error),
        ("timeout", n.on_timeout),
        ("invalid_header", n.on_invalid_header),
        ("non_idempotent", n.non_idempotent),
    ];
    let mut words: Vec<String> = flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(w, _)| w.to_string())
        .collect();
    words.extend(n.statuses.iter().map(|s| format!("http_{s}")));
    if words.is_empty() {
        words.push("off".into());
    }
    words
}

/// A duration in nginx's syntax, to the millisecond.
fn ms(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::super::spec::parse;
    use super::*;

    #[test]
    fn pools_routes_and_server_parameters() {
        let (s, ..) = parse(
            "t.toml",
            r#"
[[backend]]
weight = 3
max_fails = 1
fail_timeout = "5s"
pool = "text"
[[backend]]
backup = true
pool = "text"
[[backend]]
pool = "image"
[balancer]
method = "least_conn"
tries = 2
[[balancer.route]]
path = "/api/image"
pool = "image"
[load]
requests = 1
"#,
        )
        .unwrap();
        let addrs: Vec<SocketAddr> = (1..=3).map(|p| ([127, 0, 0, 1], 8000 + p).into()).collect();
        let config = config(&s, &addrs, "/tmp/x.log").unwrap();
        assert_eq!(config.upstreams.len(), 2);
        let text_pool = &config.upstreams[0];
        assert_eq!(text_pool.name, "text");
        assert_eq!(text_pool.method, Method::LeastConn);
        assert_eq!(text_pool.servers[0].weight, 3);
        assert_eq!(text_pool.servers[0].fail_timeout, 5);
        assert!(text_pool.servers[1].backup);
        assert_eq!(config.locations.len(), 2);
        assert_eq!(config.locations[0].next_upstream.tries, 2);
        assert_eq!(config.access_log.unwrap().format, "lbkit");
    }

    #[test]
    fn a_bad_method_names_the_key() {
        let (s, ..) = parse(
            "t.toml",
            "[[backend]]\n[balancer]\nmethod = \"fastest\"\n[load]\nrequests = 1\n",
        )
        .unwrap();
        let addrs = [([127, 0, 0, 1], 8001).into()];
        let e = config(&s, &addrs, "/tmp/x.log").unwrap_err();
        assert!(
            e.starts_with(
                "method \"fastest\": \"fastest\" is not a balancing method; use round_robin"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_scenarios_balancer_written_for_nginx() {
        let (s, ..) = parse(
            "t.toml",
            r#"
[[backend]]
weight = 3
max_fails = 2
fail_timeout = "5s"
[[backend]]
backup = true
[balancer]
method = "least_conn"
next_upstream = "error http_503"
tries = 2
timeout = "1500ms"
[load]
requests = 1
"#,
        )
        .unwrap();
        let addrs: Vec<SocketAddr> = (1..=2).map(|p| ([127, 0, 0, 1], 8000 + p).into()).collect();
        let value = config(&s, &addrs, "/tmp/x.log").unwrap();
        let (text, _) = super::super::nginx_conf::render_traced(&nginx(&value));
        let want = [
            "worker_processes 1;",
            "upstream backend {\n        least_conn;\n        server 127.0.0.1:8001 weight=3 max_fails=2 fail_timeout=5s;\n        server 127.0.0.1:8002 backup;\n    }",
            "location / {\n            proxy_pass http://backend;\n            proxy_buffering off;\n            proxy_next_upstream error http_503;\n            proxy_next_upstream_tries 2;",
            "proxy_read_timeout 1500ms;",
        ];
        for w in want {
            assert!(text.contains(w), "{w}\nnot in\n{text}");
        }
        // And it says the same to the reference as the value does.
        let again = balancer::conf::interpret(
            "again",
            &balancer::conf::parse("again", &text).unwrap(),
            false,
        )
        .unwrap();
        assert_eq!(again.upstreams, value.upstreams);
        assert_eq!(again.locations, value.locations);
    }
}
