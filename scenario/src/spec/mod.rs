//! The scenario file format (see scenarios/README.md for every key), read
//! and checked whole before anything starts. Errors name the file, the line
//! and column, and the key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use analyzer::{Threshold, Tool};
use mockbackend::faults::{parse_control, Control};
use mockbackend::profile::Profile;
use primitives::parse_duration;
use serde::Deserialize;
use toml::Spanned;

use super::expectations;

mod llm;
pub use llm::{ConversationSpec, DatasetSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Run by `.ci/run`.
    #[serde(default)]
    pub ci: bool,
    /// The verification must fail (exit 1): a scenario that proves a broken
    /// balancer is caught.
    #[serde(default)]
    pub expect_failure: bool,
    #[serde(default, rename = "backend")]
    pub backends: Vec<Spanned<Backend>>,
    #[serde(default)]
    pub balancer: Balancer,
    pub load: Load,
    #[serde(default, rename = "event")]
    pub events: Vec<Spanned<Event>>,
    #[serde(default)]
    pub expect: Expect,
    /// The same scenario under each of several balancing methods.
    pub compare: Option<Spanned<Compare>>,
    /// A capacity sweep of the scenario's balancer instead of one load.
    pub sweep: Option<Spanned<SweepSpec>>,
}

/// `[sweep]`: steps of growing load through the scenario's balancer, each
/// judged by `[expect] thresholds` on what clients saw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Requests per second, `LOW..HIGH`.
    pub rate: Option<String>,
    /// Connections, `LOW..HIGH`.
    pub concurrency: Option<String>,
    /// How long each step is measured (5s).
    pub step_duration: Option<Dur>,
    /// How long each step runs first, not measured (1s).
    pub warmup: Option<Dur>,
    /// The capacity must be at least this (exit 1).
    pub min_capacity: Option<f64>,
}

impl SweepSpec {
    /// The search, checked.
    pub fn sweep(&self) -> Result<engine::sweep::Sweep, String> {
        let text = match (&self.rate, &self.concurrency) {
            (Some(r), None) => format!("rate={r}"),
            (None, Some(c)) => format!("concurrency={c}"),
            _ => return Err("give rate = \"LOW..HIGH\" or concurrency = \"LOW..HIGH\"".into()),
        };
        engine::sweep::Sweep::parse(&text)
    }
}

/// `[compare]`: run the scenario's load, backends and events under each
/// method in turn, and name the best by the objective.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// nginx method lines, as `[balancer] method` takes them.
    pub methods: Vec<String>,
    /// What "best" means: mean (default), p50, p90, p99, ttft_p50,
    /// ttft_p99, throughput, goodput, errors.
    pub objective: Option<String>,
    /// The methods that may come out best; otherwise exit 1.
    #[serde(default)]
    pub expect_best: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// How events, routes and expectations refer to it; default `b1`, `b2`...
    pub name: Option<String>,
    /// In-process mock backend's port; 0 (default) picks a free one.
    #[serde(default)]
    pub port: u16,
    /// An external node instead of an in-process one.
    pub url: Option<String>,
    /// The in-process backend's mockbackend profile keys.
    #[serde(default)]
    pub profile: BTreeMap<String, toml::Value>,
    // The balancer's server parameters for this node.
    pub weight: Option<u32>,
    #[serde(default)]
    pub backup: bool,
    #[serde(default)]
    pub down: bool,
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<Dur>,
    pub max_conns: Option<u32>,
    /// The upstream (pool) it belongs to; default `backend`.
    pub pool: Option<String>,
    /// With `[balancer] config`: the `server` line it stands for, the
    /// address as the config writes it (`ai-1.internal:8000`).
    pub server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    /// nginx's method line: round_robin, least_conn, ip_hash, 'hash KEY
    /// [consistent]', random, 'random two least_conn', least_time.
    pub method: Option<String>,
    /// proxy_next_upstream.
    pub next_upstream: Option<String>,
    /// proxy_next_upstream_tries.
    pub tries: Option<u32>,
    /// proxy_read_timeout and proxy_connect_timeout.
    pub timeout: Option<Dur>,
    pub connect_timeout: Option<Dur>,
    /// Which balancer runs the scenario: `reference` (lbkit's, in this
    /// process; the default), `nginx` (real nginx started for the run),
    /// `haproxy` (real HAProxy on a haproxy.cfg `config`), or a list of
    /// the first two: the same scenario on each, and they must agree.
    pub engine: Option<EngineList>,
    /// The user's nginx.conf, or haproxy.cfg for `haproxy` (relative to
    /// the scenario file); its `server` lines are pointed at the backends.
    /// `nginx_conf` is its old name.
    #[serde(alias = "nginx_conf")]
    pub config: Option<Spanned<String>>,
    /// The nginx or haproxy binary (default: on PATH, then /usr/sbin).
    pub binary: Option<String>,
    /// With `config`: the upstream under test (default: the one
    /// `location /` proxies to, or the only one).
    pub upstream: Option<String>,
    /// Test this external balancer instead of the in-process one.
    pub target: Option<String>,
    /// Path routing to pools (task-type routing).
    #[serde(default, rename = "route")]
    pub routes: Vec<Spanned<Route>>,
}

