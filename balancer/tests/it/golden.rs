//! `hash $request_uri consistent` against a trace from real nginx 1.22
//! (tests/data/README.md says how it was made).

use balancer::{Client, Server};

use crate::common::*;

const CONF: &str = include_str!("../data/nginx-chash-trace.conf");
const TRACE: &str = include_str!("../data/nginx-chash-trace.csv");

/// The servers of the upstream block the trace was made with.
fn servers() -> Vec<Server> {
    CONF.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("server "))
        .map(|l| {
            let mut words = l.trim_end_matches(';').split_whitespace();
            let mut s = Server::new(words.next().unwrap());
            for w in words {
                if let Some(n) = w.strip_prefix("weight=") {
                    s.weight = n.parse().unwrap();
                }
            }
            s
        })
        .collect()
}

#[test]
fn consistent_hash_matches_nginx_request_for_request() {
    let servers = servers();
    assert_eq!(servers.len(), 10);
    let mut up = upstream(hash("$request_uri", true), servers);
    let mut rows = 0;
    for line in TRACE.lines().skip(1) {
        let (uri, want) = line.rsplit_once(',').unwrap();
        let client = Client {
            addr: None,
            key: uri.to_string(),
        };
        let mut a = up.start(&client);
        let p = up.pick(&mut a, secs(0)).unwrap();
        assert_eq!(up.peer(p).server.addr, want, "{uri}");
        up.finish(&mut a, balancer::Outcome::OK, secs(0));
        rows += 1;
    }
    assert_eq!(rows, 2000);
}
