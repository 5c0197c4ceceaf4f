//! A summary as thresholds see it: each metric of the k6-style language
//! measured over the whole log or one node, and seed 000's alert table as
//! the thresholds that apply when none are given.

use crate::summary::{percentile, Summary};
use crate::threshold::{Measurements, Metric, Threshold, Timing};

/// Seed 000's alert table, as thresholds: error rate above 5%, response
/// time above 500 ms (read as the 95th percentile), task success rate below
/// 95%.
pub const SEED_ALERTS: [&str; 3] = ["error_rate<=5%", "p(95)<=500ms", "success_rate>=95%"];

/// A summary with what it is judged against, as thresholds see it.
pub struct Judged<'a> {
    pub summary: &'a Summary,
    pub expected: Option<&'a [(String, f64)]>,
}

impl Measurements for Judged<'_> {
    fn measure(&self, metric: &Metric, node: Option<&str>) -> Option<f64> {
        let s = self.summary;
        // A node the log never names served nothing (its name was checked
        // against the log and the expected shares before judging).
        let served = |n: &str| s.nodes.get(n).map_or(0, |t| t.requests) as f64;
        match (metric, node) {
            (Metric::Requests, Some(n)) => return Some(served(n)),
            (Metric::Share, Some(n)) if s.all.requests > 0 => {
                return Some(served(n) / s.all.requests as f64)
            }
            _ => {}
        }
        let tally = match node {
            None => &s.all,
            Some(n) => s.nodes.get(n)?,
        };
        let seconds = |us: u64| us as f64 / 1e6;
        let h = || Some(tally.latency()).filter(|h| !h.is_empty());
        Some(match metric {
            Metric::Percentile { p, of } => {
                let h = match of {
                    Timing::Total => h()?,
                    Timing::RequestTime => &tally.request_time,
                    Timing::UpstreamTime => &tally.upstream_time,
                    _ => return None,
                };
                seconds(percentile(Some(h).filter(|h| !h.is_empty())?, *p))
            }
            Metric::Avg => h()?.mean() / 1e6,
            Metric::Min => seconds(h()?.median_equivalent(h()?.min())),
            Metric::Med => seconds(percentile(h()?, 50.0)),
            Metric::Max => seconds(percentile(h()?, 100.0)),
            Metric::ErrorRate => tally.error_rate()?,
            Metric::SuccessRate => 1.0 - tally.error_rate()?,
            Metric::Imbalance => s.fairness(self.expected)?.max_relative_deviation,
            Metric::Rps => s.rate()?.per_second,
            Metric::Requests => tally.requests as f64,
            Metric::Share if s.all.requests > 0 => 1.0,
            Metric::Retries => s.retried as f64,
            Metric::Malformed if s.lines > 0 => s.malformed as f64 / s.lines as f64,
            Metric::SplitClients | Metric::SplitShare => {
                let st = s.stickiness();
                if st.clients == 0 {
                    return None;
                }
                if *metric == Metric::SplitClients {
                    st.split as f64
                } else {
                    st.split as f64 / st.clients as f64
                }
            }
            _ => return None,
        })
    }
}

/// The thresholds to apply when none are given: seed 000's alert table.
pub fn seed_alerts() -> Vec<Threshold> {
    SEED_ALERTS
        .iter()
        .map(|t| Threshold::parse(t).expect("the seed's alert thresholds parse"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::log;

    #[test]
    fn the_seed_alerts_judge_a_log() {
        let healthy: Vec<_> = (0..100).map(|i| ("a", 200, 50.0 + f64::from(i))).collect();
        let s = log(&healthy);
        let judged = Judged {
            summary: &s,
            expected: None,
        };
        assert!(seed_alerts().iter().all(|t| t.evaluate(&judged).ok));

        let mut slow_and_failing = healthy.clone();
        for i in 0..10 {
            slow_and_failing[i * 10] = ("b", 502, 900.0);
        }
        let s = log(&slow_and_failing);
        let judged = Judged {
            summary: &s,
            expected: None,
        };
        let failed: Vec<String> = seed_alerts()
            .iter()
            .filter(|t| !t.evaluate(&judged).ok)
            .map(|t| t.source.clone())
            .collect();
        assert_eq!(failed, SEED_ALERTS, "10% errors at 900 ms breach all three");
    }

    #[test]
    fn per_node_thresholds_and_imbalance() {
        let mut lines = vec![("a", 200, 10.0); 60];
        lines.extend(vec![("b", 200, 700.0); 40]);
        let s = log(&lines);
        let weights = [("a".to_string(), 3.0), ("b".to_string(), 2.0)];
        let judged = Judged {
            summary: &s,
            expected: Some(&weights),
        };
        let check = |t: &str| Threshold::parse(t).unwrap().evaluate(&judged);
        assert!(check("p(99){node=a}<20ms").ok);
        assert!(!check("p(99){node=b}<500ms").ok);
        assert!(check("imbalance<1%").ok, "60/40 is exactly 3:2");
        let even = Judged {
            summary: &s,
            expected: None,
        };
        let v = Threshold::parse("imbalance<10%").unwrap().evaluate(&even);
        assert!(!v.ok && (v.measured.unwrap() - 0.2).abs() < 1e-9, "{v}");
    }
}
