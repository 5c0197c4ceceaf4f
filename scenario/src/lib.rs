//! `loadgen --scenario FILE`: stage the scenario's mock backends and its
//! balancer ([`stage`]: the reference in this process, or real nginx on a
//! rewritten copy of the user's config), drive its load with the engine
//! while its timed events happen ([`events`]), read the balancer's access
//! log with the analyzer, judge the expectations ([`judge`]), print one
//! report ([`report`]), and stop everything. With several engines the
//! scenario runs on each in turn, and they must agree ([`agree`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), scenario::ScenarioError> {
//! let outcome = scenario::run(
//!     std::path::Path::new("scenarios/quickstart.toml"),
//!     None,
//!     true,
//!     &engine::Checks::default(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

mod agree;
mod conf;
mod daemon;
mod error;
mod events;
mod expectations;
mod figures;
#[cfg(test)]
mod fuzz;
mod haproxy;
mod haproxy_conf;
mod html;
mod judge;
mod load;
mod methods;
mod nginx;
mod nginx_conf;
mod report;
mod requests;
pub mod spec;
mod stage;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::Rows;
use engine::Target;

use engine::{drive, Checks, Outcome};

pub use error::ScenarioError;
use events::Events;
use judge::Evidence;
use spec::{Engine, Loaded};
use stage::Stage;

/// Runs a scenario file, on `engines` (a comma-separated list) instead of
/// its own when given. `Err` is bad input (exit 2): nothing has started
/// yet, or it could not start.
pub async fn run(
    path: &Path,
    engines: Option<&str>,
    quiet: bool,
    extra: &Checks,
) -> Result<Outcome, ScenarioError> {
    let mut loaded = spec::load(path, engines)?;
    expectations::check_extra(&loaded, &extra.thresholds)?;
    if loaded.scenario.compare.is_some() {
        return compare_methods(&mut loaded, quiet, extra).await;
    }
    if loaded.scenario.sweep.is_some() {
        return sweep(&loaded, quiet, extra).await;
    }
    // Every engine is set up once before any load, so a config one of them
    // refuses (nginx -t) is exit 2 with nothing run.
    for &engine in loaded.engines.iter().skip(1) {
        Stage::start(&loaded, engine, None).await?.halt().await;
    }
    let mut runs = Vec::new();
    for &engine in &loaded.engines {
        let before = runs.last().map(|r: &EngineRun| &r.stage);
        let one = run_on(&loaded, engine, before, quiet, extra, None).await?;
        let interrupted = one.interrupted;
        runs.push(one);
        if interrupted {
            break;
        }
    }
    let judged: Vec<report::Judged<'_>> = runs.iter().map(|r| r.judged(&loaded)).collect();
    let several = loaded.engines.len() > 1;
    let mut last = String::new();
    for (i, j) in judged.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let text = report::text(j, several);
        print!("{text}");
        last = last_line(&text);
    }
    let compared = (several && judged.len() > 1).then(|| {
        let sides: Vec<agree::Side<'_>> = judged.iter().map(report::side).collect();
        agree::compare(&sides)
    });
    let agreement = compared.as_ref().map(|(_, check)| check);
    let ended = report::outcome(&loaded, &judged, agreement);
    let mut side_by_side = None;
    if let Some((table, check)) = &compared {
        println!();
        let text = report::side_by_side(&loaded, &judged, table, check, &ended);
        print!("{text}");
        last = last_line(&text);
        side_by_side = Some(("The engines side by side".to_string(), text));
    }
    report::files(&judged, agreement, &ended, extra)?;
    if let Some(path) = &extra.html {
        let verdict = (matches!(ended, Outcome::Done), last);
        report::html_file(path, &html::page(&judged, side_by_side, verdict))?;
    }
    Ok(ended)
}

