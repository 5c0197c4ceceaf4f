//! A scenario's report: the backends, ab's view of the load, the events,
//! the balancer's log as the analyzer reads it, each check and the verdict
//! line; and the JSON and JUnit files the command line asks for.

use analyzer::report::{self as log_report, Context};
use analyzer::{Check, Summary};
use engine::report;
use engine::write_file;
use engine::Checks;
use engine::Judgement;
use engine::{Outcome, Plan, Ran};

use crate::agree::Side;
use crate::error::ScenarioError;
use crate::judge::Verdict;
use crate::methods::{Objective, Row};
use crate::spec::{Engine, Loaded};
use crate::stage::Stage;

/// What the report calls the balancer's log.
pub(crate) const LOG_NAME: &str = "the balancer's access log";

/// How the analyzer's report of the balancer's log describes it.
pub(crate) fn context<'a>(
    stage: &Stage,
    v: &'a Verdict,
    inputs: &'a [String],
    names: &'a [(String, String)],
) -> Context<'a> {
    let (format, timing) = stage.log_format;
    Context {
        inputs,
        format,
        detected: false,
        timing: Some(timing),
        has_node: true,
        expected: v.expected.as_deref(),
        notes: &v.notes,
        names,
    }
}

/// Each backend's address as the log names it, and its scenario name.
pub(crate) fn names(j: &Judged<'_>) -> Vec<(String, String)> {
    (j.stage.addrs.iter().cloned())
        .zip(j.loaded.names.iter().cloned())
        .collect()
}

/// The scenario's title: its name, else its file.
pub fn title(loaded: &Loaded) -> String {
    (loaded.scenario.name.clone()).unwrap_or_else(|| loaded.file.display().to_string())
}

/// What the scenario judged on one balancer, with what it saw.
pub struct Judged<'a> {
    pub loaded: &'a Loaded,
    pub stage: &'a Stage,
    pub plan: &'a Plan,
    /// What clients saw.
    pub ran: &'a Ran,
    /// The balancer's log; none for an external balancer.
    pub log: Option<&'a Summary>,
    /// A line per event that happened.
    pub happened: &'a [String],
    /// And when each was applied, for charts.
    pub marks: &'a [(f64, String)],
    pub verdict: &'a Verdict,
    pub interrupted: bool,
    /// The method it ran under, in a comparison of methods.
    pub method: Option<&'a str>,
}

/// The engine a run was on, as the report names it.
fn engine(j: &Judged<'_>) -> &'static str {
    j.stage.engine.map_or("target", Engine::name)
}

/// What tells one run from the others in a report: its method in a
/// comparison of methods, else its engine.
pub(crate) fn label<'a>(j: &Judged<'a>) -> &'a str {
    j.method.unwrap_or_else(|| engine(j))
}

/// One balancer's whole report, ending in its verdict line; `several`:
/// one of several runs (engines or methods), named in the title.
pub fn text(j: &Judged<'_>, several: bool) -> String {
    let (loaded, stage, plan, ran, happened, v) =
        (j.loaded, j.stage, j.plan, j.ran, j.happened, j.verdict);
    let s = &loaded.scenario;
    let title = match (several, j.method) {
        (true, Some(m)) => format!("{} with {m}", title(loaded)),
        (true, None) => format!("{} on {}", title(loaded), engine(j)),
        (false, _) => title(loaded),
    };
    let checks = &v.judgement.checks;
    let mut out = String::new();
    out.push_str(&format!("Scenario: {title}\n"));
    if let Some(d) = &s.description {
        out.push_str(&format!("{}\n", d.trim()));
    }
    out.push_str(&format!(
        "  balancer: {} at {}\n",
        stage.about, stage.target
    ));
    for (i, name) in loaded.names.iter().enumerate() {
        out.push_str(&format!("  backend {name} = {}\n", stage.addrs[i]));
    }
    out.push('\n');
    out.push_str(report::ab(plan, &ran.stats, ran.elapsed).trim_start_matches('\n'));
    out.push_str(&report::beyond(plan, &ran.stats));
    out.push_str(&report::streams(plan, &ran.stats, ran.elapsed));
    if !s.events.is_empty() {
        out.push_str("\nEvents\n");
        for line in happened {
            out.push_str(&format!("  {line}\n"));
        }
        if happened.len() < s.events.len() {
            out.push_str(&format!(
                "  ({} more were due after the load ended)\n",
                s.events.len() - happened.len()
            ));
        }
    }
    let inputs = [LOG_NAME.to_string()];
    let names = names(j);
    let cx = context(j.stage, v, &inputs, &names);
    match j.log {
        Some(sum) => {
            out.push('\n');
            out.push_str(&log_report::text(sum, &cx, checks));
        }
        None => {
            for note in &v.notes {
                out.push_str(&format!("\n{note}\n"));
            }
            out.push_str("\nChecks\n");
            for c in checks {
                out.push_str(&format!("{}\n", c.line));
            }
        }
    }
    out.push('\n');
    out.push_str(&verdict(
        &title,
        s.expect_failure,
        j.interrupted,
        &v.judgement,
    ));
    out.push('\n');
    out
}