/// `engine = "nginx"` or `engine = ["reference", "nginx"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EngineList {
    One(String),
    Many(Vec<String>),
}

/// A balancer a scenario can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// lbkit's reference balancer, in this process.
    Reference,
    /// Real nginx, started for the run on a rewritten copy of the config.
    Nginx,
    /// Real HAProxy, likewise, on a haproxy.cfg.
    Haproxy,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Reference => "reference",
            Engine::Nginx => "nginx",
            Engine::Haproxy => "haproxy",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub path: String,
    pub pool: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub requests: Option<u64>,
    pub duration: Option<Dur>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    #[serde(default = "yes")]
    pub keepalive: bool,
    /// Distinct client identities, sent as X-Forwarded-For.
    pub clients: Option<u32>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    /// Streams meeting it count towards goodput: `ttft<500ms,tpot<50ms`.
    pub slo: Option<String>,
    /// Open-loop arrivals with `rate`: even (default), poisson or gamma.
    pub arrival: Option<String>,
    pub burstiness: Option<f64>,
    #[serde(default, rename = "phase")]
    pub phases: Vec<Spanned<PhaseSpec>>,
    #[serde(default, rename = "request")]
    pub requests_mix: Vec<Spanned<RequestSpec>>,
    /// Replay the request lines of this access log instead of a mix.
    pub replay: Option<String>,
    /// Replay at this multiple of the logged pace; absent: as fast as the
    /// load allows.
    pub speed: Option<f64>,
    /// Multi-turn chat conversations instead of a mix.
    pub conversations: Option<Spanned<ConversationSpec>>,
    /// A dataset's prompts instead of a mix.
    pub dataset: Option<Spanned<DatasetSpec>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub duration: Dur,
    pub rate: Option<f64>,
    /// Ramp linearly from `rate` to this over the phase.
    pub ramp_to: Option<f64>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, written as a TOML table (strings may hold templates).
    pub json: Option<toml::Value>,
    pub body: Option<String>,
    pub body_file: Option<String>,
    #[serde(default = "one")]
    pub weight: u32,
    /// An OpenAI-style streamed answer (SSE) is expected.
    #[serde(default)]
    pub stream: bool,
}

fn get() -> String {
    "GET".into()
}
fn root() -> String {
    "/".into()
}
fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: Dur,
    /// A backend's name or index (from 0).
    pub backend: BackendRef,
    /// kill, revive, weight, or any mockbackend fault action (slow, errors,
    /// hang, reset-connections, drain, clear, reset...).
    pub action: String,
    /// The action's parameters as mockbackend takes them: `delay=500ms`,
    /// `rate=0.5&status=503`.
    #[serde(default)]
    pub with: String,
    /// For `weight`.
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BackendRef {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for BackendRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendRef::Index(i) => write!(f, "{i}"),
            BackendRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The chi-square test of shares against what the balancer promises.
    /// Default: on when the method has computable shares and no event
    /// changes the nodes.
    pub shares: Option<bool>,
    /// Shares promised by hand, by backend name, instead of the balancer's.
    pub weights: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub thresholds: Vec<Spanned<Expr>>,
}

/// A duration written with a unit (`500ms`, `2s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(|why| serde::de::Error::custom(format!("{text:?}: {why}")))
    }
}

/// A threshold in the analyzer's language, on a metric a scenario measures.
#[derive(Debug, Clone)]
pub struct Expr(pub Threshold);

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let text = String::deserialize(d)?;
        Threshold::parse_for(&text, Tool::Scenario)
            .map(Expr)
            .map_err(serde::de::Error::custom)
    }
}

/// A scenario file that is wrong: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A read scenario with its checked pieces, and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub scenario: Scenario,
    pub file: PathBuf,
    text: String,
    /// Each backend's name, in order.
    pub names: Vec<String>,
    /// Each backend's profile, built (in-process ones).
    pub profiles: Vec<Profile>,
    /// Each event's backend index and its control (None for `weight`).
    pub events: Vec<(usize, Option<Control>)>,
    /// The balancers it runs on, in order (at least one).
    pub engines: Vec<Engine>,
}

