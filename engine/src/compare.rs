//! `loadgen compare BASE NEW`: two runs (loadgen's --json, or the analyzer's
//! --summary-out of a log) side by side, metric by metric, each change
//! tested so noise is not called a regression: latency by the Mann-Whitney
//! U test on the histograms, error rates by the two-proportion test, shares
//! by the chi-square test of homogeneity. Pure: the caller reads the files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use analyzer::significance::{self, Tested};
use hdrhistogram::Histogram;

use crate::saved::Saved;

/// What a comparison needs of a run or a log.
#[derive(Debug, Clone)]
pub struct Side {
    /// The file, and what wrote it.
    pub name: String,
    pub kind: &'static str,
    pub requests: u64,
    pub errors: u64,
    /// Answers per second over the run, when the run's time is known.
    pub rate: Option<f64>,
    pub latency: Histogram<u64>,
    pub nodes: BTreeMap<String, NodeSide>,
}

#[derive(Debug, Clone)]
pub struct NodeSide {
    pub requests: u64,
    pub latency: Histogram<u64>,
}

impl Side {
    /// A loadgen run: its latency as its thresholds see it (from the
    /// schedule in an open loop).
    pub fn run(name: &str, run: &Saved) -> Side {
        let s = &run.stats;
        let open = run.settings.rate.is_some();
        let latency = match open {
            true => s.corrected.clone(),
            false => s.total.clone(),
        };
        Side {
            name: name.into(),
            kind: "loadgen",
            requests: s.sent(),
            errors: s.errors_seen(),
            rate: (run.elapsed > 0.0).then(|| s.complete as f64 / run.elapsed),
            latency,
            nodes: (s.nodes.iter())
                .map(|(n, t)| {
                    let side = NodeSide {
                        requests: t.requests,
                        latency: t.total.clone(),
                    };
                    (n.clone(), side)
                })
                .collect(),
        }
    }

    /// A log's summary, as the analyzer wrote it.
    pub fn log(name: &str, saved: &analyzer::saved::Saved) -> Side {
        let s = &saved.summary;
        Side {
            name: name.into(),
            kind: "analyzer",
            requests: s.all.requests,
            errors: s.all.errors,
            rate: s.rate().map(|r| r.per_second),
            latency: s.all.latency().clone(),
            nodes: (s.nodes.iter())
                .map(|(n, t)| {
                    let side = NodeSide {
                        requests: t.requests,
                        latency: t.latency().clone(),
                    };
                    (n.clone(), side)
                })
                .collect(),
        }
    }

    /// A file's text: a loadgen --json report (its `run` block), a run
    /// block alone, or an analyzer summary.
    pub fn read(name: &str, text: &str) -> Result<Side, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{name}: not JSON: {e}"))?;
        if value.get("tool").and_then(|t| t.as_str()) == Some(analyzer::saved::TOOL) {
            let saved = analyzer::saved::Saved::from_value(name, value)?;
            return Ok(Side::log(name, &saved));
        }
        if value.get("run").is_none() {
            return Err(format!(
                "{name}: neither a loadgen --json report nor an analyzer --summary-out file"
            ));
        }
        Ok(Side::run(name, &Saved::from_report(name, &value)?))
    }
}

/// How a figure reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    Ms,
    Share,
    PerSecond,
}

/// One figure of both runs.
#[derive(Debug, Clone)]
pub struct Row {
    /// `all`, or a node.
    pub scope: String,
    pub metric: &'static str,
    pub unit: Unit,
    pub base: f64,
    pub new: f64,
    /// The test on this figure's distribution; `None`: there is none
    /// (one number per run).
    pub test: Option<Tested>,
    /// Worse, significantly, by more than --max-regression.
    pub regression: bool,
}

impl Row {
    /// The change relative to the base; a rise from nothing is infinite.
    pub fn change(&self) -> f64 {
        if self.base == 0.0 {
            if self.new == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (self.new - self.base) / self.base
        }
    }
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub base: String,
    pub new: String,
    pub rows: Vec<Row>,
    /// Chi-square of homogeneity of the per-node counts.
    pub shares: Option<Tested>,
    pub max_regression: Option<f64>,
}

