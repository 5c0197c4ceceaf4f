//! An upstream group and the per-request attempt that walks it: the choices
//! nginx's upstream modules make, step for step, with time passed in so that
//! every decision is reproducible in a test.
//!
//! Like nginx, a request starts an [`Attempt`] ([`Upstream::start`]), asks for
//! a peer ([`Upstream::pick`]), reports how it went ([`Upstream::finish`]),
//! and may ask again while `Attempt::tries` allows (`proxy_next_upstream`).
//!
//! The methods are in files by family: round_robin.rs (round robin,
//! least_conn and least_time, and the smooth weighted pick they share),
//! hashed.rs (ip_hash, hash, consistent hash), random.rs.

use std::net::IpAddr;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::key::KeyExpr;
use crate::peer::{Peer, Server};

mod hashed;
mod random;
mod round_robin;

use hashed::ip_hash_bytes;

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

    /// `proxy_next_upstream_tries N`: at most `n` tries in all (0: no
    /// limit beyond one per server), as nginx caps `peer.tries`.
    pub fn limit_tries(&mut self, n: u32) {
        if n > 0 {
            self.tries = self.tries.min(n);
        }
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
        // nginx's peer.tries: the servers not marked down, backups included.
        let up = |t: &Tier| t.peers.iter().filter(|p| !p.server.down).count();
        let tries = up(&self.primary) + self.backup.as_ref().map_or(0, up);
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
}
