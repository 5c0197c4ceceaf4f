//! A scenario's figures as its expectations see them: the balancer's access
//! log (what the analyzer reads) for latencies, errors and shares, loadgen's
//! own view for what clients saw, and the scenario's own measures
//! (recovery after a revive, clients split across nodes). Nodes are named
//! as the scenario names its backends.

use analyzer::Judged;
use analyzer::Summary;
use analyzer::{Measurements, Metric, Threshold, Tool};

use engine::RunFigures;

pub struct Figures<'a> {
    pub client: RunFigures<'a>,
    /// The balancer's log; `None` for an external balancer.
    pub log: Option<Judged<'a>>,
    /// Backend names and the addresses logs and headers call them by.
    pub names: &'a [String],
    pub addrs: &'a [String],
    /// Revive events: backend index and when, in Unix seconds.
    pub revived: &'a [(usize, f64)],
}

impl Figures<'_> {
    fn addr(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(self.addrs[i].as_str())
    }

    /// The balancer's log when there is one, else what clients saw.
    fn view(&self, metric: &Metric, node: Option<&str>) -> Option<f64> {
        match &self.log {
            Some(log) => log.measure(metric, node),
            None => self.client.measure(metric, node),
        }
    }

    fn summary(&self) -> Option<&Summary> {
        self.log.as_ref().map(|j| j.summary)
    }

    /// Seconds from the latest revive (of `node`, if given) until the
    /// node served again, by the balancer's log (to the second); infinite
    /// when it never did (a breach, not a figure missing).
    fn recovered_within(&self, node: Option<&str>) -> Option<f64> {
        let s = self.summary()?;
        let (i, at) = self
            .revived
            .iter()
            .rev()
            .find(|(i, _)| node.is_none_or(|n| self.addrs[*i] == n))?;
        Some(
            match s.first_served_after(&self.addrs[*i], at.floor() as i64) {
                Some(back) => (back as f64 - at).max(0.0),
                None => f64::INFINITY,
            },
        )
    }

    /// Why the run holds no figure for `t`, in the scenario's words.
    pub fn why_unmeasured(&self, t: &Threshold) -> String {
        if let Some(name) = &t.node {
            let served = self.addr(name).is_some_and(|a| {
                self.client.stats.nodes.contains_key(a)
                    || self.summary().is_some_and(|s| s.nodes.contains_key(a))
            });
            if !served {
                return format!("backend {name} served no request");
            }
        }
        match t.metric {
            Metric::RecoveredWithin => "no revive event happened during the load".into(),
            Metric::Percentile { of, .. } if of.is_stream() => {
                "no answer was an event stream (give a [[load.request]] stream = true)".into()
            }
            Metric::Goodput => "no answer was an event stream, or [load] has no slo".into(),
            Metric::SplitClients | Metric::SplitShare => {
                "no client was served (set [load] clients to act as many)".into()
            }
            _ => "neither the balancer's log nor the answers hold it".into(),
        }
    }
}

impl Measurements for Figures<'_> {
    fn measure(&self, metric: &Metric, node: Option<&str>) -> Option<f64> {
        let node = match node {
            Some(name) => Some(self.addr(name)?),
            None => None,
        };
        match metric {
            Metric::RecoveredWithin => self.recovered_within(node),
            // What clients saw, and token streams, only the client knows.
            m if m.needs_log() => self.log.as_ref()?.measure(m, node),
            m if !m.measured_by().contains(&Tool::Analyzer) => self.client.measure(m, node),
            m => self.view(m, node),
        }
    }
}
