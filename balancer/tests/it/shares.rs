//! Expected shares against what the selection really does.

use std::net::{IpAddr, Ipv4Addr};

use balancer::{
    expected_shares, Client, Expected, Method, Outcome, Population, Server, UpstreamSpec,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::common::*;

fn spec(method: Method, servers: Vec<Server>) -> UpstreamSpec {
    UpstreamSpec::new("backend", method, servers)
}

fn shares(e: &Expected) -> Vec<f64> {
    match e {
        Expected::Shares(s) => s.iter().map(|(_, x)| *x).collect(),
        Expected::LoadDependent(why) => panic!("load dependent: {why}"),
    }
}

/// Observed shares of `clients` sent one at a time through the real selection.
fn observed(spec: &UpstreamSpec, clients: impl Iterator<Item = Client>) -> Vec<f64> {
    let mut up = balancer::Upstream::new(spec.clone(), 11).unwrap();
    let mut counts = vec![0.0; spec.servers.len()];
    let mut n = 0.0;
    for c in clients {
        let name = request(&mut up, &c, secs(0), Outcome::OK);
        let i = spec
            .servers
            .iter()
            .position(|s| s.addr.starts_with(&format!("{name}:")))
            .unwrap();
        counts[i] += 1.0;
        n += 1.0;
    }
    counts.iter().map(|c| c / n).collect()
}

fn assert_close(expected: &[f64], observed: &[f64], tolerance: f64, what: &str) {
    for (e, o) in expected.iter().zip(observed) {
        assert!(
            (e - o).abs() <= tolerance,
            "{what}: expected {expected:?}, observed {observed:?}"
        );
    }
}

fn random_clients(n: usize) -> Vec<IpAddr> {
    let mut rng = SmallRng::seed_from_u64(5);
    (0..n)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.random::<u32>())))
        .collect()
}

fn random_keys(n: usize) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(6);
    (0..n)
        .map(|_| format!("/item/{}", rng.random::<u64>()))
        .collect()
}

#[test]
fn round_robin_and_random_share_by_weight_backup_gets_nothing() {
    let mut servers = weighted(&[3, 2]);
    servers.push(Server::new("z:80").backup());
    let e = expected_shares(&spec(Method::RoundRobin, servers.clone()), Population::Any);
    assert_eq!(shares(&e), [0.6, 0.4, 0.0]);
    assert_eq!(e.share("a:80"), Some(0.6));
    let e = expected_shares(
        &spec(
            Method::RoundRobin,
            vec![Server::new("a:80").down(), Server::new("z:80").backup()],
        ),
        Population::Any,
    );
    assert_eq!(
        shares(&e),
        [0.0, 1.0],
        "all primaries down: the backup takes all"
    );
    let e = expected_shares(
        &spec(Method::Random { two: false }, weighted(&[3, 1])),
        Population::Any,
    );
    assert_eq!(shares(&e), [0.75, 0.25]);
    let observed = observed(
        &spec(Method::Random { two: false }, weighted(&[3, 1])),
        (0..40_000).map(|_| Client::default()),
    );
    assert_close(&[0.75, 0.25], &observed, 0.01, "random");
}

#[test]
fn least_conn_says_it_depends_on_load() {
    let e = expected_shares(&spec(Method::LeastConn, weighted(&[1, 1])), Population::Any);
    assert!(matches!(e, Expected::LoadDependent(_)));
    assert_eq!(e.share("a:80"), None);
}

