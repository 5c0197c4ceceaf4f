//! The `analyzer` command: flags to a checked plan, then logs in, report
//! out, and whether anything was breached.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use balancer::UpstreamSpec;
use clap::Parser;

use crate::check::{self, Check};
use crate::formats::{self, Chosen, SAMPLE_LINES};
use crate::judged::{seed_alerts, Judged};
use crate::read::Input;
use crate::report::{self, Context};
use crate::scan::{scan, Blocks};
use crate::summary::Summary;
use crate::Threshold;
use crate::{expect, export};
use crate::{jsonl, plot};

#[derive(Debug, Parser)]
#[command(
    name = "analyzer",
    version,
    about = "Reads upstream access logs; reports per-node distribution, latency percentiles and threshold breaches (exit 1 on a breach)."
)]
pub struct Opts {
    /// Log files (plain or gzip); `-` reads standard input. Several are read
    /// as one log.
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<String>,

    /// The log's format: auto (recognised from the first lines), combined,
    /// main, upstream_log, upstream_log_port, lbkit, loadgen, upstreaminfo,
    /// envoy, traefik, haproxy or json (JSON lines).
    #[arg(long, value_name = "NAME", default_value = "auto")]
    pub format: String,

    /// The nginx log_format the log was written with, e.g.
    /// '$remote_addr [$time_local] "$request" $status to: $upstream_addr rt=$request_time'
    /// (prefix `escape=json ` as in nginx.conf).
    #[arg(long, value_name = "FORMAT", conflicts_with = "format")]
    pub log_format: Option<String>,

    /// For JSON lines: the key a field is under, ROLE=KEY[:UNIT] with ROLE
    /// one of upstream_addr, status, request_time, upstream_response_time,
    /// remote_addr, time and UNIT s (default), ms, us or ns; repeatable,
    /// e.g. --json-field upstream_addr=backend --json-field request_time=took:ms.
    /// Without it the nginx names are tried, then common ones (Traefik's
    /// ServiceURL, Duration, ...).
    #[arg(
        long = "json-field",
        value_name = "ROLE=KEY[:UNIT]",
        conflicts_with = "log_format"
    )]
    pub json_fields: Vec<String>,

    /// Expected shares by node, e.g. 127.0.0.1:8001=3,127.0.0.1:8002=2;
    /// equal shares among the nodes seen when absent.
    #[arg(long, value_name = "NODE=W,...", conflicts_with = "nginx_conf")]
    pub expect_weights: Option<String>,

    /// The nginx.conf the log was written under: expected shares come from
    /// its upstream (weights, method, backup and down servers), and the
    /// format from its access_log's log_format unless --format or
    /// --log-format says otherwise.
    #[arg(long, value_name = "FILE")]
    pub nginx_conf: Option<PathBuf>,

    /// Which upstream of --nginx-conf the log is about, when it has several.
    #[arg(long, value_name = "NAME", requires = "nginx_conf")]
    pub upstream: Option<String>,

    /// A k6-style threshold, repeatable: 'p(99)<500ms', 'error_rate<5%',
    /// 'imbalance<10%', 'p(95){node=127.0.0.1:8002}<800ms'. Without any,
    /// seed 000's alert table applies: error_rate<=5%, p(95)<=500ms,
    /// success_rate>=95%.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,

    /// Report breaches but exit 0.
    #[arg(long)]
    pub report_only: bool,

    /// Also write the whole report as JSON (every figure, `ok` per check).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write JUnit XML, one testcase per check, for CI test tabs.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write the report as Markdown, e.g. to $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Also write charts to this directory, as SVG and PNG: share.* (share
    /// per node against expected), latency-cdf.* and over-time.*.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// What to read and how to judge it, checked before any log is opened.
