use std::io::Write as _;
use std::process::ExitCode;

mod cli;

use cli::{run, Opts};
use primitives::{parse_flags, parse_flags_from};

fn main() -> ExitCode {
    // `analyzer merge S.json ...`: the same flags, on summaries. A log
    // named merge is ./merge.
    let merge = std::env::args().nth(1).as_deref() == Some("merge");
    let parsed = if merge {
        parse_flags_from(std::env::args_os().skip(1)).map(|o: Opts| Opts { merge: true, ..o })
    } else {
        parse_flags()
    };
    let opts: Opts = match parsed {
        Ok(o) => o,
        Err(e) => return usage(&anyhow::anyhow!(e)),
    };
    let plan = match opts.plan() {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    match run(&plan) {
        Ok(outcome) => {
            // A closed pipe (`analyzer log | head`) is the reader's choice,
            // not an error worth a panic; the exit code still tells.
            let _ = std::io::stdout().write_all(outcome.report.as_bytes());
            // --plot names a directory that need not exist yet.
            if let Some(dir) = &plan.plot {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return usage(&anyhow::anyhow!("--plot {}: {e}", dir.display()));
                }
            }
            for (path, bytes) in &outcome.files {
                if let Err(e) = std::fs::write(path, bytes) {
                    return usage(&anyhow::anyhow!("{}: {e}", path.display()));
                }
            }
            if let Some(missing) = &outcome.missing {
                return usage(&anyhow::anyhow!("{missing}"));
            }
            if outcome.breached() && !plan.report_only {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => usage(&e),
    }
}

/// Bad usage or unreadable input: one line, exit 2.
fn usage(e: &anyhow::Error) -> ExitCode {
    eprintln!("analyzer: error: {e:#}");
    ExitCode::from(2)
}
