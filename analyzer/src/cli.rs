//! The `analyzer` command: flags to a checked plan, then logs in, report
//! out, and whether anything was breached.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use balancer::UpstreamSpec;
use clap::Parser;

use analyzer::evidence::{self, Missing};
use analyzer::formats::{self, Chosen};
use analyzer::report::{self, Context};
use analyzer::saved::{self, Read, Saved};
use analyzer::{expect, export, html, jsonl, plot};
use analyzer::{seed_alerts, Check, Input, Judged, Summarized, Summary, Threshold};
use analyzer::{Kind, Metric, Timing, Tool};

#[derive(Debug, Parser)]
#[command(
    name = "analyzer",
    version,
    about = "Reads upstream access logs; reports per-node distribution, latency percentiles and threshold breaches (exit 1 on a breach).",
    after_help = "Logs read on several machines (one nginx each, or a log cut in pieces):\n  analyzer node-a.log --summary-out a.json    # on each machine\n  analyzer merge a.json b.json --threshold 'p(99)<500ms'    # judged as one log"
)]
pub struct Opts {
    /// Log files (plain or gzip); `-` reads standard input. Several are read
    /// as one log. After `merge`: summaries that --summary-out wrote.
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

    /// Do not fail when more than 1% of lines do not match the format (the
    /// default check `malformed<=1%`; a --threshold on malformed replaces it).
    #[arg(long)]
    pub allow_malformed: bool,

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

    /// Also write the log's whole summary here (per node counts and
    /// histograms, clients, seconds), for `analyzer merge`.
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,

    /// Also write a self-contained HTML report here: the verdict, charts
    /// (shares, latency CDF and distribution, requests over time) and
    /// tables, with nothing loaded from elsewhere.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// `analyzer merge S.json ...`: the LOG arguments are summaries that
    /// --summary-out wrote, judged together as one log.
    #[arg(skip)]
    pub merge: bool,
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
    pub allow_malformed: bool,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub summary_out: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// The inputs are summaries to merge, not logs.
    pub merge: bool,
}

