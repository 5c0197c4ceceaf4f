//! Thresholds and the fairness test over a run's figures, through the
//! analyzer library (the same language and test `analyzer` applies to logs).

use std::path::PathBuf;
use std::time::Duration;

use analyzer::evidence::{self, Missing};
pub use analyzer::Check;
use analyzer::Fairness;
use analyzer::{Measurements, Metric, Threshold, Timing};
use hdrhistogram::Histogram;

use crate::schedule::Pacing;
use crate::stats::Stats;

/// A run's figures as thresholds see them.
#[derive(Clone, Copy)]
pub struct RunFigures<'a> {
    pub stats: &'a Stats,
    pub elapsed: Duration,
    pub pacing: Pacing,
    /// Expected shares by node; equal shares among the nodes seen if absent.
    pub expected: Option<&'a [(String, f64)]>,
}

impl RunFigures<'_> {
    /// The latency histogram that counts: from the schedule in an open loop
    /// (no coordinated omission), the request's own time otherwise.
    fn latency(&self, node: Option<&str>) -> Option<&Histogram<u64>> {
        match node {
            Some(n) => self.stats.nodes.get(n).map(|n| &n.total),
            None if matches!(self.pacing, Pacing::Rate(_)) => Some(&self.stats.corrected),
            None => Some(&self.stats.total),
        }
    }

    pub fn fairness(&self) -> Option<Fairness> {
        let observed: Vec<(String, u64)> = self
            .stats
            .nodes
            .iter()
            .map(|(n, s)| (n.clone(), s.requests))
            .collect();
        if observed.is_empty() {
            return None;
        }
        Some(analyzer::test_or_equal(&observed, self.expected))
    }
}

impl Measurements for RunFigures<'_> {
    fn measure(&self, metric: &Metric, node: Option<&str>) -> Option<f64> {
        let s = self.stats;
        let seconds = |us: u64| us as f64 / 1e6;
        let h = || self.latency(node).filter(|h| !h.is_empty());
        let attempts = s.sent() as f64;
        let errors = s.errors_seen() as f64;
        // A node that never answered served nothing.
        let served = |n: &str| s.nodes.get(n).map_or(0, |n| n.requests) as f64;
        Some(match metric {
            Metric::Percentile {
                p,
                of: Timing::Total,
            } => seconds(h()?.value_at_quantile(p / 100.0)),
            Metric::Avg => h()?.mean() / 1e6,
            Metric::Min => seconds(h()?.min()),
            Metric::Med => seconds(h()?.value_at_quantile(0.5)),
            Metric::Max => seconds(h()?.max()),
            Metric::ErrorRate | Metric::SuccessRate => {
                let rate = match node {
                    Some(n) => {
                        let n = s.nodes.get(n)?;
                        n.errors as f64 / n.requests.max(1) as f64
                    }
                    None if attempts > 0.0 => errors / attempts,
                    None => return None,
                };
                if *metric == Metric::ErrorRate {
                    rate
                } else {
                    1.0 - rate
                }
            }
            Metric::Imbalance => self.fairness()?.max_relative_deviation,
            Metric::Rps => s.complete as f64 / self.elapsed.as_secs_f64().max(1e-9),
            Metric::Requests => match node {
                Some(n) => served(n),
                None => s.complete as f64,
            },
            Metric::Share if s.complete > 0 => node.map_or(1.0, served) / s.complete as f64,
            Metric::Percentile { p, of } => {
                let st = &s.streams;
                let h = match (of, node) {
                    (Timing::Ttft, None) => &st.ttft,
                    (Timing::Itl, None) => &st.itl,
                    (Timing::Tpot, None) => &st.tpot,
                    (Timing::E2e, None) => &st.e2e,
                    (Timing::Ttft, Some(n)) => &st.nodes.get(n)?.ttft,
                    (Timing::Tpot, Some(n)) => &st.nodes.get(n)?.tpot,
                    _ => return None,
                };
                seconds(
                    Some(h)
                        .filter(|h| !h.is_empty())?
                        .value_at_quantile(p / 100.0),
                )
            }
            // Requests that met the SLO, of all requests.
            Metric::Goodput if s.streams.streams > 0 => s.goodput(),
            Metric::OutputTokens => s.streams.output_tokens as f64,
            Metric::OutputTokensPerSec => s.streams.tokens_per_sec(self.elapsed),
            Metric::StreamErrors => s.streams.errors() as f64,
            Metric::Failed => s.failed() as f64,
            Metric::Non2xx => s.non_2xx as f64,
            Metric::ClientErrors => errors,
            _ => return None,
        })
    }
}

