//! Thresholds and the fairness test over a run's figures, through the
//! analyzer library (the same language and test `analyzer` applies to logs).

use std::time::Duration;

pub use analyzer::check::Check;
use analyzer::fairness::{self, Fairness};
use analyzer::{Measurements, Metric, Threshold};
use hdrhistogram::Histogram;

use crate::plan::Pacing;
use crate::stats::Stats;

/// A run's figures as thresholds see them.
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
        Some(fairness::test_or_equal(&observed, self.expected))
    }
}

impl Measurements for RunFigures<'_> {
    fn measure(&self, metric: &Metric, filter: Option<(&str, &str)>) -> Option<f64> {
        let node = match filter {
            None => None,
            Some(("node", n)) => Some(n),
            Some(_) => return None,
        };
        let s = self.stats;
        let seconds = |us: u64| us as f64 / 1e6;
        let h = || self.latency(node).filter(|h| !h.is_empty());
        let attempts = (s.complete + s.failed()) as f64;
        let errors = (s.non_2xx + s.failed()) as f64;
        Some(match metric {
            Metric::Percentile { p, of: None } => seconds(h()?.value_at_quantile(p / 100.0)),
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
                Some(n) => s.nodes.get(n)?.requests as f64,
                None => s.complete as f64,
            },
            Metric::Percentile { p, of: Some(of) } => {
                let st = &s.streams;
                let h = match (of.as_str(), node) {
                    ("ttft", None) => &st.ttft,
                    ("itl", None) => &st.itl,
                    ("tpot", None) => &st.tpot,
                    ("e2e", None) => &st.e2e,
                    ("ttft", Some(n)) => &st.nodes.get(n)?.ttft,
                    ("tpot", Some(n)) => &st.nodes.get(n)?.tpot,
                    _ => return None,
                };
                seconds(
                    Some(h)
                        .filter(|h| !h.is_empty())?
                        .value_at_quantile(p / 100.0),
                )
            }
            Metric::Named(name) => match name.as_str() {
                // Requests that met the SLO, of all requests.
                "goodput" if s.streams.streams > 0 => s.goodput(),
                "output_tokens" => s.streams.output_tokens as f64,
                "output_tokens_per_sec" => s.streams.tokens_per_sec(self.elapsed),
                "stream_errors" => (s.streams.streams - s.streams.complete) as f64,
                "failed" => s.failed() as f64,
                "non_2xx" => s.non_2xx as f64,
                // What a client saw go wrong: no answer, or not a 2xx.
                "client_errors" => errors,
                _ => return None,
            },
        })
    }
}

/// Evaluates the thresholds, and the fairness test when weights are expected.
pub fn judge(figures: &RunFigures<'_>, thresholds: &[Threshold]) -> Vec<Check> {
    let fairness = figures.expected.and_then(|_| figures.fairness());
    analyzer::check::judge(fairness, thresholds, figures)
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
            s.record(&answer(status, ms, Some(100)), Some(node), None, false);
        }
        s
    }

    fn check(figures: &RunFigures<'_>, threshold: &str) -> Check {
        judge(figures, &[Threshold::parse(threshold).unwrap()]).remove(0)
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
        assert!(judge(&figures(&s, Pacing::Closed), &[]).is_empty());
        let nine_to_one = [("a".to_string(), 9.0), ("b".to_string(), 1.0)];
        let even = [("a".to_string(), 1.0), ("b".to_string(), 1.0)];
        let with = |expected| RunFigures {
            expected: Some(expected),
            ..figures(&s, Pacing::Closed)
        };
        let fair = judge(&with(&nine_to_one), &[]).remove(0);
        assert!(fair.ok && fair.line.starts_with('✓'), "{}", fair.line);
        let unfair = judge(&with(&even), &[]).remove(0);
        assert!(
            !unfair.ok && unfair.line.starts_with('✗'),
            "{}",
            unfair.line
        );
    }
}
