//! `loadgen merge RUN.json ...`: the --json files of a run's shards (or of
//! runs of the same load from several machines) added into one run, and
//! that run reported and judged as if one process had made the whole load.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};
use clap::Parser;

use analyzer::Tool;
use engine::saved::{self, Asked, Saved};
use engine::{Outcome, Ran};

use crate::cli::{checks, finish, Files};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen merge",
    about = "Adds the --json files of a run's shards into one run, then reports and judges it as one.",
    after_help = "Example:\n  loadgen merge shard-0.json shard-1.json shard-2.json --threshold 'p(99)<500ms'"
)]
pub struct MergeOpts {
    /// The runs' --json files (all shards of one run)
    #[arg(value_name = "RUN.json", required = true)]
    files: Vec<PathBuf>,
    /// A check on the merged run, as for a run; repeatable. Without any,
    /// the checks the shards were run with
    #[arg(long, value_name = "EXPR")]
    threshold: Vec<String>,
    /// The share each node should get, name=weight,...; without it, the
    /// shards' own
    #[arg(long, value_name = "NODE=W,...")]
    expect_weights: Option<String>,
    #[command(flatten)]
    report: Files,
}

/// Reads a run's --json file: its `run` block.
fn read(path: &PathBuf) -> anyhow::Result<(String, Saved)> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{name}: not JSON: {e}"))?;
    let saved = Saved::from_report(&name, &json).map_err(|e| anyhow!(e))?;
    Ok((name, saved))
}

pub fn run(opts: MergeOpts) -> anyhow::Result<Outcome> {
    let runs: Vec<(String, Saved)> = opts.files.iter().map(read).collect::<Result<_, _>>()?;
    let merged = saved::merge(&runs).map_err(|e| anyhow!("{e}"))?;
    let given = !opts.threshold.is_empty() || opts.expect_weights.is_some();
    let asked = match (given, merged.asked) {
        (true, _) => Asked {
            thresholds: opts.threshold,
            expect_weights: opts.expect_weights,
        },
        (false, Some(asked)) => asked,
        (false, None) => {
            return Err(anyhow!(
                "the runs were checked by different --threshold or --expect-weights; say which apply to the whole"
            ))
        }
    };
    let slo = merged.settings.slo.is_some();
    let checks = checks(asked, Tool::Loadgen, slo, opts.report).map_err(|e| anyhow!("{e}"))?;
    let plan = merged.settings.plan(merged.concurrency);
    if !checks.json_output {
        crate::cli::say(&format!(
            "This is loadgen {}: {} runs of {} merged\n\n",
            env!("CARGO_PKG_VERSION"),
            runs.len(),
            plan.target.host
        ));
    }
    let ran = Ran {
        stats: merged.stats,
        elapsed: merged.elapsed,
        started: merged.started,
        interrupted: false,
        stopped: false,
    };
    finish(&plan, &checks, ran)
}
