//! A scenario's report: the backends, ab's view of the load, the events,
//! the balancer's log as the analyzer reads it, each check and the verdict
//! line; and the JSON and JUnit files the command line asks for.

use analyzer::report::{self as log_report, Context};
use engine::report;
use engine::write_file;
use engine::Checks;
use engine::Judgement;
use engine::Plan;

use crate::error::ScenarioError;
use crate::judge::{Evidence, Verdict};
use crate::spec::Loaded;
use crate::stage::Stage;

/// What the report calls the balancer's log.
const LOG_NAME: &str = "the balancer's access log";

/// How the analyzer's report of the balancer's log describes it.
fn context<'a>(v: &'a Verdict, inputs: &'a [String]) -> Context<'a> {
    Context {
        inputs,
        format: "lbkit",
        detected: false,
        timing: Some("$request_time"),
        has_node: true,
        expected: v.expected.as_deref(),
        notes: &v.notes,
    }
}

/// The scenario's title: its name, else its file.
pub fn title(loaded: &Loaded) -> String {
    (loaded.scenario.name.clone()).unwrap_or_else(|| loaded.file.display().to_string())
}

/// What the scenario judged, with what it saw.
pub struct Judged<'a> {
    pub loaded: &'a Loaded,
    pub stage: &'a Stage,
    pub plan: &'a Plan,
    pub run: &'a Evidence<'a>,
    /// A line per event that happened.
    pub happened: &'a [String],
    pub verdict: &'a Verdict,
    pub interrupted: bool,
}

/// The whole report, ending in the verdict line.
pub fn text(j: &Judged<'_>) -> String {
    let (loaded, stage, plan, run, happened, v) =
        (j.loaded, j.stage, j.plan, j.run, j.happened, j.verdict);
    let s = &loaded.scenario;
    let title = title(loaded);
    let checks = &v.judgement.checks;
    let mut out = String::new();
    out.push_str(&format!("Scenario: {title}\n"));
    if let Some(d) = &s.description {
        out.push_str(&format!("{}\n", d.trim()));
    }
    for (i, name) in loaded.names.iter().enumerate() {
        out.push_str(&format!("  backend {name} = {}\n", stage.addrs[i]));
    }
    out.push('\n');
    out.push_str(report::ab(plan, &run.ran.stats, run.ran.elapsed).trim_start_matches('\n'));
    out.push_str(&report::beyond(plan, &run.ran.stats));
    out.push_str(&report::streams(plan, &run.ran.stats, run.ran.elapsed));
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
    let cx = context(v, &inputs);
    match run.log {
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

/// The JSON and JUnit files `--json` and `--junit` ask for.
pub fn files(j: &Judged<'_>, extra: &Checks) -> Result<(), ScenarioError> {
    let (loaded, plan, run, v) = (j.loaded, j.plan, j.run, j.verdict);
    let s = &loaded.scenario;
    let title = title(loaded);
    let checks = &v.judgement.checks;
    let inputs = [LOG_NAME.to_string()];
    let cx = context(v, &inputs);
    if let Some(path) = &extra.json_file {
        let json = serde_json::json!({
            "tool": "loadgen",
            "scenario": title,
            "file": loaded.file.display().to_string(),
            "expect_failure": s.expect_failure,
            "ok": v.judgement.held(),
            "checks": checks.iter().map(|c| serde_json::json!({"check": c.name, "ok": c.ok, "measured": c.measured, "line": c.line})).collect::<Vec<_>>(),
            "load": report::json(plan, &run.ran.stats, run.ran.elapsed, checks),
            "log": run.log.map(|sum| analyzer::export::json_value(sum, &cx, checks)),
        });
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    if let Some(path) = &extra.junit {
        let suite = format!("scenario {title}");
        write_file("--junit", path, analyzer::export::junit(&suite, checks))?;
    }
    Ok(())
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
