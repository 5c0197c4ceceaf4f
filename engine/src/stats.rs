//! What a run measured. Each worker keeps its own and they are merged at the
//! end (histograms with `Histogram::add`): no sample list, so memory stays
//! flat however many requests run.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::streams::StreamStats;

/// Longest latency a histogram holds: an hour, in microseconds (longer
/// values are clamped to it).
const LONGEST: u64 = 3_600_000_000;

/// Every latency histogram: microseconds, 3 significant digits (0.1% of
/// any value), so per-node and per-phase figures are as fine as the
/// overall ones and a part never exceeds its whole. It starts small and
/// grows to the largest value recorded; workers share a few sets (see
/// `engine::run`), so the size is no matter.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are valid")
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, LONGEST)
}

/// One node's share of the answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStats {
    pub requests: u64,
    pub errors: u64,
    #[serde(with = "crate::saved::histogram")]
    pub total: Histogram<u64>,
}

/// Written whole, histograms included, in a run's `--json` (see
/// `saved.rs`), so the runs of several processes add up exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Requests that got a whole answer (any status), as ab's "Complete requests".
    pub complete: u64,
    pub failed_connect: u64,
    pub failed_receive: u64,
    pub failed_length: u64,
    pub failed_exceptions: u64,
    pub non_2xx: u64,
    pub keepalive_responses: u64,
    /// Response bytes, head and body; body bytes alone ("HTML transferred").
    pub bytes_in: u64,
    pub body_bytes_in: u64,
    pub bytes_out: u64,
    #[serde(with = "crate::saved::histogram")]
    pub total: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub connect: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub waiting: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub processing: Histogram<u64>,
    /// Open loop: latency from the time each request was due, which counts
    /// the wait a late schedule imposed (no coordinated omission).
    #[serde(with = "crate::saved::histogram")]
    pub corrected: Histogram<u64>,
    /// Open loop: how late requests started against their schedule.
    #[serde(with = "crate::saved::histogram")]
    pub lag: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// By kind; the kinds are the worker's words, borrowed, or read back.
    pub errors: BTreeMap<Cow<'static, str>, u64>,
    pub nodes: BTreeMap<String, NodeStats>,
    /// The first answer's body length (the run's, set once the workers'
    /// figures are merged), and its Server header.
    pub document_length: Option<u64>,
    /// What went wrong first, in words: for the line that says why a run
    /// got no answer at all.
    pub first_error: Option<String>,
    pub server: Option<String>,
    /// Event-stream answers, when there were any.
    pub streams: StreamStats,
    /// The most requests that were in flight at once.
    pub peak_in_flight: u64,
    /// Connections opened, and of their TLS handshakes those that resumed
    /// an earlier session (files saved before TLS have neither).
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub tls_resumed: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            complete: 0,
            failed_connect: 0,
            failed_receive: 0,
            failed_length: 0,
            failed_exceptions: 0,
            non_2xx: 0,
            keepalive_responses: 0,
            bytes_in: 0,
            body_bytes_in: 0,
            bytes_out: 0,
            total: histogram(),
            connect: histogram(),
            waiting: histogram(),
            processing: histogram(),
            corrected: histogram(),
            lag: histogram(),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            nodes: BTreeMap::new(),
            document_length: None,
            first_error: None,
            server: None,
            streams: StreamStats::default(),
            peak_in_flight: 0,
            connections: 0,
            tls_resumed: 0,
        }
    }
}

/// One answered request, as the worker saw it.
pub struct Answer {
    pub status: u16,
    /// Where in the connection's buffer the node header's value and the
    /// Server header are (see `http1::Head`).
    pub node: Option<(usize, usize)>,
    pub server: Option<(usize, usize)>,
    pub head_bytes: u64,
    pub body_bytes: u64,
    pub connect: Duration,
    pub waiting: Duration,
    pub total: Duration,
    /// Open loop: from when it was due, and how late it started.
    pub since_due: Option<Duration>,
    pub lag: Option<Duration>,
    pub keepalive: bool,
}

