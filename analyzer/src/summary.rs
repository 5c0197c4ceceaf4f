//! The figures of a log, built line by line in flat memory (counts and HDR
//! histograms, never the samples) and merged across chunks and files.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use crate::clients::{ClientTally, Clients};
use crate::entry::Entry;
use crate::fairness::{self, Fairness};

/// Malformed lines kept as examples; the rest are only counted.
pub const MALFORMED_SHOWN: usize = 5;

/// Distinct clients followed for stickiness and ip_hash's expected shares;
/// past this the log is still counted, but clients are no longer told apart
/// (memory stays flat whatever the log holds).
pub const MAX_CLIENTS: usize = 100_000;

/// Seconds followed for the over-time view (11 days of a busy log); later
/// seconds are still counted, just not placed in time.
pub const MAX_SECONDS: usize = 1_000_000;

/// Nodes tallied one by one; the rest of a log with more (a log keyed by
/// something other than a backend, or a hostile one) is summed as
/// [`OTHER_NODES`], so memory stays bounded whatever the log holds.
pub const MAX_NODES: usize = 256;

/// Where the requests of nodes past [`MAX_NODES`] are counted.
pub const OTHER_NODES: &str = "(other nodes)";

/// Nodes told apart per client (a bit each): stickiness only needs to know
/// whether a client met one node or several.
const CLIENT_NODE_BITS: usize = 64;

/// Requests, outcomes and times of one node, or of the whole log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tally {
    pub requests: u64,
    /// By status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub classes: [u64; 5],
    /// 5xx answers, requests that got no status at all, and answers whose
    /// body was cut short.
    pub errors: u64,
    /// Answers whose body was cut short (see [`Entry::cut`]).
    pub cut: u64,
    /// `$request_time`, microseconds.
    #[serde(with = "crate::saved::histogram")]
    pub request_time: Histogram<u64>,
    /// The answering attempt's `$upstream_response_time`, microseconds.
    #[serde(with = "crate::saved::histogram")]
    pub upstream_time: Histogram<u64>,
    /// The node's place in [`Summary::node_order`]: its bit in clients'
    /// node sets.
    index: usize,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            requests: 0,
            classes: [0; 5],
            errors: 0,
            cut: 0,
            request_time: histogram(),
            upstream_time: histogram(),
            index: 0,
        }
    }
}

/// Auto-resizing, so one unusual 10-minute request is recorded, not lost;
/// 3 significant digits is 0.1% of any value.
fn histogram() -> Histogram<u64> {
    let mut h = Histogram::new(3).expect("3 significant digits are valid");
    h.auto(true);
    h
}

/// The `p`th percentile (0-100; 100 is the maximum) as the middle of its
/// histogram bucket rather than the top: within 0.05% of what was logged
/// either way, so `12 ms` reads back as 12.004, not 12.007.
pub fn percentile(h: &Histogram<u64>, p: f64) -> u64 {
    let v = if p >= 100.0 {
        h.max()
    } else {
        h.value_at_quantile(p / 100.0)
    };
    h.median_equivalent(v)
}

fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round() as u64
}

