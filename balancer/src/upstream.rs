//! An upstream group and the per-request attempt that walks it: the choices
//! nginx's upstream modules make, step for step, with time passed in so that
//! every decision is reproducible in a test.
//!
//! Like nginx, a request starts an [`Attempt`] ([`Upstream::start`]), asks for
//! a peer ([`Upstream::pick`]), reports how it went ([`Upstream::finish`]),
//! and may ask again while `Attempt::tries` allows (`proxy_next_upstream`).

use std::net::IpAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::key::KeyExpr;
use crate::peer::{Peer, Server};

/// The balancing method of an `upstream {}` block.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// nginx's default: smooth weighted round robin.
    RoundRobin,
    LeastConn,
    IpHash,
    Hash {
        key: KeyExpr,
        consistent: bool,
    },
    /// `random`, or `random two [least_conn]` (the only rule nginx has for two).
    Random {
        two: bool,
    },
    /// Lowest peak-EWMA response time × (requests in flight + 1) / weight: the
    /// "fastest node" of seed 001 (nginx's open-source build has no such method).
    /// The time is to the response head (nginx Plus's `header`), or with
    /// `last_byte` to the end of the body: what a token stream's length and
    /// time to first token show in.
    LeastTime {
        last_byte: bool,
    },
}

impl Method {
    /// The directive that selects this method, as written in nginx.conf.
    pub fn directive(&self) -> String {
        match self {
            Method::RoundRobin => "round_robin".to_string(),
            Method::LeastConn => "least_conn".to_string(),
            Method::IpHash => "ip_hash".to_string(),
            Method::Hash {
                key,
                consistent: false,
            } => format!("hash {}", key.source()),
            Method::Hash {
                key,
                consistent: true,
            } => format!("hash {} consistent", key.source()),
            Method::Random { two: false } => "random".to_string(),
            Method::Random { two: true } => "random two least_conn".to_string(),
            Method::LeastTime { last_byte: false } => "least_time".to_string(),
            Method::LeastTime { last_byte: true } => "least_time last_byte".to_string(),
        }
    }

    /// Whether the method can use `backup` servers (nginx refuses them with
    /// hash, ip_hash and random).
    pub fn allows_backup(&self) -> bool {
        matches!(
            self,
            Method::RoundRobin | Method::LeastConn | Method::LeastTime { .. }
        )
    }
}

/// What an upstream block says: its name, method and servers, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    pub name: String,
    pub method: Method,
    pub servers: Vec<Server>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("upstream \"{0}\" has no servers")]
    NoServers(String),
    #[error("upstream \"{0}\" has only backup servers")]
    OnlyBackup(String),
    #[error("upstream \"{upstream}\": server {addr} is listed twice")]
    Duplicate { upstream: String, addr: String },
    #[error("upstream \"{upstream}\": server {addr} has weight 0; weights start at 1")]
    ZeroWeight { upstream: String, addr: String },
    #[error("upstream \"{upstream}\": \"backup\" cannot be used with {method}")]
    BackupNotAllowed { upstream: String, method: String },
}

impl UpstreamSpec {
    pub fn new(name: impl Into<String>, method: Method, servers: Vec<Server>) -> UpstreamSpec {
        UpstreamSpec {
            name: name.into(),
            method,
            servers,
        }
    }

    /// The checks nginx makes when it loads the configuration.
    pub fn validate(&self) -> Result<(), SpecError> {
        let name = || self.name.clone();
        if self.servers.is_empty() {
            return Err(SpecError::NoServers(name()));
        }
        if self.servers.iter().all(|s| s.backup) {
            return Err(SpecError::OnlyBackup(name()));
        }
        for (i, s) in self.servers.iter().enumerate() {
            if s.weight == 0 {
                return Err(SpecError::ZeroWeight {
                    upstream: name(),
                    addr: s.addr.clone(),
                });
            }
            if self.servers[..i].iter().any(|t| t.addr == s.addr) {
                return Err(SpecError::Duplicate {
                    upstream: name(),
                    addr: s.addr.clone(),
                });
            }
            if s.backup && !self.method.allows_backup() {
                let method = self.method.directive();
                return Err(SpecError::BackupNotAllowed {
                    upstream: name(),
                    method,
                });
            }
        }
        Ok(())
    }
}