impl Opts {
    pub fn plan(self) -> anyhow::Result<Plan> {
        if self.merge {
            let log_flags = [
                (self.format != "auto", "--format"),
                (self.log_format.is_some(), "--log-format"),
                (!self.json_fields.is_empty(), "--json-field"),
            ];
            if let Some((_, flag)) = log_flags.iter().find(|(given, _)| *given) {
                bail!("{flag}: merge reads summaries, which say how their logs were read");
            }
        }
        let config = match &self.nginx_conf {
            Some(path) => {
                let name = path.display().to_string();
                std::fs::metadata(path).with_context(|| format!("--nginx-conf {name}"))?;
                Some((balancer::conf::read_file(path)?, name))
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
            (None, _) if self.merge => None,
            (None, Some((c, _))) if self.format == "auto" => {
                // The access_log that wrote the (first) file being read.
                let log = self.logs.first().map_or("-", String::as_str);
                formats::from_config(c, log)?
            }
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
                analyzer::parse_weights(w).map_err(|e| anyhow::anyhow!("--expect-weights: {e}"))?,
            ),
            None => None,
        };
        let thresholds = if self.thresholds.is_empty() {
            seed_alerts()
        } else {
            let parsed: Result<Vec<_>, _> = self
                .thresholds
                .iter()
                .map(|t| Threshold::parse_for(t, Tool::Analyzer))
                .collect();
            // "--threshold 'p95<5ms': no metric 'p95' ..."
            parsed.map_err(|e| anyhow!("--{e}"))?
        };
        Ok(Plan {
            inputs: expand(&self.logs)?,
            format,
            expected,
            upstream,
            thresholds,
            default_thresholds: self.thresholds.is_empty(),
            report_only: self.report_only,
            allow_malformed: self.allow_malformed,
            json: self.json,
            junit: self.junit,
            markdown: self.markdown,
            plot: self.plot,
            summary_out: self.summary_out,
            html: self.html,
            merge: self.merge,
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
    /// Why there is no verdict: a check that could not be computed (exit
    /// 2, after the report). Also a failed check in `checks`, so JSON and
    /// JUnit readers see it.
    pub missing: Option<Missing>,
}

impl Outcome {
    pub fn breached(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }
}

/// What the log is judged by, and what was missing to judge it.
struct Judgement {
    checks: Vec<Check>,
    notes: Vec<String>,
    expected: Option<Vec<(String, f64)>>,
    missing: Option<Missing>,
}

/// Reads every input into one summary and judges it. A log with no
/// lines, or none in the format, is an error; a check that cannot be
/// computed is reported, then `missing`.
pub fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let saved = if plan.merge {
        merged(&plan.inputs)?
    } else {
        logs(plan)?
    };
    let (inputs, read, summary) = (&saved.inputs, &saved.read, &saved.summary);
    let Judgement {
        mut checks,
        notes,
        expected,
        missing,
    } = judge(plan, summary, read);
    if let Some(m) = &missing {
        checks.push(Check::no_evidence(&m.0));
    }
    let cx = Context {
        inputs,
        format: &read.format,
        detected: read.detected,
        timing: read.timing.as_deref(),
        has_node: read.has_node,
        expected: expected.as_deref(),
        notes: &notes,
        names: &[],
    };
    let mut files = Vec::new();
    if let Some(path) = &plan.json {
        files.push((path.clone(), export::json(summary, &cx, &checks).into()));
    }
    if let Some(path) = &plan.junit {
        files.push((path.clone(), export::junit("analyzer", &checks).into()));
    }
    if let Some(path) = &plan.markdown {
        files.push((path.clone(), report::markdown(summary, &cx, &checks).into()));
    }
    if let Some(dir) = &plan.plot {
        for chart in plot::charts(summary, &cx) {
            let stem = chart.file_stem();
            let svg = plot::svg(&chart).map_err(|e| anyhow!("--plot: {stem}.svg: {e}"))?;
            let png = plot::png(&chart).map_err(|e| anyhow!("--plot: {stem}.png: {e}"))?;
            files.push((dir.join(format!("{stem}.svg")), svg));
            files.push((dir.join(format!("{stem}.png")), png));
        }
    }
    if let Some(path) = &plan.summary_out {
        let text = serde_json::to_string(&saved).map_err(|e| anyhow!("--summary-out: {e}"))?;
        files.push((path.clone(), format!("{text}\n").into()));
    }
    if let Some(path) = &plan.html {
        let failed = checks.iter().filter(|c| !c.ok).count();
        let verdict = match &missing {
            Some(m) => (false, format!("✗ no verdict: {}", m.0)),
            None => html::checks_verdict(failed, checks.len()),
        };
        let page = html::log_page(summary, &cx, &checks, verdict);
        let text = html::render(&page).map_err(|e| anyhow!("--html: {e}"))?;
        files.push((path.clone(), text.into()));
    }
    Ok(Outcome {
        report: report::text(summary, &cx, &checks),
        checks,
        files,
        missing,
    })
}

/// Every log read into one summary, with how it was read. A log with no
/// lines, or none in the format, is an error.
fn logs(plan: &Plan) -> anyhow::Result<Saved> {
    let inputs: Vec<String> = plan.inputs.iter().map(Input::name).collect();
    let Summarized {
        summary,
        chosen,
        first_lines,
    } = analyzer::summarize(&plan.inputs, plan.format.clone())?;
    evidence::lines_read(&summary, chosen.as_ref(), &first_lines, &inputs.join(", "))?;
    let chosen = chosen.ok_or_else(|| anyhow!("no format could be chosen"))?;
    let read = Read::of(&chosen, &first_lines);
    Ok(Saved::new(inputs, read, summary))
}

/// `analyzer merge`: the summaries --summary-out wrote, as one.
fn merged(inputs: &[Input]) -> anyhow::Result<Saved> {
    let mut parts = Vec::new();
    for input in inputs {
        let Input::File(path) = input else {
            bail!("merge reads summary files, not standard input");
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
        parts.push((
            name.clone(),
            Saved::parse(&name, &text).map_err(|e| anyhow!(e))?,
        ));
    }
    let whole = saved::merge(parts).map_err(|e| anyhow!(e))?;
    if whole.summary.lines == whole.summary.malformed {
        bail!("the summaries hold no line in their format: nothing to judge");
    }
    Ok(whole)
}

/// The shares test and the thresholds on a log, each with the evidence it
/// needs: a requested check that cannot be computed is `missing`.
fn judge(plan: &Plan, summary: &Summary, read: &Read) -> Judgement {
    let mut notes = Vec::new();
    let has_node = read.has_node;
    let promised = plan.upstream.as_ref().map(|(spec, file)| {
        let e = expect::from_upstream(spec, file, summary);
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
    let fail = |notes, why: String| Judgement {
        checks: Vec::new(),
        notes,
        expected: None,
        missing: Some(Missing(why)),
    };
    let (flag, asked) = match (&promised, &plan.expected) {
        (Some(e), _) => ("--nginx-conf", e.shares().map(<[_]>::to_vec)),
        (None, Some(w)) => ("--expect-weights", Some(w.clone())),
        (None, None) => ("", None),
    };
    if asked.is_some() && !has_node {
        return fail(
            notes,
            format!(
                "{flag}: the shares check needs the node of each line, and format {} has no $upstream_addr; log `to: $upstream_addr` (lbkit's format has it)",
                read.format
            ),
        );
    }
    let seen: Vec<&str> = summary.nodes.keys().map(String::as_str).collect();
    if has_node && seen.is_empty() {
        let hint = if read.json_lines {
            "; if the node is under another key, name it: --json-field upstream_addr=KEY"
        } else {
            ""
        };
        return fail(
            notes,
            format!(
                "no line names the node that answered ({} of {} answered without an upstream): nothing to check shares on{hint}",
                summary.no_upstream,
                summary.lines - summary.malformed
            ),
        );
    }
    let expected = match asked.map(|a| evidence::resolve_expected(flag, &a, &seen)) {
        Some(Ok(e)) => Some(e),
        Some(Err(m)) => return fail(notes, m.0),
        None => None,
    };
    let load_dependent = promised.as_ref().is_some_and(|e| e.shares().is_none());
    let fairness = if has_node && !load_dependent {
        summary.fairness(expected.as_deref())
    } else {
        None
    };
    let mut known = seen.clone();
    known.extend(expected.iter().flatten().map(|(n, _)| n.as_str()));
    let thresholds = match evidence::resolve_thresholds(&plan.thresholds, &known) {
        Ok(t) => t,
        Err(m) => return fail(notes, m.0),
    };
    let judged = Judged {
        summary,
        expected: expected.as_deref(),
    };
    let mut thresholds: Vec<Threshold> = thresholds
        .into_iter()
        // seed 000's table is a default: what the log cannot measure (no
        // timing field) is left out rather than failed.
        .filter(|t| !plan.default_thresholds || t.evaluate(&judged).measured.is_some())
        .collect();
    let malformed_given = thresholds.iter().any(|t| t.metric == Metric::Malformed);
    if !plan.allow_malformed && !malformed_given {
        thresholds.push(Threshold::parse(MALFORMED_DEFAULT).expect("the default parses"));
    }
    let checks = analyzer::judge(fairness, &thresholds, &judged);
    let missing = thresholds
        .iter()
        .find(|t| t.evaluate(&judged).measured.is_none())
        .map(|t| {
            Missing(format!(
                "threshold '{}' cannot be computed: {}",
                t.source,
                unmeasured(t, summary, &read.format)
            ))
        })
        .or_else(|| {
            let nan = checks.iter().find(|c| c.measured.is_some_and(f64::is_nan));
            nan.map(|c| Missing(format!("{}: cannot be computed from these counts", c.name)))
        })
        .or_else(|| evidence::something_checked(&checks, "this run").err());
    Judgement {
        checks,
        notes,
        expected,
        missing,
    }
}

/// Lines that do not match the format are data lost: more than this many
/// fail the run unless a threshold on `malformed` or --allow-malformed
/// says otherwise.
pub const MALFORMED_DEFAULT: &str = "malformed<=1%";

/// Why the log holds no figure for `t`.
fn unmeasured(t: &Threshold, s: &Summary, format: &str) -> String {
    if let Some(node) = &t.node {
        if !s.nodes.contains_key(node) {
            return format!("{node} served no request in the log");
        }
    }
    let timing = "add `rt=$request_time urt=$upstream_response_time` to the log_format (lbkit's format has both)";
    match t.metric {
        Metric::Percentile {
            of: Timing::RequestTime,
            ..
        } => format!("no line of format {format} has $request_time"),
        Metric::Percentile {
            of: Timing::UpstreamTime,
            ..
        } => format!("no line of format {format} has $upstream_response_time"),
        m if m.kind() == Kind::Latency => {
            format!("no line of format {format} says how long the request took; {timing}")
        }
        Metric::Rps => {
            "the log's lines have no time ($time_local, $msec) or all share one instant".into()
        }
        Metric::SplitClients | Metric::SplitShare => {
            "no line names both its client ($remote_addr) and the node that served it".into()
        }
        _ => "the log holds no request for it".into(),
    }
}
