//! The same cases through every method.

use balancer::{Outcome, Server};

use crate::common::*;

#[test]
fn a_down_server_is_never_picked() {
    for (method, client) in every_method() {
        let mut servers = weighted(&[1, 1, 1]);
        servers[1].down = true;
        let mut up = upstream(method.clone(), servers);
        let seq = picks(&mut up, &client, 30);
        assert!(!seq.contains(&"b".to_string()), "{method:?}: {seq:?}");
        assert!(!seq.contains(&"-".to_string()), "{method:?}: {seq:?}");
    }
}

#[test]
fn all_down_means_no_live_upstreams_and_nothing_is_reset() {
    for (method, client) in every_method() {
        let mut up = upstream(method.clone(), weighted(&[1, 1]));
        // Fail each server once: with max_fails=1 both are out for 10 s.
        let mut failed = Vec::new();
        for _ in 0..2 {
            failed.push(request(&mut up, &client, secs(0), Outcome::FAILED));
        }
        failed.sort();
        assert_eq!(failed, ["a", "b"], "{method:?}");
        assert_eq!(
            request(&mut up, &client, secs(5), Outcome::OK),
            "-",
            "{method:?}"
        );
        assert!(
            up.peers().all(|(_, p)| p.fails == 1),
            "{method:?}: fails were reset"
        );
        assert_ne!(
            request(&mut up, &client, secs(11), Outcome::OK),
            "-",
            "{method:?}: probed after fail_timeout"
        );
    }
}

#[test]
fn one_request_never_tries_a_server_twice() {
    for (method, client) in every_method() {
        let mut up = upstream(method.clone(), weighted(&[2, 1, 1, 3]));
        let mut a = up.start(&client);
        let mut seen = Vec::new();
        while a.tries > 0 {
            let Some(p) = up.pick(&mut a, secs(0)) else {
                break;
            };
            seen.push(short(&up, p));
            up.finish(&mut a, Outcome::FAILED, secs(0));
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{method:?}: {seen:?}");
        assert_eq!(seen.len(), 4, "{method:?}: every server once: {seen:?}");
    }
}

#[test]
fn a_lone_server_is_never_taken_out() {
    for (method, client) in every_method() {
        let mut up = upstream(method.clone(), vec![Server::new("a:80")]);
        for t in 0..5 {
            assert_eq!(
                request(&mut up, &client, secs(t), Outcome::FAILED),
                "a",
                "{method:?}"
            );
        }
        let mut a = up.start(&client);
        up.pick(&mut a, secs(6)).unwrap();
        up.finish(&mut a, Outcome::FAILED, secs(6));
        assert_eq!(a.tries, 0, "{method:?}: nothing else to retry on");
    }
}

#[test]
fn max_conns_caps_a_server() {
    for (method, client) in every_method() {
        let mut servers = weighted(&[1, 1]);
        servers[0].max_conns = 1;
        let mut up = upstream(method.clone(), servers);
        let mut held = Vec::new();
        for _ in 0..6 {
            let mut a = up.start(&client);
            let p = up.pick(&mut a, secs(0)).unwrap();
            held.push((a, short(&up, p)));
        }
        let on_a = held.iter().filter(|(_, n)| n == "a").count();
        assert!(on_a <= 1, "{method:?}: {on_a} in flight on a");
    }
}