/// Primary or backup servers, with their summed weight (down ones included,
/// as nginx counts them).
#[derive(Debug, Clone)]
pub struct Tier {
    pub peers: Vec<Peer>,
    pub total_weight: u64,
}

impl Tier {
    fn new(servers: impl Iterator<Item = Server>) -> Tier {
        let peers: Vec<Peer> = servers.map(Peer::new).collect();
        let total_weight = peers.iter().map(|p| u64::from(p.server.weight)).sum();
        Tier {
            peers,
            total_weight,
        }
    }

    /// The peer that covers `w` when weights are laid end to end.
    fn by_weight(&self, mut w: u64) -> usize {
        for (i, p) in self.peers.iter().enumerate() {
            let weight = u64::from(p.server.weight);
            if w < weight {
                return i;
            }
            w -= weight;
        }
        self.peers.len() - 1
    }
}

/// Names a peer: which tier, which position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRef {
    pub backup: bool,
    pub index: usize,
}

/// What the balancer needs to know about a request.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
    /// The evaluated `hash` key.
    pub key: String,
}

impl Client {
    /// A client known by its address only (ip_hash and the rest; no key).
    pub fn from_addr(addr: IpAddr) -> Client {
        Client {
            addr: Some(addr),
            key: String::new(),
        }
    }
}

/// One request's walk over the upstream (`ngx_http_upstream_rr_peer_data_t`
/// and the hash modules' per-request data).
#[derive(Debug, Clone)]
pub struct Attempt {
    in_backup: bool,
    tried: Vec<u64>,
    current: Option<PeerRef>,
    /// Picks left for this request, as nginx's `pc->tries`: every server once.
    pub tries: u32,
    /// ip_hash: the running hash; hash: the summed hash; consistent: the point.
    hash: u32,
    rehash: u32,
    /// Picks the hash methods gave up on; past 20 they fall back to round robin.
    hash_tries: u32,
    addr: [u8; 16],
    addr_len: usize,
    key: String,
}

impl Attempt {
    fn is_tried(&self, i: usize) -> bool {
        self.tried[i / 64] & (1 << (i % 64)) != 0
    }

    fn mark_tried(&mut self, i: usize) {
        self.tried[i / 64] |= 1 << (i % 64);
    }

    /// The peer picked last and not yet finished.
    pub fn current(&self) -> Option<PeerRef> {
        self.current
    }
}

/// A consistent-hash ring point: a hash and the server (by primary index) it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub hash: u32,
    pub peer: usize,
}

/// How a request went on the peer it was sent to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Counts as a failure for max_fails (nginx: an error, a timeout, or a
    /// status that `proxy_next_upstream` names).
    pub failed: bool,
    /// Time to the response head, for `least_time`.
    pub rtt: Option<Duration>,
}

impl Outcome {
    pub const OK: Outcome = Outcome {
        failed: false,
        rtt: None,
    };
    pub const FAILED: Outcome = Outcome {
        failed: true,
        rtt: None,
    };
}

/// The hash methods give up after this many picks that land on unusable
/// peers and fall back to round robin, as nginx does.
const HASH_TRIES: u32 = 20;

/// An upstream group with its state: what nginx keeps per `upstream {}`.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub method: Method,
    pub primary: Tier,
    pub backup: Option<Tier>,
    /// One primary server and no backup: nginx never takes it out of rotation.
    single: bool,
    points: Vec<Point>,
    /// Random's cumulative weight before each primary peer.
    ranges: Vec<u64>,
    rng: SmallRng,
}

