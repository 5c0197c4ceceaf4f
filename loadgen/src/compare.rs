//! `loadgen compare BASE NEW`: two runs side by side, each change tested
//! (see engine's compare.rs); `--max-regression 10%` makes a significant
//! worsening beyond 10% exit 1.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};
use clap::Parser;

use engine::compare::{compare, Side};
use engine::{write_file, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen compare",
    about = "Compares two runs (loadgen --json, or analyzer --summary-out) metric by metric, with a significance test for each change.",
    after_help = "Example:\n  loadgen compare main.json branch.json --max-regression 10% --markdown \"$GITHUB_STEP_SUMMARY\""
)]
pub struct CompareOpts {
    /// The run to compare against
    #[arg(value_name = "BASE.json")]
    base: PathBuf,
    /// The run to judge
    #[arg(value_name = "NEW.json")]
    new: PathBuf,
    /// Exit 1 when a figure is significantly worse by more than this
    /// (latency up, error rate up, a node's share moved), e.g. 10%
    #[arg(long, value_name = "PERCENT")]
    max_regression: Option<String>,
    /// Also write the comparison as Markdown here (a CI job's summary)
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report here
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

fn side(path: &PathBuf) -> anyhow::Result<Side> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
    Side::read(&name, &text).map_err(|e| anyhow!(e))
}

/// A percentage, `10%` or `10`, as a fraction.
fn percent(text: &str) -> anyhow::Result<f64> {
    let number = text.trim().trim_end_matches('%');
    number
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
        .map(|p| p / 100.0)
        .ok_or_else(|| anyhow!("--max-regression: '{text}' is not a percentage, e.g. 10%"))
}

pub fn run(opts: CompareOpts) -> anyhow::Result<Outcome> {
    let max = opts.max_regression.as_deref().map(percent).transpose()?;
    let (base, new) = (side(&opts.base)?, side(&opts.new)?);
    let comparison = compare(&base, &new, max);
    if let Some(path) = &opts.markdown {
        write_file("--markdown", path, comparison.markdown())?;
    }
    if let Some(path) = &opts.html {
        let page = comparison.page(&base, &new);
        let text = analyzer::html::render(&page).map_err(|e| anyhow!("--html: {e}"))?;
        write_file("--html", path, text)?;
    }
    crate::cli::say(&comparison.text());
    let regressed = comparison.regressions().next().is_some();
    Ok(if regressed {
        Outcome::Breached
    } else {
        Outcome::Done
    })
}
