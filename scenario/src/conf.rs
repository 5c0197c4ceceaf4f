//! The in-process balancer's configuration: built as a value from a
//! scenario's `[balancer]` and backends, or read from its `nginx_conf` with
//! backend names put in for addresses. Pure.

use std::net::SocketAddr;

use balancer::conf::{AccessLog, Action, Location, NextUpstream, ProxyConfig, Timeouts};
use balancer::{Method, Server, UpstreamSpec};

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
            path,
            exact: false,
            action: Action::Proxy { upstream },
            next_upstream: next_upstream.clone(),
            timeouts: timeouts.clone(),
            health: None,
            logged: true,
        })
        .collect();
    Ok(ProxyConfig {
        upstreams,
        listen: Vec::new(),
        locations,
        log_formats: Vec::new(),
        access_log: Some(lbkit_log(log)),
        access_logs: vec![lbkit_log(log)],
        keepalive: None,
        ignored: Vec::new(),
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

/// A user's nginx.conf with `server NAME` lines pointed at the backends
/// called NAME; other lines as they are. The access log is the runner's.
pub fn with_backends(text: &str, names: &[String], addrs: &[SocketAddr]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let replaced = trimmed.strip_prefix("server ").and_then(|rest| {
            let rest = rest.trim_start();
            let end = rest.find([' ', ';', '\t']).unwrap_or(rest.len());
            let i = names.iter().position(|n| *n == rest[..end])?;
            let indent = &line[..line.len() - trimmed.len()];
            Some(format!("{indent}server {}{}", addrs[i], &rest[end..]))
        });
        out.push_str(replaced.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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
    fn names_in_a_users_conf_become_addresses() {
        let names = vec!["a".to_string(), "b".to_string()];
        let addrs: Vec<SocketAddr> =
            vec![([127, 0, 0, 1], 9001).into(), ([127, 0, 0, 1], 9002).into()];
        let out = with_backends(
            "upstream u {\n  server a weight=3;\n  server b;\n  server c;\n}",
            &names,
            &addrs,
        );
        assert_eq!(out, "upstream u {\n  server 127.0.0.1:9001 weight=3;\n  server 127.0.0.1:9002;\n  server c;\n}\n");
    }
}