impl Tally {
    fn add(&mut self, e: &Entry<'_>) {
        self.requests += 1;
        if let Some(s @ 100..=599) = e.status {
            self.classes[usize::from(s / 100) - 1] += 1;
        }
        if e.status.is_none_or(|s| s >= 500) || e.cut {
            self.errors += 1;
        }
        self.cut += u64::from(e.cut);
        // Recording into an auto-resizing histogram cannot fail.
        if let Some(t) = e.request_time {
            let _ = self.request_time.record(micros(t));
        }
        if let Some(t) = e.upstream_time {
            let _ = self.upstream_time.record(micros(t));
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.errors += other.errors;
        self.cut += other.cut;
        // Auto-resizing histograms of the same precision always add.
        let _ = self.request_time.add(&other.request_time);
        let _ = self.upstream_time.add(&other.upstream_time);
    }

    /// The latency the report and thresholds mean: the whole request as the
    /// client saw it when the log has it, else the upstream's part.
    pub fn latency(&self) -> &Histogram<u64> {
        if self.request_time.is_empty() {
            &self.upstream_time
        } else {
            &self.request_time
        }
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// Everything a log says; written whole by `--summary-out` (see
/// `saved.rs`), so the summaries of a log's parts add up to the log's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub lines: u64,
    pub malformed: u64,
    /// The first malformed lines: their place in the whole input (for
    /// ordering), and where and why (`access.log:17: ...`).
    pub malformed_examples: Vec<(u64, String)>,
    pub all: Tally,
    pub nodes: BTreeMap<String, Tally>,
    /// Requests nginx answered itself, with no upstream (`-`).
    pub no_upstream: u64,
    /// Requests that took more than one upstream attempt.
    pub retried: u64,
    /// Attempts beyond the first, over all requests.
    pub extra_attempts: u64,
    pub first_at: Option<f64>,
    pub last_at: Option<f64>,
    /// Requests and the nodes that served them, per client address.
    pub clients: Clients,
    /// More than [`MAX_CLIENTS`] clients: `clients` holds the first ones.
    pub clients_overflow: bool,
    /// Requests per logged second: all of them first, then by node (in
    /// `node_order`), so a node that went away and came back shows.
    timeline: BTreeMap<i64, Vec<u64>>,
    /// Some time had a fraction of a second (`$msec`, ISO 8601 with
    /// milliseconds): the span is known finer than whole seconds.
    pub fractional_times: bool,
    /// Node names in the order first seen: bit `i` of a client's node set
    /// is `node_order[i]`. A set per client rather than names keeps 100,000
    /// clients within a few MB.
    node_order: Vec<String>,
}

/// How sticky clients were: seed 002's "memory split", where one user's
/// requests land on several nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stickiness {
    pub clients: usize,
    /// Clients served by more than one node.
    pub split: usize,
    pub most_nodes: usize,
}

impl Summary {
    pub fn add(&mut self, e: &Entry<'_>) {
        self.lines += 1;
        self.all.add(e);
        let index = match e.node {
            Some(n) => {
                let t = self.node_mut(n);
                t.add(e);
                Some(t.index)
            }
            None => {
                self.no_upstream += 1;
                None
            }
        };
        if e.attempts > 1 {
            self.retried += 1;
            self.extra_attempts += (e.attempts - 1) as u64;
        }
        if let Some(at) = e.at {
            self.count_at(at.floor() as i64, index, 1);
            self.fractional_times |= at.fract() != 0.0;
            self.first_at = Some(self.first_at.map_or(at, |f| f.min(at)));
            self.last_at = Some(self.last_at.map_or(at, |l| l.max(at)));
        }
        if let Some(c) = e.client {
            self.client(c, |t| t.served_by(index, 1, CLIENT_NODE_BITS));
        }
    }

    /// Counts `n` requests in `second`, of `node` when it is known.
    fn count_at(&mut self, second: i64, node: Option<usize>, n: u64) {
        // Logs are written in time order: the line's second is nearly
        // always the latest one, found without a search.
        let latest = self
            .timeline
            .last_key_value()
            .is_some_and(|(k, _)| *k == second);
        if !latest && !self.timeline.contains_key(&second) && self.timeline.len() >= MAX_SECONDS {
            return;
        }
        let counts = match self.timeline.last_entry() {
            Some(e) if latest => e.into_mut(),
            _ => self.timeline.entry(second).or_default(),
        };
        let slot = node.map_or(0, |i| i + 1);
        if counts.len() <= slot {
            counts.resize(slot + 1, 0);
        }
        if slot > 0 {
            counts[slot] += n;
        }
        counts[0] += n;
    }

    /// Requests per second of each node over `buckets` equal spans of the
    /// log's time (at least a second each): `(start, seconds, rates)` with
    /// rates in [`Summary::nodes`] order.
    pub fn over_time(&self, buckets: usize) -> Vec<(i64, i64, Vec<f64>)> {
        let (Some(&first), Some(&last)) =
            (self.timeline.keys().next(), self.timeline.keys().last())
        else {
            return Vec::new();
        };
        let span = last - first + 1;
        let width = (span + buckets as i64 - 1) / (buckets.max(1) as i64);
        let index: Vec<usize> = self.nodes.values().map(|t| t.index).collect();
        let mut out: Vec<(i64, i64, Vec<f64>)> = (0..)
            .map(|b| first + b * width)
            .take_while(|start| *start <= last)
            .map(|start| (start, width.min(last + 1 - start), vec![0.0; index.len()]))
            .collect();
        for (second, counts) in &self.timeline {
            let bucket = &mut out[((second - first) / width) as usize];
            for (column, i) in index.iter().enumerate() {
                bucket.2[column] += counts.get(*i + 1).copied().unwrap_or(0) as f64;
            }
        }
        for (_, seconds, rates) in &mut out {
            rates.iter_mut().for_each(|r| *r /= *seconds as f64);
        }
        out
    }