/// Higher is worse for latency and errors, lower for throughput.
fn worse(row: &Row, max: Option<f64>) -> bool {
    let Some(t) = row.test.filter(Tested::significant) else {
        return false;
    };
    let Some(max) = max else { return false };
    match row.unit {
        Unit::PerSecond => false,
        Unit::Ms => t.statistic > 0.0 && row.change() > max,
        // A share moved either way, beyond the bound of its base.
        Unit::Share => row.change().abs() > max,
    }
}

fn latency_rows(scope: &str, base: &Histogram<u64>, new: &Histogram<u64>) -> Vec<Row> {
    let test = significance::mann_whitney(base, new);
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |h: &Histogram<u64>, q: f64| ms(h.value_at_quantile(q));
    [
        ("p50 ms", q(base, 0.5), q(new, 0.5)),
        ("p90 ms", q(base, 0.9), q(new, 0.9)),
        ("p99 ms", q(base, 0.99), q(new, 0.99)),
        ("mean ms", base.mean() / 1000.0, new.mean() / 1000.0),
    ]
    .into_iter()
    .map(|(metric, b, n)| Row {
        scope: scope.into(),
        metric,
        unit: Unit::Ms,
        base: b,
        new: n,
        test,
        regression: false,
    })
    .collect()
}

/// `new` against `base`; `max_regression` (0.10 for 10%) makes a
/// significant worsening beyond it a regression.
pub fn compare(base: &Side, new: &Side, max_regression: Option<f64>) -> Comparison {
    let mut rows = latency_rows("all", &base.latency, &new.latency);
    let share = |s: &Side| s.errors as f64 / s.requests.max(1) as f64;
    rows.push(Row {
        scope: "all".into(),
        metric: "error rate",
        unit: Unit::Share,
        base: share(base),
        new: share(new),
        test: significance::two_proportions(base.errors, base.requests, new.errors, new.requests),
        regression: false,
    });
    if let (Some(b), Some(n)) = (base.rate, new.rate) {
        rows.push(Row {
            scope: "all".into(),
            metric: "requests/s",
            unit: Unit::PerSecond,
            base: b,
            new: n,
            test: None,
            regression: false,
        });
    }
    let names: BTreeSet<&String> = base.nodes.keys().chain(new.nodes.keys()).collect();
    let total = |s: &Side| s.nodes.values().map(|n| n.requests).sum::<u64>().max(1) as f64;
    let counts: Vec<(u64, u64)> = (names.iter())
        .map(|n| {
            let count = |s: &Side| s.nodes.get(*n).map_or(0, |t| t.requests);
            (count(base), count(new))
        })
        .collect();
    let shares = significance::shares(&counts);
    for (name, (b, n)) in names.iter().zip(&counts) {
        rows.push(Row {
            scope: (*name).clone(),
            metric: "share",
            unit: Unit::Share,
            base: *b as f64 / total(base),
            new: *n as f64 / total(new),
            test: shares,
            regression: false,
        });
        if let (Some(b), Some(n)) = (base.nodes.get(*name), new.nodes.get(*name)) {
            rows.extend(latency_rows(name, &b.latency, &n.latency));
        }
    }
    for row in &mut rows {
        // An error rate is worse when it rose significantly past the bound.
        row.regression = match row.metric {
            "error rate" => {
                row.test
                    .is_some_and(|t| t.significant() && t.statistic > 0.0)
                    && max_regression.is_some_and(|m| row.change() > m)
            }
            _ => worse(row, max_regression),
        };
    }
    Comparison {
        base: format!("{} ({}, {} requests)", base.name, base.kind, base.requests),
        new: format!("{} ({}, {} requests)", new.name, new.kind, new.requests),
        rows,
        shares,
        max_regression,
    }
}

