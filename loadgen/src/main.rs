use std::process::ExitCode;

use clap::Parser;
use loadgen::cli::{run, Opts, Outcome};

fn main() -> ExitCode {
    let opts = Opts::parse();
    let quiet = opts.quiet();
    let checks = match opts.checks() {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let plan = match opts.plan() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    match runtime.block_on(run(plan, checks, quiet)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Breached) => ExitCode::from(1),
        Ok(Outcome::Stopped) => {
            eprintln!("loadgen: stopped at the first receive error, as ab does; -r keeps going");
            ExitCode::from(1)
        }
        // The shell's convention for a run ended by Ctrl-C.
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => usage(&e),
    }
}

/// Bad usage or an unusable target: one line, exit 2.
fn usage(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("loadgen: error: {e}");
    ExitCode::from(2)
}
