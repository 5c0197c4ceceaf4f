//! A scenario's figures as its expectations see them: the balancer's access
//! log (what the analyzer reads) for latencies, errors and shares, loadgen's
//! own view for what clients saw, and the scenario's own measures
//! (recovery after a revive, clients split across nodes). Nodes are named
//! as the scenario names its backends.

use analyzer::judged::Judged;
use analyzer::summary::Summary;
use analyzer::{Measurements, Metric};

use crate::verdict::RunFigures;

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

    /// Requests in the view; a backend that never appears in it served
    /// nothing.
    fn requests(&self, filter: Option<(&str, &str)>) -> Option<f64> {
        self.view(&Metric::Requests, filter).or(filter.map(|_| 0.0))
    }

    /// The balancer's log when there is one, else what clients saw.
    fn view(&self, metric: &Metric, filter: Option<(&str, &str)>) -> Option<f64> {
        match &self.log {
            Some(log) => log.measure(metric, filter),
            None => self.client.measure(metric, filter),
        }
    }

    fn summary(&self) -> Option<&Summary> {
        self.log.as_ref().map(|j| j.summary)
    }

    /// Seconds from the latest revive (of `node`, if given) until the
    /// node served again, by the balancer's log (to the second).
    fn recovered_within(&self, node: Option<&str>) -> Option<f64> {
        let s = self.summary()?;
        let (i, at) = self
            .revived
            .iter()
            .rev()
            .find(|(i, _)| node.is_none_or(|n| self.addrs[*i] == n))?;
        let back = s.first_served_after(&self.addrs[*i], at.floor() as i64)?;
        Some((back as f64 - at).max(0.0))
    }
}

impl Measurements for Figures<'_> {
    fn measure(&self, metric: &Metric, filter: Option<(&str, &str)>) -> Option<f64> {
        let node = match filter {
            Some(("node", name)) => Some(self.addr(name)?),
            Some(_) => return None,
            None => None,
        };
        let filter = node.map(|n| ("node", n));
        // Token streams are seen by the client only.
        if let Metric::Percentile { of: Some(of), .. } = metric {
            if matches!(of.as_str(), "ttft" | "itl" | "tpot" | "e2e") {
                return self.client.measure(metric, filter);
            }
        }
        if let Metric::Named(name) = metric {
            match name.as_str() {
                "client_errors"
                | "failed"
                | "non_2xx"
                | "goodput"
                | "output_tokens"
                | "output_tokens_per_sec"
                | "stream_errors" => return self.client.measure(metric, filter),
                "recovered_within" => return self.recovered_within(node),
                "share" => return Some(self.requests(filter)? / self.requests(None)?.max(1.0)),
                "split_clients" | "split_share" => {
                    let st = self.summary()?.stickiness();
                    return Some(if name == "split_clients" {
                        st.split as f64
                    } else {
                        st.split as f64 / st.clients.max(1) as f64
                    });
                }
                _ => {}
            }
        }
        match metric {
            Metric::Requests => self.requests(filter),
            _ => self.view(metric, filter),
        }
    }
}
