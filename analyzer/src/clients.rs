//! Clients by address, as stickiness and ip_hash's expected shares need
//! them: an IPv4 address (nearly every log's) as its 4 bytes in a map with
//! a cheap hash, anything else by its text. A busy log has tens of
//! thousands of clients and one lookup per line, so this is on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// Requests and the nodes that served them, of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTally {
    pub requests: u64,
    /// The nodes that served this client, a bit each (see the summary's
    /// node order).
    pub(crate) nodes: u64,
}

impl ClientTally {
    pub(crate) fn served_by(&mut self, index: Option<usize>, requests: u64, bits: usize) {
        self.requests += requests;
        if let Some(i) = index.filter(|i| *i < bits) {
            self.nodes |= 1 << i;
        }
    }

    /// How many distinct nodes served this client.
    pub fn node_count(&self) -> usize {
        self.nodes.count_ones() as usize
    }
}

/// A folded multiply: every bit of the key reaches both ends of the hash,
/// which the table's index (low bits) and tag (high bits) both use.
#[derive(Default)]
pub struct Fold(u64);

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0) * 0x9E37_79B9_7F4A_7C15_u128;
        (p as u64) ^ ((p >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Clients {
    v4: HashMap<u32, ClientTally, BuildHasherDefault<Fold>>,
    other: HashMap<String, ClientTally>,
}

/// `a.b.c.d` as nginx writes it (no leading zeros, so the text comes back
/// the same), or `None`.
fn ipv4(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let (mut addr, mut octet, mut digits, mut dots) = (0u32, 0u32, 0, 0);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if digits == 1 && octet == 0 {
                    return None;
                }
                octet = octet * 10 + u32::from(c - b'0');
                digits += 1;
                if octet > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && dots < 3 => {
                addr = addr << 8 | octet;
                (octet, digits, dots) = (0, 0, dots + 1);
            }
            _ => return None,
        }
    }
    (dots == 3 && digits > 0).then_some(addr << 8 | octet)
}

fn v4_text(addr: u32) -> String {
    std::net::Ipv4Addr::from(addr).to_string()
}

impl Clients {
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, name: &str) -> Option<&ClientTally> {
        match ipv4(name) {
            Some(a) => self.v4.get(&a),
            None => self.other.get(name),
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The client's tally, added when there is `room` for a new one.
    pub(crate) fn tally(&mut self, name: &str, room: bool) -> Option<&mut ClientTally> {
        match ipv4(name) {
            Some(a) if room => Some(self.v4.entry(a).or_default()),
            Some(a) => self.v4.get_mut(&a),
            None if room => {
                if !self.other.contains_key(name) {
                    self.other.insert(name.to_string(), ClientTally::default());
                }
                self.other.get_mut(name)
            }
            None => self.other.get_mut(name),
        }
    }

    /// Folds `other`'s clients in with `each`, up to `max` clients in all;
    /// `true` when some did not fit.
    pub(crate) fn merge(
        &mut self,
        other: &Clients,
        max: usize,
        mut each: impl FnMut(&mut ClientTally, &ClientTally),
    ) -> bool {
        let mut full = false;
        for (a, theirs) in &other.v4 {
            let room = self.len() < max;
            match self.v4.get_mut(a) {
                Some(t) => each(t, theirs),
                None if room => each(self.v4.entry(*a).or_default(), theirs),
                None => full = true,
            }
        }
        for (name, theirs) in &other.other {
            let room = self.len() < max;
            match self.tally(name, room) {
                Some(t) => each(t, theirs),
                None => full = true,
            }
        }
        full
    }

    /// Every client with its address as text.
    pub fn iter(&self) -> impl Iterator<Item = (String, &ClientTally)> {
        let v4 = self.v4.iter().map(|(a, t)| (v4_text(*a), t));
        v4.chain(self.other.iter().map(|(n, t)| (n.clone(), t)))
    }

    pub fn values(&self) -> impl Iterator<Item = &ClientTally> {
        self.v4.values().chain(self.other.values())
    }
}

impl std::ops::Index<&str> for Clients {
    type Output = ClientTally;

    fn index(&self, name: &str) -> &ClientTally {
        self.get(name).expect("a client in the log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_as_nginx_writes_it_and_nothing_else() {
        assert_eq!(ipv4("10.0.103.238"), Some(0x0A00_67EE));
        assert_eq!(ipv4("0.0.0.0"), Some(0));
        assert_eq!(ipv4("255.255.255.255"), Some(u32::MAX));
        for not in [
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1..2.3",
            "::1",
            "c1",
            "1.2.3.",
            ".1.2.3",
        ] {
            assert_eq!(ipv4(not), None, "{not}");
        }
        for text in ["10.0.103.238", "127.0.0.1", "0.0.0.0"] {
            assert_eq!(v4_text(ipv4(text).unwrap()), text);
        }
    }

    #[test]
    fn both_kinds_of_client_are_found_by_their_text() {
        let mut c = Clients::default();
        c.tally("10.0.0.1", true).unwrap().requests += 2;
        c.tally("::1", true).unwrap().requests += 1;
        assert!(c.tally("10.0.0.2", false).is_none(), "no room: not added");
        assert_eq!(
            (c.len(), c["10.0.0.1"].requests, c["::1"].requests),
            (2, 2, 1)
        );
        let mut names: Vec<String> = c.iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(names, ["10.0.0.1", "::1"]);
    }
}