#[test]
fn random_two_closed_form_matches_draws() {
    // p = (0.5, 0.3, 0.2): P(a) = 0.3*0.5/0.7 + 0.2*0.5/0.8 = 0.33929 ...
    let s = spec(Method::Random { two: true }, weighted(&[5, 3, 2]));
    let e = shares(&expected_shares(&s, Population::Any));
    assert!(
        (e[0] - (0.3 * 0.5 / 0.7 + 0.2 * 0.5 / 0.8)).abs() < 1e-12,
        "{e:?}"
    );
    assert!((e.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let o = observed(&s, (0..60_000).map(|_| Client::default()));
    assert_close(&e, &o, 0.01, "random two");
}

#[test]
fn ip_hash_over_all_prefixes_matches_a_sample_of_clients() {
    for weights in [vec![1, 1, 1], vec![3, 2, 1], vec![1, 1, 1, 1, 1, 1, 1]] {
        let s = spec(Method::IpHash, weighted(&weights));
        let e = shares(&expected_shares(&s, Population::Any));
        let clients = random_clients(30_000);
        let o = observed(&s, clients.iter().map(|ip| Client::from_addr(*ip)));
        assert_close(&e, &o, 0.015, &format!("ip_hash {weights:?}"));
        // A given population is simulated exactly.
        let exact = shares(&expected_shares(&s, Population::Clients(&clients)));
        assert_close(&exact, &o, 1e-12, "ip_hash population");
    }
}

#[test]
fn ip_hash_with_a_down_server_walks_every_prefix() {
    let mut servers = weighted(&[1, 1, 1]);
    servers[0].down = true;
    let s = spec(Method::IpHash, servers);
    let e = shares(&expected_shares(&s, Population::Any));
    assert_eq!(e[0], 0.0);
    let clients = random_clients(30_000);
    let o = observed(&s, clients.iter().map(|ip| Client::from_addr(*ip)));
    assert_close(&e, &o, 0.015, "ip_hash with a down server");
}

#[test]
fn hash_and_consistent_hash_match_random_keys() {
    for consistent in [false, true] {
        for weights in [vec![1, 1, 1], vec![5, 1, 2], vec![1, 1, 1, 1, 1]] {
            let mut servers = weighted(&weights);
            let s = spec(hash("$request_uri", consistent), servers.clone());
            let keys = random_keys(30_000);
            let e = shares(&expected_shares(&s, Population::Any));
            let o = observed(&s, keys.iter().map(|k| keyed(k)));
            assert_close(
                &e,
                &o,
                0.015,
                &format!("consistent={consistent} {weights:?}"),
            );
            servers[1].down = true;
            let s = spec(hash("$request_uri", consistent), servers);
            let e = shares(&expected_shares(&s, Population::Any));
            assert_eq!(e[1], 0.0);
            let o = observed(&s, keys.iter().map(|k| keyed(k)));
            // Plain hash's rehash of a key is not independent of its first hash
            // (crc32 is linear), so for it "any key" is an estimate; given the
            // keys, the share is exact.
            let tolerance = if consistent { 0.015 } else { 0.04 };
            assert_close(
                &e,
                &o,
                tolerance,
                &format!("consistent={consistent} {weights:?}, b down"),
            );
            let exact = shares(&expected_shares(&s, Population::Keys(&keys)));
            assert_close(&exact, &o, 1e-12, "hash with the keys given");
        }
    }
}

#[test]
fn consistent_hash_moves_only_the_removed_servers_keys() {
    let keys = random_keys(10_000);
    let servers = weighted(&[1, 1, 1, 1, 1]);
    let assign = |servers: Vec<Server>| -> Vec<String> {
        let mut up = upstream(hash("$request_uri", true), servers);
        keys.iter()
            .map(|k| request(&mut up, &keyed(k), secs(0), Outcome::OK))
            .collect()
    };
    let before = assign(servers.clone());
    let mut removed = servers;
    removed[2].down = true;
    let after = assign(removed);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let on_c = before.iter().filter(|b| *b == "c").count();
    assert_eq!(moved, on_c, "only c's keys moved");
    assert!(
        (on_c as f64 / keys.len() as f64 - 0.2).abs() < 0.05,
        "about 1/N: {on_c}"
    );
}

#[test]
fn clients_from_a_log_count_by_their_requests() {
    let s = spec(Method::IpHash, weighted(&[1, 1, 1]));
    let ip = |i: u8| IpAddr::V4(Ipv4Addr::new(10, i, 0, 1));
    let home = |c: IpAddr| {
        let e = shares(&expected_shares(&s, Population::Clients(&[c])));
        e.iter().position(|x| *x == 1.0).unwrap()
    };
    // Two clients that ip_hash sends to different servers.
    let a = ip(1);
    let b = (2..=255).map(ip).find(|c| home(*c) != home(a)).unwrap();
    let e = shares(&expected_shares(
        &s,
        Population::WeightedClients(&[(a, 300), (b, 100)]),
    ));
    assert_eq!(e[home(a)], 0.75);
    assert_eq!(e[home(b)], 0.25);
}
