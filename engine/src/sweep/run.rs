//! A sweep run (`loadgen --sweep rate=50..5000 URL`, a scenario's
//! `[sweep]`): steps of growing load, each judged by the run's checks,
//! until the highest load at which every check holds is found (the search
//! is in this module's parent). Each step runs its warm-up, then the
//! measured part; a rate step also has to keep up with its rate.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::{Sweep, Swept};
use crate::files::{write_file, Rows, WriteError};
use crate::verdict::{judge, Checks, Outcome, RunFigures};
use crate::{drive, Pacing, Plan, Stats};

/// Prints as the step is done; a reader that went away is not an error.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// How a sweep runs, from its flags.
pub struct Settings {
    pub sweep: Sweep,
    pub step: Duration,
    pub warmup: Duration,
    pub min_capacity: Option<f64>,
}

/// A rate step that delivers less than this share of its rate did not keep
/// up, whatever the checks say: the load was not the load asked for.
const KEPT_UP: f64 = 0.95;

/// One step, measured and judged.
struct Step {
    load: f64,
    achieved: f64,
    stats: Stats,
    p50_ms: f64,
    p99_ms: f64,
    held: bool,
    /// Each check: its name, whether it held, what was measured.
    checks: Vec<(String, bool, Option<f64>)>,
}

