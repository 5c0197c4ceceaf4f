//! What shares a log should show: the weights a user gives, or what an
//! nginx.conf's upstream promises, computed by the balancer library for the
//! upstream's method (and, for ip_hash, for the clients the log shows).

use std::net::IpAddr;

use balancer::conf::ProxyConfig;
use balancer::{expected_shares, Expected, Method, Population, UpstreamSpec};

use crate::summary::Summary;

/// The expected shares and where they come from, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    Shares {
        from: String,
        shares: Vec<(String, f64)>,
    },
    LoadDependent {
        from: String,
        why: &'static str,
    },
}

impl Expectation {
    pub fn shares(&self) -> Option<&[(String, f64)]> {
        match self {
            Expectation::Shares { shares, .. } => Some(shares),
            Expectation::LoadDependent { .. } => None,
        }
    }

    /// The line the report opens its fairness part with.
    pub fn describe(&self) -> String {
        match self {
            Expectation::Shares { from, .. } => format!("Expected shares from {from}."),
            Expectation::LoadDependent { from, why } => {
                format!("Shares are not tested: {from}: {why}.")
            }
        }
    }
}

/// The upstream called `name`, or the only one.
pub fn upstream<'a>(
    config: &'a ProxyConfig,
    name: Option<&str>,
) -> Result<&'a UpstreamSpec, String> {
    let names = || {
        let n: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        n.join(", ")
    };
    match name {
        Some(name) => config
            .upstreams
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| {
                format!(
                    "--upstream {name}: no such upstream (the config has {})",
                    names()
                )
            }),
        None => match config.upstreams.as_slice() {
            [only] => Ok(only),
            [] => Err("--nginx-conf: the config has no upstream block".to_string()),
            _ => Err(format!(
                "--nginx-conf: several upstreams ({}); pick one with --upstream",
                names()
            )),
        },
    }
}

/// Whether the method keeps a client on one node, so splits are worth
/// reporting.
pub fn is_sticky(spec: &UpstreamSpec) -> bool {
    matches!(spec.method, Method::IpHash | Method::Hash { .. })
}

/// The shares `spec` promises for the requests `summary` counted.
pub fn from_upstream(spec: &UpstreamSpec, file: &str, summary: &Summary) -> Expectation {
    let from = format!(
        "upstream {} ({}) in {file}",
        spec.name,
        spec.method.directive()
    );
    // ip_hash sends each client to one node, so what to expect depends on
    // who the clients were: the log says, request by request.
    let clients: Vec<(IpAddr, u64)> = summary
        .clients
        .iter()
        .filter_map(|(c, t)| Some((c.parse().ok()?, t.requests)))
        .collect();
    let population = match spec.method {
        Method::IpHash if !clients.is_empty() && !summary.clients_overflow => {
            Population::WeightedClients(&clients)
        }
        _ => Population::Any,
    };
    match expected_shares(spec, population) {
        Expected::Shares(shares) => Expectation::Shares { from, shares },
        Expected::LoadDependent(why) => Expectation::LoadDependent { from, why },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn config(text: &str) -> ProxyConfig {
        balancer::conf::load("nginx.conf", text).unwrap()
    }

    const TWO: &str = "events {}
http {
    upstream backend { server 127.0.0.1:8001 weight=3; server 127.0.0.1:8002 weight=2; }
    upstream sticky { ip_hash; server 127.0.0.1:8001; server 127.0.0.1:8002; server 127.0.0.1:8003; }
    upstream busy { least_conn; server 127.0.0.1:8001; server 127.0.0.1:8002; }
    server { listen 8080; location / { proxy_pass http://backend; } }
}";

    #[test]
    fn weights_become_shares() {
        let c = config(TWO);
        let e = from_upstream(
            upstream(&c, Some("backend")).unwrap(),
            "nginx.conf",
            &Summary::default(),
        );
        assert_eq!(
            e.shares().unwrap(),
            [
                ("127.0.0.1:8001".to_string(), 0.6),
                ("127.0.0.1:8002".to_string(), 0.4)
            ]
        );
        assert_eq!(
            e.describe(),
            "Expected shares from upstream backend (round_robin) in nginx.conf."
        );
    }

    #[test]
    fn ip_hash_expects_what_the_logged_clients_imply() {
        let c = config(TWO);
        let mut s = Summary::default();
        for _ in 0..10 {
            s.add(&Entry {
                cut: false,
                node: Some("127.0.0.1:8001"),
                attempts: 1,
                status: Some(200),
                request_time: None,
                upstream_time: None,
                client: Some("127.0.0.1"),
                at: None,
            });
        }
        let e = from_upstream(upstream(&c, Some("sticky")).unwrap(), "nginx.conf", &s);
        let shares = e.shares().unwrap();
        // One client: one node gets everything.
        assert_eq!(
            shares.iter().filter(|(_, x)| *x == 1.0).count(),
            1,
            "{shares:?}"
        );
        assert!(is_sticky(upstream(&c, Some("sticky")).unwrap()));
    }

    #[test]
    fn load_dependent_methods_and_naming_errors() {
        let c = config(TWO);
        let e = from_upstream(
            upstream(&c, Some("busy")).unwrap(),
            "nginx.conf",
            &Summary::default(),
        );
        assert!(e.shares().is_none());
        assert!(
            e.describe()
                .starts_with("Shares are not tested: upstream busy (least_conn)"),
            "{}",
            e.describe()
        );
        let err = upstream(&c, None).unwrap_err();
        assert!(
            err.contains("backend, sticky, busy") && err.contains("--upstream"),
            "{err}"
        );
        assert!(upstream(&c, Some("nope"))
            .unwrap_err()
            .starts_with("--upstream nope: no such upstream"));
    }
}
