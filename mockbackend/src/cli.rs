//! The `mockbackend` command line: flags to a checked `Config`, then serve
//! until Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Parser;

use primitives::tls::{self, Identity};

use crate::config::{build, Config, ConfigError, Layer, Setting};
use crate::server::Server;

const EXAMPLES: &str = "\
Examples:
  mockbackend                                    # ports 8001,8002 as in the seed's server.py
  mockbackend --ports 8001-8004 --latency 'normal(200ms,50ms)'
  mockbackend --ports 8001,8002,8003 --profile 8003:latency=300ms,error_rate=0.2
  mockbackend --max-concurrency 4 --queue 8      # 503 'Server is busy' past 4 + 8
  mockbackend --ttft 200ms --tokens-per-sec 20   # paced OpenAI-style streams
  mockbackend --config mock.toml --seed 42
  mockbackend --tls-self-signed                  # HTTPS (h2 and http/1.1); clients need --insecure

Fault control, on any served port, from this machine, never through a proxy,
with the token printed at start (or set with --admin-token):
  mockbackend --admin-token secret &
  curl -XPOST -H 'X-Mock-Token: secret' 'localhost:8001/_mock/down?port=8002&for=4s'
  curl -XPOST -H 'X-Mock-Token: secret' 'localhost:8001/_mock/errors?rate=0.5&status=503'
  curl -XPOST -H 'X-Mock-Token: secret' 'localhost:8001/_mock/reset?port=all'
  actions: down (refuse), up, hang, slow, errors, reset-connections, drain, undrain, load, clear, reset";

#[derive(Debug, Parser)]
#[command(name = "mockbackend", version, about = "Stand-in AI backends on many ports, for testing load balancers.", after_help = EXAMPLES)]
pub struct Opts {
    /// Ports to serve: a list and/or ranges, 0 for an ephemeral port [default: 8001,8002]
    #[arg(long, value_name = "LIST")]
    ports: Option<String>,
    /// Address to listen on; 0.0.0.0 exposes the backends beyond this machine [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// TOML file with any of these settings and [port.NNNN] sections; flags win over it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Latency before answering: 20ms, normal(200ms,50ms), uniform(10ms,50ms), lognormal(p50,p99)
    #[arg(long, value_name = "DIST")]
    latency: Option<String>,
    /// Share of work requests answered with --error-status (0.05 or 5%)
    #[arg(long, value_name = "RATE")]
    error_rate: Option<String>,
    /// Status of injected errors [default: 500]
    #[arg(long, value_name = "CODE")]
    error_status: Option<String>,
    /// Work requests served at once; more wait in --queue, past that 503
    #[arg(long, value_name = "N")]
    max_concurrency: Option<String>,
    /// Work requests allowed to wait for a slot [default: 0]
    #[arg(long, value_name = "N")]
    queue: Option<String>,
    /// Time to first token of /v1/* answers [default: 0]
    #[arg(long, value_name = "DURATION")]
    ttft: Option<String>,
    /// Token pace of /v1/* answers; 0 is as fast as possible [default: 0]
    #[arg(long, value_name = "N")]
    tokens_per_sec: Option<String>,
    /// Tokens per answer unless max_tokens asks for fewer: N, uniform(MIN,MAX)
    /// or normal(MEAN,SD), drawn per request [default: 16]
    #[arg(long, value_name = "N")]
    output_tokens: Option<String>,
    /// Streams stop after this many tokens and hang (a node that stalls
    /// mid-stream) [default: never]
    #[arg(long, value_name = "N")]
    stall_after: Option<String>,
    /// Model name /v1/models lists [default: mock-model]
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Prompt prefixes each port remembers, as an LLM server's KV cache: a
    /// prompt that begins with one comes sooner to its first token [default: 0, no cache]
    #[arg(long, value_name = "N")]
    prefix_cache_size: Option<String>,
    /// Time to first token when the whole prompt is cached; a partly cached
    /// one gets a share between this and --ttft [default: 0]
    #[arg(long, value_name = "DURATION")]
    prefix_cache_ttft: Option<String>,
    /// Per-port settings: PORT:key=value,... (keys: name, latency, error_rate, error_status,
    /// max_concurrency, queue, ttft, tokens_per_sec, output_tokens, stall_after, model,
    /// prefix_cache_size, prefix_cache_ttft); repeatable
    #[arg(long, value_name = "PORT:SETTINGS")]
    profile: Vec<String>,
    /// Seed for latency and error draws, so runs repeat
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print a line per request (time, port, client, request, status, duration)
    #[arg(long)]
    log: bool,
    /// Largest request body accepted; larger gets 413 [default: 10MiB]
    #[arg(long, value_name = "SIZE")]
    max_body: Option<String>,
    /// Drop clients that have not sent their request headers by then, and idle
    /// keep-alive connections after that long; 0 turns it off [default: 60s]
    #[arg(long, value_name = "DURATION")]
    header_timeout: Option<String>,
    /// On Ctrl-C or SIGTERM, how long in-flight requests get to finish [default: 30s]
    #[arg(long, value_name = "DURATION")]
    grace: Option<String>,
    /// The token `/_mock/` controls must send in X-Mock-Token [default: a random one, printed at start]
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); h2 and
    /// http/1.1 by ALPN
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate for localhost and 127.0.0.1 made at
    /// start (clients need --insecure)
    #[arg(long, conflicts_with = "tls_cert")]
    tls_self_signed: bool,
}

