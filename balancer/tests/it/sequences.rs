//! Exact pick sequences for the deterministic methods.

use balancer::{Method, Outcome, Server};

use crate::common::*;

#[test]
fn smooth_weighted_round_robin_5_1_1() {
    // current weights before the pick (+5, +1, +1), the pick, then after (-7):
    //  1: ( 5, 1, 1) a -> (-2, 1, 1)
    //  2: ( 3, 2, 2) a -> (-4, 2, 2)
    //  3: ( 1, 3, 3) b -> ( 1,-4, 3)    ties go to the earliest peer
    //  4: ( 6,-3, 4) a -> (-1,-3, 4)
    //  5: ( 4,-2, 5) c -> ( 4,-2,-2)
    //  6: ( 9,-1,-1) a -> ( 2,-1,-1)
    //  7: ( 7, 0, 0) a -> ( 0, 0, 0)    back where it started
    let mut up = upstream(Method::RoundRobin, weighted(&[5, 1, 1]));
    let seq = picks(&mut up, &Default::default(), 14);
    assert_eq!(seq.join(" "), "a a b a c a a a a b a c a a");
}

#[test]
fn every_block_of_total_weight_picks_gives_each_its_weight() {
    for weights in [
        vec![3, 2],
        vec![1, 1, 1],
        vec![7, 3, 1, 1],
        vec![10, 1],
        vec![4, 4, 2, 1, 9],
    ] {
        let total: u32 = weights.iter().sum();
        let mut up = upstream(Method::RoundRobin, weighted(&weights));
        for _block in 0..5 {
            let seq = picks(&mut up, &Default::default(), total as usize);
            for (i, w) in weights.iter().enumerate() {
                let name = ((b'a' + i as u8) as char).to_string();
                assert_eq!(
                    seq.iter().filter(|s| **s == name).count(),
                    *w as usize,
                    "{weights:?}: {seq:?}"
                );
            }
        }
    }
}

#[test]
fn least_conn_prefers_idle_peers_and_ties_go_round_robin() {
    // Weights 1,1,1. r1: all idle -> tie among a,b,c -> round robin picks a.
    // r2: a busy -> b and c idle -> tie from b on -> b.  r3: only c idle -> c.
    // b finishes; r4: b alone is idle -> b.
    let mut up = upstream(Method::LeastConn, weighted(&[1, 1, 1]));
    let c = Default::default();
    let (mut r1, mut r2, mut r3) = (up.start(&c), up.start(&c), up.start(&c));
    let p1 = up.pick(&mut r1, secs(0)).unwrap();
    let p2 = up.pick(&mut r2, secs(0)).unwrap();
    let p3 = up.pick(&mut r3, secs(0)).unwrap();
    assert_eq!(
        [short(&up, p1), short(&up, p2), short(&up, p3)],
        ["a", "b", "c"]
    );
    up.finish(&mut r2, Outcome::OK, secs(0));
    let mut r4 = up.start(&c);
    let p4 = up.pick(&mut r4, secs(0)).unwrap();
    assert_eq!(short(&up, p4), "b");
}

#[test]
fn least_conn_weighs_connections_by_weight() {
    // a weight 3 with 2 in flight (2/3) beats b weight 1 with 1 in flight (1/1).
    let mut up = upstream(Method::LeastConn, weighted(&[3, 1]));
    let c = Default::default();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut a = up.start(&c);
        let p = up.pick(&mut a, secs(0)).unwrap();
        held.push((a, short(&up, p)));
    }
    let names: Vec<&str> = held.iter().map(|(_, n)| n.as_str()).collect();
    // r1: tie (0/3 vs 0/1), round robin -> a. r2: a 1/3 vs b 0/1 -> b.
    // r3: a 1/3 vs b 1/1 -> a.
    assert_eq!(names, ["a", "b", "a"]);
    let mut r4 = up.start(&c);
    let p4 = up.pick(&mut r4, secs(0)).unwrap();
    assert_eq!(short(&up, p4), "a", "2/3 < 1/1");
}

#[test]
fn sequential_least_conn_is_round_robin() {
    let mut up = upstream(Method::LeastConn, weighted(&[5, 1, 1]));
    assert_eq!(
        picks(&mut up, &Default::default(), 7).join(" "),
        "a a b a c a a"
    );
}

