//! The hashes of nginx's `hash` module: Cache::Memcached's for `hash KEY` and
//! Cache::Memcached::Fast's ring for `hash KEY consistent`.

use crate::peer::Peer;
use crate::upstream::Point;

/// Points on the ring per unit of weight.
pub const POINTS_PER_WEIGHT: u32 = 160;

/// `(crc32([REHASH] KEY) >> 16) & 0x7fff`, the rehash count (as decimal text)
/// prefixed from the second pick on.
pub fn memcached_hash(rehash: u32, key: &str) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if rehash > 0 {
        h.update(rehash.to_string().as_bytes());
    }
    h.update(key.as_bytes());
    (h.finalize() >> 16) & 0x7fff
}

/// Splits a server address as nginx does for the ring: `unix:` paths have no
/// port; otherwise the digits after the last colon are the port, if they are
/// all digits.
fn host_and_port(server: &str) -> (&str, &str) {
    if server.len() >= 5 && server[..5].eq_ignore_ascii_case("unix:") {
        return (&server[5..], "");
    }
    let digits = server.bytes().rev().take_while(u8::is_ascii_digit).count();
    let colon = server.len() - digits;
    if colon > 0 && server.as_bytes()[colon - 1] == b':' {
        (&server[..colon - 1], &server[colon..])
    } else {
        (server, "")
    }
}

/// The ring: 160 points per unit of weight for each primary peer, each point
/// crc32(HOST \0 PORT PREV) with PREV the previous point of that peer as four
/// little-endian bytes (zero for the first); sorted, equal hashes kept once
/// (the first peer in config order keeps a shared point).
pub fn ring(peers: &[Peer]) -> Vec<Point> {
    let mut points = Vec::new();
    for (index, peer) in peers.iter().enumerate() {
        let written = peer.server.host.as_deref().unwrap_or(&peer.server.addr);
        let (host, port) = host_and_port(written);
        let mut base = crc32fast::Hasher::new();
        base.update(host.as_bytes());
        base.update(&[0]);
        base.update(port.as_bytes());
        let mut prev = 0u32;
        for _ in 0..peer.server.weight * POINTS_PER_WEIGHT {
            let mut h = base.clone();
            h.update(&prev.to_le_bytes());
            prev = h.finalize();
            points.push(Point {
                hash: prev,
                peer: index,
            });
        }
    }
    // glibc's qsort, which nginx calls, sorts this stably.
    points.sort_by_key(|p| p.hash);
    points.dedup_by_key(|p| p.hash);
    points
}

/// The first point whose hash is at least `hash`; `points.len()` when there
/// is none, which wraps to the first point.
pub fn find_point(points: &[Point], hash: u32) -> usize {
    points.partition_point(|p| p.hash < hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::Server;

    #[test]
    fn crc32_is_the_ieee_one_nginx_uses() {
        // crc32("123456789") = 0xCBF43926, the standard check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(memcached_hash(0, "123456789"), (0xCBF4_3926 >> 16) & 0x7fff);
    }

    #[test]
    fn server_addresses_split_like_nginx() {
        assert_eq!(host_and_port("127.0.0.1:8001"), ("127.0.0.1", "8001"));
        assert_eq!(
            host_and_port("backend.example.com"),
            ("backend.example.com", "")
        );
        assert_eq!(host_and_port("unix:/tmp/s.sock"), ("/tmp/s.sock", ""));
        assert_eq!(host_and_port("[::1]:80"), ("[::1]", "80"));
        assert_eq!(host_and_port("host:8x"), ("host:8x", ""));
    }

    #[test]
    fn ring_has_160_points_per_weight_sorted() {
        let peers = vec![
            Peer::new(Server::new("127.0.0.1:8001")),
            Peer::new(Server::new("127.0.0.1:8002").weight(2)),
        ];
        let points = ring(&peers);
        assert_eq!(points.len(), 480);
        assert!(points.windows(2).all(|w| w[0].hash < w[1].hash));
        assert_eq!(points.iter().filter(|p| p.peer == 1).count(), 320);
        assert_eq!(find_point(&points, 0), 0);
        assert_eq!(
            find_point(&points, u32::MAX),
            if points[479].hash == u32::MAX {
                479
            } else {
                480
            }
        );
        let k = 100;
        assert_eq!(find_point(&points, points[k].hash), k);
        assert_eq!(find_point(&points, points[k].hash + 1), k + 1);
    }
}
