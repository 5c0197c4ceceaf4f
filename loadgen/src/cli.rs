//! The `loadgen` command line: ab's flags (same letters, same meanings),
//! plus the long flags for what ab never had.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;

use analyzer::parse_weights;
use analyzer::{Metric, Threshold, Tool};
use engine::saved::{Asked, Saved};
use engine::sweep::Sweep;
use engine::{drive, report, Checks, Outcome, Ran};
use engine::{judge, outcome, RunFigures};
use engine::{write_csv, write_file, Rows};
use engine::{Flags, Plan, PlanError};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "An ab-compatible load generator that also reports which node served each request.",
    after_help = "Examples:\n  loadgen -n 1000 -c 10 http://127.0.0.1:8080/\n  loadgen -n 500 -c 50 -p chat.json -T application/json http://127.0.0.1:8080/chat\n  loadgen -t 10 -c 20 --rate 2000 -k http://127.0.0.1:8080/",
    disable_help_flag = true
)]
pub struct Opts {
    /// ab's flags and loadgen's own that shape the load.
    #[command(flatten)]
    flags: Flags,
    /// File containing data to POST; remember also to set -T
    #[arg(short = 'p', value_name = "postfile")]
    post: Option<PathBuf>,
    /// File containing data to PUT; remember also to set -T
    #[arg(short = 'u', value_name = "putfile")]
    put: Option<PathBuf>,
    /// Do not show progress when doing more than 150 requests
    #[arg(short = 'q')]
    quiet: bool,
    #[command(flatten)]
    files: Files,
    /// Write a CSV of the time within which each percentage of requests was served
    #[arg(short = 'e', value_name = "csvfile")]
    csv: Option<PathBuf>,
    /// Write all measured values out as a 'gnuplot' or TSV file, a line per request
    #[arg(short = 'g', value_name = "gnuplot-file")]
    gnuplot: Option<PathBuf>,
    /// Write a line per request (time, status, latency, bytes, node) that
    /// `analyzer --format loadgen` reads
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// A k6-style check on the run, e.g. 'p(95)<500ms', 'error_rate<1%',
    /// 'p(99){node=127.0.0.1:8002}<800ms'; repeatable; exit 1 when one fails
    #[arg(long, value_name = "EXPR")]
    threshold: Vec<String>,
    /// The share each node should get, as name=weight,...; a chi-square test
    /// of the per-node counts against it, exit 1 when it fails
    #[arg(long, value_name = "NODE=W,...")]
    expect_weights: Option<String>,
    /// Threads that drive the load: 1 runs every connection on one thread
    /// (as wrk -t1), more spread them over a work-stealing pool
    /// [default: the number of cores]
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Find the capacity: steps of growing load, rate=LOW..HIGH (open loop;
    /// -c bounds the connections, 256 by default) or concurrency=LOW..HIGH,
    /// up to the highest at which every --threshold holds
    #[arg(long, value_name = "WHAT=LOW..HIGH", conflicts_with_all = [
        "requests", "time_limit", "rate", "max_concurrency", "shard", "shard_from_env",
        "start_at", "csv", "gnuplot", "log",
    ])]
    sweep: Option<String>,
    /// With --sweep: how long each step is measured [default: 5s]
    #[arg(long, value_name = "TIME", requires = "sweep")]
    step_duration: Option<String>,
    /// With --sweep: the load each step runs first, not measured [default: 1s]
    #[arg(long, value_name = "TIME", requires = "sweep")]
    warmup: Option<String>,
    /// With --sweep: exit 1 unless the capacity found is at least this
    #[arg(long, value_name = "N", requires = "sweep")]
    min_capacity: Option<f64>,
    /// Print help
    #[arg(short = 'h', long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run a scenario file instead: start its mock backends and its
    /// balancer (the reference in this process, or real nginx on the
    /// user's config), drive its load and events, and check its
    /// expectations (see scenarios/README.md). --threshold, --json,
    /// --junit, --engine and -q apply; the load is the file's.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "url", "requests", "concurrency", "time_limit", "timeout", "post", "put",
        "content_type", "headers", "cookies", "basic_auth", "keepalive", "method",
        "head", "keep_going", "variable_length", "proxy", "rate", "node_headers",
        "node_field", "forwarded_for_pool", "source_ips", "output", "csv",
        "gnuplot", "log", "stream", "slo", "arrival", "burstiness", "seed",
        "expect_weights", "dataset", "input_len", "output_len", "range_ratio",
        "prefix_len", "model", "max_concurrency",
        // A scenario stages its own backends and balancer: there is no
        // shared load for shards of it to split.
        "shard", "shard_from_env", "shards", "start_at", "sweep",
    ])]
    scenario: Option<PathBuf>,
    /// With --scenario: run it on these balancers instead of its own
    /// [balancer] engine: reference, nginx, or reference,nginx
    #[arg(long, value_name = "LIST", requires = "scenario")]
    engine: Option<String>,
    /// URL to test: http://host[:port]/path
    #[arg(required_unless_present = "scenario")]
    url: Option<String>,
}

