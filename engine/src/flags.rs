//! ab's flags, checked and turned into a plan before anything touches the
//! network. Pure: the caller reads `-p`/`-u`/`--dataset` files and hands
//! their bytes in.

use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;

use crate::dataset;
use crate::plan::{parse_cidr, stream_body, Clients, ClientsVia, Plan, Target};
use crate::plan::{DEFAULT_MODEL, DEFAULT_NODE_HEADERS, DEFAULT_TIMEOUT};
use crate::schedule::{Arrival, ArrivalError, Pacing};
use crate::shard::{self, Shard};
use crate::streams::Slo;
use crate::transport::TransportFlags;

/// ab's flags as given, before checking, and the ones loadgen adds: what
/// `loadgen` parses them into (with clap), and what a test or a scenario
/// fills in by hand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// URL to test: http://host[:port]/path (set by the caller).
    #[arg(skip)]
    pub url: String,
    /// Number of requests to perform [default: 1]
    #[arg(short = 'n', value_name = "requests")]
    pub requests: Option<u64>,
    /// Number of multiple requests to make at a time [default: 1]
    #[arg(short = 'c', value_name = "concurrency")]
    pub concurrency: Option<usize>,
    /// Seconds to max. to spend on benchmarking; implies -n 50000
    #[arg(short = 't', value_name = "timelimit")]
    pub time_limit: Option<f64>,
    /// Run for this long, e.g. 10s or 2m (oha's and hey's -z, wrk's -d):
    /// as many requests as fit, unless -n stops it sooner
    #[arg(
        short = 'z',
        long,
        value_name = "DURATION",
        conflicts_with = "time_limit"
    )]
    pub duration: Option<String>,
    /// Seconds to max. wait for each response [default: 30]
    #[arg(short = 's', value_name = "timeout")]
    pub timeout: Option<f64>,
    /// The bytes to POST (`-p FILE`, read by the caller).
    #[arg(skip)]
    pub post: Option<Bytes>,
    /// The bytes to PUT (`-u FILE`, read by the caller).
    #[arg(skip)]
    pub put: Option<Bytes>,
    /// Content-type header for POSTing, eg. 'application/json' [default: text/plain]
    #[arg(short = 'T', value_name = "content-type")]
    pub content_type: Option<String>,
    /// Add Arbitrary header line, eg. 'Accept-Encoding: gzip'; repeatable
    #[arg(short = 'H', value_name = "header")]
    pub headers: Vec<String>,
    /// Add cookie, eg. 'Apache=1234'; repeatable
    #[arg(short = 'C', value_name = "attribute")]
    pub cookies: Vec<String>,
    /// Add Basic WWW Authentication, user:password
    #[arg(short = 'A', value_name = "attribute")]
    pub basic_auth: Option<String>,
    /// Use HTTP KeepAlive feature (HTTP/1.1; without it each request is HTTP/1.0 on a new connection, as ab)
    #[arg(short = 'k')]
    pub keepalive: bool,
    /// Method name
    #[arg(short = 'm', value_name = "method")]
    pub method: Option<String>,
    /// Use HEAD instead of GET
    #[arg(short = 'i')]
    pub head: bool,
    /// Don't exit on socket receive errors
    #[arg(short = 'r')]
    pub keep_going: bool,
    /// Accept variable document length (use this for dynamic pages)
    #[arg(short = 'l')]
    pub variable_length: bool,
    /// Proxyserver and port number to use
    #[arg(short = 'X', value_name = "proxy:port")]
    pub proxy: Option<String>,
    /// Open loop: start this many requests per second whatever the server does
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Response header naming the node that answered; repeatable [default: X-Upstream, then X-Backend]
    #[arg(long = "node-header", value_name = "NAME")]
    pub node_headers: Vec<String>,
    /// Act as many clients through X-Forwarded-For: request i comes from
    /// the i-th address of this range (mod its size), e.g. 10.0.0.0/22
    #[arg(long = "x-forwarded-for-pool", value_name = "CIDR")]
    pub forwarded_for_pool: Option<String>,
    /// Act as many clients by source address: connections bind to
    /// addresses of this range, which must lie within 127.0.0.0/8
    #[arg(long, value_name = "CIDR")]
    pub source_ips: Option<String>,
    /// How much troubleshooting info to print: 2 warns of non-2xx answers, 4 prints headers
    #[arg(short = 'v', value_name = "verbosity", default_value_t = 0)]
    pub verbosity: u8,
    /// Read the node that answered from this field of a JSON answer (e.g.
    /// server, as the seed's /chat answers) instead of a header
    #[arg(long, value_name = "NAME")]
    pub node_field: Option<String>,
    /// Send OpenAI-style streaming requests (POST a chat request with
    /// "stream": true unless -p gives a body) and read each event stream as
    /// it arrives: TTFT, inter-token latency, TPOT, output tokens
    #[arg(long)]
    pub stream: bool,
    /// Goodput objective for streams, e.g. 'ttft<500ms,tpot<50ms' (also itl, e2e)
    #[arg(long, value_name = "LIMITS")]
    pub slo: Option<String>,
    /// Open-loop arrivals with --rate: even (default), poisson, or gamma
    #[arg(long, value_name = "PROCESS")]
    pub arrival: Option<String>,
    /// Gamma arrivals' shape: 1 is Poisson, below 1 burstier, above steadier
    #[arg(long, value_name = "F")]
    pub burstiness: Option<f64>,
    /// Seed for random arrivals and --dataset random, so a run repeats [default: 0]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Prompts to send, one per request in turn: a JSON-lines file of
    /// {"prompt": ..., "output_tokens": N} or {"messages": [...]}, a ShareGPT
    /// JSON file, or `random` (vLLM's synthetic prompts: --input-len,
    /// --output-len, --range-ratio, --prefix-len); max_tokens is set from
    /// each record; without -n each record is sent once
    #[arg(long, value_name = "FILE|random")]
    pub dataset: Option<String>,
    /// The dataset file's bytes (read by the caller).
    #[arg(skip)]
    pub dataset_bytes: Option<Bytes>,
    /// --dataset random: mean prompt length in tokens [default: 1024]
    #[arg(long, value_name = "N")]
    pub input_len: Option<u32>,
    /// --dataset random: mean answer length in tokens (max_tokens) [default: 128]
    #[arg(long, value_name = "N")]
    pub output_len: Option<u32>,
    /// --dataset random: lengths vary uniformly within this share of the means [default: 0]
    #[arg(long, value_name = "F")]
    pub range_ratio: Option<f64>,
    /// --dataset random: tokens of a prefix every prompt shares [default: 0]
    #[arg(long, value_name = "N")]
    pub prefix_len: Option<u32>,
    /// The model named in the requests loadgen writes (--stream, --dataset) [default: mock-model]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// vLLM's name for -c: at most this many requests in flight, also
    /// with --rate (arrivals past it wait for a free slot)
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<usize>,
    /// Make shard I of N of the run (I from 0): every Nth request from the
    /// Ith, at the times the whole run would send it, with its part of -c
    /// and its own range of the client pool; `loadgen merge` adds the
    /// shards' --json files into the whole
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    pub shard: Option<String>,
    /// Take the shard's index from JOB_COMPLETION_INDEX (set in each pod of
    /// a Kubernetes Indexed Job); with --shards N
    #[arg(long, requires = "shards")]
    pub shard_from_env: bool,
    /// With --shard-from-env: how many shards make the run
    #[arg(long, value_name = "N", requires = "shard_from_env")]
    pub shards: Option<String>,
    /// Begin at this time, RFC 3339 or seconds since the epoch (at most an
    /// hour ahead): the shards of a run share it, so they begin together
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// JOB_COMPLETION_INDEX's value (set by the caller, which reads the
    /// environment).
    #[arg(skip)]
    pub index_env: Option<String>,
    /// The time now, for --start-at (set by the caller; `None`: the clock).
    #[arg(skip)]
    pub now: Option<std::time::SystemTime>,
    #[command(flatten)]
    pub transport: TransportFlags,
}

