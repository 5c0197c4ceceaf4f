//! Round robin (`ngx_http_upstream_round_robin.c`), least_conn and nginx
//! Plus's least_time: the smooth weighted pick, and the least loaded.

use super::{Attempt, PeerRef, Tier, Upstream};
use crate::peer::Peer;

impl Upstream {
    /// `ngx_http_upstream_get_round_robin_peer`.
    pub(super) fn round_robin(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        loop {
            let backup = a.in_backup;
            let found = if self.single && !backup {
                let p = &self.primary.peers[0];
                (!p.is_down() && !p.at_max_conns()).then_some(0)
            } else {
                smooth_weighted(self.tier_mut(backup), a, now, 0, |_, _| true)
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
    pub(super) fn least_conn(
        &mut self,
        a: &mut Attempt,
        now: u64,
        by_time: Option<f64>,
    ) -> Option<PeerRef> {
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
                // The equally loaded run smooth weighted round robin.
                let anchor = tier.peers[first].clone();
                smooth_weighted(tier, a, now, first, |_, p| same(p, &anchor)).unwrap_or(first)
            } else {
                first
            };
            return Some(PeerRef { backup, index });
        }
    }
}

/// nginx's `ngx_http_upstream_get_peer`: from `from` on, every usable,
/// untried peer that `eligible` admits adds its effective weight to its
/// current weight; the strictly greatest wins (the earliest on a tie) and
/// gives back the total. least_conn's tie-break is the same walk over the
/// equally loaded peers, from the first of them.
pub(super) fn smooth_weighted(
    tier: &mut Tier,
    a: &Attempt,
    now: u64,
    from: usize,
    eligible: impl Fn(usize, &Peer) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total = 0;
    for i in from..tier.peers.len() {
        if a.is_tried(i) || !tier.peers[i].usable(now) || !eligible(i, &tier.peers[i]) {
            continue;
        }
        let p = &mut tier.peers[i];
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