/// A rate sweep's connections unless -c says.
const SWEEP_CONNECTIONS: usize = 256;

/// Where the report goes, a run's or a merge's.
#[derive(Debug, Clone, clap::Args)]
pub struct Files {
    /// Also write the whole report as JSON here (with every histogram in
    /// HdrHistogram's base64 V2 encoding, for `loadgen merge`)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write JUnit XML here, one testcase per check, for CI test tabs
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report here: the verdict, charts
    /// and tables, with nothing loaded from elsewhere
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// text (ab's report and more) or json (the JSON report instead)
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// The thresholds and weights as given, parsed for `tool`; `slo`: whether
/// the run has one (goodput needs it).
pub fn checks(asked: Asked, tool: Tool, slo: bool, files: Files) -> Result<Checks, PlanError> {
    let thresholds: Vec<Threshold> = asked
        .thresholds
        .iter()
        .map(|t| Threshold::parse_for(t, tool))
        .collect::<Result<_, _>>()
        .map_err(|e| PlanError {
            flag: format!("--threshold '{}'", e.expression),
            why: e.why,
        })?;
    if !slo && tool == Tool::Loadgen {
        if let Some(t) = thresholds.iter().find(|t| t.metric == Metric::Goodput) {
            return Err(PlanError {
                flag: format!("--threshold '{}'", t.source),
                why: "goodput is the share of streams that met --slo; give one, e.g. --slo 'ttft<500ms'".into(),
            });
        }
    }
    let expected = match &asked.expect_weights {
        None => None,
        Some(w) => Some(parse_weights(w).map_err(|why| PlanError {
            flag: "--expect-weights".into(),
            why: why.to_string(),
        })?),
    };
    Ok(Checks {
        asked,
        thresholds,
        expected,
        json_output: files.output == "json",
        json_file: files.json,
        junit: files.junit,
        html: files.html,
        csv: None,
        gnuplot: None,
        log: None,
    })
}

fn read(flag: &str, path: &Option<PathBuf>) -> Result<Option<Bytes>, PlanError> {
    match path {
        None => Ok(None),
        Some(p) => std::fs::read(p)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| PlanError {
                flag: flag.to_string(),
                why: format!("cannot read {}: {e}", p.display()),
            }),
    }
}

impl Opts {
    /// The checks the flags ask for, parsed before the run.
    pub fn checks(&self) -> Result<Checks, PlanError> {
        let tool = if self.scenario.is_some() {
            Tool::Scenario
        } else {
            Tool::Loadgen
        };
        let asked = Asked {
            thresholds: self.threshold.clone(),
            expect_weights: self.expect_weights.clone(),
        };
        let mut checks = checks(asked, tool, self.flags.slo.is_some(), self.files.clone())?;
        checks.csv = self.csv.clone();
        checks.gnuplot = self.gnuplot.clone();
        checks.log = self.log.clone();
        Ok(checks)
    }

    /// `--sweep` and the flags that shape it.
    pub fn sweep(&self) -> Result<Option<engine::sweep::Settings>, PlanError> {
        let Some(text) = &self.sweep else {
            return Ok(None);
        };
        let fail = |flag: &str, why: String| PlanError {
            flag: flag.into(),
            why,
        };
        let sweep = Sweep::parse(text).map_err(|why| fail("--sweep", why))?;
        let time = |flag: &str, value: &Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(t) => primitives::parse_duration(t)
                .map_err(|e| fail(flag, format!("'{t}' {e}")))
                .and_then(|d| match d > Duration::from_secs(600) {
                    true => Err(fail(flag, format!("'{t}' is over 10 minutes a step"))),
                    false => Ok(d),
                }),
        };
        let step = time(
            "--step-duration",
            &self.step_duration,
            Duration::from_secs(5),
        )?;
        if step.is_zero() {
            return Err(fail("--step-duration", "must be above 0".into()));
        }
        Ok(Some(engine::sweep::Settings {
            sweep,
            step,
            warmup: time("--warmup", &self.warmup, Duration::from_secs(1))?,
            min_capacity: self.min_capacity,
        }))
    }

    pub fn plan(self) -> Result<Plan, PlanError> {
        let sweeping = self.sweep.is_some();
        let dataset_file = self
            .flags
            .dataset
            .as_ref()
            .filter(|d| *d != "random")
            .map(PathBuf::from);
        let mut flags = self.flags;
        let cacert = flags.transport.cacert.as_ref().map(PathBuf::from);
        flags.transport.cacert_pem = read("--cacert", &cacert)?.map(|b| b.to_vec());
        if sweeping {
            // Each step sets its own load and length; these only pass the
            // checks on a single run.
            flags.requests = Some(u64::MAX / 2);
            flags.concurrency = flags.concurrency.or(Some(SWEEP_CONNECTIONS));
        }
        Flags {
            url: self.url.unwrap_or_default(),
            post: read("-p", &self.post)?,
            put: read("-u", &self.put)?,
            dataset_bytes: read("--dataset", &dataset_file)?,
            index_env: std::env::var(engine::INDEX_VARIABLE).ok(),
            ..flags
        }
        .plan()
    }

    /// The scenario file, when one is given instead of a URL.
    pub fn scenario(&self) -> Option<&std::path::Path> {
        self.scenario.as_deref()
    }

    /// `--engine`: the balancers to run the scenario on.
    pub fn engine(&self) -> Option<&str> {
        self.engine.as_deref()
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// `--threads`, checked.
    pub fn threads(&self) -> Result<Option<usize>, PlanError> {
        match self.threads {
            Some(0) => Err(PlanError {
                flag: "--threads".into(),
                why: "must be at least 1".into(),
            }),
            t => Ok(t),
        }
    }
}