impl Upstream {
    /// Builds the group; `seed` drives the `random` methods.
    pub fn new(spec: UpstreamSpec, seed: u64) -> Result<Upstream, SpecError> {
        spec.validate()?;
        let primary = Tier::new(spec.servers.iter().filter(|s| !s.backup).cloned());
        let backup_servers: Vec<Server> =
            spec.servers.iter().filter(|s| s.backup).cloned().collect();
        let backup = (!backup_servers.is_empty()).then(|| Tier::new(backup_servers.into_iter()));
        let mut upstream = Upstream {
            name: spec.name,
            method: spec.method,
            single: primary.peers.len() == 1 && backup.is_none(),
            primary,
            backup,
            points: Vec::new(),
            ranges: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
        };
        upstream.rebuild();
        Ok(upstream)
    }

    /// Recomputes what derives from the weights: totals, random ranges, the ring.
    fn rebuild(&mut self) {
        for tier in std::iter::once(&mut self.primary).chain(self.backup.as_mut()) {
            tier.total_weight = tier.peers.iter().map(|p| u64::from(p.server.weight)).sum();
        }
        let mut total = 0;
        self.ranges = self
            .primary
            .peers
            .iter()
            .map(|p| {
                let before = total;
                total += u64::from(p.server.weight);
                before
            })
            .collect();
        if matches!(
            self.method,
            Method::Hash {
                consistent: true,
                ..
            }
        ) {
            self.points = crate::hash::ring(&self.primary.peers);
        }
    }

    /// Changes a peer's weight (dynamic weights), keeping its counters.
    pub fn set_weight(&mut self, peer: PeerRef, weight: u32) {
        let p = self.peer_mut(peer);
        p.server.weight = weight.max(1);
        p.effective_weight = i64::from(p.server.weight);
        self.rebuild();
    }

    /// Marks a peer up or down from an active health check.
    pub fn set_healthy(&mut self, peer: PeerRef, healthy: bool) {
        self.peer_mut(peer).unhealthy = !healthy;
    }

    pub fn peer(&self, r: PeerRef) -> &Peer {
        match (r.backup, &self.backup) {
            (true, Some(b)) => &b.peers[r.index],
            _ => &self.primary.peers[r.index],
        }
    }

    fn peer_mut(&mut self, r: PeerRef) -> &mut Peer {
        match (r.backup, &mut self.backup) {
            (true, Some(b)) => &mut b.peers[r.index],
            _ => &mut self.primary.peers[r.index],
        }
    }

    /// Every peer, primaries first.
    pub fn peers(&self) -> impl Iterator<Item = (PeerRef, &Peer)> {
        let primary = self.primary.peers.iter().enumerate().map(|(index, p)| {
            (
                PeerRef {
                    backup: false,
                    index,
                },
                p,
            )
        });
        let backup = self
            .backup
            .iter()
            .flat_map(|t| t.peers.iter().enumerate())
            .map(|(index, p)| {
                (
                    PeerRef {
                        backup: true,
                        index,
                    },
                    p,
                )
            });
        primary.chain(backup)
    }

    /// The ring points of a consistent-hash upstream, sorted.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Begins a request's walk (nginx's `init_peer`).
    pub fn start(&self, client: &Client) -> Attempt {
        let most = self
            .primary
            .peers
            .len()
            .max(self.backup.as_ref().map_or(0, |b| b.peers.len()));
        let (addr, addr_len) = ip_hash_bytes(client.addr);
        let hash = match &self.method {
            Method::IpHash => 89,
            Method::Hash {
                consistent: true, ..
            } => {
                crate::hash::find_point(&self.points, crc32fast::hash(client.key.as_bytes())) as u32
            }
            _ => 0,
        };
        let tries = self.primary.peers.len() + self.backup.as_ref().map_or(0, |b| b.peers.len());
        Attempt {
            in_backup: false,
            tried: vec![0; most.div_ceil(64).max(1)],
            current: None,
            tries: u32::try_from(tries).unwrap_or(u32::MAX),
            hash,
            rehash: 0,
            hash_tries: 0,
            addr,
            addr_len,
            key: client.key.clone(),
        }
    }