    fn node_mut(&mut self, name: &str) -> &mut Tally {
        // A known node (nearly every line) is found and returned first: the
        // cap and the insertion below are for a node seen the first time.
        if self.nodes.contains_key(name) {
            return self.nodes.get_mut(name).expect("just found");
        }
        let full = self.nodes.len() >= MAX_NODES;
        let name = if full { OTHER_NODES } else { name };
        if !self.nodes.contains_key(name) {
            let t = Tally {
                index: self.node_order.len(),
                ..Tally::default()
            };
            self.node_order.push(name.to_string());
            self.nodes.insert(name.to_string(), t);
        }
        self.nodes.get_mut(name).expect("inserted above")
    }

    /// Where a merged node went: itself, or [`OTHER_NODES`] past the cap.
    fn node_index(&self, name: &str) -> usize {
        self.nodes
            .get(name)
            .or_else(|| self.nodes.get(OTHER_NODES))
            .map_or(0, |t| t.index)
    }

    /// Whether nodes past [`MAX_NODES`] were summed as [`OTHER_NODES`].
    pub fn nodes_overflow(&self) -> bool {
        self.nodes.contains_key(OTHER_NODES)
    }

    /// The first logged second, at or after `after`, in which `node`
    /// served a request: when a node came back into rotation.
    pub fn first_served_after(&self, node: &str, after: i64) -> Option<i64> {
        let i = self.nodes.get(node)?.index;
        self.timeline
            .range(after..)
            .find(|(_, counts)| counts.get(i + 1).is_some_and(|n| *n > 0))
            .map(|(second, _)| *second)
    }

    /// The nodes that served `client`, in the order they were first seen.
    pub fn client_nodes(&self, client: &str) -> Vec<&str> {
        let Some(t) = self.clients.get(client) else {
            return Vec::new();
        };
        let served = |(i, _): &(usize, &String)| t.nodes & (1 << i) != 0;
        let named = self.node_order.iter().take(CLIENT_NODE_BITS).enumerate();
        named.filter(served).map(|(_, n)| n.as_str()).collect()
    }

    fn client(&mut self, name: &str, update: impl FnOnce(&mut ClientTally)) {
        let room = self.clients.len() < MAX_CLIENTS;
        match self.clients.tally(name, room) {
            Some(t) => update(t),
            None => self.clients_overflow = true,
        }
    }

    pub fn stickiness(&self) -> Stickiness {
        let served = || self.clients.values().filter(|c| c.nodes != 0);
        Stickiness {
            clients: served().count(),
            split: served().filter(|c| c.node_count() > 1).count(),
            most_nodes: served().map(ClientTally::node_count).max().unwrap_or(0),
        }
    }

    /// Counts a line that did not match the format. `order` is its place
    /// in the whole input (lines come in order within a summary); `why`
    /// says where and why, and is only asked for while examples are kept.
    pub fn add_malformed(&mut self, order: u64, why: impl FnOnce() -> String) {
        self.lines += 1;
        self.malformed += 1;
        if self.malformed_examples.len() < MALFORMED_SHOWN {
            self.malformed_examples.push((order, why()));
        }
    }

    /// Folds in the summary of another part of the log (a block, a file),
    /// keeping the earliest malformed examples of both.
    pub fn merge(&mut self, other: &Summary) {
        self.lines += other.lines;
        self.malformed += other.malformed;
        self.malformed_examples
            .extend(other.malformed_examples.iter().cloned());
        self.malformed_examples.sort_by_key(|(order, _)| *order);
        self.malformed_examples.truncate(MALFORMED_SHOWN);
        self.all.merge(&other.all);
        for (name, t) in &other.nodes {
            self.node_mut(name).merge(t);
        }
        self.no_upstream += other.no_upstream;
        self.retried += other.retried;
        self.extra_attempts += other.extra_attempts;
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.first_at = pick(self.first_at, other.first_at, f64::min);
        self.last_at = pick(self.last_at, other.last_at, f64::max);
        self.clients_overflow |= other.clients_overflow;
        self.fractional_times |= other.fractional_times;
        for (second, counts) in &other.timeline {
            let mut without_node = counts.first().copied().unwrap_or(0);
            for (bit, n) in counts.iter().skip(1).enumerate().filter(|(_, n)| **n > 0) {
                let node = self.node_index(&other.node_order[bit]);
                self.count_at(*second, Some(node), *n);
                without_node -= n;
            }
            if without_node > 0 {
                self.count_at(*second, None, without_node);
            }
        }
        // Their node bits, renumbered to ours (nodes are merged above).
        let ours: Vec<usize> = other
            .node_order
            .iter()
            .map(|n| self.node_index(n))
            .collect();
        let full = self
            .clients
            .merge(&other.clients, MAX_CLIENTS, |t, theirs| {
                t.served_by(None, theirs.requests, CLIENT_NODE_BITS);
                for (bit, index) in ours.iter().enumerate().take(CLIENT_NODE_BITS) {
                    if theirs.nodes & (1 << bit) != 0 {
                        t.served_by(Some(*index), 0, CLIENT_NODE_BITS);
                    }
                }
            });
        self.clients_overflow |= full;
    }

