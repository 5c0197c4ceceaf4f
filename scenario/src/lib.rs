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
mod judge;
mod load;
mod nginx;
mod nginx_conf;
mod report;
mod requests;
pub mod spec;
mod stage;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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
    let loaded = spec::load(path, engines)?;
    expectations::check_extra(&loaded, &extra.thresholds)?;
    // Every engine is set up once before any load, so a config one of them
    // refuses (nginx -t) is exit 2 with nothing run.
    for &engine in loaded.engines.iter().skip(1) {
        Stage::start(&loaded, engine, None).await?.halt().await;
    }
    let mut runs = Vec::new();
    for &engine in &loaded.engines {
        let before = runs.last().map(|r: &EngineRun| &r.stage);
        let one = run_on(&loaded, engine, before, quiet, extra).await?;
        let interrupted = one.interrupted;
        runs.push(one);
        if interrupted {
            break;
        }
    }
    let judged: Vec<report::Judged<'_>> = runs.iter().map(|r| r.judged(&loaded)).collect();
    let several = loaded.engines.len() > 1;
    for (i, j) in judged.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", report::text(j, several));
    }
    let compared = (several && judged.len() > 1).then(|| {
        let sides: Vec<agree::Side<'_>> = judged.iter().map(report::side).collect();
        agree::compare(&sides)
    });
    let agreement = compared.as_ref().map(|(_, check)| check);
    let ended = report::outcome(&loaded, &judged, agreement);
    if let Some((table, check)) = &compared {
        println!();
        let text = report::side_by_side(&loaded, &judged, table, check, &ended);
        print!("{text}");
    }
    report::files(&judged, agreement, &ended, extra)?;
    Ok(ended)
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
            verdict: &self.verdict,
            interrupted: self.interrupted,
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
) -> Result<EngineRun, ScenarioError> {
    let mut plan = load::plan(loaded, requests::build(loaded)?)?;
    let mut stage = Stage::start(loaded, engine, before).await?;
    plan.aim(stage.target);
    let plan = Arc::new(plan);
    if !quiet {
        eprintln!(
            "scenario {}: {} backends, {} at {}",
            report::title(loaded),
            stage.addrs.len(),
            stage.about,
            stage.target
        );
    }
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
    })
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
