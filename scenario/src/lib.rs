//! `loadgen --scenario FILE`: stage the scenario's mock backends and the
//! reference balancer in this process ([`stage`]), drive its load with the
//! engine while its timed events happen ([`events`]), read the balancer's
//! access log with the analyzer, judge the expectations ([`judge`]), print
//! one report ([`report`]), and stop everything.
//!
//! ```no_run
//! # async fn f() -> Result<(), scenario::ScenarioError> {
//! let outcome = scenario::run(
//!     std::path::Path::new("scenarios/quickstart.toml"),
//!     true,
//!     &engine::Checks::default(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

mod conf;
mod error;
mod events;
mod expectations;
mod figures;
mod judge;
mod load;
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
use stage::Stage;

/// Runs a scenario file. `Err` is bad input (exit 2): nothing has started
/// yet, or it could not start.
pub async fn run(path: &Path, quiet: bool, extra: &Checks) -> Result<Outcome, ScenarioError> {
    let loaded = spec::load(path)?;
    expectations::check_extra(&loaded, &extra.thresholds)?;
    let mut plan = load::plan(&loaded, requests::build(&loaded)?)?;
    let mut stage = Stage::start(&loaded).await?;
    plan.aim(stage.target);
    let plan = Arc::new(plan);
    if !quiet {
        eprintln!(
            "scenario {}: {} backends, balancer at {}",
            report::title(&loaded),
            stage.addrs.len(),
            stage.target
        );
    }
    let events = Events::start(&loaded, &stage);
    let ran = drive(plan.clone(), stage.target, Arc::new(Rows::none()), quiet).await;
    let happened = events.finish();
    let interrupted = ran.interrupted;
    let log = stage.stop().await?;
    let run = Evidence {
        ran: &ran,
        pacing: plan.pacing,
        log: log.as_ref(),
        revived: &happened.revived,
    };
    let verdict = judge::judge(&loaded, &stage, &run, extra);
    let judged = report::Judged {
        loaded: &loaded,
        stage: &stage,
        plan: &plan,
        run: &run,
        happened: &happened.lines,
        verdict: &verdict,
        interrupted,
    };
    print!("{}", report::text(&judged));
    report::files(&judged, extra)?;
    Ok(engine::outcome(interrupted, false, &verdict.judgement))
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