/// Reads and checks a scenario file; `engines` (loadgen's `--engine`, a
/// comma-separated list) replaces its `[balancer] engine`.
pub fn load(path: &Path, engines: Option<&str>) -> Result<Loaded, SpecError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_with(&file, &text, engines).map(|(scenario, names, profiles, events, engines)| Loaded {
        scenario,
        file: path.to_path_buf(),
        text,
        names,
        profiles,
        events,
        engines,
    })
}

impl Loaded {
    /// An error at `span` of the file (its start when `None`).
    pub fn error_at(&self, span: Option<Range<usize>>, message: String) -> SpecError {
        locate(&self.file.display().to_string(), &self.text, span, message)
    }
}

fn locate(file: &str, text: &str, span: Option<Range<usize>>, message: String) -> SpecError {
    let start = span.map_or(0, |s| s.start).min(text.len());
    let before = &text[..start];
    SpecError {
        file: file.to_string(),
        line: before.matches('\n').count() + 1,
        column: before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1,
        message,
    }
}

type Parsed = (
    Scenario,
    Vec<String>,
    Vec<Profile>,
    Vec<(usize, Option<Control>)>,
    Vec<Engine>,
);

/// Parses and checks scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Parsed, SpecError> {
    parse_with(file, text, None)
}

fn parse_with(file: &str, text: &str, engines_flag: Option<&str>) -> Result<Parsed, SpecError> {
    let at = |span: Option<Range<usize>>, message: String| locate(file, text, span, message);
    let mut scenario: Scenario =
        toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;

    let s = &scenario;
    if s.backends.is_empty() && s.balancer.target.is_none() {
        return Err(at(
            None,
            "no [[backend]]: a scenario needs nodes to balance".into(),
        ));
    }
    let names: Vec<String> = s
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| b.get_ref().name.clone().unwrap_or(format!("b{}", i + 1)))
        .collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(at(
                Some(s.backends[i].span()),
                format!("[[backend]] name: {n:?} is used twice"),
            ));
        }
    }
    let mut profiles = Vec::new();
    for b in &s.backends {
        let spec = b.get_ref();
        if spec.fail_timeout.is_some_and(|t| t.0.subsec_nanos() != 0) {
            return Err(at(
                Some(b.span()),
                "[[backend]] fail_timeout: nginx counts it in whole seconds".into(),
            ));
        }
        let mut profile = Profile::default();
        if spec.url.is_some() && !spec.profile.is_empty() {
            return Err(at(
                Some(b.span()),
                "[[backend]] profile: an external backend (url) has no mock profile".into(),
            ));
        }
        for (key, value) in &spec.profile {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            profile.set(key, &value).map_err(|why| {
                at(
                    Some(b.span()),
                    format!("[[backend]] profile.{key} = {value:?}: {why}"),
                )
            })?;
        }
        profiles.push(profile);
    }
    let index_of = |r: &BackendRef| match r {
        BackendRef::Index(i) => (*i < names.len()).then_some(*i),
        BackendRef::Name(n) => names.iter().position(|m| m == n),
    };
    let mut events = Vec::new();
    for e in &s.events {
        let ev = e.get_ref();
        let err = |why: String| at(Some(e.span()), why);
        let i = index_of(&ev.backend).ok_or_else(|| {
            err(format!(
                "[[event]] backend: no backend {} (there are {}: {})",
                ev.backend,
                names.len(),
                names.join(", ")
            ))
        })?;
        if s.backends[i].get_ref().url.is_some() && ev.action != "weight" {
            return Err(err(
                "[[event]] backend: an external backend cannot be faulted".into(),
            ));
        }
        let control = match ev.action.as_str() {
            "weight" => {
                if ev.weight.is_none() {
                    return Err(err(
                        "[[event]] weight: the weight action needs weight = N".into()
                    ));
                }
                None
            }
            action => {
                let action = match action {
                    "kill" => "down",
                    "revive" => "up",
                    a => a,
                };
                let (_, control) = parse_control(action, &ev.with)
                    .map_err(|why| err(format!("[[event]] action: {why}")))?;
                Some(control)
            }
        };
        events.push((i, control));
    }
    for r in &s.balancer.routes {
        let pool = &r.get_ref().pool;
        let pools = || {
            s.backends
                .iter()
                .map(|b| b.get_ref().pool.as_deref().unwrap_or("backend"))
        };
        if !pools().any(|p| p == pool) {
            return Err(at(
                Some(r.span()),
                format!("[[balancer.route]] pool: no backend is in pool {pool:?}"),
            ));
        }
    }
    if let Some(w) = &s.expect.weights {
        if let Some(n) = w.keys().find(|n| !names.contains(n)) {
            return Err(at(
                None,
                format!("[expect] weights: no backend {n:?} ({})", names.join(", ")),
            ));
        }
    }
    for t in &s.expect.thresholds {
        let why = expectations::threshold_problem(s, &names, &t.get_ref().0);
        if let Some(why) = why {
            return Err(at(Some(t.span()), format!("[expect] thresholds: {why}")));
        }
    }
    if s.balancer.target.is_some() {
        expectations::target_problems(s).map_err(|(span, why)| at(span, why))?;
    }
    let mut key = "[balancer] engine";
    if let Some(list) = engines_flag {
        if s.balancer.target.is_some() {
            return Err(at(
                None,
                "--engine: this scenario tests the balancer at [balancer] target; there is no engine to choose".into(),
            ));
        }
        let names = list.split(',').map(|e| e.trim().to_string());
        scenario.balancer.engine = Some(EngineList::Many(names.collect()));
        key = "--engine";
    }
    let s = &scenario;
    let engines = engines(s, key).map_err(|(span, why)| at(span, why))?;
    expectations::config_problems(s, &engines).map_err(|(span, why)| at(span, why))?;
    if let Some(c) = &s.compare {
        compare_problem(s, c.get_ref(), &engines)
            .map_err(|why| at(Some(c.span()), format!("[compare] {why}")))?;
    }
    if let Some(w) = &s.sweep {
        sweep_problem(s, w.get_ref(), &engines)
            .map_err(|why| at(Some(w.span()), format!("[sweep] {why}")))?;
    }
    let load = &s.load;
    if s.sweep.is_none()
        && load.requests.is_none()
        && load.duration.is_none()
        && load.phases.is_empty()
        && load.replay.is_none()
        && load.conversations.is_none()
        && load.dataset.is_none()
    {
        return Err(at(
            None,
            "[load]: say how much: requests, duration or [[load.phase]]".into(),
        ));
    }
    let rates = load
        .phases
        .iter()
        .filter(|p| p.get_ref().rate.is_some())
        .count();
    for p in &load.phases {
        let ph = p.get_ref();
        let err = |why: &str| at(Some(p.span()), format!("[[load.phase]] {why}"));
        match (ph.rate, ph.concurrency) {
            (Some(_), Some(_)) => return Err(err("rate and concurrency: give one")),
            (None, None) => return Err(err("give rate (open loop) or concurrency (closed loop)")),
            (Some(r), None) if !(r > 0.0 && r.is_finite()) => {
                return Err(err("rate: must be above 0"))
            }
            (None, Some(0)) => return Err(err("concurrency: must be at least 1")),
            _ => {}
        }
        if ph.ramp_to.is_some() && ph.rate.is_none() {
            return Err(err("ramp_to: ramps go from a rate"));
        }
        if rates != 0 && rates != load.phases.len() {
            return Err(err("phases are all rate or all concurrency, not a mix"));
        }
    }
    for r in &load.requests_mix {
        let rq = r.get_ref();
        let bodies = [rq.json.is_some(), rq.body.is_some(), rq.body_file.is_some()];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(at(
                Some(r.span()),
                "[[load.request]]: give one of json, body, body_file".into(),
            ));
        }
        if hyper::Method::from_bytes(rq.method.as_bytes()).is_err() {
            return Err(at(
                Some(r.span()),
                format!(
                    "[[load.request]] method: {:?} is not an HTTP method",
                    rq.method
                ),
            ));
        }
        if !rq.path.starts_with('/') {
            return Err(at(
                Some(r.span()),
                format!("[[load.request]] path: {:?} must start with /", rq.path),
            ));
        }
    }
    let sources = [
        load.replay.is_some(),
        !load.requests_mix.is_empty(),
        load.conversations.is_some(),
        load.dataset.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(at(
            None,
            "[load]: give one of replay, [[load.request]], [load.conversations], [load.dataset]"
                .into(),
        ));
    }
    if let Some(c) = &load.conversations {
        let spec = c.get_ref();
        let err = |why: String| Err(at(Some(c.span()), format!("[load.conversations] {why}")));
        if spec.count == 0 || spec.turns == 0 {
            return err("count and turns: at least 1 each".into());
        }
        if load.concurrency.unwrap_or(1) > spec.count as usize {
            return err(format!(
                "count: {} conversations for [load] concurrency {}: a turn could go before the one it follows was answered",
                spec.count,
                load.concurrency.unwrap_or(1)
            ));
        }
        if hyper::header::HeaderName::from_bytes(spec.header.as_bytes()).is_err() {
            return err(format!("header: {:?} is not a header name", spec.header));
        }
    }
    Ok((scenario, names, profiles, events, engines))
}