#[derive(Debug)]
pub struct Plan {
    pub inputs: Vec<Input>,
    /// `None`: recognise it from the first lines.
    pub format: Option<Chosen>,
    pub expected: Option<Vec<(String, f64)>>,
    /// The upstream whose promises the log is checked against, and the
    /// file it came from.
    pub upstream: Option<(UpstreamSpec, String)>,
    pub thresholds: Vec<Threshold>,
    /// The thresholds are seed 000's defaults, not the user's: one the log
    /// cannot measure (no timing field) is left out rather than failed.
    pub default_thresholds: bool,
    pub report_only: bool,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

impl Opts {
    pub fn plan(self) -> anyhow::Result<Plan> {
        let config = match &self.nginx_conf {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--nginx-conf {name}"))?;
                Some((balancer::conf::read(&name, &text)?, name))
            }
            None => None,
        };
        let format = match (&self.log_format, &config) {
            (Some(text), _) => Some(formats::custom(text)?),
            (None, _) if !self.json_fields.is_empty() => {
                if !matches!(self.format.as_str(), "auto" | jsonl::NAME) {
                    bail!(
                        "--json-field is for JSON lines, not --format {}",
                        self.format
                    );
                }
                Some(Chosen {
                    name: jsonl::NAME.to_string(),
                    reader: formats::Reader::Json(jsonl::Keys::with(&self.json_fields)?),
                    detected: false,
                })
            }
            (None, Some((c, _))) if self.format == "auto" => formats::from_config(c)?,
            (None, _) => formats::named(&self.format)?,
        };
        let upstream = match &config {
            Some((c, name)) => {
                let spec =
                    expect::upstream(c, self.upstream.as_deref()).map_err(anyhow::Error::msg)?;
                Some((spec.clone(), name.clone()))
            }
            None => None,
        };
        let expected = match &self.expect_weights {
            Some(w) => Some(
                crate::fairness::parse_weights(w)
                    .map_err(|e| anyhow::anyhow!("--expect-weights: {e}"))?,
            ),
            None => None,
        };
        let thresholds = if self.thresholds.is_empty() {
            seed_alerts()
        } else {
            let parsed: Result<Vec<_>, _> = self
                .thresholds
                .iter()
                .map(|t| Threshold::parse(t))
                .collect();
            parsed.context("--threshold")?
        };
        Ok(Plan {
            inputs: expand(&self.logs)?,
            format,
            expected,
            upstream,
            thresholds,
            default_thresholds: self.thresholds.is_empty(),
            report_only: self.report_only,
            json: self.json,
            junit: self.junit,
            markdown: self.markdown,
            plot: self.plot,
        })
    }
}

