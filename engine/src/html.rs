//! A run's part of an HTML report (`loadgen --html`, and each run of a
//! scenario): what clients saw as charts (latency CDF per node and its
//! distribution, shares against expected, stream timings) and ab's report
//! as text. The page itself is the analyzer's (analyzer::html).

use std::time::Duration;

use analyzer::html::{checks_verdict, Block, Page, Section};
use analyzer::plot::{bins_of, cdf_of, Chart, Lines};

use crate::report;
use crate::verdict::{Judgement, Outcome};
use crate::{Pacing, Plan, Stats};

/// The charts and text of one run; `expected`: the shares asked for, by
/// node, as weights.
pub fn run_blocks(
    plan: &Plan,
    stats: &Stats,
    elapsed: Duration,
    expected: Option<&[(String, f64)]>,
) -> Vec<Block> {
    let (latency, how) = match plan.pacing {
        Pacing::Rate(_) => (&stats.corrected, "from when each request was due"),
        Pacing::Closed => (&stats.total, "as clients saw it"),
    };
    let mut blocks = Vec::new();
    if !latency.is_empty() {
        // Nodes' latencies count from sending; an open loop's also from
        // when each request was due, which is what users waited.
        let mut series = vec![("all".to_string(), cdf_of(&stats.total))];
        if let Pacing::Rate(_) = plan.pacing {
            series.push(("all, from when due".to_string(), cdf_of(&stats.corrected)));
        }
        series.extend(
            (stats.nodes.iter())
                .filter(|(_, n)| !n.total.is_empty())
                .map(|(node, n)| (plan.node_label(node), cdf_of(&n.total))),
        );
        blocks.push(Block::Chart(Chart::Cdf("as clients saw it".into(), series)));
        blocks.push(Block::Chart(Chart::Histogram(
            how.to_string(),
            bins_of(latency),
        )));
    }
    let answered: u64 = stats.nodes.values().map(|n| n.requests).sum();
    if answered > 0 {
        let weights: f64 = expected.map_or(0.0, |e| e.iter().map(|(_, w)| w).sum());
        let promised = |node: &str| {
            let e = expected?;
            let w = e.iter().find(|(n, _)| n == node).map_or(0.0, |(_, w)| *w);
            Some(w / weights.max(f64::MIN_POSITIVE))
        };
        let shares = (stats.nodes.iter())
            .map(|(node, n)| {
                let share = n.requests as f64 / answered as f64;
                (plan.node_label(node), share, promised(node))
            })
            .collect();
        blocks.push(Block::Chart(Chart::Shares(shares)));
    }
    let s = &stats.streams;
    let timings = [
        ("TTFT", &s.ttft),
        ("ITL", &s.itl),
        ("TPOT", &s.tpot),
        ("end to end", &s.e2e),
    ];
    let series: Vec<(String, Vec<(f64, f64)>)> = (timings.iter())
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| (name.to_string(), cdf_of(h)))
        .collect();
    if !series.is_empty() {
        blocks.push(Block::Chart(Chart::Lines(Lines {
            stem: "streams",
            title: "Stream timings: TTFT, ITL, TPOT".into(),
            x: "ms".into(),
            y: "at or below".into(),
            log_x: true,
            percent_y: true,
            series,
            marks: Vec::new(),
        })));
    }
    let mut text = report::ab(plan, stats, elapsed);
    text.push_str(&report::beyond(plan, stats));
    text.push_str(&report::streams(plan, stats, elapsed));
    blocks.push(Block::Text(text.trim_start_matches('\n').to_string()));
    blocks
}

/// The verdict a page shows for a run that ended as `outcome`.
pub fn verdict(outcome: &Outcome, j: &Judgement, stats: &Stats) -> (bool, String) {
    let failed = j.checks.iter().filter(|c| !c.ok).count();
    match outcome {
        Outcome::Interrupted => (false, "✗ interrupted: the figures cover what ran".into()),
        Outcome::NoAnswer(why) => (false, format!("✗ {why}")),
        Outcome::Missing(why) => (false, format!("✗ no verdict: {why}")),
        Outcome::Stopped => (
            false,
            "✗ stopped at a receive error (-r keeps going)".into(),
        ),
        Outcome::Breached => checks_verdict(failed, j.checks.len()),
        Outcome::Done if j.checks.is_empty() => (
            true,
            format!(
                "no checks were asked; {} of {} requests answered",
                stats.complete,
                stats.sent()
            ),
        ),
        Outcome::Done => checks_verdict(0, j.checks.len()),
    }
}

/// loadgen's page for one run against a URL.
pub fn run_page(
    plan: &Plan,
    stats: &Stats,
    elapsed: Duration,
    judgement: &Judgement,
    outcome: &Outcome,
    expected: Option<&[(String, f64)]>,
) -> Page {
    let t = &plan.target;
    Page {
        title: format!(
            "loadgen: {} http://{}:{}{}",
            plan.method, t.host, t.port, t.path
        ),
        about: vec![format!(
            "{} requests, {} at a time, in {:.3} s",
            stats.sent(),
            plan.concurrency,
            elapsed.as_secs_f64()
        )],
        verdict: Some(verdict(outcome, judgement, stats)),
        checks: judgement.checks.clone(),
        sections: vec![Section {
            heading: "What clients saw".into(),
            blocks: run_blocks(plan, stats, elapsed, expected),
        }],
    }
}