/// `[compare] methods`: the scenario under each method in turn, on its
/// one engine, each reported as a run is; then the methods side by side
/// and the best by the objective.
async fn compare_methods(
    loaded: &mut Loaded,
    quiet: bool,
    extra: &Checks,
) -> Result<Outcome, ScenarioError> {
    let compare = loaded.scenario.compare.as_ref().expect("checked").get_ref();
    let methods = compare.methods.clone();
    let expect_best = compare.expect_best.clone();
    let objective = compare.objective.as_deref().unwrap_or("mean");
    let objective = methods::Objective::parse(objective).expect("checked");
    let engine = loaded.engines[0];
    let mut runs: Vec<EngineRun> = Vec::new();
    for m in &methods {
        loaded.scenario.balancer.method = Some(m.clone());
        let before = runs.last().map(|r| &r.stage);
        let one = run_on(loaded, engine, before, quiet, extra, Some(m)).await?;
        let interrupted = one.interrupted;
        runs.push(one);
        if interrupted {
            break;
        }
    }
    loaded.scenario.balancer.method = None;
    let loaded = &*loaded;
    let judged: Vec<report::Judged<'_>> = runs.iter().map(|r| r.judged(loaded)).collect();
    for (i, j) in judged.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", report::text(j, true));
    }
    // Each method's own outcome first: an interruption or missing evidence
    // in any run is the comparison's.
    let each = report::outcome_each(&judged);
    let rows: Vec<methods::Row> = judged.iter().map(report::method_row).collect();
    let order = methods::rank(&rows, objective);
    let verdict = methods::verdict(&rows, &order, objective, &expect_best);
    let title = report::title(loaded);
    println!("\nScenario: {title}, the methods side by side\n");
    let table = methods::table(&rows, &order, objective);
    print!("{table}");
    println!();
    let ended = match each {
        Some(o) => o,
        None if runs.len() < methods.len() => Outcome::Interrupted,
        None => match verdict {
            methods::Verdict::Best(_) => Outcome::Done,
            methods::Verdict::NoFigure => Outcome::Missing(format!(
                "[compare] objective: {} needs streams, and the load had none",
                objective.describe()
            )),
            _ => Outcome::Breached,
        },
    };
    let last = match &ended {
        Outcome::Interrupted => {
            format!("✗ scenario {title}: interrupted; the figures above cover what ran")
        }
        Outcome::Missing(why) | Outcome::NoAnswer(why) => {
            format!("✗ scenario {title}: no verdict: {why}")
        }
        _ => methods::line(&title, &rows, &order, objective, &verdict),
    };
    println!("{last}");
    let best = match verdict {
        methods::Verdict::Best(b) | methods::Verdict::Unexpected(b) => {
            Some(rows[b].method.as_str())
        }
        _ => None,
    };
    report::method_files(&judged, &rows, &order, objective, best, &ended, extra)?;
    if let Some(path) = &extra.html {
        let compared = Some(("The methods side by side".to_string(), table));
        let verdict = (matches!(ended, Outcome::Done), last);
        report::html_file(path, &html::page(&judged, compared, verdict))?;
    }
    Ok(ended)
}