/// The inputs the LOG arguments name: `-`, files, and glob patterns the
/// shell did not expand (quoted, or from a CI config), in name order.
fn expand(args: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for arg in args {
        let pattern = arg.contains(['*', '?', '[']) && !std::path::Path::new(arg).exists();
        if !pattern {
            inputs.push(Input::from_arg(arg));
            continue;
        }
        let mut found: Vec<PathBuf> = glob::glob(arg)
            .map_err(|e| anyhow!("{arg}: not a usable pattern: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if found.is_empty() {
            bail!("{arg}: no file matches");
        }
        found.sort();
        inputs.extend(found.into_iter().map(Input::File));
    }
    Ok(inputs)
}

/// A finished analysis.
#[derive(Debug)]
pub struct Outcome {
    pub report: String,
    pub checks: Vec<Check>,
    /// The files asked for (--json, --junit, --markdown, --plot) and their
    /// bytes.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl Outcome {
    pub fn breached(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }
}

/// Reads every input into one summary, in the format given or the one the
/// first lines show (returned with it). Errors are about an input as a
/// whole (unreadable, unrecognisable); bad lines are counted.
pub fn summarize(
    inputs: &[Input],
    format: Option<Chosen>,
) -> anyhow::Result<(Summary, Option<Chosen>)> {
    let mut chosen = format;
    let mut summary = Summary::default();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Lines before this input, so the earliest malformed lines of all
    // inputs are the examples kept.
    let mut before = 0;
    for input in inputs {
        let name = input.name();
        let mut reader = input.open().with_context(|| name.clone())?;
        let mut blocks = Blocks::new(&mut *reader);
        let Some(first) = blocks.next_block().with_context(|| name.clone())? else {
            continue;
        };
        let format = match &chosen {
            Some(c) => c,
            None => {
                let sample: Vec<String> = first
                    .split(|b| *b == b'\n')
                    .take(SAMPLE_LINES)
                    .map(|l| {
                        String::from_utf8_lossy(l)
                            .trim_end_matches('\r')
                            .to_string()
                    })
                    .collect();
                let sample: Vec<&str> = sample.iter().map(String::as_str).collect();
                chosen.insert(formats::detect(&sample).with_context(|| name.clone())?)
            }
        };
        let (part, lines) = scan(first, &mut blocks, &format.reader, &name, workers, before)
            .with_context(|| name.clone())?;
        before += lines;
        summary.merge(&part);
    }
    Ok((summary, chosen))
}

/// Reads every input into one summary and judges it.
pub fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let (summary, chosen) = summarize(&plan.inputs, plan.format.clone())?;
    let has_node = chosen.as_ref().is_some_and(|c| c.reader.has_node());
    let timing = chosen.as_ref().and_then(|c| c.reader.timing());
    let mut notes = Vec::new();
    let promised = plan.upstream.as_ref().map(|(spec, file)| {
        let e = expect::from_upstream(spec, file, &summary);
        notes.push(e.describe());
        if expect::is_sticky(spec) {
            let s = summary.stickiness();
            notes.push(format!(
                "Stickiness: {} clients, {} served by more than one node{}.",
                s.clients,
                s.split,
                if s.split > 0 {
                    format!(" (up to {})", s.most_nodes)
                } else {
                    String::new()
                }
            ));
        }
        e
    });
    let expected = match &promised {
        Some(e) => e.shares(),
        None => plan.expected.as_deref(),
    };
    let load_dependent = promised.as_ref().is_some_and(|e| e.shares().is_none());
    let fairness = if has_node && !load_dependent {
        summary.fairness(expected)
    } else {
        None
    };
    let judged = Judged {
        summary: &summary,
        expected,
    };
    let thresholds: Vec<Threshold> = plan
        .thresholds
        .iter()
        .filter(|t| !plan.default_thresholds || t.evaluate(&judged).measured.is_some())
        .cloned()
        .collect();
    let checks = check::judge(fairness, &thresholds, &judged);
    let inputs: Vec<String> = plan.inputs.iter().map(Input::name).collect();
    let cx = Context {
        inputs: &inputs,
        format: chosen
            .as_ref()
            .map_or("none (no lines)", |c| c.name.as_str()),
        detected: chosen.as_ref().is_some_and(|c| c.detected),
        timing,
        has_node,
        expected,
        notes: &notes,
    };
    let mut files = Vec::new();
    if let Some(path) = &plan.json {
        files.push((path.clone(), export::json(&summary, &cx, &checks).into()));
    }
    if let Some(path) = &plan.junit {
        files.push((path.clone(), export::junit(&checks).into()));
    }
    if let Some(path) = &plan.markdown {
        files.push((
            path.clone(),
            report::markdown(&summary, &cx, &checks).into(),
        ));
    }
    if let Some(dir) = &plan.plot {
        for chart in plot::charts(&summary, &cx) {
            let stem = chart.file_stem();
            let svg = plot::svg(&chart).map_err(|e| anyhow!("--plot: {stem}.svg: {e}"))?;
            let png = plot::png(&chart).map_err(|e| anyhow!("--plot: {stem}.png: {e}"))?;
            files.push((dir.join(format!("{stem}.svg")), svg));
            files.push((dir.join(format!("{stem}.png")), png));
        }
    }
    Ok(Outcome {
        report: report::text(&summary, &cx, &checks),
        checks,
        files,
    })
}