#[test]
fn ip_hash_sticks_and_walks_the_weights() {
    // 127.0.0.1 hashes 127,0,0 from 89: 3913, 3199, 4040; 4040 % 3 = 2 -> c.
    // 10.0.0.1 -> 2565 % 3 = 0 -> a; 10.0.1.1 -> 2566 % 3 = 1 -> b.
    // The last octet does not count: 10.0.0.99 is 10.0.0.1's neighbour -> a.
    let mut up = upstream(Method::IpHash, weighted(&[1, 1, 1]));
    for (ip, want) in [
        ("127.0.0.1", "c"),
        ("10.0.0.1", "a"),
        ("10.0.1.1", "b"),
        ("10.0.0.99", "a"),
    ] {
        let seq = picks(&mut up, &client(ip), 5);
        assert!(seq.iter().all(|p| p == want), "{ip}: {seq:?}");
    }
    // Weights 3,2,1 (total 6): 10.0.0.1 -> 2565 % 6 = 3 -> the walk passes a (0-2) -> b.
    let mut up = upstream(Method::IpHash, weighted(&[3, 2, 1]));
    assert_eq!(picks(&mut up, &client("10.0.0.1"), 3), ["b", "b", "b"]);
}

#[test]
fn ip_hash_rehashes_past_a_down_peer() {
    // 10.0.0.1: 2565 % 3 = 0 -> a, which is down; rehash from 2565 over the
    // same bytes: 1753 % 3 = 1 -> b.
    let mut servers = weighted(&[1, 1, 1]);
    servers[0].down = true;
    let mut up = upstream(Method::IpHash, servers);
    assert_eq!(picks(&mut up, &client("10.0.0.1"), 3), ["b", "b", "b"]);
    // 192.168.1.20: 154 % 3 = 1 -> b down; 5654 % 3 = 2 -> c.
    let mut servers = weighted(&[1, 1, 1]);
    servers[1].down = true;
    let mut up = upstream(Method::IpHash, servers);
    assert_eq!(picks(&mut up, &client("192.168.1.20"), 2), ["c", "c"]);
}

#[test]
fn hash_follows_cache_memcached() {
    // (crc32("/chat") >> 16) & 0x7fff = 16746; % 3 = 0 -> a.
    // "/v1/models" -> 31715 % 3 = 2 -> c.
    let mut up = upstream(hash("$request_uri", false), weighted(&[1, 1, 1]));
    assert_eq!(picks(&mut up, &keyed("/chat"), 3), ["a", "a", "a"]);
    assert_eq!(picks(&mut up, &keyed("/v1/models"), 3), ["c", "c", "c"]);
    // a down: rehash adds (crc32("1/chat") >> 16) & 0x7fff: 47894 % 3 = 2 -> c.
    let mut servers = weighted(&[1, 1, 1]);
    servers[0].down = true;
    let mut up = upstream(hash("$request_uri", false), servers);
    assert_eq!(picks(&mut up, &keyed("/chat"), 2), ["c", "c"]);
}

#[test]
fn an_empty_hash_key_falls_back_to_round_robin() {
    let mut up = upstream(hash("$http_x_user", false), weighted(&[1, 1]));
    assert_eq!(picks(&mut up, &keyed(""), 4), ["a", "b", "a", "b"]);
}

