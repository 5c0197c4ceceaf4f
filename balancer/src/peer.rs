//! A server line of an `upstream {}` block, and the state nginx keeps for it.

use std::fmt;

/// One `server` line: `server 127.0.0.1:8001 weight=3 max_fails=2 fail_timeout=30s backup;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The address: as written, or the address a host name resolved to.
    pub addr: String,
    /// The name as written when `addr` was resolved from it (one name may
    /// give several peers): consistent hashing hashes the text as written,
    /// as nginx does.
    pub host: Option<String>,
    pub weight: u32,
    /// Failures within `fail_timeout` that take the server out; 0 never does.
    pub max_fails: u32,
    /// Seconds (nginx keeps this in whole seconds too).
    pub fail_timeout: u64,
    pub backup: bool,
    pub down: bool,
    /// Connections at once; 0 is unlimited.
    pub max_conns: u32,
}

impl Server {
    /// nginx's defaults: weight=1 max_fails=1 fail_timeout=10s.
    pub fn new(addr: impl Into<String>) -> Server {
        Server {
            addr: addr.into(),
            host: None,
            weight: 1,
            max_fails: 1,
            fail_timeout: 10,
            backup: false,
            down: false,
            max_conns: 0,
        }
    }

    pub fn weight(mut self, weight: u32) -> Server {
        self.weight = weight;
        self
    }

    pub fn max_fails(mut self, max_fails: u32) -> Server {
        self.max_fails = max_fails;
        self
    }

    pub fn fail_timeout(mut self, seconds: u64) -> Server {
        self.fail_timeout = seconds;
        self
    }

    pub fn backup(mut self) -> Server {
        self.backup = true;
        self
    }

    pub fn down(mut self) -> Server {
        self.down = true;
        self
    }

    pub fn max_conns(mut self, max_conns: u32) -> Server {
        self.max_conns = max_conns;
        self
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.weight != 1 {
            write!(f, " weight={}", self.weight)?;
        }
        if self.max_fails != 1 {
            write!(f, " max_fails={}", self.max_fails)?;
        }
        if self.fail_timeout != 10 {
            write!(f, " fail_timeout={}s", self.fail_timeout)?;
        }
        if self.max_conns != 0 {
            write!(f, " max_conns={}", self.max_conns)?;
        }
        if self.backup {
            f.write_str(" backup")?;
        }
        if self.down {
            f.write_str(" down")?;
        }
        Ok(())
    }
}

/// A server and the state nginx's round robin keeps for it
/// (`ngx_http_upstream_rr_peer_t`).
#[derive(Debug, Clone)]
pub struct Peer {
    pub server: Server,
    /// Smooth weighted round robin's running weight.
    pub current_weight: i64,
    /// Drops by weight/max_fails on each failure, climbs back by 1 per pick.
    pub effective_weight: i64,
    /// Requests in flight to this peer.
    pub conns: u32,
    pub fails: u32,
    /// When the last failure happened, and when the peer was last (re)checked;
    /// seconds on the caller's clock.
    pub accessed: u64,
    pub checked: u64,
    /// Marked down by an active health check.
    pub unhealthy: bool,
    /// Peak-EWMA of response times in seconds, for `least_time`.
    pub rtt: Option<f64>,
    pub rtt_at: f64,
}

impl Peer {
    pub fn new(server: Server) -> Peer {
        Peer {
            effective_weight: i64::from(server.weight),
            server,
            current_weight: 0,
            conns: 0,
            fails: 0,
            accessed: 0,
            checked: 0,
            unhealthy: false,
            rtt: None,
            rtt_at: 0.0,
        }
    }

    pub fn weight(&self) -> i64 {
        i64::from(self.server.weight)
    }

    pub fn is_down(&self) -> bool {
        self.server.down || self.unhealthy
    }

    /// Failed `max_fails` times and `fail_timeout` has not passed since.
    pub fn failed_recently(&self, now: u64) -> bool {
        self.server.max_fails > 0
            && self.fails >= self.server.max_fails
            && now.saturating_sub(self.checked) <= self.server.fail_timeout
    }

    pub fn at_max_conns(&self) -> bool {
        self.server.max_conns > 0 && self.conns >= self.server.max_conns
    }

    /// The checks every nginx balancer makes before choosing a peer.
    pub fn usable(&self, now: u64) -> bool {
        !self.is_down() && !self.failed_recently(now) && !self.at_max_conns()
    }
}

/// Seconds over which `least_time`'s average forgets a slow answer.
const RTT_DECAY_SECS: f64 = 10.0;

impl Peer {
    /// Peak EWMA: a slower answer counts at once, faster ones pull the
    /// average down over `RTT_DECAY_SECS`.
    pub fn observe_rtt(&mut self, sample: f64, at: f64) {
        self.rtt = Some(match self.rtt {
            Some(old) if sample < old => {
                let w = (-(at - self.rtt_at).max(0.0) / RTT_DECAY_SECS).exp();
                old * w + sample * (1.0 - w)
            }
            _ => sample,
        });
        self.rtt_at = at;
    }

    /// The average as of `now`, decayed toward zero for the time since the
    /// last answer (Finagle's peak EWMA reads it so): a peer left alone
    /// because it was slow gets tried again, instead of never.
    pub fn rtt_cost(&self, now: f64) -> f64 {
        // A peer never measured costs nothing, so it gets tried.
        self.rtt.map_or(0.0, |rtt| {
            rtt * (-(now - self.rtt_at).max(0.0) / RTT_DECAY_SECS).exp()
        })
    }
}