    /// The chi-square test of requests per node against `expected` shares,
    /// or equal shares among the nodes seen.
    pub fn fairness(&self, expected: Option<&[(String, f64)]>) -> Option<Fairness> {
        if self.nodes.is_empty() && expected.is_none() {
            return None;
        }
        let observed: Vec<(String, u64)> = self
            .nodes
            .iter()
            .map(|(n, t)| (n.clone(), t.requests))
            .collect();
        Some(fairness::test_or_equal(&observed, expected))
    }

    /// Requests per second over the time the log covers, and how that
    /// time was known.
    pub fn rate(&self) -> Option<Rate> {
        let (first, last) = (self.first_at?, self.last_at?);
        if self.fractional_times {
            let span = last - first;
            return (span > 0.0).then(|| Rate {
                per_second: self.all.requests.saturating_sub(1) as f64 / span,
                how: format!("over the log's {span:.3} s span (sub-second times)"),
                at_least: false,
            });
        }
        // Whole-second times ($time_local): the first and last seconds are
        // partly covered, so the seconds wholly inside the span give the
        // rate. With fewer than three seconds there are none; the seconds
        // logged are then an upper bound on the time, the rate a lower one.
        let (first, last) = (first as i64, last as i64);
        if last - first >= 2 {
            let inside: u64 = self
                .timeline
                .range(first + 1..last)
                .map(|(_, counts)| counts.first().copied().unwrap_or(0))
                .sum();
            let seconds = last - first - 1;
            return Some(Rate {
                per_second: inside as f64 / seconds as f64,
                how: format!(
                    "over the {seconds} whole seconds inside the log's span (times are to the second)"
                ),
                at_least: false,
            });
        }
        let seconds = last - first + 1;
        Some(Rate {
            per_second: self.all.requests as f64 / seconds as f64,
            how: format!(
                "at least: all within {seconds} logged second{} (times are to the second; log $msec for the exact rate)",
                if seconds == 1 { "" } else { "s" }
            ),
            at_least: true,
        })
    }
}

/// A log's request rate, and how its time span was known.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    /// The words the report puts after the figure.
    pub how: String,
    /// The span is known only to the second and too short for a steady
    /// figure: the true rate is at least this.
    pub at_least: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(node: &'static str, status: u16, ms: f64) -> Entry<'static> {
        Entry {
            cut: false,
            node: (node != "-").then_some(node),
            attempts: usize::from(node != "-"),
            status: Some(status).filter(|s| *s > 0),
            request_time: Some(ms / 1e3),
            upstream_time: None,
            client: Some("10.0.0.1"),
            at: Some(1000.0 + ms),
        }
    }

    pub(crate) fn log(lines: &[(&'static str, u16, f64)]) -> Summary {
        let mut s = Summary::default();
        for &(n, status, ms) in lines {
            s.add(&entry(n, status, ms));
        }
        s
    }

    #[test]
    fn nodes_past_the_cap_are_summed_as_other() {
        let names: Vec<String> = (0..MAX_NODES + 44)
            .map(|i| format!("10.0.{}.{}:80", i / 256, i % 256))
            .collect();
        let mut halves = [Summary::default(), Summary::default()];
        let mut whole = Summary::default();
        for (i, n) in names.iter().enumerate() {
            let e = Entry {
                node: Some(n.as_str()),
                ..entry("a", 200, 1.0)
            };
            whole.add(&e);
            halves[i % 2].add(&e);
        }
        assert_eq!(whole.nodes.len(), MAX_NODES + 1);
        assert_eq!(whole.nodes[OTHER_NODES].requests, 44);
        assert!(whole.nodes_overflow());
        assert_eq!(whole.all.requests, (MAX_NODES + 44) as u64);
        let [mut a, b] = halves;
        assert!(!a.nodes_overflow(), "each half is within the cap");
        a.merge(&b);
        assert_eq!(a.nodes.len(), MAX_NODES + 1);
        assert_eq!(
            a.nodes.values().map(|t| t.requests).sum::<u64>(),
            whole.all.requests
        );
    }

    #[test]
    fn counts_nodes_classes_and_errors() {
        let s = log(&[
            ("a", 200, 10.0),
            ("a", 503, 20.0),
            ("b", 404, 30.0),
            ("-", 0, 40.0),
        ]);
        assert_eq!(s.all.requests, 4);
        assert_eq!(s.all.classes, [0, 1, 0, 1, 1]);
        assert_eq!(s.all.errors, 2, "the 503 and the request with no status");
        assert_eq!(s.nodes["a"].requests, 2);
        assert_eq!(s.nodes["a"].errors, 1);
        assert_eq!(
            s.nodes["b"].errors, 0,
            "a 404 is the client's error, not the node's"
        );
        assert_eq!(s.no_upstream, 1);
        assert_eq!((s.first_at, s.last_at), (Some(1010.0), Some(1040.0)));
    }

    #[test]
    fn merged_halves_equal_the_whole() {
        let lines = [
            ("a", 200, 5.0),
            ("b", 200, 7.0),
            ("a", 502, 9.0),
            ("c", 200, 11.0),
        ];
        let whole = log(&lines);
        let mut first = log(&lines[..2]);
        first.add_malformed(3, || "first".into());
        let mut second = log(&lines[2..]);
        second.add_malformed(9, || "second".into());
        first.merge(&second);
        assert_eq!(first.all.requests, whole.all.requests);
        assert_eq!(first.lines, whole.lines + 2);
        assert_eq!(first.nodes["a"].errors, 1);
        assert_eq!(first.all.request_time, whole.all.request_time);
        assert_eq!(
            first.malformed_examples,
            [(3, "first".into()), (9, "second".into())]
        );
        // Merged the other way round, the earliest still come first.
        let mut earlier = Summary::default();
        earlier.add_malformed(1, || "earlier".into());
        second.merge(&earlier);
        assert_eq!(second.malformed_examples[0], (1, "earlier".into()));
        assert_eq!(
            (first.first_at, first.last_at),
            (whole.first_at, whole.last_at)
        );
    }

    #[test]
    fn stickiness_counts_clients_served_by_several_nodes() {
        let mut s = Summary::default();
        let mut first = Summary::default();
        for (client, node) in [
            ("c1", "a"),
            ("c1", "a"),
            ("c2", "a"),
            ("c2", "b"),
            ("c3", "-"),
        ] {
            let e = Entry {
                client: Some(client),
                ..entry(node, 200, 1.0)
            };
            s.add(&e);
            if client == "c1" {
                first.add(&e);
            }
        }
        let sticky = s.stickiness();
        assert_eq!(
            (sticky.clients, sticky.split, sticky.most_nodes),
            (2, 1, 2),
            "c3 had no node"
        );
        assert_eq!(s.client_nodes("c2"), ["a", "b"]);
        first.merge(&s);
        assert_eq!(first.clients["c1"].requests, 4);
        assert_eq!(first.client_nodes("c1"), ["a"]);
        assert_eq!(
            first.client_nodes("c2"),
            ["a", "b"],
            "renumbered in the merge"
        );
    }

    #[test]
    fn a_node_that_went_away_shows_over_time() {
        // a serves throughout 0..100 s; b is gone from 40 s to 70 s.
        let mut s = Summary::default();
        let mut other = Summary::default();
        for second in 0..100 {
            // Two halves merged later-first, numbering the nodes the other
            // way round (b first in the early half, a first in the late one).
            let (part, order) = if second >= 50 {
                (&mut s, ["a", "b"])
            } else {
                (&mut other, ["b", "a"])
            };
            for node in order {
                if node == "b" && (40..70).contains(&second) {
                    continue;
                }
                part.add(&Entry {
                    at: Some(f64::from(second) + 0.5),
                    ..entry(node, 200, 1.0)
                });
            }
        }
        s.merge(&other);
        let t = s.over_time(10);
        assert_eq!(t.len(), 10);
        assert_eq!(t[0], (0, 10, vec![1.0, 1.0]));
        assert_eq!(t[4].2, [1.0, 0.0], "b gone from 40 s");
        assert_eq!(t[6].2, [1.0, 0.0]);
        assert_eq!(t[7].2, [1.0, 1.0], "b back at 70 s");
    }

    #[test]
    fn only_the_first_malformed_lines_are_kept() {
        let mut s = Summary::default();
        for i in 1..=20 {
            s.add_malformed(21 - i, || format!("line {i}"));
        }
        assert_eq!(s.malformed, 20);
        assert_eq!(s.malformed_examples.len(), MALFORMED_SHOWN);
        assert_eq!(
            s.malformed_examples[0],
            (20, "line 1".into()),
            "the first met, within one summary"
        );
    }
}