/// One run's per-node counts (by backend name) and checks, to compare.
pub fn side<'a>(j: &'a Judged<'a>) -> Side<'a> {
    let name = |addr: &str| {
        let i = j.stage.addrs.iter().position(|a| a == addr);
        i.map_or(addr.to_string(), |i| j.loaded.names[i].clone())
    };
    // In the scenario's order of backends; other nodes after.
    let order = |addr: &str| {
        j.stage
            .addrs
            .iter()
            .position(|a| a == addr)
            .unwrap_or(usize::MAX)
    };
    let mut counts: Vec<(usize, String, u64)> = j
        .log
        .map(|sum| {
            sum.nodes
                .iter()
                .map(|(addr, t)| (order(addr), name(addr), t.requests))
                .collect()
        })
        .unwrap_or_default();
    counts.sort();
    let counts = counts.into_iter().map(|(_, n, c)| (n, c)).collect();
    Side {
        engine: engine(j),
        counts,
        checks: &j.verdict.judgement.checks,
    }
}

/// The engines side by side, their agreement, and the scenario's verdict
/// over all of them (`ended`, from [`outcome`]).
pub fn side_by_side(
    loaded: &Loaded,
    judged: &[Judged<'_>],
    table: &str,
    agreement: &Check,
    ended: &Outcome,
) -> String {
    let title = title(loaded);
    let mut out = format!("Scenario: {title}, side by side\n");
    for j in judged {
        out.push_str(&format!("  {}: {}\n", engine(j), j.stage.about));
    }
    out.push('\n');
    out.push_str(table);
    out.push('\n');
    out.push_str(&agreement.line);
    out.push_str("\n\n");
    let engines: Vec<&str> = judged.iter().map(engine).collect();
    let engines = engines.join(" and ");
    let held: Vec<bool> = judged.iter().map(|j| j.verdict.judgement.held()).collect();
    let line = match ended {
        Outcome::Done if loaded.scenario.expect_failure => format!(
            "✗ scenario {title}: expected the verification to fail on {engines}, but it held on {}",
            judged
                .iter()
                .zip(&held)
                .filter(|(_, h)| **h)
                .map(|(j, _)| engine(j))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        Outcome::Done => {
            format!("✓ scenario {title}: every check held on {engines}, and they agree")
        }
        Outcome::Breached if loaded.scenario.expect_failure => {
            format!("✓ scenario {title}: the verification caught it on {engines} (exit 1)")
        }
        Outcome::Breached if agreement.ok => {
            format!("✗ scenario {title}: checks failed (see each engine's report above)")
        }
        Outcome::Breached => format!("✗ scenario {title}: {engines} do not agree (exit 1)"),
        _ => format!("✗ scenario {title}: no verdict on every engine (see above)"),
    };
    out.push_str(&line);
    out.push('\n');
    out
}

/// The first run that ended without a verdict (interrupted, no answer,
/// missing evidence), as the whole comparison's outcome.
pub fn outcome_each(judged: &[Judged<'_>]) -> Option<Outcome> {
    judged
        .iter()
        .map(|j| engine::outcome(j.interrupted, false, &j.verdict.judgement))
        .find(|o| !matches!(o, Outcome::Done | Outcome::Breached))
}

/// What one method did, for the comparison of methods.
pub fn method_row(j: &Judged<'_>) -> Row {
    let stats = &j.ran.stats;
    let latency = match j.plan.pacing {
        engine::Pacing::Rate(_) => &stats.corrected,
        engine::Pacing::Closed => &stats.total,
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let at = |h: &hdrhistogram::Histogram<u64>, q: f64| ms(h.value_at_quantile(q));
    let counts = side(j).counts;
    let answered: u64 = counts.iter().map(|(_, c)| c).sum();
    let streams = &stats.streams;
    let checks = &j.verdict.judgement.checks;
    Row {
        method: label(j).to_string(),
        shares: (counts.iter())
            .map(|(n, c)| (n.clone(), *c as f64 / answered.max(1) as f64))
            .collect(),
        mean_ms: latency.mean() / 1000.0,
        p50_ms: at(latency, 0.5),
        p90_ms: at(latency, 0.9),
        p99_ms: at(latency, 0.99),
        ttft_ms: (!streams.ttft.is_empty())
            .then(|| (at(&streams.ttft, 0.5), at(&streams.ttft, 0.99))),
        tpot_ms: (!streams.tpot.is_empty()).then(|| at(&streams.tpot, 0.5)),
        sent: stats.sent(),
        errors: stats.errors_seen(),
        throughput: stats.complete as f64 / j.ran.elapsed.as_secs_f64().max(1e-9),
        goodput: (streams.streams > 0).then(|| stats.goodput()),
        checks_held: checks.iter().filter(|c| c.ok).count(),
        checks: checks.len(),
        failed: (checks.iter())
            .filter(|c| !c.ok)
            .map(|c| c.name.clone())
            .collect(),
    }
}

/// The JSON and JUnit files of a comparison of methods: each method's run,
/// the rows best first, and the best; in JUnit each method's checks and
/// the comparison's own.
pub fn method_files(
    judged: &[Judged<'_>],
    rows: &[Row],
    order: &[usize],
    objective: Objective,
    best: Option<&str>,
    ended: &Outcome,
    extra: &Checks,
) -> Result<(), ScenarioError> {
    let Some(first) = judged.first() else {
        return Ok(());
    };
    let loaded = first.loaded;
    let title = title(loaded);
    let ok = matches!(ended, Outcome::Done);
    if let Some(path) = &extra.json_file {
        let runs: Vec<serde_json::Value> = (judged.iter())
            .map(|j| {
                let mut run = run_json(j);
                run["method"] = label(j).into();
                run
            })
            .collect();
        let ranked: Vec<serde_json::Value> = (order.iter())
            .map(|&i| {
                let r = &rows[i];
                serde_json::json!({
                    "method": r.method,
                    "objective": objective.of(r),
                    "shares": r.shares.iter().map(|(n, v)| (n.clone(), (*v).into())).collect::<serde_json::Map<String, serde_json::Value>>(),
                    "mean_ms": r.mean_ms, "p50_ms": r.p50_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms,
                    "ttft_p50_ms": r.ttft_ms.map(|t| t.0), "ttft_p99_ms": r.ttft_ms.map(|t| t.1),
                    "tpot_p50_ms": r.tpot_ms,
                    "requests": r.sent, "errors": r.errors, "requests_per_second": r.throughput,
                    "goodput": r.goodput, "checks_held": r.checks_held, "checks": r.checks,
                })
            })
            .collect();
        let json = serde_json::json!({
            "tool": "loadgen",
            "scenario": title,
            "file": loaded.file.display().to_string(),
            "ok": ok,
            "compare": {
                "objective": objective.describe(),
                "best": best,
                "ranked": ranked,
            },
            "methods": runs,
        });
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    if let Some(path) = &extra.junit {
        let suite = format!("scenario {title}");
        let mut checks = labelled_checks(judged);
        checks.push(Check {
            name: "best method".into(),
            ok,
            measured: None,
            line: format!(
                "best by {}: {}",
                objective.describe(),
                best.unwrap_or("none")
            ),
        });
        write_file("--junit", path, analyzer::export::junit(&suite, &checks))?;
    }
    Ok(())
}

/// How the scenario ends over every engine it ran on: an interruption or
/// missing evidence on any first; then, for a scenario that must fail,
/// caught only when caught on every engine; else held only when every
/// check held on every engine and they agree.
pub fn outcome(loaded: &Loaded, judged: &[Judged<'_>], agreement: Option<&Check>) -> Outcome {
    let mut each: Vec<Outcome> = judged
        .iter()
        .map(|j| engine::outcome(j.interrupted, false, &j.verdict.judgement))
        .collect();
    if each.len() == 1 {
        return each.remove(0);
    }
    if let Some(i) = each
        .iter()
        .position(|o| !matches!(o, Outcome::Done | Outcome::Breached))
    {
        return each.remove(i);
    }
    let breached = each
        .iter()
        .filter(|o| matches!(o, Outcome::Breached))
        .count();
    let fine = if loaded.scenario.expect_failure {
        breached < each.len()
    } else {
        breached == 0 && agreement.is_none_or(|c| c.ok)
    };
    if fine {
        Outcome::Done
    } else {
        Outcome::Breached
    }
}

/// The JSON and JUnit files `--json` and `--junit` ask for: one run's
/// report, or, with several engines, each one's and their agreement.
pub fn files(
    judged: &[Judged<'_>],
    agreement: Option<&Check>,
    ended: &Outcome,
    extra: &Checks,
) -> Result<(), ScenarioError> {
    let Some(first) = judged.first() else {
        return Ok(());
    };
    let loaded = first.loaded;
    let title = title(loaded);
    if let Some(path) = &extra.json_file {
        let mut json = serde_json::json!({
            "tool": "loadgen",
            "scenario": title,
            "file": loaded.file.display().to_string(),
            "expect_failure": loaded.scenario.expect_failure,
            "ok": matches!(ended, Outcome::Done),
        });
        let runs: Vec<serde_json::Value> = judged.iter().map(run_json).collect();
        match (agreement, runs.as_slice()) {
            (None, [one]) => {
                for (k, v) in one.as_object().into_iter().flatten() {
                    json[k] = v.clone();
                }
                json["ok"] = serde_json::Value::Bool(first.verdict.judgement.held());
            }
            _ => {
                json["engines"] = serde_json::Value::Array(runs);
                json["agreement"] = agreement.map_or(serde_json::Value::Null, check_json);
            }
        }
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    if let Some(path) = &extra.junit {
        let suite = format!("scenario {title}");
        let checks: Vec<Check> = match agreement {
            None if judged.len() == 1 => first.verdict.judgement.checks.clone(),
            _ => {
                let mut checks = labelled_checks(judged);
                checks.extend(agreement.cloned());
                checks
            }
        };
        write_file("--junit", path, analyzer::export::junit(&suite, &checks))?;
    }
    Ok(())
}

/// Every run's checks, each named by its run (`nginx: p(99)<500ms`).
fn labelled_checks(judged: &[Judged<'_>]) -> Vec<Check> {
    (judged.iter())
        .flat_map(|j| {
            j.verdict.judgement.checks.iter().map(|c| Check {
                name: format!("{}: {}", label(j), c.name),
                ..c.clone()
            })
        })
        .collect()
}

/// Writes `--html`.
pub fn html_file(path: &std::path::Path, page: &analyzer::html::Page) -> Result<(), ScenarioError> {
    let text = analyzer::html::render(page)
        .map_err(|why| engine::WriteError::new("--html", path, std::io::Error::other(why)))?;
    write_file("--html", path, text)?;
    Ok(())
}

fn check_json(c: &Check) -> serde_json::Value {
    serde_json::json!({"check": c.name, "ok": c.ok, "measured": c.measured, "line": c.line})
}

/// One engine's run as JSON.
fn run_json(j: &Judged<'_>) -> serde_json::Value {
    let v = j.verdict;
    let checks = &v.judgement.checks;
    let inputs = [LOG_NAME.to_string()];
    let names = names(j);
    let cx = context(j.stage, v, &inputs, &names);
    serde_json::json!({
        "engine": engine(j),
        "balancer": j.stage.about,
        "ok": v.judgement.held(),
        "checks": checks.iter().map(check_json).collect::<Vec<_>>(),
        "load": report::json(j.plan, &j.ran.stats, j.ran.elapsed, checks),
        "log": j.log.map(|sum| analyzer::export::json_value(sum, &cx, checks)),
    })
}

/// The scenario's last line: what happened, and what the exit code means.
fn verdict(title: &str, expect_failure: bool, interrupted: bool, j: &Judgement) -> String {
    let checks = &j.checks;
    let failed = checks.iter().filter(|c| !c.ok).count();
    if interrupted {
        return format!("✗ scenario {title}: interrupted; the figures above cover what ran");
    }
    if let Some(line) = &j.no_answer {
        return format!("✗ scenario {title}: {line} (exit 1)");
    }
    if let Some(m) = &j.missing {
        return format!("✗ scenario {title}: no verdict: {m} (exit 2)");
    }
    match (expect_failure, j.held()) {
        (false, true) => format!("✓ scenario {title}: all {} checks held", checks.len()),
        (false, false) => format!("✗ scenario {title}: {failed} of {} checks failed", checks.len()),
        (true, false) => format!(
            "✓ scenario {title}: the verification caught it ({failed} of {} checks failed, as this scenario expects; exit 1)",
            checks.len()
        ),
        (true, true) => format!(
            "✗ scenario {title}: expected the verification to fail, but all {} checks held (exit 0)",
            checks.len()
        ),
    }
}
