use std::process::ExitCode;

use mockbackend::cli::{serve, Opts};

fn main() -> ExitCode {
    let opts: Opts = match primitives::parse_flags() {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let config = match opts.plan() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Every failure is bad usage or an unusable environment: one line, exit 2.
fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mockbackend: error: {e}");
    ExitCode::from(2)
}
