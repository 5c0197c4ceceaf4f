//! nginx's realip module, as values: `set_real_ip_from`, `real_ip_header`
//! and `real_ip_recursive`. A connection from a trusted address takes its
//! client address from the header, as `$remote_addr` (and so ip_hash and
//! the log) see it. Pure.

use std::net::IpAddr;

/// `set_real_ip_from` lines and the header they trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealIp {
    pub from: Vec<Cidr>,
    /// `real_ip_header`, lowercased (nginx's default: `x-real-ip`).
    pub header: String,
    /// `real_ip_recursive on`: the rightmost address in X-Forwarded-For
    /// that is not trusted, instead of the rightmost one.
    pub recursive: bool,
}

/// An address with a prefix length: `127.0.0.0/8`, `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { addr, bits })
    }

    /// Every address (what `trust_forwarded_for` means).
    pub fn any() -> [Cidr; 2] {
        [
            Cidr {
                addr: IpAddr::from([0, 0, 0, 0]),
                bits: 0,
            },
            Cidr {
                addr: IpAddr::from([0u16; 8]),
                bits: 0,
            },
        ]
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl RealIp {
    /// The client's address for a connection from `peer` whose request has
    /// `values` in the trusted header (each line's value, in order).
    pub fn client(&self, peer: IpAddr, values: &[&str]) -> IpAddr {
        let trusted = |ip: IpAddr| self.from.iter().any(|c| c.contains(ip));
        if !trusted(peer) || values.is_empty() {
            return peer;
        }
        if self.header != "x-forwarded-for" {
            // One address, the header's value (the first line's).
            return values[0].trim().parse().unwrap_or(peer);
        }
        // Right to left over every line's addresses, as nginx's
        // ngx_http_get_forwarded_addr walks them.
        let addrs: Vec<&str> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut found = peer;
        for a in addrs.iter().rev() {
            let Ok(ip) = a.parse::<IpAddr>() else {
                return found;
            };
            found = ip;
            if !self.recursive || !trusted(ip) {
                break;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_rightmost_address_unless_recursive_skips_trusted_ones() {
        let mut r = RealIp {
            from: vec![
                Cidr::parse("127.0.0.0/8").unwrap(),
                Cidr::parse("10.0.0.0/8").unwrap(),
            ],
            header: "x-forwarded-for".into(),
            recursive: false,
        };
        let peer = ip("127.0.0.1");
        assert_eq!(r.client(peer, &["1.2.3.4, 10.0.0.5"]), ip("10.0.0.5"));
        assert_eq!(r.client(peer, &["1.2.3.4", "10.0.0.5"]), ip("10.0.0.5"));
        r.recursive = true;
        assert_eq!(r.client(peer, &["1.2.3.4, 10.0.0.5"]), ip("1.2.3.4"));
        assert_eq!(
            r.client(ip("8.8.8.8"), &["1.2.3.4"]),
            ip("8.8.8.8"),
            "untrusted peer"
        );
        assert_eq!(r.client(peer, &[]), peer);
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(!Cidr::parse("127.0.0.0/8")
            .unwrap()
            .contains(ip("128.0.0.1")));
        assert!(Cidr::any()[0].contains(ip("9.9.9.9")));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
    }
}