    /// Picks the next peer for this request, or `None` when no peer can be
    /// chosen (nginx answers 502 "no live upstreams"). `now` is time on the
    /// caller's clock; nginx's failure bookkeeping counts whole seconds of it.
    pub fn pick(&mut self, a: &mut Attempt, now: Duration) -> Option<PeerRef> {
        let secs = now.as_secs();
        let chosen = match &self.method {
            Method::RoundRobin => self.round_robin(a, secs),
            Method::LeastConn => self.least_conn(a, secs, None),
            Method::LeastTime { .. } => self.least_conn(a, secs, Some(now.as_secs_f64())),
            Method::IpHash => self.ip_hash(a, secs),
            Method::Hash {
                consistent: false, ..
            } => self.hash(a, secs),
            Method::Hash {
                consistent: true, ..
            } => self.consistent_hash(a, secs),
            Method::Random { two } => {
                let two = *two;
                self.random(a, secs, two)
            }
        }?;
        let p = self.peer_mut(chosen);
        p.conns += 1;
        if secs.saturating_sub(p.checked) > p.server.fail_timeout {
            p.checked = secs;
        }
        a.mark_tried(chosen.index);
        a.current = Some(chosen);
        Some(chosen)
    }

    /// Reports how the request went on the peer last picked (nginx's
    /// `free_peer`): a failure counts toward max_fails and lowers the peer's
    /// effective weight; a success after the failure window clears its fails.
    pub fn finish(&mut self, a: &mut Attempt, outcome: Outcome, now: Duration) {
        let Some(r) = a.current.take() else { return };
        let single = self.single && !r.backup;
        let secs = now.as_secs();
        let p = self.peer_mut(r);
        p.conns = p.conns.saturating_sub(1);
        if let Some(rtt) = outcome.rtt {
            p.observe_rtt(rtt.as_secs_f64(), now.as_secs_f64());
        }
        if single {
            // A lone server is never taken out, and there is no other to retry on.
            a.tries = 0;
            return;
        }
        if outcome.failed {
            p.fails += 1;
            p.accessed = secs;
            p.checked = secs;
            if p.server.max_fails > 0 {
                p.effective_weight -= p.weight() / i64::from(p.server.max_fails);
            }
            p.effective_weight = p.effective_weight.max(0);
        } else if p.accessed < p.checked {
            p.fails = 0;
        }
        a.tries = a.tries.saturating_sub(1);
    }

    fn tier_mut(&mut self, backup: bool) -> &mut Tier {
        match (backup, &mut self.backup) {
            (true, Some(b)) => b,
            _ => &mut self.primary,
        }
    }

    /// Moves the attempt to the backup servers, if there are any left to try.
    fn fall_to_backup(&mut self, a: &mut Attempt) -> bool {
        if a.in_backup || self.backup.is_none() {
            return false;
        }
        a.in_backup = true;
        a.tried.iter_mut().for_each(|w| *w = 0);
        true
    }

    /// `ngx_http_upstream_get_round_robin_peer`.
    fn round_robin(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        loop {
            let backup = a.in_backup;
            let found = if self.single && !backup {
                let p = &self.primary.peers[0];
                (!p.is_down() && !p.at_max_conns()).then_some(0)
            } else {
                smooth_weighted(self.tier_mut(backup), a, now, |_| true)
            };
            if let Some(index) = found {
                return Some(PeerRef { backup, index });
            }
            if !self.fall_to_backup(a) {
                return None;
            }
        }
    }

