//! `loadgen --scenario FILE`: start the scenario's mock backends and the
//! reference balancer in this process, drive its load (with its timed
//! faults), read the balancer's access log with the analyzer, check the
//! expectations, print one report, and stop everything.

pub mod conf;
pub mod expectations;
pub mod figures;
pub mod requests;
pub mod spec;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use analyzer::check::{self, Check};
use analyzer::expect::{self, Expectation};
use analyzer::formats;
use analyzer::judged::Judged;
use analyzer::read::Input;
use analyzer::report::{self as log_report, Context};
use anyhow::{anyhow, Context as _};
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, PortConfig, Server};

use engine::files::{write_file, Rows};
use engine::plan::{Clients, ClientsVia, Flags, Plan, Target};
use engine::report;
use engine::schedule::{Pacing, Phase, PhaseLoad};
use engine::verdict::{self, Judgement, RunFigures};
use engine::{drive, Checks, Outcome, Ran};
use figures::Figures;
use spec::Loaded;

/// Runs a scenario file. `Err` is bad input (exit 2): nothing has started
/// yet, or it could not start.
pub async fn run(path: &Path, quiet: bool, extra: &Checks) -> anyhow::Result<Outcome> {
    let loaded = spec::load(path)?;
    expectations::check_extra(&loaded, &extra.thresholds)?;
    let mix = requests::build(&loaded)?;
    let s = &loaded.scenario;
    let title = s.name.clone().unwrap_or_else(|| path.display().to_string());

    // Backends: one mockbackend server for the in-process ones.
    let local: Vec<usize> = (0..s.backends.len())
        .filter(|i| s.backends[*i].get_ref().url.is_none())
        .collect();
    let servers = if local.is_empty() {
        None
    } else {
        let config = Config {
            ports: local
                .iter()
                .map(|i| PortConfig {
                    port: s.backends[*i].get_ref().port,
                    profile: loaded.profiles[*i].clone(),
                })
                .collect(),
            ..Config::default()
        };
        Some(Arc::new(
            Server::start(config).await.context("[[backend]]")?,
        ))
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for (i, b) in s.backends.iter().enumerate() {
        addrs.push(match &b.get_ref().url {
            Some(url) => {
                external(url).with_context(|| format!("[[backend]] {} url", loaded.names[i]))?
            }
            None => {
                let j = local.iter().position(|l| *l == i).expect("a local backend");
                servers.as_ref().expect("started above").addrs()[j]
            }
        });
    }
    let addr_names: Vec<String> = addrs.iter().map(ToString::to_string).collect();

    // The balancer, unless the scenario tests an external one.
    let work = tempdir()?;
    let log_path = work.join("balancer.log");
    let (proxy, target, config) = match &s.balancer.target {
        Some(url) => (None, external(url).context("[balancer] target")?, None),
        None => {
            let log = log_path.display().to_string();
            let text = match &s.balancer.nginx_conf {
                Some(file) => {
                    let file = relative(&loaded.file, file);
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("[balancer] nginx_conf {}", file.display()))?;
                    conf::with_backends(&text, &loaded.names, &addrs)
                }
                None => conf::render(s, &addrs, &log),
            };
            let mut config =
                balancer::conf::load("[balancer]", &text).map_err(|e| anyhow!("{e}"))?;
            config.access_log = Some(balancer::conf::AccessLog {
                path: log,
                format: "lbkit".into(),
                line: 0,
            });
            let mut options = Options::new(([127, 0, 0, 1], 0).into(), config.clone());
            // Client identities come as X-Forwarded-For from one address.
            options.trust_forwarded_for = true;
            options.grace = Duration::from_secs(5);
            let proxy = Proxy::start(options).await.context("[balancer]")?;
            let addr = proxy.addr();
            (Some(Arc::new(proxy)), addr, Some(config))
        }
    };

    let plan = Arc::new(plan(&loaded, mix, target)?);
    if !quiet {
        eprintln!(
            "scenario {title}: {} backends, balancer at {target}",
            addrs.len()
        );
    }
    let revived = Arc::new(Mutex::new(Vec::new()));
    let happened = Arc::new(Mutex::new(Vec::new()));
    let events = tokio::spawn(events(
        Arc::new(loaded_events(&loaded)),
        servers.clone(),
        proxy.clone(),
        local.clone(),
        addr_names.clone(),
        revived.clone(),
        happened.clone(),
    ));
    let ran = drive(plan.clone(), target, Arc::new(Rows::none()), quiet).await;
    events.abort();
    // Stop everything before judging, whatever happened: the log is
    // complete once the balancer has shut down.
    if let Some(p) = proxy {
        if let Ok(p) = Arc::try_unwrap(p) {
            p.shutdown().await;
        }
    }
    if let Some(s) = servers {
        if let Ok(s) = Arc::try_unwrap(s) {
            s.shutdown().await;
        }
    }
    let Ran {
        stats,
        elapsed,
        interrupted,
        ..
    } = ran;

    let summary = match &config {
        Some(_) => {
            let lbkit = formats::named("lbkit")?;
            Some(analyzer::read::summarize(&[Input::File(log_path.clone())], lbkit)?.summary)
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&work);

    // What the shares should be: by hand, or what the in-process
    // balancer's config promises, or what the backends' weights say an
    // external balancer was configured with.
    let by_name = |weights: Vec<(&String, f64)>| {
        weights
            .into_iter()
            .map(|(name, weight)| {
                let i = loaded
                    .names
                    .iter()
                    .position(|n| n == name)
                    .expect("checked");
                (addr_names[i].clone(), weight)
            })
            .collect::<Vec<_>>()
    };
    let by_hand = match (&s.expect.weights, &s.balancer.target) {
        (Some(w), _) => Some(by_name(w.iter().map(|(n, w)| (n, *w)).collect())),
        (None, Some(_)) if s.expect.shares == Some(true) || expectations::weighted(s) => {
            Some(by_name(
                loaded
                    .names
                    .iter()
                    .zip(&s.backends)
                    .map(|(n, b)| (n, f64::from(b.get_ref().weight.unwrap_or(1))))
                    .collect(),
            ))
        }
        (None, _) => None,
    };
    let want_shares = match &s.balancer.target {
        Some(_) => s.expect.shares.unwrap_or(by_hand.is_some()),
        None => s.expect.shares.unwrap_or(s.events.is_empty()),
    };
    let mut notes = Vec::new();
    let promised: Option<Expectation> = match (&by_hand, &config, &summary) {
        (None, Some(c), Some(sum)) if want_shares && c.upstreams.len() == 1 => {
            let e = expect::from_upstream(&c.upstreams[0], "the scenario's [balancer]", sum);
            notes.push(e.describe());
            Some(e)
        }
        _ => None,
    };
    match (&by_hand, &s.expect.weights) {
        (Some(_), Some(_)) => notes.push("Expected shares from the scenario's [expect] weights.".into()),
        (Some(_), None) => notes.push(
            "Expected shares from the [[backend]] weights the external balancer is configured with, judged from the X-Upstream (or X-Backend) header of each answer.".into(),
        ),
        _ => {}
    }
    let expected = by_hand
        .as_deref()
        .or(promised.as_ref().and_then(|e| e.shares()));
    let revived = revived.lock().map(|r| r.clone()).unwrap_or_default();
    let figures = Figures {
        client: RunFigures {
            stats: &stats,
            elapsed,
            pacing: plan.pacing,
            expected,
        },
        log: summary.as_ref().map(|summary| Judged { summary, expected }),
        names: &loaded.names,
        addrs: &addr_names,
        revived: &revived,
    };
    let fairness = if want_shares && expected.is_some() {
        match &summary {
            Some(sum) => sum.fairness(expected),
            None => figures.client.fairness(),
        }
    } else {
        None
    };
    let thresholds: Vec<_> = s
        .expect
        .thresholds
        .iter()
        .map(|t| t.get_ref().0.clone())
        .chain(extra.thresholds.iter().cloned())
        .collect();
    let shares_found_no_node = want_shares && expected.is_some() && fairness.is_none();
    let mut checks = check::judge(fairness, &thresholds, &figures);
    let no_answer = verdict::no_answer(&stats);
    let missing = if no_answer.is_some() {
        None
    } else if checks.is_empty() {
        Some(
            "this scenario checks nothing: add [expect] thresholds, or shares = true with weights"
                .to_string(),
        )
    } else if shares_found_no_node {
        Some(
            "the shares check found no node: no answer or log line named the node that served it"
                .to_string(),
        )
    } else {
        thresholds
            .iter()
            .find(|t| t.evaluate(&figures).measured.is_none())
            .map(|t| {
                format!(
                    "threshold '{}' cannot be computed: {}",
                    t.source,
                    figures.why_unmeasured(t)
                )
            })
            .or_else(|| {
                checks
                    .iter()
                    .find(|c| c.measured.is_some_and(f64::is_nan))
                    .map(|c| format!("{}: cannot be computed from these counts", c.name))
            })
    };
    if let Some(line) = &no_answer {
        checks.push(Check::no_answer(line));
    }
    if let Some(why) = &missing {
        checks.push(Check::no_evidence(why));
    }

    // The report: ab's view, the balancer's log, the events, the verdict.
    let mut out = String::new();
    out.push_str(&format!("Scenario: {title}\n"));
    if let Some(d) = &s.description {
        out.push_str(&format!("{}\n", d.trim()));
    }
    for (i, name) in loaded.names.iter().enumerate() {
        out.push_str(&format!("  backend {name} = {}\n", addr_names[i]));
    }
    out.push('\n');
    out.push_str(report::ab(&plan, &stats, elapsed).trim_start_matches('\n'));
    out.push_str(&report::beyond(&plan, &stats));
    out.push_str(&report::streams(&plan, &stats, elapsed));
    let happened = happened.lock().map(|h| h.clone()).unwrap_or_default();
    if !s.events.is_empty() {
        out.push_str("\nEvents\n");
        for line in &happened {
            out.push_str(&format!("  {line}\n"));
        }
        if happened.len() < s.events.len() {
            out.push_str(&format!(
                "  ({} more were due after the load ended)\n",
                s.events.len() - happened.len()
            ));
        }
    }
    let inputs = ["the balancer's access log".to_string()];
    let cx = Context {
        inputs: &inputs,
        format: "lbkit",
        detected: false,
        timing: Some("$request_time"),
        has_node: true,
        expected,
        notes: &notes,
    };
    match &summary {
        Some(sum) => {
            out.push('\n');
            out.push_str(&log_report::text(sum, &cx, &checks));
        }
        None => {
            for note in &notes {
                out.push_str(&format!("\n{note}\n"));
            }
            out.push_str("\nChecks\n");
            for c in &checks {
                out.push_str(&format!("{}\n", c.line));
            }
        }
    }
    let judgement = Judgement {
        checks,
        no_answer,
        missing: missing.map(analyzer::evidence::Missing),
    };
    let held = judgement.held();
    out.push('\n');
    out.push_str(&verdict(&title, s.expect_failure, interrupted, &judgement));
    out.push('\n');
    print!("{out}");
    if let Some(path) = &extra.json_file {
        let json = serde_json::json!({
            "tool": "loadgen",
            "scenario": title,
            "file": loaded.file.display().to_string(),
            "expect_failure": s.expect_failure,
            "ok": held,
            "checks": judgement.checks.iter().map(|c| serde_json::json!({"check": c.name, "ok": c.ok, "measured": c.measured, "line": c.line})).collect::<Vec<_>>(),
            "load": report::json(&plan, &stats, elapsed, &judgement.checks),
            "log": summary.as_ref().map(|sum| analyzer::export::json_value(sum, &cx, &judgement.checks)),
        });
        write_file("--json", path, format!("{json:#}\n"))?;
    }
    if let Some(path) = &extra.junit {
        let suite = format!("scenario {title}");
        write_file(
            "--junit",
            path,
            analyzer::export::junit(&suite, &judgement.checks),
        )?;
    }
    Ok(verdict::outcome(interrupted, false, &judgement))
}

/// The scenario's last line: what happened, and what the exit code means.
fn verdict(title: &str, expect_failure: bool, interrupted: bool, j: &Judgement) -> String {
    let checks = &j.checks;
    let failed = checks.iter().filter(|c| !c.ok).count();
    if interrupted {
        return format!("✗ scenario {title}: interrupted; the figures above cover what ran");
    }
    if let Some(line) = &j.no_answer {
        return format!("✗ scenario {title}: {line} (exit 1)");
    }
    if let Some(m) = &j.missing {
        return format!("✗ scenario {title}: no verdict: {m} (exit 2)");
    }
    match (expect_failure, j.held()) {
        (false, true) => format!("✓ scenario {title}: all {} checks held", checks.len()),
        (false, false) => format!("✗ scenario {title}: {failed} of {} checks failed", checks.len()),
        (true, false) => format!(
            "✓ scenario {title}: the verification caught it ({failed} of {} checks failed, as this scenario expects; exit 1)",
            checks.len()
        ),
        (true, true) => format!(
            "✗ scenario {title}: expected the verification to fail, but all {} checks held (exit 0)",
            checks.len()
        ),
    }
}

/// `http://host:port[/...]` to a loopback socket address.
fn external(url: &str) -> anyhow::Result<SocketAddr> {
    // A balancer or node is named by its root; Target wants a path.
    let url = match url.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{url}/"),
        _ => url.to_string(),
    };
    let t = Target::parse(&url).map_err(anyhow::Error::msg)?;
    let ip: std::net::IpAddr = match t.host.as_str() {
        "localhost" => [127, 0, 0, 1].into(),
        h => h
            .parse()
            .map_err(|_| anyhow!("{h}: give a loopback IP address"))?,
    };
    if !ip.is_loopback() {
        return Err(anyhow!(
            "{ip}: lbkit only sends traffic to loopback addresses"
        ));
    }
    Ok(SocketAddr::new(ip, t.port))
}