/// A dataset's records, and the requests to send when -n does not say.
struct Records {
    records: Vec<dataset::Record>,
    requests: u64,
}

/// With `-t` alone ab runs up to this many requests.
pub const TIME_LIMIT_REQUESTS: u64 = 50_000;

/// A usage error: which flag, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {why}")]
pub struct PlanError {
    pub flag: String,
    pub why: String,
}

pub(crate) fn err(flag: &str, why: impl Into<String>) -> PlanError {
    PlanError {
        flag: flag.to_string(),
        why: why.into(),
    }
}

impl Flags {
    /// The checked plan: every flag validated and combined as ab does, the
    /// error naming the flag to fix.
    pub fn plan(self) -> Result<Plan, PlanError> {
        let target = Target::parse(&self.url).map_err(|why| err("URL", why.0))?;
        let duration = self.duration()?;
        let time_limit = duration.or(seconds("-t", self.time_limit)?);
        let records = self.dataset()?;
        let requests = match (self.requests, time_limit) {
            (Some(0), _) => return Err(err("-n", "must be at least 1")),
            (Some(n), _) => n,
            // -z runs for its whole length (the time bound ends it).
            (None, Some(_)) if duration.is_some() && self.rate.is_none() => u64::MAX,
            // ab: "-t ... implies a -n 50000 internally"; an open-loop rate
            // over a time limit needs as many as the schedule holds.
            (None, Some(t)) => match self.rate {
                Some(r) => ((t.as_secs_f64() * r).ceil() as u64).max(1),
                None => TIME_LIMIT_REQUESTS,
            },
            (None, None) => records.as_ref().map_or(1, |r| r.requests),
        };
        let concurrency = match (self.concurrency, self.max_concurrency) {
            (Some(c), Some(m)) if c != m => {
                return Err(err(
                    "--max-concurrency",
                    format!("is -c by vLLM's name; -c {c} says otherwise"),
                ))
            }
            (c, m) => c.or(m).unwrap_or(1),
        };
        if concurrency == 0 {
            return Err(err("-c", "must be at least 1"));
        }
        if concurrency as u64 > requests {
            return Err(err("-c", format!("cannot use concurrency level greater than total number of requests ({requests})")));
        }
        let timeout = seconds("-s", self.timeout)?.unwrap_or(DEFAULT_TIMEOUT);
        let pacing = match self.rate {
            None => Pacing::Closed,
            Some(r) if r > 0.0 && r.is_finite() => Pacing::Rate(r),
            Some(r) => return Err(err("--rate", format!("{r} is not a rate above 0"))),
        };
        let slo = self
            .slo
            .as_deref()
            .map(Slo::parse)
            .transpose()
            .map_err(|why| err("--slo", why.0))?;
        let (method, body) = self.method_and_body()?;
        let mix = match &records {
            None => Vec::new(),
            Some(r) => {
                let each = r.records.iter().map(|rec| (None, rec));
                dataset::variants(each, &target.path, self.model(), self.stream, None)
                    .map_err(|e| err("--dataset", e.0))?
            }
        };
        let (shard, start_at) = (self.shard()?, self.start_at()?);
        let proxy = self.proxy()?;
        let transport = self.transport.transport(&target, proxy.is_some())?;
        let shard_flag = self.shard_flag();
        let plan = Plan {
            // Streamed answers and a dataset's differ in length by nature
            // (ids, times, token counts).
            variable_length: self.variable_length || self.stream || !mix.is_empty(),
            mix,
            phases: Vec::new(),
            due: Vec::new(),
            arrival: self.arrival()?,
            slo,
            headers: self.headers(&target, body.is_some())?,
            clients: self.clients()?,
            proxy,
            node_headers: self.node_headers()?,
            verbosity: self.verbosity,
            node_field: self.node_field,
            target,
            requests,
            time_limit,
            concurrency,
            pacing,
            // HTTP/2 keeps its connections: that is how it multiplexes.
            keepalive: self.keepalive || transport.http2.is_some(),
            method,
            body,
            timeout,
            keep_going: self.keep_going,
            shard: None,
            start_at,
            node_names: Vec::new(),
            transport,
        };
        match shard {
            Some(s) => s.apply(plan).map_err(|why| err(shard_flag, why)),
            None => Ok(plan),
        }
    }

