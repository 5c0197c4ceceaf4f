//! `loadgen`: ab's flags (and `--scenario FILE`) in, a report and an exit
//! code out. The work is the engine crate's, and the scenario crate's.

mod cli;
mod compare;
mod merge;

use std::process::ExitCode;

use cli::{run, Opts};
use engine::Outcome;

fn main() -> ExitCode {
    // `loadgen merge RUN.json ...`, `loadgen compare BASE NEW`: a URL is
    // never one of these words.
    let args = || std::env::args_os().skip(1);
    match std::env::args().nth(1).as_deref() {
        Some("merge") => {
            return primitives::parse_flags_from(args())
                .map_or_else(|e| usage(&e), |o| exit(merge::run(o)))
        }
        Some("compare") => {
            return primitives::parse_flags_from(args())
                .map_or_else(|e| usage(&e), |o| exit(compare::run(o)))
        }
        _ => {}
    }
    let opts: Opts = match primitives::parse_flags() {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    let quiet = opts.quiet();
    let threads = match opts.threads() {
        Ok(t) => t,
        Err(e) => return usage(&e),
    };
    let checks = match opts.checks() {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if let Some(file) = opts.scenario() {
        return scenario(file, opts.engine(), quiet, &checks, threads);
    }
    let sweep = match opts.sweep() {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let plan = match opts.plan() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    match runtime(threads) {
        Ok(r) => exit(r.block_on(run(plan, checks, quiet, sweep))),
        Err(e) => usage(&e),
    }
}

#[cfg(feature = "scenario")]
fn scenario(
    file: &std::path::Path,
    engines: Option<&str>,
    quiet: bool,
    checks: &engine::Checks,
    threads: Option<usize>,
) -> ExitCode {
    match runtime(threads) {
        Ok(r) => exit(
            r.block_on(scenario::run(file, engines, quiet, checks))
                .map_err(Into::into),
        ),
        Err(e) => usage(&e),
    }
}

#[cfg(not(feature = "scenario"))]
fn scenario(
    _: &std::path::Path,
    _: Option<&str>,
    _: bool,
    _: &engine::Checks,
    _: Option<usize>,
) -> ExitCode {
    usage(&"--scenario: this loadgen was built without the scenario feature; build it with default features")
}

/// One thread (`--threads 1`): every connection on it, no work stealing
/// and no wake-ups across threads. More: tokio's work-stealing pool.
fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

fn exit(outcome: anyhow::Result<Outcome>) -> ExitCode {
    match outcome {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Breached) => ExitCode::from(1),
        Ok(Outcome::NoAnswer(line)) => {
            eprintln!("loadgen: {line}");
            ExitCode::from(1)
        }
        Ok(Outcome::Missing(line)) => usage(&line),
        Ok(Outcome::Stopped) => {
            eprintln!("loadgen: stopped at the first receive error, as ab does; -r keeps going");
            ExitCode::from(1)
        }
        // The shell's convention for a run ended by Ctrl-C.
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => usage(&format!("{e:#}")),
    }
}

/// Bad usage or an unusable target: one line, exit 2.
fn usage(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("loadgen: error: {e}");
    ExitCode::from(2)
}
