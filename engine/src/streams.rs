//! Token-stream figures, as LLM serving benchmarks report them: time to
//! first token (TTFT), the gaps between tokens (ITL), time per output token
//! after the first (TPOT), end-to-end latency, output tokens, and goodput
//! against a service-level objective. Per worker, merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::sse::Stream;
use crate::stats::{histogram, micros};

/// `--slo 'ttft<500ms,tpot<50ms'`: what a stream must meet to count
/// towards goodput.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub itl: Option<Duration>,
    pub e2e: Option<Duration>,
}

impl Slo {
    pub fn parse(text: &str) -> Result<Slo, SloError> {
        Slo::read(text).map_err(SloError)
    }

    fn read(text: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, limit) = part
                .split_once('<')
                .ok_or_else(|| format!("'{part}': write NAME<LIMIT, e.g. ttft<500ms"))?;
            let limit = primitives::parse_duration(limit.trim_start_matches('='))
                .map_err(|e| format!("'{part}': '{}' {e}", limit.trim()))?;
            let slot = match name.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "itl" => &mut slo.itl,
                "e2e" | "latency" => &mut slo.e2e,
                other => return Err(format!("'{other}': not one of ttft, tpot, itl, e2e")),
            };
            *slot = Some(limit);
        }
        if slo == Slo::default() {
            return Err("empty; e.g. --slo 'ttft<500ms,tpot<50ms'".into());
        }
        Ok(slo)
    }
}

/// An SLO that does not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SloError(pub String);