/// A report's last line: its verdict.
fn last_line(text: &str) -> String {
    text.trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// Connections a rate sweep runs on unless `[load] concurrency` says, as
/// loadgen's `--sweep`: enough that a slow step does not hold arrivals.
const SWEEP_CONNECTIONS: usize = 256;

/// `[sweep]`: the scenario's backends and balancer staged once, then the
/// steps of the sweep through it, each judged by `[expect] thresholds`
/// (and `--threshold`) on what clients saw.
async fn sweep(loaded: &Loaded, quiet: bool, extra: &Checks) -> Result<Outcome, ScenarioError> {
    let spec = loaded.scenario.sweep.as_ref().expect("checked").get_ref();
    let sweep = spec.sweep().expect("checked");
    let settings = engine::sweep::Settings {
        sweep,
        step: spec.step_duration.map_or(Duration::from_secs(5), |d| d.0),
        warmup: spec.warmup.map_or(Duration::from_secs(1), |d| d.0),
        min_capacity: spec.min_capacity,
    };
    let mut plan = load::plan(loaded, requests::build(loaded)?)?;
    let mut stage = staged(loaded, loaded.engines[0], None, &mut plan, quiet).await?;
    if sweep.swept == engine::sweep::Swept::Rate {
        plan.concurrency = loaded
            .scenario
            .load
            .concurrency
            .unwrap_or(SWEEP_CONNECTIONS);
    }
    // Clients name a node by its address: a threshold names it as the
    // scenario does.
    let by_address = |t: &analyzer::Threshold| {
        let mut t = t.clone();
        if let Some(i) = t
            .node
            .as_ref()
            .and_then(|n| loaded.names.iter().position(|m| m == n))
        {
            t.node = Some(stage.addrs[i].clone());
        }
        t
    };
    let file = loaded
        .scenario
        .expect
        .thresholds
        .iter()
        .map(|t| &t.get_ref().0);
    let checks = Checks {
        thresholds: file.chain(&extra.thresholds).map(by_address).collect(),
        json_file: extra.json_file.clone(),
        html: extra.html.clone(),
        ..Checks::default()
    };
    let target = stage.target;
    let ended = engine::sweep::run(plan, target, &checks, &settings, true).await;
    stage.halt().await;
    Ok(ended?)
}

/// One engine's run of the scenario, kept for the report.
struct EngineRun {
    stage: Stage,
    plan: Arc<engine::Plan>,
    ran: engine::Ran,
    happened: events::Happened,
    log: Option<analyzer::Summary>,
    verdict: judge::Verdict,
    interrupted: bool,
    /// The method it ran under, in a comparison of methods.
    method: Option<String>,
}

impl EngineRun {
    fn judged<'a>(&'a self, loaded: &'a Loaded) -> report::Judged<'a> {
        report::Judged {
            loaded,
            stage: &self.stage,
            plan: &self.plan,
            ran: &self.ran,
            log: self.log.as_ref(),
            happened: &self.happened.lines,
            marks: &self.happened.marks,
            verdict: &self.verdict,
            interrupted: self.interrupted,
            method: self.method.as_deref(),
        }
    }
}

/// Stages the scenario on `engine`, drives its load and events, stops
/// everything and judges what it saw.
async fn run_on(
    loaded: &Loaded,
    engine: Engine,
    before: Option<&Stage>,
    quiet: bool,
    extra: &Checks,
    method: Option<&str>,
) -> Result<EngineRun, ScenarioError> {
    let mut plan = load::plan(loaded, requests::build(loaded)?)?;
    let mut stage = staged(loaded, engine, before, &mut plan, quiet).await?;
    let plan = Arc::new(plan);
    let events = Events::start(loaded, &stage);
    let ran = drive(plan.clone(), stage.target, Arc::new(Rows::none()), quiet).await;
    let happened = events.finish();
    let interrupted = ran.interrupted;
    let log = stage.stop().await?;
    let evidence = Evidence {
        ran: &ran,
        pacing: plan.pacing,
        log: log.as_ref(),
        revived: &happened.revived,
    };
    let verdict = judge::judge(loaded, &stage, &evidence, extra);
    Ok(EngineRun {
        stage,
        plan,
        ran,
        happened,
        log,
        verdict,
        interrupted,
        method: method.map(str::to_string),
    })
}

/// Stages the scenario on `engine` and points `plan` at its balancer, the
/// backends named as the scenario names them.
async fn staged(
    loaded: &Loaded,
    engine: Engine,
    before: Option<&Stage>,
    plan: &mut engine::Plan,
    quiet: bool,
) -> Result<Stage, ScenarioError> {
    let stage = Stage::start(loaded, engine, before).await?;
    plan.aim(stage.target);
    plan.node_names = (stage.addrs.iter().cloned())
        .zip(loaded.names.iter().cloned())
        .collect();
    if !quiet {
        eprintln!(
            "scenario {}: {} backends, {} at {}",
            report::title(loaded),
            stage.addrs.len(),
            stage.about,
            stage.target
        );
    }
    Ok(stage)
}

/// `http://host:port[/...]` to a loopback socket address.
fn external(url: &str, key: &str) -> Result<SocketAddr, ScenarioError> {
    let fail = |why: String| ScenarioError::Address {
        key: key.to_string(),
        why,
    };
    // A balancer or node is named by its root; Target wants a path.
    let url = match url.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{url}/"),
        _ => url.to_string(),
    };
    let t = Target::parse(&url).map_err(|e| fail(e.0))?;
    let ip: std::net::IpAddr = match t.host.as_str() {
        "localhost" => [127, 0, 0, 1].into(),
        h => h
            .parse()
            .map_err(|_| fail(format!("{h}: give a loopback IP address")))?,
    };
    if !ip.is_loopback() {
        return Err(fail(format!(
            "{ip}: lbkit only sends traffic to loopback addresses"
        )));
    }
    Ok(SocketAddr::new(ip, t.port))
}
