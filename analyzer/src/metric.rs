//! The one catalogue of what a threshold can measure, shared by `analyzer`,
//! `loadgen` and scenario files: each metric's name, its units, whether it
//! can be narrowed to one node, and which tools can measure it. A name that
//! is not here, or one the tool cannot measure, is refused before any work
//! starts (exit 2), never found "not measured" at the end.

use std::fmt;

/// Which latency a percentile is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The request as a whole: `$request_time` in a log (else the
    /// upstream's), the client's own time in loadgen.
    Total,
    /// `p(N)_request_time`: the log's `$request_time` only.
    RequestTime,
    /// `p(N)_upstream_response_time`: the answering attempt's time only.
    UpstreamTime,
    /// Token streams, as loadgen sees them.
    Ttft,
    Itl,
    Tpot,
    E2e,
}

impl Timing {
    const SUFFIXES: [(&'static str, Timing); 7] = [
        ("", Timing::Total),
        ("request_time", Timing::RequestTime),
        ("upstream_response_time", Timing::UpstreamTime),
        ("ttft", Timing::Ttft),
        ("itl", Timing::Itl),
        ("tpot", Timing::Tpot),
        ("e2e", Timing::E2e),
    ];

    fn suffix(self) -> &'static str {
        Timing::SUFFIXES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(s, _)| s)
    }

    /// A token-stream figure: only loadgen's `--stream` (or a scenario's
    /// `stream = true` requests) measure it.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Timing::Ttft | Timing::Itl | Timing::Tpot | Timing::E2e
        )
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (0..=100), in seconds.
    Percentile {
        p: f64,
        of: Timing,
    },
    Avg,
    Min,
    Med,
    Max,
    /// 5xx answers and requests with no answer, of all requests (a log);
    /// non-2xx answers and transport failures, of all requests (loadgen).
    ErrorRate,
    SuccessRate,
    /// Largest relative deviation of a node's share from its expected share.
    Imbalance,
    Rps,
    Requests,
    /// A node's share of the requests.
    Share,
    /// Requests that took more than one upstream attempt.
    Retries,
    /// Lines that did not match the format, of all lines.
    Malformed,
    /// Clients served by more than one node (seed 002's "memory split"),
    /// and their share of all clients.
    SplitClients,
    SplitShare,
    /// What clients saw go wrong: no answer, or not a 2xx.
    ClientErrors,
    /// ab's Failed requests (connect, receive, length, exceptions).
    Failed,
    Non2xx,
    /// Streams that met the SLO, of all requests.
    Goodput,
    OutputTokens,
    OutputTokensPerSec,
    /// Streams that were cut, stalled, or carried an error event.
    StreamErrors,
    /// Seconds from a revive until the node served again.
    RecoveredWithin,
}

/// The tools that judge thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `analyzer`, from an access log.
    Analyzer,
    /// `loadgen URL`, from what the client saw.
    Loadgen,
    /// `loadgen --scenario`, from the balancer's log and the client.
    Scenario,
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Analyzer => "analyzer (from a log)",
            Tool::Loadgen => "loadgen (from what the client saw)",
            Tool::Scenario => "a scenario",
        })
    }
}

const ALL: &[Tool] = &[Tool::Analyzer, Tool::Loadgen, Tool::Scenario];
const LOG: &[Tool] = &[Tool::Analyzer, Tool::Scenario];
const CLIENT: &[Tool] = &[Tool::Loadgen, Tool::Scenario];
const SCENARIO: &[Tool] = &[Tool::Scenario];

/// Metrics by the name a threshold spells them with (percentiles aside).
const NAMED: &[(&str, Metric)] = &[
    ("avg", Metric::Avg),
    ("min", Metric::Min),
    ("med", Metric::Med),
    ("max", Metric::Max),
    ("error_rate", Metric::ErrorRate),
    ("success_rate", Metric::SuccessRate),
    ("imbalance", Metric::Imbalance),
    ("rps", Metric::Rps),
    ("requests", Metric::Requests),
    ("share", Metric::Share),
    ("retries", Metric::Retries),
    ("malformed", Metric::Malformed),
    ("split_clients", Metric::SplitClients),
    ("split_share", Metric::SplitShare),
    ("client_errors", Metric::ClientErrors),
    ("failed", Metric::Failed),
    ("non_2xx", Metric::Non2xx),
    ("goodput", Metric::Goodput),
    ("output_tokens", Metric::OutputTokens),
    ("output_tokens_per_sec", Metric::OutputTokensPerSec),
    ("stream_errors", Metric::StreamErrors),
    ("recovered_within", Metric::RecoveredWithin),
];

/// How a metric's values are written and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Seconds; written `500ms`, `1.5s`, `250us` (bare numbers are ms).
    Latency,
    /// A fraction; written `5%` or `0.05`.
    Rate,
    /// A plain number.
    Count,
}

