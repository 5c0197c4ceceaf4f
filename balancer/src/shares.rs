//! What share of requests each server should get, for the analyzer to test
//! observed counts against: exact where the method decides it, "depends on
//! load" where it does not.

use std::net::IpAddr;

use crate::peer::Server;
use crate::upstream::{Client, Method, Outcome, Upstream, UpstreamSpec};

/// Each server's expected share, in config order, summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Shares(Vec<(String, f64)>),
    /// The method follows load (connections, response times), so no fixed
    /// share exists; the text says why.
    LoadDependent(&'static str),
}

impl Expected {
    pub fn share(&self, addr: &str) -> Option<f64> {
        match self {
            Expected::Shares(s) => s.iter().find(|(a, _)| a == addr).map(|(_, x)| *x),
            Expected::LoadDependent(_) => None,
        }
    }
}

/// Who sends the requests.
#[derive(Debug, Clone, Copy)]
pub enum Population<'a> {
    /// Every /24 (ip_hash) or a uniformly random key (hash methods).
    Any,
    Clients(&'a [IpAddr]),
    /// Clients with the number of requests each sent (as read from a log).
    WeightedClients(&'a [(IpAddr, u64)]),
    Keys(&'a [String]),
}

const TWO_32: f64 = 4_294_967_296.0;

/// The expected share of each server of `spec` for requests from `population`.
pub fn expected_shares(spec: &UpstreamSpec, population: Population<'_>) -> Expected {
    let servers = &spec.servers;
    let usable = |s: &Server| !s.backup && !s.down;
    // With every primary down, the backups take everything (methods that have them).
    let tier: Vec<bool> = if servers.iter().any(usable) {
        servers.iter().map(usable).collect()
    } else {
        servers.iter().map(|s| s.backup && !s.down).collect()
    };
    let by_weight = || weights_share(servers, &tier);
    match (&spec.method, population) {
        (Method::LeastConn, _) => Expected::LoadDependent(
            "least_conn follows connections in flight; one request at a time, it is round robin by weight",
        ),
        (Method::LeastTime { .. }, _) => Expected::LoadDependent("least_time follows measured response times"),
        (Method::RoundRobin | Method::Random { two: false }, _) => by_weight(),
        (Method::Random { two: true }, _) => random_two(servers, &tier),
        (_, Population::Clients(ips)) => simulate(spec, ips.iter().map(|ip| (Client::from_addr(*ip), 1.0))),
        (_, Population::WeightedClients(ips)) => simulate(spec, ips.iter().map(|(ip, n)| (Client::from_addr(*ip), *n as f64))),
        (_, Population::Keys(keys)) => simulate(spec, keys.iter().map(|k| (Client { addr: None, key: k.clone() }, 1.0))),
        (Method::IpHash, Population::Any) => ip_hash_all_prefixes(servers),
        (Method::Hash { consistent: false, .. }, Population::Any) => memcached_any_key(servers),
        (Method::Hash { consistent: true, .. }, Population::Any) => ring_arcs(spec),
    }
}

fn shares_from(servers: &[Server], counts: &[f64]) -> Expected {
    let total: f64 = counts.iter().sum();
    Expected::Shares(
        servers
            .iter()
            .zip(counts)
            .map(|(s, c)| (s.addr.clone(), if total > 0.0 { c / total } else { 0.0 }))
            .collect(),
    )
}

fn weights_share(servers: &[Server], tier: &[bool]) -> Expected {
    let counts: Vec<f64> = servers
        .iter()
        .zip(tier)
        .map(|(s, t)| if *t { f64::from(s.weight) } else { 0.0 })
        .collect();
    shares_from(servers, &counts)
}

/// `random two` under equal load: the second, different draw wins the tie,
/// so P(i) = sum over j != i of p_j * p_i / (1 - p_j).
fn random_two(servers: &[Server], tier: &[bool]) -> Expected {
    let Expected::Shares(p) = weights_share(servers, tier) else {
        unreachable!()
    };
    let p: Vec<f64> = p.into_iter().map(|(_, x)| x).collect();
    let counts: Vec<f64> = (0..p.len())
        .map(|i| {
            (0..p.len())
                .filter(|&j| j != i && p[j] < 1.0)
                .map(|j| p[j] * p[i] / (1.0 - p[j]))
                .sum()
        })
        .collect();
    if counts.iter().all(|c| *c == 0.0) {
        return shares_from(servers, &p);
    }
    shares_from(servers, &counts)
}

/// Runs each client through the real selection, one request at a time;
/// the server it lands on is credited with the client's weight.
fn simulate(spec: &UpstreamSpec, clients: impl Iterator<Item = (Client, f64)>) -> Expected {
    let Ok(mut up) = Upstream::new(spec.clone(), 0) else {
        return shares_from(&spec.servers, &vec![0.0; spec.servers.len()]);
    };
    let mut counts = vec![0.0; spec.servers.len()];
    for (client, weight) in clients {
        let mut a = up.start(&client);
        if let Some(p) = up.pick(&mut a, std::time::Duration::ZERO) {
            let addr = &up.peer(p).server.addr;
            if let Some(i) = spec.servers.iter().position(|s| &s.addr == addr) {
                counts[i] += weight;
            }
            up.finish(&mut a, Outcome::OK, std::time::Duration::ZERO);
        }
    }
    shares_from(&spec.servers, &counts)
}

/// The primary a value lands on when weights are laid end to end.
fn walk(primaries: &[&Server], mut w: u64) -> usize {
    for (i, s) in primaries.iter().enumerate() {
        if w < u64::from(s.weight) {
            return i;
        }
        w -= u64::from(s.weight);
    }
    primaries.len() - 1
}

/// ip_hash over all 2^24 /24 prefixes, each equally likely. Without down
/// servers only the final hash matters, so a count per hash value (6271 of
/// them) suffices; with down servers the rehash depends on the octets, so
/// every prefix is walked.
fn ip_hash_all_prefixes(servers: &[Server]) -> Expected {
    let primaries: Vec<&Server> = servers.iter().filter(|s| !s.backup).collect();
    let total: u64 = primaries.iter().map(|s| u64::from(s.weight)).sum();
    let mut counts = vec![0.0; servers.len()];
    let index_of = |p: usize| {
        servers
            .iter()
            .position(|s| std::ptr::eq(s, primaries[p]))
            .unwrap_or(0)
    };
    if primaries.iter().all(|s| !s.down) {
        let mut at = vec![0f64; 6271];
        at[89] = 1.0;
        for _ in 0..3 {
            let mut next = vec![0f64; 6271];
            for (h, n) in at.iter().enumerate().filter(|(_, n)| **n > 0.0) {
                for b in 0..256 {
                    next[(h * 113 + b) % 6271] += n;
                }
            }
            at = next;
        }
        for (h, n) in at.iter().enumerate() {
            counts[index_of(walk(&primaries, h as u64 % total))] += n;
        }
        return shares_from(servers, &counts);
    }
    let live: Vec<bool> = primaries.iter().map(|s| !s.down).collect();
    let live_weight: f64 = primaries
        .iter()
        .filter(|s| !s.down)
        .map(|s| f64::from(s.weight))
        .sum();
    for prefix in 0u32..1 << 24 {
        let bytes = [(prefix >> 16) as u8, (prefix >> 8) as u8, prefix as u8];
        let mut h = 89u32;
        let mut chosen = None;
        for _ in 0..=20 {
            for b in bytes {
                h = (h * 113 + u32::from(b)) % 6271;
            }
            let p = walk(&primaries, u64::from(h) % total);
            if live[p] {
                chosen = Some(p);
                break;
            }
        }
        match chosen {
            Some(p) => counts[index_of(p)] += 1.0,
            // Round robin's turn: spread by weight.
            None => {
                for (p, s) in primaries.iter().enumerate().filter(|(p, _)| live[*p]) {
                    counts[index_of(p)] += f64::from(s.weight) / live_weight;
                }
            }
        }
    }
    shares_from(servers, &counts)
}

/// `hash KEY` for a uniformly random key: the first hash is uniform over
/// 0..32768, so each server gets the values that land on it modulo the total
/// weight (modulo bias included). What lands on a down server is rehashed;
/// this spreads it by weight, which is an estimate: crc32 is linear, so a
/// key's rehash is not independent of its first hash, and the true split
/// depends on the keys (pass `Population::Keys` for an exact answer).
fn memcached_any_key(servers: &[Server]) -> Expected {
    let primaries: Vec<&Server> = servers.iter().filter(|s| !s.backup).collect();
    let total: u64 = primaries.iter().map(|s| u64::from(s.weight)).sum();
    let live_weight: f64 = primaries
        .iter()
        .filter(|s| !s.down)
        .map(|s| f64::from(s.weight))
        .sum();
    let mut first = vec![0.0; primaries.len()];
    for v in 0..32768u64 {
        first[walk(&primaries, v % total)] += 1.0;
    }
    let lost: f64 = primaries
        .iter()
        .zip(&first)
        .filter(|(s, _)| s.down)
        .map(|(_, n)| n)
        .sum();
    let mut counts = vec![0.0; servers.len()];
    for (p, s) in primaries.iter().enumerate().filter(|(_, s)| !s.down) {
        let i = servers
            .iter()
            .position(|t| std::ptr::eq(t, *s))
            .unwrap_or(0);
        counts[i] = first[p] + lost * f64::from(s.weight) / live_weight;
    }
    shares_from(servers, &counts)
}

/// `hash KEY consistent` for a uniformly random key: each ring point owns the
/// arc of hashes up to it (the first point also owns the wrap-around), and a
/// down server's arcs pass to the next point of a live one.
fn ring_arcs(spec: &UpstreamSpec) -> Expected {
    let Ok(up) = Upstream::new(spec.clone(), 0) else {
        return shares_from(&spec.servers, &vec![0.0; spec.servers.len()]);
    };
    let points = up.points();
    let n = points.len();
    let mut counts = vec![0.0; spec.servers.len()];
    for (k, point) in points.iter().enumerate() {
        let arc = if k == 0 {
            f64::from(point.hash) + 1.0 + (TWO_32 - 1.0 - f64::from(points[n - 1].hash))
        } else {
            f64::from(point.hash - points[k - 1].hash)
        };
        let owner = (0..n)
            .map(|step| points[(k + step) % n].peer)
            .find(|&p| !up.primary.peers[p].server.down);
        if let Some(p) = owner {
            let addr = &up.primary.peers[p].server.addr;
            if let Some(i) = spec.servers.iter().position(|s| &s.addr == addr) {
                counts[i] += arc;
            }
        }
    }
    shares_from(&spec.servers, &counts)
}