/// What is wrong with `[compare]`, if anything.
fn compare_problem(s: &Scenario, c: &Compare, engines: &[Engine]) -> Result<(), String> {
    if c.methods.len() < 2 {
        return Err("methods: name at least two methods to compare".into());
    }
    for (i, m) in c.methods.iter().enumerate() {
        m.parse::<balancer::Method>()
            .map_err(|why| format!("methods: {m:?}: {why}"))?;
        if c.methods[..i].contains(m) {
            return Err(format!("methods: {m:?} is listed twice"));
        }
        if engines.contains(&Engine::Nginx) && m.starts_with("least_time") {
            return Err(format!("methods: {m:?}: open-source nginx has no least_time; compare on engine = \"reference\""));
        }
    }
    if let Some(o) = &c.objective {
        crate::methods::Objective::parse(o).map_err(|why| format!("objective: {why}"))?;
    }
    if let Some(b) = c.expect_best.iter().find(|b| !c.methods.contains(b)) {
        return Err(format!("expect_best: {b:?} is not one of the methods"));
    }
    let refused = [
        ("[balancer] method", s.balancer.method.is_some()),
        ("[balancer] config", s.balancer.config.is_some()),
        ("[balancer] target", s.balancer.target.is_some()),
        ("expect_failure", s.expect_failure),
        ("several engines", engines.len() > 1),
    ];
    if let Some((key, _)) = refused.iter().find(|(_, on)| *on) {
        return Err(format!(
            "methods: {key} cannot go with a comparison of methods on one balancer"
        ));
    }
    Ok(())
}

