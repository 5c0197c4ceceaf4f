//! A scenario's `[load]` as the engine's plan, built directly: the count
//! or the time that bounds it, the pacing (closed loop, a rate, rate
//! phases, a replay's timestamps), the request mix and the clients.

use std::net::SocketAddr;

use engine::Slo;
use engine::{Arrival, Pacing, Phase, PhaseLoad};
use engine::{Clients, ClientsVia, Plan};

use crate::error::ScenarioError;
use crate::requests::Mix;
use crate::spec::Loaded;

/// Open-loop runs need workers to spare for late answers.
const OPEN_LOOP_WORKERS: usize = 64;

/// The load of `loaded`, checked before anything starts; [`Plan::aim`] it
/// at the balancer once that has started.
pub fn plan(loaded: &Loaded, mix: Mix) -> Result<Plan, ScenarioError> {
    let load = &loaded.scenario.load;
    let bad = |key: &str, why: String| ScenarioError::Load(format!("{key}: {why}"));
    let mut plan = Plan::to(SocketAddr::from(([127, 0, 0, 1], 0)));
    if load.duration.is_some_and(|d| d.0.is_zero()) {
        return Err(bad("duration", "must be above 0".into()));
    }
    if load.timeout.is_some_and(|d| d.0.is_zero()) {
        return Err(bad("timeout", "must be above 0".into()));
    }
    plan.time_limit = load.duration.map(|d| d.0);
    let timed = plan.time_limit.is_some() || !load.phases.is_empty();
    plan.requests = match (load.requests, &mix.replay_due) {
        (Some(n), _) => n,
        (None, Some(due)) => due.len() as u64,
        // Bounded by time alone: the schedule ends the run.
        (None, None) if timed => u64::MAX,
        (None, None) => mix.variants.len().max(1) as u64,
    };
    plan.concurrency = load
        .concurrency
        .unwrap_or(1)
        .min(usize::try_from(plan.requests).unwrap_or(usize::MAX));
    if let Some(t) = load.timeout {
        plan.timeout = t.0;
    }
    plan.keepalive = load.keepalive;
    // Failover is what scenarios are for: never stop at an error.
    plan.keep_going = true;
    // Templated requests and streams answer with bodies of any length.
    plan.variable_length = true;
    plan.slo = load
        .slo
        .as_deref()
        .map(Slo::parse)
        .transpose()
        .map_err(|why| bad("slo", why.0))?;
    plan.mix = mix.variants;
    plan.phases = load
        .phases
        .iter()
        .map(|p| {
            let p = p.get_ref();
            Phase {
                duration: p.duration.0,
                load: match (p.rate, p.concurrency) {
                    (Some(r), _) => PhaseLoad::Rate {
                        from: r,
                        to: p.ramp_to.unwrap_or(r),
                    },
                    (None, c) => PhaseLoad::Concurrency(c.unwrap_or(1)),
                },
            }
        })
        .collect();
    let rate_phases = plan
        .phases
        .iter()
        .any(|p| matches!(p.load, PhaseLoad::Rate { .. }));
    plan.pacing = match (load.rate, rate_phases, &mix.replay_due) {
        (_, _, Some(due)) => {
            plan.due = due.clone();
            Pacing::Rate(1.0)
        }
        // Open loop: latency counts from when each request was due.
        (_, true, None) => {
            let n: f64 = plan.phases.iter().filter_map(Phase::arrivals).sum();
            let t: f64 = plan.phases.iter().map(|p| p.duration.as_secs_f64()).sum();
            Pacing::Rate(n / t)
        }
        (Some(r), false, None) if r > 0.0 && r.is_finite() => Pacing::Rate(r),
        (Some(r), false, None) => return Err(bad("rate", format!("{r} is not a rate above 0"))),
        (None, false, None) => Pacing::Closed,
    };
    if rate_phases || !plan.due.is_empty() {
        plan.concurrency = plan
            .concurrency
            .max(load.concurrency.unwrap_or(OPEN_LOOP_WORKERS));
    }
    if load.arrival.is_some() && load.rate.is_none() {
        return Err(bad(
            "arrival",
            "needs rate: arrivals are spaced around a rate".into(),
        ));
    }
    plan.arrival = Arrival::parse(load.arrival.as_deref(), load.burstiness, 0)
        .map_err(|e| bad("arrival", e.to_string()))?;
    if let Some(n) = load.clients {
        // Each client in its own /24, so ip_hash tells them all apart.
        plan.clients = Some(Clients {
            via: ClientsVia::ForwardedFor,
            base: u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1)),
            size: n.max(1),
            stride: 256,
            every: 1,
        });
    }
    Ok(plan)
}
