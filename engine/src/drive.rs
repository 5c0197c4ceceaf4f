//! One run to its end: the engine on the current runtime, progress on
//! stderr, and Ctrl-C or SIGTERM stopping it with what was measured kept.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::files::Rows;
use crate::plan::Plan;
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::worker;

/// ab's heartbeat: a progress line every tenth of the run, at least every
/// 100 requests, for runs of more than 150.
fn heartbeat(requests: u64) -> Option<u64> {
    (requests > 150).then(|| (requests / 10).max(100))
}

/// After Ctrl-C, how long requests in flight may take to finish.
const INTERRUPT_GRACE: Duration = Duration::from_millis(700);

/// How a run went, once it is over.
pub struct Ran {
    pub stats: Stats,
    pub elapsed: Duration,
    /// When it began, by the wall clock: shards' spans are joined by it.
    pub started: SystemTime,
    /// Ctrl-C ended it early.
    pub interrupted: bool,
    /// It stopped at a receive error, as ab does without -r.
    pub stopped: bool,
}

/// Runs a plan to its end with progress on stderr (a bar for people, ab's
/// "Completed N requests" lines for logs); Ctrl-C stops sending and lets
/// requests in flight finish, as ab does, so nothing measured is lost.
pub async fn drive(plan: Arc<Plan>, addr: SocketAddr, rows: Arc<Rows>, quiet: bool) -> Ran {
    if let Some(at) = plan.start_at {
        if !wait_until(at, quiet).await {
            return Ran {
                stats: Stats::default(),
                elapsed: Duration::ZERO,
                started: SystemTime::now(),
                interrupted: true,
                stopped: false,
            };
        }
    }
    // The wall-clock time the schedule counts from: --start-at's when it
    // is given (a late shard catches up rather than drifts).
    let started = plan.start_at.unwrap_or_else(SystemTime::now);
    let schedule = Arc::new(Schedule::new(&plan));
    let own = schedule.bounds().0;
    let progress = match (quiet, std::io::stderr().is_terminal()) {
        (true, _) => None,
        (false, true) => Some(tokio::spawn(progress_bar(schedule.clone()))),
        (false, false) => {
            heartbeat(own).map(|every| tokio::spawn(progress_lines(schedule.clone(), every)))
        }
    };
    let mut running = tokio::spawn(worker::run(
        plan.clone(),
        schedule.clone(),
        addr,
        rows.clone(),
    ));
    let (stats, interrupted) = tokio::select! {
        stats = &mut running => (joined(stats), false),
        // Ctrl-C, or SIGTERM (what CI runners send on a timeout).
        _ = primitives::stop_signal() => {
            schedule.stop.store(true, Relaxed);
            // Requests in flight get a moment to finish, as in ab; one
            // stuck on a silent server is then given up.
            tokio::select! {
                stats = &mut running => (joined(stats), true),
                () = tokio::time::sleep(INTERRUPT_GRACE) => {
                    schedule.abandon.notify_one();
                    (joined(running.await), true)
                }
            }
        }
    };
    let elapsed = schedule.started().elapsed();
    schedule.finished.store(true, Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    if !quiet && heartbeat(own).is_some() {
        eprintln!("Finished {} requests", stats.complete);
    }
    rows.flush();
    Ran {
        stats,
        elapsed,
        started,
        interrupted,
        stopped: schedule.stop.load(Relaxed) && !interrupted,
    }
}

/// Waits for `--start-at`; `false` when Ctrl-C came first.
async fn wait_until(at: SystemTime, quiet: bool) -> bool {
    let Ok(wait) = at.duration_since(SystemTime::now()) else {
        return true; // past already: begin at once
    };
    if !quiet {
        eprintln!("Waiting {:.1} s for --start-at", wait.as_secs_f64());
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = primitives::stop_signal() => false,
    }
}

/// The engine's figures; a panic in it (a bug) goes on up as one.
fn joined(r: Result<Stats, tokio::task::JoinError>) -> Stats {
    r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A bar with rate, elapsed time, time left and errors; a time-limited run
/// counts its time instead of its requests.
async fn progress_bar(schedule: Arc<Schedule>) {
    use indicatif::{ProgressBar, ProgressStyle};
    let (requests, deadline) = schedule.bounds();
    let bar = match deadline {
        Some(end) => ProgressBar::new(
            end.saturating_duration_since(schedule.started())
                .as_millis() as u64,
        ),
        None => ProgressBar::new(requests),
    };
    let template = "{bar:40} {pos}/{len} {per_sec} elapsed {elapsed} eta {eta} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    while !schedule.finished.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = schedule.completed.load(Relaxed);
        match deadline {
            Some(_) => bar.set_position(schedule.started().elapsed().as_millis() as u64),
            None => bar.set_position(done),
        }
        bar.set_message(format!(
            "requests {done}, errors {}",
            schedule.failed.load(Relaxed)
        ));
    }
    bar.finish_and_clear();
}

async fn progress_lines(schedule: Arc<Schedule>, every: u64) {
    let mut next = every;
    loop {
        let finished = schedule.finished.load(Relaxed);
        while schedule.completed.load(Relaxed) >= next {
            eprintln!("Completed {next} requests");
            next += every;
        }
        if finished {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