    /// `ngx_http_upstream_get_least_conn_peer`: fewest connections per unit of
    /// weight (compared by cross-multiplying), ties by smooth weighted round
    /// robin among the tied. With `least_time` (`by_time`, the time now) the measure is
    /// response time × (connections + 1) instead of connections.
    fn least_conn(&mut self, a: &mut Attempt, now: u64, by_time: Option<f64>) -> Option<PeerRef> {
        loop {
            let backup = a.in_backup;
            if self.single && !backup {
                return self.round_robin(a, now);
            }
            let tier = self.tier_mut(backup);
            let load = |p: &Peer| match by_time {
                Some(t) => p.rtt_cost(t) * f64::from(p.conns + 1),
                None => f64::from(p.conns),
            };
            // a is less loaded than b: load_a / w_a < load_b / w_b
            let scaled = |pa: &Peer, pb: &Peer| {
                (
                    load(pa) * (pb.weight() as f64),
                    load(pb) * (pa.weight() as f64),
                )
            };
            let less = |pa: &Peer, pb: &Peer| {
                let (a, b) = scaled(pa, pb);
                a < b
            };
            let same = |pa: &Peer, pb: &Peer| {
                let (a, b) = scaled(pa, pb);
                a == b
            };
            let mut best: Option<usize> = None;
            let mut many = false;
            for (i, p) in tier.peers.iter().enumerate() {
                if a.is_tried(i) || !p.usable(now) {
                    continue;
                }
                match best {
                    Some(b) if !less(p, &tier.peers[b]) => many |= same(p, &tier.peers[b]),
                    _ => {
                        best = Some(i);
                        many = false;
                    }
                }
            }
            let Some(first) = best else {
                if self.fall_to_backup(a) {
                    continue;
                }
                return None;
            };
            let index = if many {
                tie_break(tier, a, now, first, &same)
            } else {
                first
            };
            return Some(PeerRef { backup, index });
        }
    }

    /// The hash methods' common walk: `candidate` proposes the next peer
    /// (`None` when its proposal cannot take the request); after 20 misses
    /// nginx gives the request to round robin.
    fn walk_or_round_robin(
        &mut self,
        a: &mut Attempt,
        now: u64,
        mut candidate: impl FnMut(&mut Self, &mut Attempt) -> Option<usize>,
    ) -> Option<PeerRef> {
        if a.hash_tries > HASH_TRIES || self.primary.peers.len() < 2 {
            return self.round_robin(a, now);
        }
        loop {
            if let Some(index) = candidate(self, a) {
                return Some(PeerRef {
                    backup: false,
                    index,
                });
            }
            a.hash_tries += 1;
            if a.hash_tries > HASH_TRIES {
                return self.round_robin(a, now);
            }
        }
    }

    /// Whether a hash method's proposal can take the request.
    fn open(&self, a: &Attempt, index: usize, now: u64) -> bool {
        !a.is_tried(index) && self.primary.peers[index].usable(now)
    }

    /// `ngx_http_upstream_get_ip_hash_peer`: the first three octets of an IPv4
    /// client (all sixteen bytes of IPv6) hashed as h = (h * 113 + byte) % 6271
    /// from 89, then h % total_weight walked along the weights (down peers
    /// keep their share of the walk); an unusable pick rehashes, continuing
    /// from the last hash.
    fn ip_hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        let mut hash = a.hash;
        self.walk_or_round_robin(a, now, |up, a| {
            for &b in &a.addr[..a.addr_len] {
                hash = (hash * 113 + u32::from(b)) % 6271;
            }
            let index = up
                .primary
                .by_weight(u64::from(hash) % up.primary.total_weight);
            // A retry of the request continues from the hash that was used.
            up.open(a, index, now).then(|| {
                a.hash = hash;
                index
            })
        })
    }

    /// `ngx_http_upstream_get_hash_peer`, compatible with Cache::Memcached:
    /// ((crc32([REHASH] KEY) >> 16) & 0x7fff) added to the previous hash, the
    /// rehash count prefixed from the second pick on. An empty key is round
    /// robin's.
    fn hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        if a.key.is_empty() {
            return self.round_robin(a, now);
        }
        self.walk_or_round_robin(a, now, |up, a| {
            a.hash = a
                .hash
                .wrapping_add(crate::hash::memcached_hash(a.rehash, &a.key));
            a.rehash += 1;
            let index = up
                .primary
                .by_weight(u64::from(a.hash) % up.primary.total_weight);
            up.open(a, index, now).then_some(index)
        })
    }

    /// `ngx_http_upstream_get_chash_peer`: the ring point at or after crc32(key)
    /// names a server; when it cannot take the request, the next point does.
    fn consistent_hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        if a.key.is_empty() {
            return self.round_robin(a, now);
        }
        self.walk_or_round_robin(a, now, |up, a| {
            let point = up.points[a.hash as usize % up.points.len()];
            // nginx runs smooth weighted round robin over the peers written with
            // the point's address; duplicates are refused, so that is one peer.
            let found = smooth_weighted(&mut up.primary, a, now, |i| i == point.peer);
            if found.is_none() {
                a.hash = a.hash.wrapping_add(1);
            }
            found
        })
    }

    /// `ngx_http_upstream_get_random_peer` and `get_random2_peer`: draw by
    /// weight; with `two`, draw a second, different peer and keep the one with
    /// fewer connections per weight, the second on a tie.
    fn random(&mut self, a: &mut Attempt, now: u64, two: bool) -> Option<PeerRef> {
        let mut first: Option<usize> = None;
        self.walk_or_round_robin(a, now, |up, a| {
            let i = up.draw();
            if Some(i) == first || !up.open(a, i, now) {
                return None;
            }
            let Some(f) = first else {
                if two {
                    // Keep it and draw again; nginx counts this as a try.
                    first = Some(i);
                    return None;
                }
                return Some(i);
            };
            let (p, q) = (&up.primary.peers[i], &up.primary.peers[f]);
            let keep_first =
                u64::from(p.conns) * q.weight() as u64 > u64::from(q.conns) * p.weight() as u64;
            Some(if keep_first { f } else { i })
        })
    }

    /// `ngx_http_upstream_peek_random_peer`: a uniform draw over the weights.
    fn draw(&mut self) -> usize {
        let x = self.rng.random_range(0..self.primary.total_weight);
        self.ranges.partition_point(|&before| before <= x) - 1
    }
}

