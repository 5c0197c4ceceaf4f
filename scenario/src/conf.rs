//! The in-process balancer's nginx.conf, written from a scenario's
//! `[balancer]` and backends (or taken from its `nginx_conf` with backend
//! names put in for addresses), so the balancer reads scenarios through the
//! same parser as real nginx.conf files. Pure.

use std::net::SocketAddr;

use super::spec::{Backend, Scenario};

/// The upstream a backend is in when it names none.
pub const DEFAULT_POOL: &str = "backend";

/// nginx.conf text for the scenario, with each backend at `addrs[i]`; the
/// balancer logs in lbkit's format to `log`.
pub fn render(s: &Scenario, addrs: &[SocketAddr], log: &str) -> String {
    let b = &s.balancer;
    let mut pools: Vec<&str> = Vec::new();
    for spec in &s.backends {
        let pool = spec.get_ref().pool.as_deref().unwrap_or(DEFAULT_POOL);
        if !pools.contains(&pool) {
            pools.push(pool);
        }
    }
    let mut text = String::from("http {\n");
    for pool in &pools {
        text.push_str(&format!("  upstream {pool} {{\n"));
        if let Some(m) = b.method.as_deref().filter(|m| *m != "round_robin") {
            text.push_str(&format!("    {m};\n"));
        }
        for (spec, addr) in s.backends.iter().zip(addrs) {
            let spec = spec.get_ref();
            if spec.pool.as_deref().unwrap_or(DEFAULT_POOL) == *pool {
                text.push_str(&format!("    server {addr}{};\n", params(spec)));
            }
        }
        text.push_str("  }\n");
    }
    text.push_str(&format!("  access_log {log} lbkit;\n  server {{\n"));
    let mut routes: Vec<(String, String)> = b
        .routes
        .iter()
        .map(|r| (r.get_ref().path.clone(), r.get_ref().pool.clone()))
        .collect();
    if !routes.iter().any(|(path, _)| path == "/") {
        routes.push((
            "/".into(),
            pools.first().unwrap_or(&DEFAULT_POOL).to_string(),
        ));
    }
    for (path, pool) in routes {
        text.push_str(&format!(
            "    location {path} {{\n      proxy_pass http://{pool};\n"
        ));
        if let Some(n) = &b.next_upstream {
            text.push_str(&format!("      proxy_next_upstream {n};\n"));
        }
        if let Some(n) = b.tries {
            text.push_str(&format!("      proxy_next_upstream_tries {n};\n"));
        }
        if let Some(t) = b.timeout {
            text.push_str(&format!(
                "      proxy_read_timeout {}ms;\n",
                t.0.as_millis()
            ));
        }
        if let Some(t) = b.connect_timeout {
            text.push_str(&format!(
                "      proxy_connect_timeout {}ms;\n",
                t.0.as_millis()
            ));
        }
        text.push_str("    }\n");
    }
    text.push_str("  }\n}\n");
    text
}

fn params(b: &Backend) -> String {
    let mut out = String::new();
    if let Some(w) = b.weight {
        out.push_str(&format!(" weight={w}"));
    }
    if let Some(n) = b.max_fails {
        out.push_str(&format!(" max_fails={n}"));
    }
    if let Some(t) = b.fail_timeout {
        // Whole seconds, as nginx counts it (the scenario is checked for it).
        out.push_str(&format!(" fail_timeout={}s", t.0.as_secs()));
    }
    if let Some(n) = b.max_conns {
        out.push_str(&format!(" max_conns={n}"));
    }
    if b.backup {
        out.push_str(" backup");
    }
    if b.down {
        out.push_str(" down");
    }
    out
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
        let text = render(&s, &addrs, "/tmp/x.log");
        let config = balancer::conf::load("scenario", &text).unwrap();
        assert_eq!(config.upstreams.len(), 2);
        let text_pool = &config.upstreams[0];
        assert_eq!(text_pool.name, "text");
        assert_eq!(text_pool.servers[0].weight, 3);
        assert!(text_pool.servers[1].backup);
        assert_eq!(config.locations.len(), 2, "{text}");
        assert_eq!(config.access_log.unwrap().format, "lbkit");
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