    /// -z: a duration in lbkit's grammar (10s, 1.5m, 500ms).
    fn duration(&self) -> Result<Option<Duration>, PlanError> {
        let Some(text) = &self.duration else {
            return Ok(None);
        };
        match primitives::parse_duration(text) {
            Ok(d) if d.is_zero() => Err(err("-z", "must be longer than 0s")),
            Ok(d) => seconds("-z", Some(d.as_secs_f64())),
            Err(e) => Err(err("-z", e.to_string())),
        }
    }

    /// --shard I/N, or --shard-from-env with --shards N.
    fn shard(&self) -> Result<Option<Shard>, PlanError> {
        let flag = self.shard_flag();
        match (&self.shard, self.shard_from_env) {
            (Some(text), _) => Shard::parse(text).map(Some),
            (None, true) => {
                let count = shard::shards(self.shards.as_deref().unwrap_or_default())
                    .map_err(|why| err("--shards", why))?;
                Shard::from_env(self.index_env.as_deref(), count).map(Some)
            }
            (None, false) => Ok(None),
        }
        .map_err(|why| err(flag, why))
    }

    fn shard_flag(&self) -> &'static str {
        if self.shard_from_env {
            "--shard-from-env"
        } else {
            "--shard"
        }
    }

    fn start_at(&self) -> Result<Option<std::time::SystemTime>, PlanError> {
        let now = self.now.unwrap_or_else(std::time::SystemTime::now);
        self.start_at
            .as_deref()
            .map(|t| shard::start_at(t, now))
            .transpose()
            .map_err(|why| err("--start-at", why))
    }

    fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// loadgen writes the body (--stream's chat request, a dataset's
    /// records) because no -p or -u gives one: JSON, POSTed.
    fn writes_json_body(&self) -> bool {
        (self.stream || self.dataset.is_some()) && self.post.is_none() && self.put.is_none()
    }

    /// --dataset and the flags that shape it: the records, and the
    /// requests to send without -n.
    fn dataset(&self) -> Result<Option<Records>, PlanError> {
        let synthetic_flags = [
            ("--input-len", self.input_len.is_some()),
            ("--output-len", self.output_len.is_some()),
            ("--range-ratio", self.range_ratio.is_some()),
            ("--prefix-len", self.prefix_len.is_some()),
        ];
        let Some(name) = &self.dataset else {
            if let Some((flag, _)) = synthetic_flags.iter().find(|(_, set)| *set) {
                return Err(err(flag, "goes with --dataset random"));
            }
            return Ok(None);
        };
        if self.post.is_some() || self.put.is_some() {
            return Err(err(
                "--dataset",
                "cannot be used with -p or -u: the records are the bodies",
            ));
        }
        if name == "random" {
            let synthetic = dataset::Synthetic::checked(
                self.input_len,
                self.output_len,
                self.range_ratio,
                self.prefix_len,
                self.seed.unwrap_or(0),
            )
            .map_err(|e| err(&format!("--{}", e.key.replace('_', "-")), e.why))?;
            let wanted = self.requests.unwrap_or(dataset::DEFAULT_PROMPTS);
            return Ok(Some(Records {
                records: synthetic.records(wanted),
                requests: wanted,
            }));
        }
        if let Some((flag, _)) = synthetic_flags.iter().find(|(_, set)| *set) {
            return Err(err(flag, "goes with --dataset random, not a dataset file"));
        }
        let bytes = self.dataset_bytes.as_deref().unwrap_or_default();
        let records =
            dataset::parse(bytes).map_err(|e| err("--dataset", format!("{name}: {}", e.0)))?;
        Ok(Some(Records {
            requests: records.len() as u64,
            records,
        }))
    }

    /// -p, -u, -i, -m, and --stream's default body (a dataset's records
    /// are POSTed too).
    fn method_and_body(&self) -> Result<(Method, Option<Bytes>), PlanError> {
        let post = match self.writes_json_body() {
            true => Some(Bytes::from(stream_body(self.model()))),
            false => self.post.clone(),
        };
        let (mut method, body) = match (post, self.put.clone()) {
            (Some(_), Some(_)) => return Err(err("-u", "cannot be used with -p")),
            (Some(b), None) => (Method::POST, Some(b)),
            (None, Some(b)) => (Method::PUT, Some(b)),
            (None, None) => (Method::GET, None),
        };
        if self.head {
            if body.is_some() {
                return Err(err("-i", "cannot be used with -p or -u"));
            }
            method = Method::HEAD;
        }
        if let Some(m) = &self.method {
            method = Method::from_bytes(m.as_bytes())
                .map_err(|_| err("-m", format!("'{m}' is not an HTTP method")))?;
        }
        Ok((method, body))
    }

    /// ab's default headers, then -T, -C, -A and -H, each replacing any of
    /// its name before it.
    fn headers(
        &self,
        target: &Target,
        has_body: bool,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, PlanError> {
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let mut add = |flag: &str, name: &str, value: &str| -> Result<(), PlanError> {
            let n = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| err(flag, format!("'{name}' is not a header name")))?;
            let v = HeaderValue::from_str(value.trim())
                .map_err(|_| err(flag, format!("'{value}' is not a header value")))?;
            headers.retain(|(h, _)| *h != n);
            headers.push((n, v));
            Ok(())
        };
        add("-H", "host", &target.host_header())?;
        add("-H", "user-agent", "ApacheBench/2.3")?;
        add("-H", "accept", "*/*")?;
        // --stream's and --dataset's bodies are JSON; ab's default type is text.
        let default_type = if self.writes_json_body() {
            "application/json"
        } else {
            "text/plain"
        };
        match &self.content_type {
            Some(t) => add("-T", "content-type", t)?,
            None if has_body => add("-T", "content-type", default_type)?,
            None => {}
        }
        if !self.cookies.is_empty() {
            add("-C", "cookie", &self.cookies.join("; "))?;
        }
        if let Some(auth) = &self.basic_auth {
            if !auth.contains(':') {
                return Err(err("-A", format!("'{auth}' must be user:password")));
            }
            add(
                "-A",
                "authorization",
                &format!("Basic {}", BASE64_STANDARD.encode(auth)),
            )?;
        }
        for h in &self.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| err("-H", format!("'{h}' has no ':' between name and value")))?;
            add("-H", name, value)?;
        }
        Ok(headers)
    }

    fn proxy(&self) -> Result<Option<(String, u16)>, PlanError> {
        let Some(p) = &self.proxy else {
            return Ok(None);
        };
        let (h, port) = p
            .rsplit_once(':')
            .ok_or_else(|| err("-X", format!("'{p}' must be proxy:port")))?;
        let port = port
            .parse()
            .map_err(|_| err("-X", format!("'{port}' is not a port")))?;
        Ok(Some((h.to_string(), port)))
    }

    fn node_headers(&self) -> Result<Vec<HeaderName>, PlanError> {
        let defaults = DEFAULT_NODE_HEADERS.map(str::to_string);
        let names = if self.node_headers.is_empty() {
            &defaults[..]
        } else {
            &self.node_headers[..]
        };
        names
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| err("--node-header", format!("'{n}' is not a header name")))
            })
            .collect()
    }

    /// --arrival, --burstiness and --seed, which go with --rate.
    fn arrival(&self) -> Result<Arrival, PlanError> {
        if self.arrival.is_some() && self.rate.is_none() {
            return Err(err(
                "--arrival",
                "needs --rate: arrivals are spaced around a rate",
            ));
        }
        Arrival::parse(
            self.arrival.as_deref(),
            self.burstiness,
            self.seed.unwrap_or(0),
        )
        .map_err(|e| match e {
            ArrivalError::Unknown(_) => err("--arrival", e.to_string()),
            ArrivalError::Shape(s) => err("--burstiness", format!("{s} is not above 0")),
            ArrivalError::ShapeWithoutGamma => err("--burstiness", "goes with --arrival gamma"),
        })
    }

    /// --x-forwarded-for-pool or --source-ips: many client identities.
    fn clients(&self) -> Result<Option<Clients>, PlanError> {
        let (flag, range, via) = match (&self.forwarded_for_pool, &self.source_ips) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "--source-ips",
                    "cannot be used with --x-forwarded-for-pool",
                ))
            }
            (Some(pool), None) => ("--x-forwarded-for-pool", pool, ClientsVia::ForwardedFor),
            (None, Some(range)) => ("--source-ips", range, ClientsVia::Source),
            (None, None) => return Ok(None),
        };
        let (base, size) = parse_cidr(range).map_err(|why| err(flag, why))?;
        if via == ClientsVia::Source && (base >> 24 != 127 || size > 1 << 24) {
            return Err(err(
                flag,
                format!("'{range}' must lie within 127.0.0.0/8: traffic stays on loopback"),
            ));
        }
        Ok(Some(Clients {
            via,
            base,
            size,
            stride: 1,
            every: 1,
        }))
    }
}