#[test]
fn a_retry_never_repeats_a_peer_and_tries_run_out() {
    let mut up = upstream(Method::RoundRobin, weighted(&[1, 1, 1]));
    let mut a = up.start(&Default::default());
    assert_eq!(a.tries, 3, "nginx allows one try per server");
    let mut seen = Vec::new();
    while a.tries > 0 {
        let p = up.pick(&mut a, secs(0)).unwrap();
        seen.push(short(&up, p));
        up.finish(&mut a, Outcome::FAILED, secs(0));
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
}

#[test]
fn backup_only_when_no_primary_can_be_chosen() {
    let mut servers = weighted(&[1, 1]);
    servers.push(Server::new("z:80").backup());
    let mut up = upstream(Method::RoundRobin, servers);
    assert_eq!(picks(&mut up, &Default::default(), 4), ["a", "b", "a", "b"]);
    // Both primaries fail once (max_fails=1): out for fail_timeout (10 s).
    assert_eq!(
        request(&mut up, &Default::default(), secs(0), Outcome::FAILED),
        "a"
    );
    assert_eq!(
        request(&mut up, &Default::default(), secs(0), Outcome::FAILED),
        "b"
    );
    assert_eq!(picks(&mut up, &Default::default(), 3), ["z", "z", "z"]);
    // After fail_timeout the primaries are probed again and take over (in an
    // order their recovering effective weights decide).
    let seq: Vec<String> = (0..4)
        .map(|_| request(&mut up, &Default::default(), secs(11), Outcome::OK))
        .collect();
    assert!(!seq.contains(&"z".to_string()), "{seq:?}");
    assert!(
        seq.contains(&"a".to_string()) && seq.contains(&"b".to_string()),
        "{seq:?}"
    );
}

#[test]
fn least_conn_uses_backup_too() {
    let mut servers = weighted(&[1]);
    servers[0].down = true;
    servers.push(Server::new("z:80").backup());
    let mut up = upstream(Method::LeastConn, servers);
    assert_eq!(picks(&mut up, &Default::default(), 2), ["z", "z"]);
}

#[test]
fn least_time_prefers_the_faster_peer_and_retries_a_slow_one_later() {
    use std::time::Duration;
    let mut up = upstream(Method::LeastTime { last_byte: false }, weighted(&[1, 1]));
    let c = Default::default();
    let run = |up: &mut balancer::Upstream, t: f64, a_ms: u64, b_ms: u64| -> String {
        let now = Duration::from_secs_f64(t);
        let mut at = up.start(&c);
        let p = up.pick(&mut at, now).unwrap();
        let name = short(up, p);
        let rtt = Duration::from_millis(if name == "a" { a_ms } else { b_ms });
        up.finish(
            &mut at,
            Outcome {
                failed: false,
                rtt: Some(rtt),
            },
            now,
        );
        name
    };
    // Unmeasured peers cost nothing: both get tried first (round robin on the tie).
    assert_eq!(
        [run(&mut up, 0.0, 10, 100), run(&mut up, 0.0, 10, 100)],
        ["a", "b"]
    );
    // a answers in 10 ms, b in 100 ms: a takes everything while b's cost stays high.
    for i in 0..20 {
        assert_eq!(run(&mut up, 0.1 * f64::from(i), 10, 100), "a");
    }
    // Left alone, b's average decays (10 s time constant): at t=30 it reads
    // 100 ms * e^-3 = 5 ms, below a's fresh 10 ms, and b is tried again.
    assert_eq!(run(&mut up, 20.0, 10, 100), "a");
    assert_eq!(run(&mut up, 29.9, 10, 100), "a");
    assert_eq!(run(&mut up, 30.0, 10, 100), "b");
}

#[test]
fn least_time_counts_requests_in_flight() {
    use std::time::Duration;
    // Both measured at 10 ms; with two in flight on a, b (one in flight) is cheaper.
    let mut up = upstream(Method::LeastTime { last_byte: false }, weighted(&[1, 1]));
    let c = Default::default();
    for _ in 0..2 {
        let mut at = up.start(&c);
        up.pick(&mut at, Duration::ZERO).unwrap();
        up.finish(
            &mut at,
            Outcome {
                failed: false,
                rtt: Some(Duration::from_millis(10)),
            },
            Duration::ZERO,
        );
    }
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut at = up.start(&c);
        let p = up.pick(&mut at, Duration::ZERO).unwrap();
        held.push((at, short(&up, p)));
    }
    let names: Vec<&str> = held.iter().map(|(_, n)| n.as_str()).collect();
    // Warm-up left smooth round robin's current weights at a -1, b 1.
    // r1: 10*(0+1) each, a tie: a -1+1 = 0, b 1+1 = 2 -> b.
    // r2: a 10*1 vs b 10*2 -> a.   r3: 20 vs 20, a tie: a 1, b 1 -> a (earlier).
    assert_eq!(names, ["b", "a", "a"]);
}