fn figure(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Ms => format!("{v:.3}"),
        Unit::Share => format!("{:.2}%", v * 100.0),
        Unit::PerSecond => format!("{v:.1}"),
    }
}

fn change(row: &Row) -> String {
    let c = row.change();
    if c.is_infinite() {
        "new".into()
    } else {
        format!("{:+.1}%", c * 100.0)
    }
}

fn p_value(t: Option<Tested>) -> String {
    match t {
        None => "no test".into(),
        Some(t) if t.p < 0.0001 => "p<0.0001".into(),
        Some(t) => format!("p={:.4}", t.p),
    }
}

fn mark(row: &Row) -> &'static str {
    match row.test {
        _ if row.regression => "REGRESSION",
        Some(t) if t.significant() => "significant",
        _ => "",
    }
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.regression)
    }

    /// The one line that sums it up.
    pub fn verdict(&self) -> String {
        let bound = self
            .max_regression
            .map(|m| format!(" (beyond --max-regression {}%)", m * 100.0))
            .unwrap_or_default();
        let worse: Vec<String> = self
            .regressions()
            .map(|r| format!("{} {} {}", r.scope, r.metric, change(r)))
            .collect();
        if !worse.is_empty() {
            return format!("✗ significant regression{bound}: {}", worse.join(", "));
        }
        let changed = self
            .rows
            .iter()
            .filter(|r| r.test.is_some_and(|t| t.significant()))
            .count();
        match (changed, self.max_regression) {
            (0, _) => "✓ no significant change".into(),
            (n, Some(m)) => format!(
                "✓ {n} significant changes, none a regression beyond {}%",
                m * 100.0
            ),
            (n, None) => format!("✓ {n} significant changes (--max-regression makes them fail)"),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "base: {}\nnew:  {}\n", self.base, self.new);
        let _ = writeln!(
            out,
            "{:<24} {:<11} {:>12} {:>12} {:>9}  test",
            "scope", "metric", "base", "new", "change"
        );
        for [scope, metric, base, new, change, test, mark] in self.cells() {
            let _ = writeln!(
                out,
                "{scope:<24} {metric:<11} {base:>12} {new:>12} {change:>9}  {test:<9} {mark}"
            );
        }
        let _ = writeln!(
            out,
            "\nLatency: Mann-Whitney U on the histograms; error rate: two-proportion z-test; shares: chi-square of homogeneity ({}). Significant: p < {}.",
            p_value(self.shares),
            significance::ALPHA
        );
        let _ = writeln!(out, "{}", self.verdict());
        out
    }

    /// The same as a Markdown table, for a CI job's summary.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.verdict());
        let _ = writeln!(out, "base: `{}`, new: `{}`\n", self.base, self.new);
        let _ = writeln!(out, "| scope | metric | base | new | change | test | |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
        for cells in self.cells() {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// The comparison's HTML page: the verdict, the two runs' latency CDFs
    /// (overall and per node) and each node's share, then the table.
    pub fn page(&self, base: &Side, new: &Side) -> analyzer::html::Page {
        use analyzer::html::{Block, Page, Section};
        use analyzer::plot::{cdf_of, Chart};
        let mut series = vec![
            ("base".to_string(), cdf_of(&base.latency)),
            ("new".to_string(), cdf_of(&new.latency)),
        ];
        for (node, b) in &base.nodes {
            if let Some(n) = new.nodes.get(node) {
                series.push((format!("base {node}"), cdf_of(&b.latency)));
                series.push((format!("new {node}"), cdf_of(&n.latency)));
            }
        }
        series.retain(|(_, points)| points.iter().any(|p| p.0 > 0.0));
        let mut blocks = Vec::new();
        if !series.is_empty() {
            blocks.push(Block::Chart(Chart::Cdf("base and new".into(), series)));
        }
        let share = |side: &Side, node: &str| {
            let all: u64 = side.nodes.values().map(|n| n.requests).sum();
            side.nodes
                .get(node)
                .map_or(0.0, |n| n.requests as f64 / all.max(1) as f64)
        };
        if !new.nodes.is_empty() {
            // New's share per node, with base's drawn as the mark to meet.
            let shares = (new.nodes.keys())
                .map(|n| (n.clone(), share(new, n), Some(share(base, n))))
                .collect();
            blocks.push(Block::Chart(Chart::Shares(shares)));
        }
        let head = ["scope", "metric", "base", "new", "change", "test", ""];
        blocks.push(Block::Table(
            head.map(String::from).to_vec(),
            self.cells().map(|c| c.to_vec()).collect(),
        ));
        blocks.push(Block::Note(format!(
            "Latency: Mann-Whitney U on the histograms; error rate: two-proportion z-test; shares: chi-square of homogeneity ({}). Significant: p < {}. In the share chart the bar is new and the line is base.",
            p_value(self.shares),
            significance::ALPHA
        )));
        let verdict = self.verdict();
        Page {
            title: "loadgen compare".into(),
            about: vec![format!("base: {}", self.base), format!("new: {}", self.new)],
            verdict: Some((!verdict.starts_with('✗'), verdict)),
            checks: Vec::new(),
            sections: vec![Section {
                heading: "Base against new".into(),
                blocks,
            }],
        }
    }

    /// Each row as the text and Markdown tables show it.
    fn cells(&self) -> impl Iterator<Item = [String; 7]> + '_ {
        self.rows.iter().map(|r| {
            [
                r.scope.clone(),
                r.metric.to_string(),
                figure(r.unit, r.base),
                figure(r.unit, r.new),
                change(r),
                p_value(r.test),
                mark(r).to_string(),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(nodes: &[(&str, u64, u64)]) -> Side {
        let mut all = Histogram::new(3).unwrap();
        let mut map = BTreeMap::new();
        for (name, count, us) in nodes {
            let mut h = Histogram::new(3).unwrap();
            for i in 0..*count {
                let v = us + (i * 7919) % (us / 5);
                h.record(v).unwrap();
                all.record(v).unwrap();
            }
            map.insert(
                name.to_string(),
                NodeSide {
                    requests: *count,
                    latency: h,
                },
            );
        }
        Side {
            name: "run.json".into(),
            kind: "loadgen",
            requests: all.len(),
            errors: 0,
            rate: Some(100.0),
            latency: all,
            nodes: map,
        }
    }

    #[test]
    fn a_run_against_itself_is_no_change() {
        let a = side(&[("n1", 500, 5000), ("n2", 500, 5000)]);
        let c = compare(&a, &a, Some(0.1));
        assert_eq!(c.verdict(), "✓ no significant change");
        assert_eq!(c.regressions().count(), 0);
        assert!(c.text().contains("no significant change"));
    }

    #[test]
    fn a_slower_node_is_a_regression_on_that_node() {
        let a = side(&[("n1", 500, 5000), ("n2", 500, 5000)]);
        let b = side(&[("n1", 500, 5000), ("n2", 500, 25_000)]);
        let c = compare(&a, &b, Some(0.1));
        let worse: BTreeSet<&str> = c.regressions().map(|r| r.scope.as_str()).collect();
        assert!(worse.contains("n2"), "{}", c.text());
        assert!(!worse.contains("n1"), "{}", c.text());
        assert!(
            c.verdict().starts_with("✗ significant regression"),
            "{}",
            c.verdict()
        );
        assert!(c.markdown().contains("| n2 | p50 ms |"));
        // Without a bound it is reported, not failed.
        assert_eq!(compare(&a, &b, None).regressions().count(), 0);
    }

    #[test]
    fn shares_that_moved_are_significant() {
        let a = side(&[("n1", 500, 5000), ("n2", 500, 5000)]);
        let b = side(&[("n1", 800, 5000), ("n2", 200, 5000)]);
        let c = compare(&a, &b, Some(0.1));
        assert!(c.shares.unwrap().significant());
        assert!(c.regressions().any(|r| r.metric == "share"), "{}", c.text());
    }
}