/// ab's seconds (`-t 2.5`): above 0 and finite.
fn seconds(flag: &str, value: Option<f64>) -> Result<Option<Duration>, PlanError> {
    // A century is "never" for a load test, and any deadline from now
    // stays within what a clock can hold.
    const CENTURY: f64 = 100.0 * 365.0 * 86_400.0;
    match value {
        None => Ok(None),
        Some(t) if t > CENTURY && t.is_finite() => Err(err(
            flag,
            format!("{t} seconds is over a century; give at most {CENTURY}"),
        )),
        Some(t) if t > 0.0 && t.is_finite() => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(err(flag, format!("{t} is not a number of seconds above 0"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(url: &str) -> Flags {
        Flags {
            url: url.to_string(),
            ..Flags::default()
        }
    }

    #[test]
    fn a_plan_made_first_is_aimed_later() {
        let mut p = Plan::to(([127, 0, 0, 1], 0).into());
        p.aim(([127, 0, 0, 1], 8080).into());
        assert_eq!((p.target.host.as_str(), p.target.port), ("127.0.0.1", 8080));
        assert_eq!(p.headers[0].1, "127.0.0.1:8080");
        assert_eq!(p.headers.len(), 3, "host, user-agent, accept");
    }

    #[test]
    fn urls_like_ab() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/chat?x=1").unwrap(),
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/chat?x=1".into()
            }
        );
        let t = Target::parse("http://localhost/").unwrap();
        assert_eq!((t.port, t.host_header()), (80, "localhost".to_string()));
        let t = Target::parse("http://[::1]:9000/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.host_header()),
            ("::1", "[::1]:9000".to_string())
        );
        assert!(Target::parse("http://localhost")
            .unwrap_err()
            .0
            .contains("needs a path"));
        assert!(Target::parse("localhost/")
            .unwrap_err()
            .0
            .contains("invalid URL"));
        let https = Target::parse("https://x/").unwrap();
        assert_eq!(
            (https.tls, https.port, https.host_header()),
            (true, 443, "x".into())
        );
        let other = Target::parse("https://x:8443/").unwrap();
        assert_eq!(other.host_header(), "x:8443");
        assert!(Target::parse("http://x:abc/")
            .unwrap_err()
            .0
            .contains("not a port"));
    }

    #[test]
    fn ab_defaults_and_rules() {
        let p = flags("http://h:81/").plan().unwrap();
        assert_eq!(
            (p.requests, p.concurrency, p.timeout),
            (1, 1, Duration::from_secs(30))
        );
        assert_eq!(p.method, Method::GET);
        let names: Vec<&str> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["host", "user-agent", "accept"]);
        assert_eq!(p.headers[0].1, "h:81");

        let p = Flags {
            time_limit: Some(2.0),
            ..flags("http://h/")
        }
        .plan()
        .unwrap();
        assert_eq!(
            p.requests, TIME_LIMIT_REQUESTS,
            "-t alone implies a large -n"
        );

        let e = Flags {
            requests: Some(5),
            concurrency: Some(10),
            ..flags("http://h/")
        }
        .plan()
        .unwrap_err();
        assert_eq!(e.flag, "-c");
        assert!(e.why.contains("greater than total number of requests"));
    }

    #[test]
    fn post_put_head_and_headers() {
        let p = Flags {
            post: Some(Bytes::from_static(b"{}")),
            ..flags("http://h/")
        }
        .plan()
        .unwrap();
        assert_eq!(p.method, Method::POST);
        assert!(
            p.headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "text/plain"),
            "ab's default"
        );
        let p = Flags {
            post: Some(Bytes::from_static(b"{}")),
            content_type: Some("application/json".into()),
            headers: vec!["X-User: alice".into(), "User-Agent: me".into()],
            cookies: vec!["session=1".into()],
            basic_auth: Some("user:pass".into()),
            ..flags("http://h/")
        }
        .plan()
        .unwrap();
        let get = |name: &str| {
            p.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("content-type").as_deref(), Some("application/json"));
        assert_eq!(
            get("user-agent").as_deref(),
            Some("me"),
            "-H replaces a default"
        );
        assert_eq!(get("x-user").as_deref(), Some("alice"));
        assert_eq!(get("cookie").as_deref(), Some("session=1"));
        assert_eq!(get("authorization").as_deref(), Some("Basic dXNlcjpwYXNz"));
        let e = Flags {
            headers: vec!["NoColon".into()],
            ..flags("http://h/")
        }
        .plan()
        .unwrap_err();
        assert!(e.to_string().starts_with("-H: 'NoColon' has no ':'"), "{e}");
        assert_eq!(
            Flags {
                head: true,
                ..flags("http://h/")
            }
            .plan()
            .unwrap()
            .method,
            Method::HEAD
        );
        assert_eq!(
            Flags {
                put: Some(Bytes::new()),
                ..flags("http://h/")
            }
            .plan()
            .unwrap()
            .method,
            Method::PUT
        );
    }

    #[test]
    fn rate_sizes_a_time_limited_run() {
        let p = Flags {
            rate: Some(100.0),
            time_limit: Some(3.0),
            ..flags("http://h/")
        }
        .plan()
        .unwrap();
        assert_eq!((p.requests, p.pacing), (300, Pacing::Rate(100.0)));
        assert!(Flags {
            rate: Some(0.0),
            ..flags("http://h/")
        }
        .plan()
        .is_err());
    }

    #[test]
    fn client_identities() {
        assert_eq!(parse_cidr("10.0.0.0/16"), Ok((0x0a00_0000, 65536)));
        assert_eq!(parse_cidr("10.1.2.3/24"), Ok((0x0a01_0200, 256)));
        assert_eq!(
            parse_cidr("10.0.0.0/0").unwrap().1,
            1 << 24,
            "capped at every /24"
        );
        assert!(parse_cidr("10.0.0/8").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        let p = Flags {
            forwarded_for_pool: Some("10.0.0.0/30".into()),
            ..flags("http://h/")
        }
        .plan()
        .unwrap();
        let c = p.clients.unwrap();
        let ips: Vec<String> = (0..5).map(|i| c.address(i).to_string()).collect();
        assert_eq!(
            ips,
            ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.0"]
        );
        let e = Flags {
            source_ips: Some("10.0.0.0/16".into()),
            ..flags("http://h/")
        }
        .plan()
        .unwrap_err();
        assert!(e.why.contains("127.0.0.0/8"));
        assert!(Flags {
            source_ips: Some("127.0.0.0/16".into()),
            ..flags("http://h/")
        }
        .plan()
        .is_ok());
    }
}