impl Metric {
    /// The metric a threshold's left side names: `p(95)`, `p(99)_ttft`,
    /// `error_rate`...
    pub(crate) fn parse(name: &str) -> Result<Metric, String> {
        if let Some(rest) = name.strip_prefix("p(") {
            let (p, after) = rest.split_once(')').ok_or("p( needs its ')'")?;
            let p: f64 = p
                .parse()
                .map_err(|_| format!("'{p}' is not a percentile"))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("percentile {p} is not between 0 and 100"));
            }
            let suffix = match after {
                "" => "",
                s => s
                    .strip_prefix('_')
                    .ok_or(format!("unexpected '{s}' after p(...)"))?,
            };
            let of = Timing::SUFFIXES
                .iter()
                .find(|(s, _)| *s == suffix)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    format!(
                        "p(N)_{suffix}: no such latency; p(N) takes _request_time, _upstream_response_time, _ttft, _itl, _tpot or _e2e"
                    )
                })?;
            return Ok(Metric::Percentile { p, of });
        }
        if name.is_empty() {
            return Err("needs a metric, e.g. p(95), error_rate, imbalance".to_string());
        }
        if let Some((_, m)) = NAMED.iter().find(|(n, _)| *n == name) {
            return Ok(*m);
        }
        // `p95`, `p99.9`: k6 and oha users' spelling of a percentile.
        let hint = match name.strip_prefix('p') {
            Some(p) if !p.is_empty() && p.parse::<f64>().is_ok() => {
                format!(" (did you mean p({p})?)")
            }
            _ => String::new(),
        };
        Err(format!(
            "no metric '{name}'{hint}; metrics are p(N), p(N)_ttft, _itl, _tpot, _e2e, _request_time, _upstream_response_time, {}",
            NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))
    }

    /// The name a threshold spells it with (a percentile without its N).
    pub fn name(&self) -> String {
        match self {
            Metric::Percentile {
                p,
                of: Timing::Total,
            } => format!("p({p})"),
            Metric::Percentile { p, of } => format!("p({p})_{}", of.suffix()),
            other => NAMED
                .iter()
                .find(|(_, m)| m == other)
                .map_or_else(String::new, |(n, _)| (*n).to_string()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Metric::Percentile { .. }
            | Metric::Avg
            | Metric::Min
            | Metric::Med
            | Metric::Max
            | Metric::RecoveredWithin => Kind::Latency,
            Metric::ErrorRate
            | Metric::SuccessRate
            | Metric::Imbalance
            | Metric::Share
            | Metric::Malformed
            | Metric::SplitShare
            | Metric::Goodput => Kind::Rate,
            _ => Kind::Count,
        }
    }

    /// The tools that can measure it.
    pub fn measured_by(&self) -> &'static [Tool] {
        match self {
            Metric::Percentile { of, .. } if of.is_stream() => CLIENT,
            Metric::Percentile {
                of: Timing::RequestTime | Timing::UpstreamTime,
                ..
            } => LOG,
            Metric::Retries | Metric::Malformed | Metric::SplitClients | Metric::SplitShare => LOG,
            Metric::ClientErrors
            | Metric::Failed
            | Metric::Non2xx
            | Metric::Goodput
            | Metric::OutputTokens
            | Metric::OutputTokensPerSec
            | Metric::StreamErrors => CLIENT,
            Metric::RecoveredWithin => SCENARIO,
            _ => ALL,
        }
    }

    /// Whether `{node=NAME}` narrows it to one node.
    pub fn per_node(&self) -> bool {
        match self {
            Metric::Percentile { of, .. } => !matches!(of, Timing::Itl | Timing::E2e),
            Metric::Avg
            | Metric::Min
            | Metric::Med
            | Metric::Max
            | Metric::ErrorRate
            | Metric::SuccessRate
            | Metric::Requests
            | Metric::Share
            | Metric::RecoveredWithin => true,
            _ => false,
        }
    }

    /// Only a log holds it (a scenario with an external `target` has none).
    pub fn needs_log(&self) -> bool {
        !self.measured_by().contains(&Tool::Loadgen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back() {
        for (name, m) in NAMED {
            assert_eq!(Metric::parse(name).unwrap(), *m);
            assert_eq!(m.name(), *name);
        }
        let p = Metric::parse("p(99.9)_ttft").unwrap();
        assert_eq!(
            p,
            Metric::Percentile {
                p: 99.9,
                of: Timing::Ttft
            }
        );
        assert_eq!(p.name(), "p(99.9)_ttft");
    }

    #[test]
    fn unknown_names_say_what_there_is() {
        let e = Metric::parse("p95").unwrap_err();
        assert!(e.contains("did you mean p(95)?"), "{e}");
        let e = Metric::parse("teapots").unwrap_err();
        assert!(e.starts_with("no metric 'teapots'") && e.contains("split_clients"));
        assert!(Metric::parse("p(50)_lunch").unwrap_err().contains("_ttft"));
    }

    #[test]
    fn who_measures_what() {
        assert!(Metric::Goodput.measured_by().contains(&Tool::Loadgen));
        assert!(!Metric::Goodput.measured_by().contains(&Tool::Analyzer));
        assert!(Metric::SplitClients.measured_by().contains(&Tool::Analyzer));
        assert!(Metric::Malformed.needs_log());
        assert!(!Metric::ErrorRate.needs_log());
        assert!(Metric::Share.per_node() && !Metric::Retries.per_node());
    }
}