/// A run's checks, and what kept it from a verdict.
pub struct Judgement {
    /// The shares test (when weights are expected), then each threshold;
    /// then a failed `answers` or `evidence` check when one of the two
    /// below is set, so JSON and JUnit readers see it too.
    pub checks: Vec<Check>,
    /// No request got an answer: a breach (exit 1), in one line.
    pub no_answer: Option<String>,
    /// A check that could not be computed (exit 2), in one line.
    pub missing: Option<Missing>,
}

impl Judgement {
    pub fn held(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Why a run with no answer got none: counts by kind and the first error.
pub fn no_answer(stats: &Stats) -> Option<String> {
    if stats.complete > 0 {
        return None;
    }
    let kinds: Vec<String> = stats
        .errors
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    Some(format!(
        "no request got an answer ({} failed: {}){}",
        stats.failed_transport(),
        if kinds.is_empty() {
            "none sent".to_string()
        } else {
            kinds.join(" ")
        },
        stats
            .first_error
            .as_ref()
            .map_or(String::new(), |e| format!("; the first: {e}"))
    ))
}

/// Evaluates the thresholds, and the fairness test when weights are
/// expected, on evidence: node names given by port are matched to the
/// nodes that answered, and a check that cannot be computed is `missing`.
pub fn judge(figures: &RunFigures<'_>, thresholds: &[Threshold]) -> Judgement {
    let seen: Vec<&str> = figures.stats.nodes.keys().map(String::as_str).collect();
    let mut judgement = Judgement {
        checks: Vec::new(),
        no_answer: no_answer(figures.stats),
        missing: None,
    };
    let missing = |mut j: Judgement, why: String| {
        j.checks.push(Check::no_evidence(&why));
        j.missing = Some(Missing(why));
        j
    };
    if let Some(line) = &judgement.no_answer {
        judgement.checks.push(Check::no_answer(line));
        return judgement;
    }
    let expected = match figures.expected {
        Some(_) if seen.is_empty() => {
            return missing(
                judgement,
                "--expect-weights: no answer named the node that served it; say which header does with --node-header NAME (or --node-field for a JSON body)".into(),
            )
        }
        Some(e) => match evidence::resolve_expected("--expect-weights", e, &seen) {
            Ok(e) => Some(e),
            Err(m) => return missing(judgement, m.0),
        },
        None => None,
    };
    let mut known = seen.clone();
    known.extend(expected.iter().flatten().map(|(n, _)| n.as_str()));
    let thresholds = match evidence::resolve_thresholds(thresholds, &known) {
        Ok(t) => t,
        Err(m) => return missing(judgement, m.0),
    };
    let figures = RunFigures {
        expected: expected.as_deref(),
        ..*figures
    };
    let fairness = figures.expected.and_then(|_| figures.fairness());
    judgement.checks = analyzer::judge(fairness, &thresholds, &figures);
    let unmeasured = thresholds
        .iter()
        .find(|t| t.evaluate(&figures).measured.is_none());
    match unmeasured {
        Some(t) => {
            let why = unmeasured_why(t, figures.stats);
            missing(
                judgement,
                format!("threshold '{}' cannot be computed: {why}", t.source),
            )
        }
        None => judgement,
    }
}

/// Why a run holds no figure for `t`.
fn unmeasured_why(t: &Threshold, stats: &Stats) -> String {
    if let Some(node) = &t.node {
        if !stats.nodes.contains_key(node) {
            return format!("{node} never answered");
        }
    }
    match t.metric {
        Metric::Percentile { of, .. } if of.is_stream() => {
            "no answer was an event stream (use --stream, or post a body with \"stream\": true)"
                .into()
        }
        Metric::Goodput => "no answer was an event stream".into(),
        _ => "the run holds no answer for it".into(),
    }
}

/// How a run is judged and reported once it is over.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The thresholds and weights as given, kept in --json for a merge.
    pub asked: crate::saved::Asked,
    pub thresholds: Vec<Threshold>,
    pub expected: Option<Vec<(String, f64)>>,
    pub json_file: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// A self-contained HTML report.
    pub html: Option<PathBuf>,
    /// Print JSON instead of the text report.
    pub json_output: bool,
    pub csv: Option<PathBuf>,
    pub gnuplot: Option<PathBuf>,
    pub log: Option<PathBuf>,
}

/// How a run ended, for the exit code.
pub enum Outcome {
    Done,
    /// A threshold or the expected shares did not hold.
    Breached,
    /// No request got an answer (exit 1): why, in one line.
    NoAnswer(String),
    /// A check could not be computed (exit 2): why, in one line.
    Missing(String),
    /// Stopped at a receive error (ab's behaviour without -r).
    Stopped,
    Interrupted,
}

/// How a judged run ends: Ctrl-C first, then no answer at all, ab's stop
/// at a receive error, a check that could not be computed, a breach.
pub fn outcome(interrupted: bool, stopped: bool, judgement: &Judgement) -> Outcome {
    if interrupted {
        Outcome::Interrupted
    } else if let Some(line) = &judgement.no_answer {
        Outcome::NoAnswer(line.clone())
    } else if stopped {
        Outcome::Stopped
    } else if let Some(m) = &judgement.missing {
        Outcome::Missing(m.0.clone())
    } else if !judgement.held() {
        Outcome::Breached
    } else {
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Answer;

    fn answer(status: u16, ms: u64, late_ms: Option<u64>) -> Answer {
        Answer {
            status,
            node: None,
            server: None,
            head_bytes: 100,
            body_bytes: 10,
            connect: Duration::ZERO,
            waiting: Duration::from_millis(ms),
            total: Duration::from_millis(ms),
            since_due: late_ms.map(|l| Duration::from_millis(ms + l)),
            lag: late_ms.map(Duration::from_millis),
            keepalive: true,
        }
    }

    /// 90 fast answers from a, 10 slow ones from b (two of them 503s), each
    /// answered 100 ms after it was due in an open-loop run.
    fn stats() -> Stats {
        let mut s = Stats::default();
        for i in 0..100 {
            let (node, status, ms) = match i {
                0..90 => ("a", 200, 10),
                90..98 => ("b", 200, 200),
                _ => ("b", 503, 200),
            };
            s.record(&answer(status, ms, Some(100)), Some(node), None, None);
        }
        s
    }

    fn check(figures: &RunFigures<'_>, threshold: &str) -> Check {
        judge(figures, &[Threshold::parse(threshold).unwrap()])
            .checks
            .remove(0)
    }

    fn figures(stats: &Stats, pacing: Pacing) -> RunFigures<'_> {
        RunFigures {
            stats,
            elapsed: Duration::from_secs(2),
            pacing,
            expected: None,
        }
    }

    #[test]
    fn thresholds_read_the_run() {
        let s = stats();
        let closed = figures(&s, Pacing::Closed);
        assert!(check(&closed, "p(50)<20ms").ok);
        assert!(
            !check(&closed, "p(95)<100ms").ok,
            "b's 200 ms answers are the top 10%"
        );
        assert!(check(&closed, "error_rate<=2%").ok);
        assert!(!check(&closed, "error_rate<2%").ok);
        assert_eq!(check(&closed, "rps>=50").measured, Some(50.0));
        assert_eq!(check(&closed, "requests{node=b}==10").measured, Some(10.0));
        assert_eq!(check(&closed, "error_rate{node=b}<1").measured, Some(0.2));
        assert!(check(&closed, "p(99){node=a}<11ms").ok);
    }

    #[test]
    fn an_open_loop_is_judged_from_the_schedule() {
        let s = stats();
        let closed = check(&figures(&s, Pacing::Closed), "p(50)<50ms");
        let open = check(&figures(&s, Pacing::Rate(50.0)), "p(50)<50ms");
        assert!(closed.ok);
        assert!(
            !open.ok,
            "100 ms behind schedule counts against the open loop"
        );
    }

    #[test]
    fn shares_are_tested_only_when_weights_are_expected() {
        let s = stats();
        assert!(judge(&figures(&s, Pacing::Closed), &[]).checks.is_empty());
        let nine_to_one = [("a".to_string(), 9.0), ("b".to_string(), 1.0)];
        let even = [("a".to_string(), 1.0), ("b".to_string(), 1.0)];
        let with = |expected| RunFigures {
            expected: Some(expected),
            ..figures(&s, Pacing::Closed)
        };
        let fair = judge(&with(&nine_to_one), &[]).checks.remove(0);
        assert!(fair.ok && fair.line.starts_with('✓'), "{}", fair.line);
        let unfair = judge(&with(&even), &[]).checks.remove(0);
        assert!(
            !unfair.ok && unfair.line.starts_with('✗'),
            "{}",
            unfair.line
        );
    }
}
