//! Smaller cases from a case: one piece taken away or made plain at a
//! time (a round, a request, a server, a directive, a misbehaviour). The
//! harness keeps the first candidate that still differs and starts again.

use crate::case::{Behaviour, Case};

/// Every case one step simpler than `case`, the largest cuts first.
pub fn candidates(case: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    let rounds = case.rounds.len();
    if rounds > 1 {
        // The first half, then each round alone taken out.
        let mut half = case.clone();
        half.rounds.truncate(rounds.div_ceil(2));
        out.push(half);
        for r in (0..rounds).rev() {
            out.push(without_round(case, r));
        }
    }
    for (r, round) in case.rounds.iter().enumerate() {
        if round.requests.len() > 1 {
            for q in 0..round.requests.len() {
                let mut c = case.clone();
                c.rounds[r].requests.remove(q);
                out.push(c);
            }
        }
    }
    if case.fallback.is_some() {
        out.push(without_fallback(case));
    }
    for (u, upstream) in case.upstreams.iter().enumerate() {
        if upstream.servers.len() > 1 {
            for s in 0..upstream.servers.len() {
                out.push(without_server(case, u, s));
            }
        }
    }
    if case.workers > 1 {
        let mut c = case.clone();
        c.workers = 1;
        c.reuseport = false;
        out.push(c);
    }
    for b in 0..case.backends.len() {
        if case.backends[b].script.iter().any(|s| *s != Behaviour::Ok) {
            let mut c = case.clone();
            c.backends[b].script = vec![Behaviour::Ok];
            out.push(c);
        }
        if case.backends[b].script.len() > 1 {
            let mut c = case.clone();
            let first_bad = c.backends[b]
                .script
                .iter()
                .copied()
                .find(|s| *s != Behaviour::Ok)
                .unwrap_or(Behaviour::Ok);
            c.backends[b].script = vec![first_bad];
            out.push(c);
        }
    }
    let lists: [fn(&mut Case) -> &mut Vec<String>; 3] =
        [|c| &mut c.http, |c| &mut c.server, |c| &mut c.location];
    for list in lists {
        for i in 0..list(&mut case.clone()).len() {
            let mut c = case.clone();
            list(&mut c).remove(i);
            out.push(c);
        }
    }
    for (u, upstream) in case.upstreams.iter().enumerate() {
        for i in 0..upstream.extra.len() {
            let mut c = case.clone();
            c.upstreams[u].extra.remove(i);
            out.push(c);
        }
        if upstream.method.is_some() {
            let mut c = case.clone();
            c.upstreams[u].method = None;
            out.push(c);
        }
        for (s, server) in upstream.servers.iter().enumerate() {
            let words: Vec<&str> = server.params.split_whitespace().collect();
            for w in 0..words.len() {
                let mut c = case.clone();
                let mut fewer = words.clone();
                fewer.remove(w);
                c.upstreams[u].servers[s].params = fewer.join(" ");
                out.push(c);
            }
        }
    }
    if case.client_keepalive {
        let mut c = case.clone();
        c.client_keepalive = false;
        out.push(c);
    }
    for (r, round) in case.rounds.iter().enumerate() {
        if round.pause_ms > 0 {
            let mut c = case.clone();
            c.rounds[r].pause_ms = 0;
            out.push(c);
        }
        for (q, request) in round.requests.iter().enumerate() {
            let mut plain = |change: &dyn Fn(&mut crate::case::Request)| {
                let mut c = case.clone();
                change(&mut c.rounds[r].requests[q]);
                if c != *case {
                    out.push(c);
                }
            };
            for h in 0..request.headers.len() {
                plain(&|req| {
                    req.headers.remove(h);
                });
            }
            plain(&|req| {
                req.method = "GET".into();
                req.body = None;
            });
            plain(&|req| req.path = "/".into());
            plain(&|req| req.host = Some("fuzz.test".into()));
            plain(&|req| req.client = 0);
        }
    }
    out
}

fn without_round(case: &Case, r: usize) -> Case {
    let mut c = case.clone();
    c.rounds.remove(r);
    for b in &mut c.backends {
        if b.script.len() > r && b.script.len() > 1 {
            b.script.remove(r);
        }
    }
    c
}

fn without_server(case: &Case, u: usize, s: usize) -> Case {
    let mut c = case.clone();
    let backend = c.upstreams[u].servers.remove(s).backend;
    without_backend(&mut c, backend);
    c
}

fn without_backend(c: &mut Case, backend: usize) {
    c.backends.remove(backend);
    for upstream in &mut c.upstreams {
        for server in &mut upstream.servers {
            if server.backend > backend {
                server.backend -= 1;
            }
        }
    }
}

fn without_fallback(case: &Case) -> Case {
    let mut c = case.clone();
    c.fallback = None;
    c.location
        .retain(|l| !l.starts_with("error_page") && !l.starts_with("proxy_intercept_errors"));
    if let Some(u) = c.upstreams.iter().position(|u| u.name == "spare") {
        let spare = c.upstreams.remove(u);
        let mut gone: Vec<usize> = spare.servers.iter().map(|s| s.backend).collect();
        gone.sort_unstable();
        for b in gone.into_iter().rev() {
            without_backend(&mut c, b);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_is_smaller_and_keeps_servers_pointing_at_backends() {
        for index in 0..200 {
            let case = crate::grammar::generate(7, index);
            for c in candidates(&case) {
                assert_ne!(c, case, "a candidate changes something");
                for u in &c.upstreams {
                    assert!(!u.servers.is_empty());
                    for s in &u.servers {
                        assert!(s.backend < c.backends.len(), "{c:?}");
                    }
                }
                let used: usize = c.upstreams.iter().map(|u| u.servers.len()).sum();
                assert_eq!(used, c.backends.len(), "one backend per server line");
                assert!(!c.rounds.is_empty());
            }
        }
    }
}
