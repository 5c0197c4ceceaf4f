use std::process::ExitCode;

use loadgen::cli::{run, Opts, Outcome};

fn main() -> ExitCode {
    let opts: Opts = match primitives::parse_flags() {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    let quiet = opts.quiet();
    let checks = match opts.checks() {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if let Some(file) = opts.scenario() {
        return match runtime() {
            Ok(r) => exit(r.block_on(loadgen::scenario::run(file, quiet, &checks))),
            Err(e) => usage(&e),
        };
    }
    let plan = match opts.plan() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    match runtime() {
        Ok(r) => exit(r.block_on(run(plan, checks, quiet))),
        Err(e) => usage(&e),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
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