fn relative(scenario: &Path, file: &str) -> std::path::PathBuf {
    scenario.parent().unwrap_or(Path::new(".")).join(file)
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lbkit-scenario-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}

/// The load as a plan, through ab's flags so the same checks apply.
fn plan(loaded: &Loaded, mix: requests::Mix, target: SocketAddr) -> anyhow::Result<Plan> {
    let load = &loaded.scenario.load;
    let timed = load.duration.is_some() || !load.phases.is_empty();
    let requests = match (load.requests, &mix.replay_due) {
        (Some(n), _) => n,
        (None, Some(due)) => due.len() as u64,
        (None, None) if timed => u64::MAX / 2,
        (None, None) => mix.variants.len().max(1) as u64,
    };
    let flags = Flags {
        url: format!("http://{target}/"),
        requests: Some(requests),
        concurrency: Some(load.concurrency.unwrap_or(1).min(requests as usize)),
        time_limit: load.duration.map(|d| d.0.as_secs_f64()),
        timeout: load.timeout.map(|d| d.0.as_secs_f64()),
        rate: load.rate,
        keepalive: load.keepalive,
        // Failover is what scenarios are for: never stop at an error.
        keep_going: true,
        // Templated requests and streams answer with bodies of any length.
        variable_length: true,
        slo: load.slo.clone(),
        arrival: load.arrival.clone(),
        burstiness: load.burstiness,
        ..Flags::default()
    };
    let mut plan = flags.plan().map_err(|e| anyhow!("[load] {e}"))?;
    plan.mix = mix.variants;
    plan.phases = load
        .phases
        .iter()
        .map(|p| {
            let p = p.get_ref();
            Phase {
                duration: p.duration.0,
                load: match (p.rate, p.concurrency) {
                    (Some(r), _) => PhaseLoad::Rate {
                        from: r,
                        to: p.ramp_to.unwrap_or(r),
                    },
                    (None, c) => PhaseLoad::Concurrency(c.unwrap_or(1)),
                },
            }
        })
        .collect();
    if plan
        .phases
        .iter()
        .any(|p| matches!(p.load, PhaseLoad::Rate { .. }))
    {
        // Open loop: latency counts from when each request was due.
        let n: f64 = plan.phases.iter().filter_map(|p| p.arrivals()).sum();
        let t: f64 = plan.phases.iter().map(|p| p.duration.as_secs_f64()).sum();
        plan.pacing = Pacing::Rate(n / t);
        plan.concurrency = plan.concurrency.max(load.concurrency.unwrap_or(64));
    }
    if let Some(due) = mix.replay_due {
        plan.pacing = Pacing::Rate(1.0);
        plan.due = due;
        plan.concurrency = plan.concurrency.max(load.concurrency.unwrap_or(64));
    }
    if let Some(n) = load.clients {
        // Each client in its own /24, so ip_hash tells them all apart.
        plan.clients = Some(Clients {
            via: ClientsVia::ForwardedFor,
            base: u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1)),
            size: n.max(1),
            stride: 256,
        });
    }
    Ok(plan)
}