/// One finished stream, as the worker saw it.
pub struct Finished<'a> {
    pub sse: &'a Stream,
    /// The longest gap between two of its tokens.
    pub worst_gap: Option<Duration>,
    pub total: Duration,
    pub node: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStreams {
    pub streams: u64,
    #[serde(with = "crate::saved::histogram")]
    pub ttft: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub tpot: Histogram<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamStats {
    /// Answers that were event streams.
    pub streams: u64,
    /// Of them, those that ended with `[DONE]`.
    pub complete: u64,
    #[serde(with = "crate::saved::histogram")]
    pub ttft: Histogram<u64>,
    /// Time to the first content token: for a reasoning model, after its
    /// thinking; the same as `ttft` for any other.
    #[serde(with = "crate::saved::histogram")]
    pub ttfc: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub itl: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub tpot: Histogram<u64>,
    #[serde(with = "crate::saved::histogram")]
    pub e2e: Histogram<u64>,
    pub output_tokens: u64,
    /// Each whole stream's output tokens (a count, not microseconds).
    #[serde(with = "crate::saved::histogram")]
    pub output_lengths: Histogram<u64>,
    /// Prompt tokens, from the servers' usage, and the streams that said.
    pub input_tokens: u64,
    pub input_from_usage: u64,
    /// Streams with reasoning or tool-call output.
    pub reasoning: u64,
    /// Streams whose token count came from the server's `usage`, and from
    /// counting chunks; and those with usage whose chunk count differed.
    pub from_usage: u64,
    pub from_chunks: u64,
    pub usage_disagrees: u64,
    /// Streams that met the SLO (when one is set).
    pub good: u64,
    pub nodes: BTreeMap<String, NodeStreams>,
}

impl Default for StreamStats {
    fn default() -> Self {
        StreamStats {
            streams: 0,
            complete: 0,
            ttft: histogram(),
            ttfc: histogram(),
            itl: histogram(),
            tpot: histogram(),
            e2e: histogram(),
            output_tokens: 0,
            output_lengths: histogram(),
            input_tokens: 0,
            input_from_usage: 0,
            reasoning: 0,
            from_usage: 0,
            from_chunks: 0,
            usage_disagrees: 0,
            good: 0,
            nodes: BTreeMap::new(),
        }
    }
}

impl StreamStats {
    /// Streams that did not end whole: cut, stalled, or with an error event.
    pub fn errors(&self) -> u64 {
        self.streams - self.complete
    }

    /// Records a stream that ended (whole or not); `gaps` are its
    /// inter-token gaps, recorded by the caller as they came.
    pub fn record(&mut self, s: &Finished<'_>, slo: Option<&Slo>) {
        self.streams += 1;
        let sse = s.sse;
        if !sse.done || sse.error.is_some() {
            return; // a cut or failed stream is an error, counted by the caller
        }
        self.complete += 1;
        let _ = self.e2e.record(micros(s.total));
        let (tokens, from_usage) = sse.tokens();
        self.output_tokens += tokens;
        let _ = self.output_lengths.record(tokens);
        if let Some(n) = sse.prompt_tokens {
            self.input_tokens += n;
            self.input_from_usage += 1;
        }
        if sse.reasoning_chunks > 0 {
            self.reasoning += 1;
        }
        if let Some(t) = sse.first_content {
            let _ = self.ttfc.record(micros(t));
        }
        if from_usage {
            self.from_usage += 1;
            if tokens != sse.chunks {
                self.usage_disagrees += 1;
            }
        } else {
            self.from_chunks += 1;
        }
        let ttft = sse.first_token;
        // TPOT: the time after the first token, per token after it.
        let tpot = match (ttft, tokens) {
            (Some(first), n) if n > 1 => Some(s.total.saturating_sub(first) / (n - 1) as u32),
            _ => None,
        };
        if let Some(t) = ttft {
            let _ = self.ttft.record(micros(t));
        }
        if let Some(t) = tpot {
            let _ = self.tpot.record(micros(t));
        }
        if let Some(node) = s.node {
            let n = self
                .nodes
                .entry(node.to_string())
                .or_insert_with(|| NodeStreams {
                    streams: 0,
                    ttft: histogram(),
                    tpot: histogram(),
                });
            n.streams += 1;
            if let Some(t) = ttft {
                let _ = n.ttft.record(micros(t));
            }
            if let Some(t) = tpot {
                let _ = n.tpot.record(micros(t));
            }
        }
        if let Some(slo) = slo {
            let within = |limit: Option<Duration>, v: Option<Duration>| {
                limit.is_none_or(|l| v.is_some_and(|v| v < l))
            };
            let met = within(slo.ttft, ttft)
                && within(slo.tpot, tpot.or(ttft.map(|_| Duration::ZERO)))
                && within(slo.itl, s.worst_gap.or(Some(Duration::ZERO)))
                && within(slo.e2e, Some(s.total));
            if met {
                self.good += 1;
            }
        }
    }

    pub fn gap(&mut self, gap: Duration) {
        let _ = self.itl.record(micros(gap));
    }

    pub fn merge(&mut self, other: &StreamStats) {
        self.streams += other.streams;
        self.complete += other.complete;
        for (mine, theirs) in [
            (&mut self.ttft, &other.ttft),
            (&mut self.ttfc, &other.ttfc),
            (&mut self.output_lengths, &other.output_lengths),
            (&mut self.itl, &other.itl),
            (&mut self.tpot, &other.tpot),
            (&mut self.e2e, &other.e2e),
        ] {
            let _ = mine.add(theirs);
        }
        self.output_tokens += other.output_tokens;
        self.input_tokens += other.input_tokens;
        self.input_from_usage += other.input_from_usage;
        self.reasoning += other.reasoning;
        self.from_usage += other.from_usage;
        self.from_chunks += other.from_chunks;
        self.usage_disagrees += other.usage_disagrees;
        self.good += other.good;
        for (k, v) in &other.nodes {
            match self.nodes.get_mut(k) {
                Some(n) => {
                    n.streams += v.streams;
                    let _ = n.ttft.add(&v.ttft);
                    let _ = n.tpot.add(&v.tpot);
                }
                None => {
                    self.nodes.insert(k.clone(), v.clone());
                }
            }
        }
    }

    pub fn tokens_per_sec(&self, elapsed: Duration) -> f64 {
        self.output_tokens as f64 / elapsed.as_secs_f64().max(1e-9)
    }

    /// Where the output token counts came from, as the report says it.
    pub fn token_source(&self) -> &'static str {
        match (self.from_usage, self.from_chunks) {
            (0, 0) => "none",
            (_, 0) => "the servers' usage",
            (0, _) => "chunks, one token each (the servers sent no usage)",
            _ => "the servers' usage where sent, else chunks",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(ttft_ms: u64, chunks: u64, usage: Option<u64>) -> Stream {
        let mut s = Stream::default();
        s.chunks = chunks;
        s.usage_tokens = usage;
        s.done = true;
        s.first_token = Some(Duration::from_millis(ttft_ms));
        s
    }

    #[test]
    fn tpot_goodput_and_token_sources() {
        let slo = Slo::parse("ttft<300ms, tpot<60ms").unwrap();
        let mut st = StreamStats::default();
        // 200 ms to the first token, 10 tokens by 650 ms: 50 ms per token.
        let fast = stream(200, 10, Some(10));
        st.record(
            &Finished {
                sse: &fast,
                worst_gap: Some(Duration::from_millis(55)),
                total: Duration::from_millis(650),
                node: Some("a"),
            },
            Some(&slo),
        );
        let slow = stream(400, 10, None);
        st.record(
            &Finished {
                sse: &slow,
                worst_gap: None,
                total: Duration::from_millis(850),
                node: Some("b"),
            },
            Some(&slo),
        );
        assert_eq!((st.streams, st.complete, st.good), (2, 2, 1));
        assert_eq!(
            st.tpot.value_at_quantile(0.0) / 1000,
            49,
            "{}",
            st.tpot.min()
        );
        assert_eq!(
            (st.from_usage, st.from_chunks, st.usage_disagrees),
            (1, 1, 0)
        );
        assert_eq!(st.output_tokens, 20);
        assert_eq!(
            st.token_source(),
            "the servers' usage where sent, else chunks"
        );
    }

    #[test]
    fn slo_mistakes_are_explained() {
        assert!(Slo::parse("ttft>3s").unwrap_err().0.contains("NAME<LIMIT"));
        assert!(Slo::parse("speed<3s").unwrap_err().0.contains("not one of"));
        assert!(Slo::parse("ttft<soon")
            .unwrap_err()
            .0
            .contains("not a duration"));
    }
}
