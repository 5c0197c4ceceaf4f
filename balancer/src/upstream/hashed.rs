//! The hash methods: ip_hash, `hash KEY` and `hash KEY consistent`, and
//! the walk they share (after 20 misses nginx hands the request to round
//! robin).

use std::net::IpAddr;

use super::round_robin::smooth_weighted;
use super::{Attempt, PeerRef, Upstream, HASH_TRIES};

impl Upstream {
    /// The hash methods' common walk: `candidate` proposes the next peer
    /// (`None` when its proposal cannot take the request); after 20 misses
    /// nginx gives the request to round robin.
    pub(super) fn walk_or_round_robin(
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
    pub(super) fn open(&self, a: &Attempt, index: usize, now: u64) -> bool {
        !a.is_tried(index) && self.primary.peers[index].usable(now)
    }

    /// `ngx_http_upstream_get_ip_hash_peer`: the first three octets of an IPv4
    /// client (all sixteen bytes of IPv6) hashed as h = (h * 113 + byte) % 6271
    /// from 89, then h % total_weight walked along the weights (down peers
    /// keep their share of the walk); an unusable pick rehashes, continuing
    /// from the last hash.
    pub(super) fn ip_hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
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
    pub(super) fn hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
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
    pub(super) fn consistent_hash(&mut self, a: &mut Attempt, now: u64) -> Option<PeerRef> {
        if a.key.is_empty() {
            return self.round_robin(a, now);
        }
        self.walk_or_round_robin(a, now, |up, a| {
            let point = up.points[a.hash as usize % up.points.len()];
            // nginx runs smooth weighted round robin over the peers written with
            // the point's address; duplicates are refused, so that is one peer.
            let found = smooth_weighted(&mut up.primary, a, now, 0, |i, _| i == point.peer);
            if found.is_none() {
                a.hash = a.hash.wrapping_add(1);
            }
            found
        })
    }
}

/// The bytes ip_hash hashes: three octets of IPv4, sixteen of IPv6; nginx uses
/// three zero bytes for clients with no IP (unix sockets).
pub(super) fn ip_hash_bytes(addr: Option<IpAddr>) -> ([u8; 16], usize) {
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