/// A plan making one step's load for `length`.
fn step_plan(base: &Plan, sweep: &Sweep, load: f64, length: Duration) -> Plan {
    let mut plan = base.clone();
    plan.time_limit = Some(length);
    match sweep.swept {
        Swept::Rate => {
            plan.pacing = Pacing::Rate(load);
            plan.requests = (load * length.as_secs_f64()).ceil().max(1.0) as u64;
            plan.concurrency = plan.concurrency.min(plan.requests as usize);
        }
        Swept::Concurrency => {
            plan.pacing = Pacing::Closed;
            plan.concurrency = load as usize;
            // The step's time ends it, not a count.
            plan.requests = u64::MAX / 2;
        }
    }
    plan
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs the sweep, prints its table and the capacity found, writes --json
/// and --html. The checks must say what holds (`loadgen` refuses a sweep
/// without any before it starts); a check a step cannot compute ends the
/// sweep with no verdict.
pub async fn run(
    base: Plan,
    addr: std::net::SocketAddr,
    checks: &Checks,
    settings: &Settings,
    quiet: bool,
) -> Result<Outcome, WriteError> {
    let sweep = &settings.sweep;
    let names: Vec<&str> = checks
        .thresholds
        .iter()
        .map(|t| t.source.as_str())
        .collect();
    say(&format!(
        "Sweep of {} from {} to {} against {}:{}{}: each step {:.1} s after {:.1} s of warm-up; it holds when {}{}\n\n",
        sweep.swept.name(),
        sweep.low,
        sweep.high,
        base.target.host,
        base.target.port,
        base.target.path,
        settings.step.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        names.join(", "),
        match sweep.swept {
            Swept::Rate => format!(" and it delivers {:.0}% of its rate", KEPT_UP * 100.0),
            Swept::Concurrency => String::new(),
        }
    ));
    let mut steps: Vec<Step> = Vec::new();
    let mut done: Vec<(f64, bool)> = Vec::new();
    let mut interrupted = false;
    while let Some(load) = sweep.next(&done) {
        if !settings.warmup.is_zero() {
            let warm = step_plan(&base, sweep, load, settings.warmup);
            let ran = drive(Arc::new(warm), addr, Arc::new(Rows::none()), true).await;
            if ran.interrupted {
                interrupted = true;
                break;
            }
        }
        let plan = step_plan(&base, sweep, load, settings.step);
        let ran = drive(Arc::new(plan.clone()), addr, Arc::new(Rows::none()), quiet).await;
        let figures = RunFigures {
            stats: &ran.stats,
            elapsed: ran.elapsed,
            pacing: plan.pacing,
            expected: checks.expected.as_deref(),
        };
        let judgement = judge(&figures, &checks.thresholds);
        if let Some(m) = &judgement.missing {
            return Ok(Outcome::Missing(m.0.clone()));
        }
        // A rate step's arrivals span the step: answers over that span are
        // the rate delivered (the last answers' time after it is not load).
        let span = match sweep.swept {
            Swept::Rate => settings.step.min(ran.elapsed),
            Swept::Concurrency => ran.elapsed,
        };
        let achieved = ran.stats.complete as f64 / span.as_secs_f64().max(1e-9);
        let kept_up = sweep.swept == Swept::Concurrency || achieved >= KEPT_UP * load;
        let latency = match plan.pacing {
            Pacing::Rate(_) => &ran.stats.corrected,
            Pacing::Closed => &ran.stats.total,
        };
        let step = Step {
            load,
            achieved,
            p50_ms: ms(latency.value_at_quantile(0.5)),
            p99_ms: ms(latency.value_at_quantile(0.99)),
            held: judgement.held() && kept_up,
            checks: (judgement.checks.iter())
                .map(|c| (c.name.clone(), c.ok, c.measured))
                .collect(),
            stats: ran.stats,
        };
        say(&row(&step, steps.len() + 1, steps.is_empty()));
        done.push((load, step.held));
        steps.push(step);
        if ran.interrupted {
            interrupted = true;
            break;
        }
    }
    let capacity = super::capacity(&done);
    let knee = super::knee(&steps.iter().map(|s| (s.load, s.p50_ms)).collect::<Vec<_>>());
    let unit = match sweep.swept {
        Swept::Rate => "requests/s",
        Swept::Concurrency => "connections",
    };
    say(&nodes_legend(&steps, &base));
    say(&match capacity {
        Some(c) => format!(
            "\nCapacity: {c} {unit}, the highest {} at which every check held",
            sweep.swept.name()
        ),
        None => format!(
            "\nNo capacity: the first step, {} {unit}, already failed",
            sweep.low
        ),
    });
    say(&match knee {
        Some(k) => format!("; latency climbs faster than load from {k} {unit}\n"),
        None => "\n".into(),
    });
    let gate = settings.min_capacity.map(|min| {
        let ok = capacity.is_some_and(|c| c >= min);
        say(&format!(
            "{} capacity >= {min} {unit}\n",
            if ok { "✓" } else { "✗" }
        ));
        ok
    });
    if let Some(path) = &checks.html {
        let ok = capacity.is_some() && gate != Some(false);
        let line = match (capacity, settings.min_capacity) {
            (Some(c), Some(min)) => format!(
                "{} capacity {c} {unit} (at least {min} asked)",
                if ok { "✓" } else { "✗" }
            ),
            (Some(c), None) => format!("✓ capacity {c} {unit}"),
            (None, _) => format!(
                "✗ no capacity: the first step, {} {unit}, already failed",
                sweep.low
            ),
        };
        let page = page(&base, sweep, &steps, (capacity, knee), (ok, line));
        let text = analyzer::html::render(&page)
            .map_err(|e| WriteError::new("--html", path, std::io::Error::other(e)))?;
        write_file("--html", path, text)?;
    }
    if let Some(path) = &checks.json_file {
        let json = json(sweep, &steps, capacity, knee, settings.min_capacity);
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    Ok(if interrupted {
        Outcome::Interrupted
    } else if capacity.is_none() || gate == Some(false) {
        Outcome::Breached
    } else {
        Outcome::Done
    })
}

/// Shares per node, in the order of every node any step saw.
fn node_names(steps: &[Step]) -> Vec<String> {
    let mut names: Vec<String> = steps
        .iter()
        .flat_map(|s| s.stats.nodes.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn shares(stats: &Stats, names: &[String]) -> Vec<f64> {
    let answered: u64 = stats.nodes.values().map(|n| n.requests).sum();
    (names.iter())
        .map(|n| stats.nodes.get(n).map_or(0, |t| t.requests) as f64 / answered.max(1) as f64)
        .collect()
}

/// The step table's columns, for the terminal and the HTML page.
const COLUMNS: [&str; 8] = [
    "step", "load", "achieved", "p50 ms", "p99 ms", "errors", "goodput", "held",
];

/// One step's cells, then its checks' word.
fn cells(step: &Step, number: usize) -> (Vec<String>, String) {
    let s = &step.stats;
    let goodput = if s.streams.streams > 0 {
        format!("{:.1}%", 100.0 * s.goodput())
    } else {
        "-".into()
    };
    let failed: Vec<&str> = (step.checks.iter())
        .filter(|(_, ok, _)| !ok)
        .map(|(n, _, _)| n.as_str())
        .collect();
    let checks = if failed.is_empty() {
        "all held".to_string()
    } else {
        format!("failed: {}", failed.join(", "))
    };
    let cells = vec![
        number.to_string(),
        format!("{:.1}", step.load),
        format!("{:.1}", step.achieved),
        format!("{:.3}", step.p50_ms),
        format!("{:.3}", step.p99_ms),
        s.errors_seen().to_string(),
        goodput,
        if step.held { "✓" } else { "✗" }.to_string(),
    ];
    (cells, checks)
}

fn row(step: &Step, number: usize, first: bool) -> String {
    let line = |c: &[String], checks: &str| {
        format!(
            "{:>4} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}  {:<5} {checks}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        )
    };
    let mut out = String::new();
    if first {
        out.push_str(&line(&COLUMNS.map(String::from), "checks"));
    }
    let (c, checks) = cells(step, number);
    out.push_str(&line(&c, &checks));
    out
}

/// The sweep's HTML page: the verdict, latency against load with the
/// capacity and knee marked, the delivered rate, and the step table.
fn page(
    base: &Plan,
    sweep: &Sweep,
    steps: &[Step],
    found: (Option<f64>, Option<f64>),
    verdict: (bool, String),
) -> analyzer::html::Page {
    use analyzer::html::{Block, Page, Section};
    use analyzer::plot::{Chart, Lines};
    let (capacity, knee) = found;
    let unit = sweep.swept.name();
    let mut marks = Vec::new();
    if let Some(c) = capacity {
        marks.push((c, format!("capacity {c}")));
    }
    if let Some(k) = knee {
        marks.push((k, format!("knee {k}")));
    }
    let by_load = |f: &dyn Fn(&Step) -> f64| {
        let mut points: Vec<(f64, f64)> = steps.iter().map(|s| (s.load, f(s))).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let latency = Chart::Lines(Lines {
        stem: "sweep-latency",
        title: format!("Latency against {unit}"),
        x: unit.into(),
        y: "ms".into(),
        log_x: false,
        percent_y: false,
        series: vec![
            ("p50".into(), by_load(&|s| s.p50_ms)),
            ("p99".into(), by_load(&|s| s.p99_ms)),
        ],
        marks: marks.clone(),
    });
    let delivered = Chart::Lines(Lines {
        stem: "sweep-delivered",
        title: format!("Requests per second delivered against {unit}"),
        x: unit.into(),
        y: "requests/s".into(),
        log_x: false,
        percent_y: false,
        series: vec![("achieved".into(), by_load(&|s| s.achieved))],
        marks,
    });
    let names = node_names(steps);
    let mut share_head = vec!["load".to_string()];
    share_head.extend(names.iter().map(|n| base.node_label(n)));
    let share_rows = (steps.iter())
        .map(|s| {
            let mut row = vec![format!("{:.1}", s.load)];
            row.extend(
                shares(&s.stats, &names)
                    .iter()
                    .map(|v| format!("{:.1}%", v * 100.0)),
            );
            row
        })
        .collect();
    let mut head: Vec<String> = COLUMNS.map(String::from).to_vec();
    head.push("checks".into());
    let rows = (steps.iter().enumerate())
        .map(|(i, s)| {
            let (mut c, checks) = cells(s, i + 1);
            c.push(checks);
            c
        })
        .collect();
    let t = &base.target;
    let mut blocks = vec![
        Block::Chart(latency),
        Block::Chart(delivered),
        Block::Table(head, rows),
    ];
    if !names.is_empty() {
        blocks.push(Block::Note("Share per node at each step:".into()));
        blocks.push(Block::Table(share_head, share_rows));
    }
    Page {
        title: format!(
            "loadgen sweep of {unit} {}..{} against http://{}:{}{}",
            sweep.low, sweep.high, t.host, t.port, t.path
        ),
        about: vec![format!("{} steps", steps.len())],
        verdict: Some(verdict),
        checks: Vec::new(),
        sections: vec![Section {
            heading: "The sweep".into(),
            blocks,
        }],
    }
}

/// The share of each node at each step, when answers named their node.
fn nodes_legend(steps: &[Step], base: &Plan) -> String {
    let names = node_names(steps);
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nShare per node at each step:\n");
    out.push_str(&format!("{:>10}", "load"));
    for n in &names {
        out.push_str(&format!(" {:>28}", base.node_label(n)));
    }
    out.push('\n');
    for s in steps {
        out.push_str(&format!("{:>10.1}", s.load));
        for share in shares(&s.stats, &names) {
            out.push_str(&format!(" {:>27.1}%", share * 100.0));
        }
        out.push('\n');
    }
    out
}

fn json(
    sweep: &Sweep,
    steps: &[Step],
    capacity: Option<f64>,
    knee: Option<f64>,
    min_capacity: Option<f64>,
) -> serde_json::Value {
    let names = node_names(steps);
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            let nodes: serde_json::Map<String, serde_json::Value> = (names.iter().cloned())
                .zip(shares(&s.stats, &names).into_iter().map(Into::into))
                .collect();
            serde_json::json!({
                "load": s.load,
                "achieved_per_second": s.achieved,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "requests": s.stats.sent(),
                "errors": s.stats.errors_seen(),
                "error_rate": s.stats.errors_seen() as f64 / s.stats.sent().max(1) as f64,
                "goodput": (s.stats.streams.streams > 0).then(|| s.stats.goodput()),
                "shares": nodes,
                "held": s.held,
                "checks": s.checks.iter().map(|(n, ok, m)| serde_json::json!({"check": n, "ok": ok, "measured": m})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "tool": "loadgen",
        "version": env!("CARGO_PKG_VERSION"),
        "sweep": {
            "swept": sweep.swept.name(),
            "low": sweep.low,
            "high": sweep.high,
            "steps": steps,
            "capacity": capacity,
            "knee": knee,
            "min_capacity": min_capacity,
            "ok": capacity.is_some() && min_capacity.is_none_or(|m| capacity.is_some_and(|c| c >= m)),
        }
    })
}