impl Opts {
    /// Checks every flag and the config file, before anything is bound.
    pub fn plan(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            None => None,
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: shown.clone(),
                    why: format!("cannot read --config: {e}"),
                })?;
                Some(Layer::from_toml(&shown, &text)?)
            }
        };
        let mut flags = Layer::default();
        flags.options.ports = self.ports;
        flags.options.bind = self.bind;
        flags.options.seed = self.seed;
        flags.options.log = self.log.then_some(true);
        flags.options.max_body = self.max_body;
        flags.options.header_timeout = self.header_timeout;
        flags.options.grace = self.grace;
        flags.options.admin_token = self.admin_token;
        let profile_flags = [
            ("latency", self.latency),
            ("error_rate", self.error_rate),
            ("error_status", self.error_status),
            ("max_concurrency", self.max_concurrency),
            ("queue", self.queue),
            ("ttft", self.ttft),
            ("tokens_per_sec", self.tokens_per_sec),
            ("output_tokens", self.output_tokens),
            ("stall_after", self.stall_after),
            ("model", self.model),
            ("prefix_cache_size", self.prefix_cache_size),
            ("prefix_cache_ttft", self.prefix_cache_ttft),
        ];
        for (key, value) in profile_flags {
            if let Some(value) = value {
                let source = format!("--{}", key.replace('_', "-"));
                flags.all.push(Setting {
                    source,
                    key: key.to_string(),
                    value,
                });
            }
        }
        for p in &self.profile {
            flags.add_port_override(p)?;
        }
        let identity = match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(Identity::from_pem_files(cert, key)),
            (_, _, true) => Some(Identity::self_signed()),
            _ => None,
        };
        let tls = identity
            .map(|id| id.and_then(|id| tls::server_config(id, &[tls::H2, tls::HTTP11])))
            .transpose()
            .map_err(|e| ConfigError::File {
                path: if self.tls_self_signed {
                    "--tls-self-signed"
                } else {
                    "--tls-cert"
                }
                .into(),
                why: e.to_string(),
            })?;
        let mut config = build(file, flags)?;
        config.tls = tls.map(tls::ServerTls);
        Ok(config)
    }
}

/// Why the backends could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen for Ctrl-C and SIGTERM: {0}")]
    Signals(#[from] std::io::Error),
    #[error(transparent)]
    Start(#[from] crate::StartError),
}

/// Serves `config` until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Listening before the "serving" lines: a script that signals as soon
    // as it reads them must be heard, not kill the process outright.
    let mut signals = primitives::Signals::new()?;
    let server = Server::start(config).await?;
    let scheme = if server.tls() { "https" } else { "http" };
    for (node, addr) in server.nodes().iter().zip(server.addrs()) {
        let p = &node.profile;
        // Scripts read these lines; one that stopped reading is no reason to panic.
        let _ = writeln!(
            std::io::stdout().lock(),
            "mockbackend: serving {scheme}://{addr} as {} (latency {}, error rate {})",
            node.label,
            p.latency,
            p.error_rate
        );
    }
    let _ = writeln!(
        std::io::stdout().lock(),
        "mockbackend: fault control: POST /_mock/<action> with header 'X-Mock-Token: {}'",
        server.admin_token()
    );
    signals.next().await;
    eprintln!(
        "mockbackend: shutting down; finishing {} in-flight requests",
        server.in_flight()
    );
    tokio::select! {
        () = server.shutdown() => {}
        () = signals.next() => eprintln!("mockbackend: second signal, exiting now"),
    }
    Ok(())
}