/// nginx's `ngx_http_upstream_get_peer`: every usable, untried peer (that
/// `eligible` admits) adds its effective weight to its current weight; the
/// strictly greatest wins (the earliest on a tie) and gives back the total.
fn smooth_weighted(
    tier: &mut Tier,
    a: &Attempt,
    now: u64,
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total = 0;
    for i in 0..tier.peers.len() {
        let p = &mut tier.peers[i];
        if a.is_tried(i) || !p.usable(now) || !eligible(i) {
            continue;
        }
        p.current_weight += p.effective_weight;
        total += p.effective_weight;
        if p.effective_weight < p.weight() {
            p.effective_weight += 1;
        }
        let current = p.current_weight;
        if best.is_none_or(|b| current > tier.peers[b].current_weight) {
            best = Some(i);
        }
    }
    let b = best?;
    tier.peers[b].current_weight -= total;
    Some(b)
}

/// least_conn's tie-break, as nginx does it: from the first least-loaded
/// peer on, the equally loaded ones run smooth weighted round robin (the
/// first keeps the pick unless another's current weight is strictly greater).
fn tie_break(
    tier: &mut Tier,
    a: &Attempt,
    now: u64,
    first: usize,
    same: &dyn Fn(&Peer, &Peer) -> bool,
) -> usize {
    let anchor = tier.peers[first].clone();
    let mut best = first;
    let mut total = 0;
    for i in first..tier.peers.len() {
        if a.is_tried(i) || !tier.peers[i].usable(now) || !same(&tier.peers[i], &anchor) {
            continue;
        }
        let p = &mut tier.peers[i];
        p.current_weight += p.effective_weight;
        total += p.effective_weight;
        if p.effective_weight < p.weight() {
            p.effective_weight += 1;
        }
        let current = p.current_weight;
        if current > tier.peers[best].current_weight {
            best = i;
        }
    }
    tier.peers[best].current_weight -= total;
    best
}

/// The bytes ip_hash hashes: three octets of IPv4, sixteen of IPv6; nginx uses
/// three zero bytes for clients with no IP (unix sockets).
fn ip_hash_bytes(addr: Option<IpAddr>) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => {
            out[..3].copy_from_slice(&v4.octets()[..3]);
            (out, 3)
        }
        Some(IpAddr::V6(v6)) => (v6.octets(), 16),
        None => (out, 3),
    }
}