/// Runs a plan, printing ab's report to stdout and progress to stderr, then
/// the checks; or, with a sweep, the steps of one.
pub async fn run(
    plan: Plan,
    checks: Checks,
    quiet: bool,
    sweep: Option<engine::sweep::Settings>,
) -> anyhow::Result<Outcome> {
    let addr = engine::resolve(&plan)
        .await
        .map_err(|e| anyhow::anyhow!("{}: cannot resolve: {e}", plan.target.host))?;
    if let Some(settings) = sweep {
        if checks.thresholds.is_empty() && checks.expected.is_none() {
            anyhow::bail!(
                "--sweep: say what must hold at capacity, e.g. --threshold 'p(99)<500ms' --threshold 'error_rate<1%'"
            );
        }
        return Ok(engine::sweep::run(plan, addr, &checks, &settings, quiet).await?);
    }
    let plan = Arc::new(plan);
    if !checks.json_output {
        say(&format!(
            "This is loadgen {}, an ab-compatible load generator (lbkit)\n",
            env!("CARGO_PKG_VERSION")
        ));
        say("\n");
        let via = plan
            .proxy
            .as_ref()
            .map(|(h, p)| format!("[through {h}:{p}] "))
            .unwrap_or_default();
        say(&format!(
            "Benchmarking {} {via}(be patient)\n",
            plan.target.host
        ));
    }
    let rows = Rows::open(checks.gnuplot.as_ref(), checks.log.as_ref())?;
    let ran = drive(plan.clone(), addr, Arc::new(rows), quiet).await;
    finish(&plan, &checks, ran)
}

/// The report on what was measured (a run's, or shards' merged), the files
/// asked for, and the verdict.
pub fn finish(plan: &Plan, checks: &Checks, ran: Ran) -> anyhow::Result<Outcome> {
    let Ran {
        stats,
        elapsed,
        started,
        interrupted,
        stopped,
    } = ran;
    if let Some(path) = &checks.csv {
        write_csv(path, &stats.total)?;
    }
    let figures = RunFigures {
        stats: &stats,
        elapsed,
        pacing: plan.pacing,
        expected: checks.expected.as_deref(),
    };
    let judgement = judge(&figures, &checks.thresholds);
    let results = &judgement.checks;
    let json = (checks.json_output || checks.json_file.is_some()).then(|| {
        let mut json = report::json(plan, &stats, elapsed, results);
        // Everything measured, so `loadgen merge` can add shards exactly.
        let run = Saved::new(plan, &stats, started, elapsed, checks.asked.clone());
        json["run"] = serde_json::to_value(&run).unwrap_or_default();
        json
    });
    if let (Some(path), Some(json)) = (&checks.json_file, &json) {
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    if let Some(path) = &checks.junit {
        write_file("--junit", path, analyzer::export::junit("loadgen", results))?;
    }
    let ended = outcome(interrupted, stopped, &judgement);
    if let Some(path) = &checks.html {
        let expected = checks.expected.as_deref();
        let page = engine::html::run_page(plan, &stats, elapsed, &judgement, &ended, expected);
        let text = analyzer::html::render(&page).map_err(|e| anyhow::anyhow!("--html: {e}"))?;
        write_file("--html", path, text)?;
    }
    match json.filter(|_| checks.json_output) {
        Some(json) => say(&format!("{json:#}\n")),
        None => {
            say(&report::ab(plan, &stats, elapsed));
            say(&report::beyond(plan, &stats));
            say(&report::streams(plan, &stats, elapsed));
            if !results.is_empty() {
                say("\nChecks\n");
                for c in results {
                    say(&format!("{}\n", c.line));
                }
            }
        }
    }
    Ok(ended)
}

/// Writes to stdout; a reader that went away (`loadgen ... | head`) is not
/// an error worth a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