/// What is wrong with `[sweep]`, if anything.
fn sweep_problem(s: &Scenario, w: &SweepSpec, engines: &[Engine]) -> Result<(), String> {
    w.sweep()?;
    if w.step_duration.is_some_and(|d| d.0.is_zero()) {
        return Err("step_duration: must be above 0".into());
    }
    if w.min_capacity.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
        return Err("min_capacity: must be a number above 0".into());
    }
    let load = &s.load;
    let refused = [
        ("[load] requests", load.requests.is_some()),
        ("[load] duration", load.duration.is_some()),
        ("[load] rate", load.rate.is_some()),
        ("[[load.phase]]", !load.phases.is_empty()),
        ("[load] replay", load.replay.is_some()),
        ("[[event]]", !s.events.is_empty()),
        ("[compare]", s.compare.is_some()),
        ("expect_failure", s.expect_failure),
        ("several engines", engines.len() > 1),
    ];
    if let Some((key, _)) = refused.iter().find(|(_, on)| *on) {
        return Err(format!(
            "{key} cannot go with a sweep: the sweep sets the load, step by step"
        ));
    }
    if s.expect.thresholds.is_empty() {
        return Err("say what must hold at capacity: [expect] thresholds = [\"p(99) < 500ms\", \"client_errors == 0\"]".into());
    }
    for t in &s.expect.thresholds {
        let t = &t.get_ref().0;
        if t.metric.needs_log() {
            return Err(format!(
                "'{}': {} is read from the balancer's access log, which spans every step; a step is judged by what clients saw",
                t.source,
                t.metric.name()
            ));
        }
    }
    Ok(())
}

/// The `[balancer] engine` list (given as `key`), checked.
fn engines(s: &Scenario, key: &str) -> Result<Vec<Engine>, (Option<Range<usize>>, String)> {
    let listed: Vec<&str> = match &s.balancer.engine {
        None => vec!["reference"],
        Some(EngineList::One(e)) => vec![e.as_str()],
        Some(EngineList::Many(list)) => list.iter().map(String::as_str).collect(),
    };
    let mut engines = Vec::new();
    for name in listed {
        let engine = match name {
            "reference" => Engine::Reference,
            "nginx" => Engine::Nginx,
            "haproxy" => Engine::Haproxy,
            other => {
                return Err((
                    None,
                    format!(
                        "{key} {other:?}: the engines are \"reference\", \"nginx\" and \"haproxy\""
                    ),
                ))
            }
        };
        if engines.contains(&engine) {
            return Err((None, format!("{key}: {name:?} is listed twice")));
        }
        engines.push(engine);
    }
    if engines.is_empty() {
        return Err((
            None,
            format!("{key}: the list is empty; name \"reference\", \"nginx\" or \"haproxy\""),
        ));
    }
    Ok(engines)
}

#[cfg(test)]
mod tests;