impl Stats {
    /// ab's "Failed requests": no answer, or (without -l) an answer whose
    /// length differs from the run's first.
    pub fn failed(&self) -> u64 {
        self.failed_transport() + self.failed_length
    }

    /// Requests that got no whole answer: connect, receive, exceptions.
    pub fn failed_transport(&self) -> u64 {
        self.failed_connect + self.failed_receive + self.failed_exceptions
    }

    /// Requests sent: answered (any status, any length) or not.
    pub fn sent(&self) -> u64 {
        self.complete + self.failed_transport()
    }

    /// What `error_rate` and `client_errors` count: answers that were not
    /// 2xx and requests that got no answer. A length that differs from
    /// the first answer's is ab's failure, not an error of the service.
    pub fn errors_seen(&self) -> u64 {
        self.non_2xx + self.failed_transport()
    }

    /// Streams that met the SLO, of every request sent (failed ones too).
    pub fn goodput(&self) -> f64 {
        self.streams.good as f64 / self.sent().max(1) as f64
    }

    /// Counts a request that got no answer, of `kind`; `detail` says what
    /// happened, kept for the first one.
    pub fn error(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        *self.errors.entry(Cow::Borrowed(kind)).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail());
        }
    }

    /// Records an answer, with the node that served it and the Server
    /// header as text. `reference` is the body length every answer is held
    /// to (the run's first answer's, as ab's); `None` with ab's `-l`.
    pub fn record(
        &mut self,
        a: &Answer,
        node: Option<&str>,
        server: Option<&str>,
        reference: Option<u64>,
    ) {
        self.complete += 1;
        *self.statuses.entry(a.status).or_default() += 1;
        let ok = (200..300).contains(&a.status);
        if !ok {
            self.non_2xx += 1;
        }
        if a.keepalive {
            self.keepalive_responses += 1;
        }
        self.bytes_in += a.head_bytes + a.body_bytes;
        self.body_bytes_in += a.body_bytes;
        if self.complete == 1 {
            self.document_length = Some(a.body_bytes);
            self.server = server.map(str::to_string);
        }
        // ab counts a different length as a failed request, unless -l.
        if reference.is_some_and(|len| len != a.body_bytes) {
            self.failed_length += 1;
        }
        let total = micros(a.total);
        let _ = self.total.record(total);
        let _ = self.connect.record(micros(a.connect));
        let _ = self.waiting.record(micros(a.waiting));
        let _ = self
            .processing
            .record(micros(a.total.saturating_sub(a.connect)));
        // Closed loop: nothing was scheduled, so there is nothing to correct.
        if let (Some(since_due), Some(lag)) = (a.since_due, a.lag) {
            let _ = self.corrected.record(micros(since_due));
            let _ = self.lag.record(micros(lag));
        }
        // With retries X-Upstream lists every attempt; the last one answered.
        let node = node.map(|v| v.rsplit(", ").next().unwrap_or(v));
        if let Some(node) = node {
            // Look up before inserting: a new String only for a new node.
            if !self.nodes.contains_key(node) {
                let fresh = NodeStats {
                    requests: 0,
                    errors: 0,
                    total: histogram(),
                };
                self.nodes.insert(node.to_string(), fresh);
            }
            let Some(n) = self.nodes.get_mut(node) else {
                return;
            };
            n.requests += 1;
            if !ok {
                n.errors += 1;
            }
            let _ = n.total.record(total);
        }
    }

    /// Adds another worker's figures to these.
    pub fn merge(&mut self, other: Stats) {
        self.streams.merge(&other.streams);
        self.peak_in_flight = self.peak_in_flight.max(other.peak_in_flight);
        self.complete += other.complete;
        self.connections += other.connections;
        self.tls_resumed += other.tls_resumed;
        self.failed_connect += other.failed_connect;
        self.failed_receive += other.failed_receive;
        self.failed_length += other.failed_length;
        self.failed_exceptions += other.failed_exceptions;
        self.non_2xx += other.non_2xx;
        self.keepalive_responses += other.keepalive_responses;
        self.bytes_in += other.bytes_in;
        self.body_bytes_in += other.body_bytes_in;
        self.bytes_out += other.bytes_out;
        for (mine, theirs) in [
            (&mut self.total, &other.total),
            (&mut self.connect, &other.connect),
            (&mut self.waiting, &other.waiting),
            (&mut self.processing, &other.processing),
            (&mut self.corrected, &other.corrected),
            (&mut self.lag, &other.lag),
        ] {
            let _ = mine.add(theirs);
        }
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.nodes {
            match self.nodes.get_mut(&k) {
                Some(n) => {
                    n.requests += v.requests;
                    n.errors += v.errors;
                    let _ = n.total.add(&v.total);
                }
                None => {
                    self.nodes.insert(k, v);
                }
            }
        }
        if self.document_length.is_none() {
            self.document_length = other.document_length;
            self.server = other.server;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: u64, ms: u64) -> Answer {
        Answer {
            status,
            node: None,
            server: None,
            head_bytes: 100,
            body_bytes: body,
            connect: Duration::from_micros(50),
            waiting: Duration::from_millis(ms),
            total: Duration::from_millis(ms),
            since_due: None,
            lag: None,
            keepalive: true,
        }
    }

    #[test]
    fn records_and_merges_like_one_run() {
        let mut a = Stats::default();
        a.record(&answer(200, 18, 1), Some("n1"), Some("x"), Some(18));
        a.record(&answer(503, 40, 2), Some("a, n1"), None, Some(18));
        let mut b = Stats::default();
        b.record(&answer(200, 18, 3), Some("n2"), None, Some(18));
        b.error("connect", || "connection refused".into());
        b.failed_connect += 1;
        a.merge(b);
        assert_eq!(a.complete, 3);
        assert_eq!(a.non_2xx, 1);
        assert_eq!(a.failed_length, 1, "a different length counts as a failure");
        assert_eq!(a.failed(), 2);
        assert_eq!(
            a.errors_seen(),
            2,
            "the 503 and the connect failure, not the length"
        );
        assert_eq!(a.first_error.as_deref(), Some("connection refused"));
        assert_eq!(a.statuses[&200], 2);
        assert_eq!(a.nodes["n1"].requests, 2);
        assert_eq!(a.nodes["n1"].errors, 1);
        assert_eq!(a.total.len(), 3);
        assert_eq!(a.bytes_in, 300 + 18 + 40 + 18);
        assert_eq!(a.errors["connect"], 1);
    }

    #[test]
    fn processing_never_exceeds_total_and_nodes_are_as_fine() {
        // ab's Processing is total minus connect per request: its max can
        // not pass Total's, which a coarser histogram made it do.
        let mut s = Stats::default();
        for i in 0..2000u64 {
            let mut a = answer(200, 18, 0);
            a.connect = Duration::from_micros(37 + i % 50);
            a.total = Duration::from_micros(400_000 + i * 7 + 100);
            s.record(&a, Some("n"), None, Some(18));
        }
        assert!(s.processing.max() <= s.total.max());
        let node = &s.nodes["n"].total;
        for q in [0.5, 0.9, 0.95, 0.99] {
            assert_eq!(
                node.value_at_quantile(q),
                s.total.value_at_quantile(q),
                "p{q}"
            );
        }
    }

    #[test]
    fn variable_length_is_not_a_failure_with_l() {
        let mut a = Stats::default();
        a.record(&answer(200, 18, 1), Some("n"), None, None);
        a.record(&answer(200, 19, 1), Some("n"), None, None);
        assert_eq!(a.failed_length, 0);
    }
}
