//! A scenario's HTML report (`--html FILE`): the verdict and every check
//! on top; a comparison's table (engines or methods) when there is one;
//! then each run: what clients saw, and the balancer's log with the
//! scenario's events marked on its requests over time.

use analyzer::html::{log_blocks, Block, Page, Section};
use engine::html::run_blocks;

use crate::report::{self, Judged, LOG_NAME};

/// The page; `compared`: the side-by-side table's heading and text;
/// `verdict`: the scenario's last line and whether it held.
pub fn page(
    judged: &[Judged<'_>],
    compared: Option<(String, String)>,
    verdict: (bool, String),
) -> Page {
    let several = judged.len() > 1;
    let Some(first) = judged.first() else {
        return Page::default();
    };
    let loaded = first.loaded;
    let mut about: Vec<String> = loaded.scenario.description.iter().cloned().collect();
    about.push(format!("scenario file {}", loaded.file.display()));
    let mut checks = Vec::new();
    let mut sections = Vec::new();
    if let Some((heading, table)) = compared {
        sections.push(Section {
            heading,
            blocks: vec![Block::Text(table)],
        });
    }
    for j in judged {
        let label = report::label(j);
        let named = |what: &str| match several {
            true => format!("{label}: {what}"),
            false => what.to_string(),
        };
        checks.extend(j.verdict.judgement.checks.iter().map(|c| analyzer::Check {
            line: named(&c.line),
            ..c.clone()
        }));
        let mut run = vec![Block::Note(format!(
            "balancer: {} at {}",
            j.stage.about, j.stage.target
        ))];
        let expected = j.verdict.expected.as_deref();
        run.extend(run_blocks(j.plan, &j.ran.stats, j.ran.elapsed, expected));
        if !j.happened.is_empty() {
            run.push(Block::Text(format!("Events\n{}", j.happened.join("\n"))));
        }
        sections.push(Section {
            heading: named("what clients saw"),
            blocks: run,
        });
        if let Some(sum) = j.log {
            let inputs = [LOG_NAME.to_string()];
            let names = report::names(j);
            let cx = report::context(j.stage, j.verdict, &inputs, &names);
            sections.push(Section {
                heading: named("the balancer's access log"),
                blocks: log_blocks(sum, &cx, j.marks),
            });
        }
    }
    Page {
        title: format!("scenario {}", report::title(loaded)),
        about,
        verdict: Some(verdict),
        checks,
        sections,
    }
}
