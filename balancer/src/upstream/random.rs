//! `random` and `random two`: draws by weight.

use rand::Rng;

use super::{Attempt, PeerRef, Upstream};

impl Upstream {
    /// `ngx_http_upstream_get_random_peer` and `get_random2_peer`: draw by
    /// weight; with `two`, draw a second, different peer and keep the one with
    /// fewer connections per weight, the second on a tie.
    pub(super) fn random(&mut self, a: &mut Attempt, now: u64, two: bool) -> Option<PeerRef> {
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
    pub(super) fn draw(&mut self) -> usize {
        let x = self.rng.random_range(0..self.primary.total_weight);
        self.ranges.partition_point(|&before| before <= x) - 1
    }
}