/// One timed event, ready to apply.
struct Due {
    at: Duration,
    backend: usize,
    action: String,
    control: Option<mockbackend::Control>,
    weight: Option<u32>,
}

fn loaded_events(loaded: &Loaded) -> Vec<Due> {
    let mut due: Vec<Due> = loaded
        .scenario
        .events
        .iter()
        .zip(&loaded.events)
        .map(|(e, (backend, control))| {
            let e = e.get_ref();
            Due {
                at: e.at.0,
                backend: *backend,
                action: if e.with.is_empty() {
                    format!("{} {}", e.action, loaded.names[*backend])
                } else {
                    format!("{} {} ({})", e.action, loaded.names[*backend], e.with)
                },
                control: control.clone(),
                weight: e.weight,
            }
        })
        .collect();
    due.sort_by_key(|d| d.at);
    due
}

/// Applies each event at its time; records what happened, and when
/// revived nodes came back (Unix seconds).
async fn events(
    due: Arc<Vec<Due>>,
    servers: Option<Arc<Server>>,
    proxy: Option<Arc<Proxy>>,
    local: Vec<usize>,
    addrs: Vec<String>,
    revived: Arc<Mutex<Vec<(usize, f64)>>>,
    happened: Arc<Mutex<Vec<String>>>,
) {
    let start = Instant::now();
    for d in due.iter() {
        tokio::time::sleep_until((start + d.at).into()).await;
        let result = match (&d.control, d.weight) {
            (Some(control), _) => match (&servers, local.iter().position(|l| *l == d.backend)) {
                (Some(s), Some(j)) => s.control(j, control.clone()).await,
                _ => Err("not an in-process backend".to_string()),
            },
            (None, Some(w)) => match &proxy {
                Some(p) if p.set_weight(&addrs[d.backend], w) > 0 => Ok(()),
                _ => Err("the in-process balancer does not have it".to_string()),
            },
            (None, None) => Ok(()),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if matches!(
            d.control,
            Some(mockbackend::Control::Clear(mockbackend::FaultKind::Down))
        ) {
            if let Ok(mut r) = revived.lock() {
                r.push((d.backend, now));
            }
        }
        let line = match result {
            Ok(()) => format!("{:>6.1}s  {}", start.elapsed().as_secs_f64(), d.action),
            Err(e) => format!(
                "{:>6.1}s  {} failed: {e}",
                start.elapsed().as_secs_f64(),
                d.action
            ),
        };
        if let Ok(mut h) = happened.lock() {
            h.push(line);
        }
    }
}
