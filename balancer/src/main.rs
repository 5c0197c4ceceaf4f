use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use balancer::conf::{self, ProxyConfig};
use balancer::proxy::{Options, Proxy};
use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  balancer --listen 127.0.0.1:8080 --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002
  balancer --upstream '127.0.0.1:8001 weight=3' --upstream '127.0.0.1:8002 weight=2 max_fails=3 fail_timeout=30s' \\
           --upstream '127.0.0.1:8003 backup' --method least_conn --access-log upstream.log
  balancer --method 'hash $request_uri consistent' --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002
  balancer --config nginx.conf --listen 127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(name = "balancer", version, about = "A reverse proxy that balances exactly as nginx's upstream module does.", after_help = EXAMPLES)]
struct Opts {
    /// Read upstreams, locations, log formats and the access log from an nginx.conf
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: the config's listen, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A server line as nginx writes it: 'ADDR [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [backup] [down]'; repeatable
    #[arg(long, value_name = "SERVER")]
    upstream: Vec<String>,
    /// round_robin, least_conn, ip_hash, 'hash KEY [consistent]', random, 'random two', least_time
    #[arg(long, value_name = "METHOD", default_value = "round_robin")]
    method: String,
    /// proxy_next_upstream: error timeout http_500 http_502 http_503 http_504 http_403 http_404 http_429 non_idempotent off
    #[arg(long, value_name = "CONDITIONS")]
    next_upstream: Option<String>,
    /// proxy_next_upstream_tries (0: one try per server)
    #[arg(long, value_name = "N")]
    next_upstream_tries: Option<u32>,
    /// Active health checks: 'interval=2s fails=2 passes=1 uri=/health'
    #[arg(long, value_name = "PARAMS")]
    health_check: Option<String>,
    /// Write an access log here
    #[arg(long, value_name = "FILE")]
    access_log: Option<String>,
    /// A log_format string, or a preset: lbkit (default), upstream_log, upstream_log_port, main, combined
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Let ip_hash and $remote_addr see the first X-Forwarded-For address
    #[arg(long)]
    trust_forwarded_for: bool,
    /// Poll each peer's /metrics this often and halve the weight of one using over 85% memory
    #[arg(long, value_name = "DURATION")]
    dynamic_weights: Option<String>,
    /// Seed for the random methods
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// client_header_timeout: a request head must arrive within it [default: the config's, else 60s]
    #[arg(long, value_name = "TIME")]
    client_header_timeout: Option<String>,
    /// client_body_timeout: the longest wait between two reads of a request body [default: 60s]
    #[arg(long, value_name = "TIME")]
    client_body_timeout: Option<String>,
    /// keepalive_timeout: idle keep-alive connections close after it; 0 closes after each answer [default: 75s]
    #[arg(long, value_name = "TIME")]
    keepalive_timeout: Option<String>,
    /// worker_connections: client connections open at once [default: the config's, within the file-descriptor limit]
    #[arg(long, value_name = "N")]
    worker_connections: Option<usize>,
    /// listen ... ssl with this PEM certificate chain (ssl_certificate; with --ssl-certificate-key)
    #[arg(long, value_name = "FILE", requires = "ssl_certificate_key")]
    ssl_certificate: Option<String>,
    /// ssl_certificate_key: the PEM key of --ssl-certificate
    #[arg(long, value_name = "FILE", requires = "ssl_certificate")]
    ssl_certificate_key: Option<String>,
    /// listen ... http2: HTTP/2 by ALPN over TLS, by prior knowledge (h2c) without
    #[arg(long)]
    http2: bool,
    /// proxy_pass https://: TLS to the --upstream servers (unverified, as nginx's proxy_ssl_verify off)
    #[arg(long)]
    upstream_tls: bool,
    /// proxy_ssl_verify on with proxy_ssl_trusted_certificate FILE (and proxy_ssl_name NAME, see --upstream-tls-name)
    #[arg(long, value_name = "FILE", requires = "upstream_tls")]
    upstream_trusted_certificate: Option<String>,
    /// proxy_ssl_name: the name the upstreams' certificates are checked for [default: backend]
    #[arg(long, value_name = "NAME", requires = "upstream_trusted_certificate")]
    upstream_tls_name: Option<String>,
}

/// Turns the flags into nginx.conf text, so flags and files share one
/// parser; `lines[i]` names the flag behind line i + 1, for errors.
fn flags_as_conf(opts: &Opts) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut line = |text: &mut String, conf: String, flag: String| {
        text.push_str(&conf);
        text.push('\n');
        lines.push(flag);
    };
    line(&mut text, "upstream backend {".into(), "--upstream".into());
    if opts.method != "round_robin" {
        line(
            &mut text,
            format!("  {};", opts.method),
            format!("--method '{}'", opts.method),
        );
    }
    for u in &opts.upstream {
        line(
            &mut text,
            format!("  server {u};"),
            format!("--upstream '{u}'"),
        );
    }
    // Kept-alive upstream connections, so a load test through the
    // balancer measures the backends, not connection set-up.
    line(&mut text, "  keepalive 64;".into(), String::new());
    line(&mut text, "}".into(), "--upstream".into());
    line(&mut text, "server {".into(), String::new());
    line(&mut text, "  location / {".into(), String::new());
    let scheme = if opts.upstream_tls { "https" } else { "http" };
    line(
        &mut text,
        format!("    proxy_pass {scheme}://backend;"),
        String::new(),
    );
    // Seed 000's headers, and HTTP/1.1 for the kept connections.
    for set in [
        "client_max_body_size 10m",
        "proxy_http_version 1.1",
        "proxy_set_header Connection \"\"",
        "proxy_set_header Host $host",
        "proxy_set_header X-Real-IP $remote_addr",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_set_header X-Forwarded-Proto $scheme",
    ] {
        line(&mut text, format!("    {set};"), String::new());
    }
    if let Some(ca) = &opts.upstream_trusted_certificate {
        line(&mut text, "    proxy_ssl_verify on;".into(), String::new());
        line(
            &mut text,
            format!("    proxy_ssl_trusted_certificate {ca};"),
            format!("--upstream-trusted-certificate {ca}"),
        );
    }
    if let Some(name) = &opts.upstream_tls_name {
        line(
            &mut text,
            format!("    proxy_ssl_name {name};"),
            format!("--upstream-tls-name {name}"),
        );
    }
    if let Some(n) = &opts.next_upstream {
        line(
            &mut text,
            format!("    proxy_next_upstream {n};"),
            format!("--next-upstream '{n}'"),
        );
    }
    if let Some(n) = opts.next_upstream_tries {
        line(
            &mut text,
            format!("    proxy_next_upstream_tries {n};"),
            format!("--next-upstream-tries {n}"),
        );
    }
    if let Some(h) = &opts.health_check {
        line(
            &mut text,
            format!("    health_check {h};"),
            format!("--health-check '{h}'"),
        );
    }
    line(&mut text, "  }".into(), String::new());
    line(&mut text, "}".into(), String::new());
    (text, lines)
}

fn load(opts: &Opts) -> anyhow::Result<ProxyConfig> {
    let mut config = match &opts.config {
        Some(path) => {
            let shown = path.display().to_string();
            std::fs::metadata(path).with_context(|| format!("cannot read --config {shown}"))?;
            // Includes followed and host names resolved, as nginx does.
            conf::load_file(path)?
        }
        None => {
            if opts.upstream.is_empty() {
                return Err(anyhow!(
                    "give --upstream ADDR (one per server) or --config nginx.conf"
                ));
            }
            let first = opts.method.split_whitespace().next().unwrap_or("");
            if !balancer::Method::NAMES.contains(&first) {
                let all = balancer::Method::NAMES.join(", ");
                return Err(anyhow!(
                    "--method '{}': unknown method; use {all}",
                    opts.method
                ));
            }
            let (text, lines) = flags_as_conf(opts);
            conf::load("flags", &text).map_err(|e| {
                let flag = lines
                    .get(e.line.wrapping_sub(1))
                    .filter(|f| !f.is_empty())
                    .cloned()
                    .unwrap_or_else(|| "flags".into());
                anyhow!(
                    "{flag}: {}{}",
                    if e.directive.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", e.directive)
                    },
                    e.message
                )
            })?
        }
    };
    if let (Some(cert), Some(key)) = (&opts.ssl_certificate, &opts.ssl_certificate_key) {
        config.tls.ssl = true;
        config.tls.certificate = Some(cert.clone());
        config.tls.certificate_key = Some(key.clone());
    }
    config.tls.http2 |= opts.http2;
    let limits = &mut config.clients;
    let times = [
        (
            "--client-header-timeout",
            &opts.client_header_timeout,
            &mut limits.header_timeout,
        ),
        (
            "--client-body-timeout",
            &opts.client_body_timeout,
            &mut limits.body_timeout,
        ),
        (
            "--keepalive-timeout",
            &opts.keepalive_timeout,
            &mut limits.keepalive_timeout,
        ),
    ];
    for (flag, given, slot) in times {
        if let Some(t) = given {
            *slot = conf::parse_time(t)
                .ok_or_else(|| anyhow!("{flag} {t}: not a time like 60s, 500ms or 1m"))?;
        }
    }
    match opts.worker_connections {
        Some(0) => return Err(anyhow!("--worker-connections 0: give at least 1")),
        Some(n) => limits.connections = Some(n),
        None => {}
    }
    if let Some(path) = &opts.access_log {
        let format = match &opts.log_format {
            Some(f) if logformat::presets::preset(f).is_none() => {
                config.log_formats.push(conf::LogFormatDef {
                    name: "cli".into(),
                    escape: logformat::Escape::Default,
                    format: f.clone(),
                });
                "cli".to_string()
            }
            Some(preset) => preset.clone(),
            None => "lbkit".to_string(),
        };
        config.access_log = Some(conf::AccessLog {
            path: path.clone(),
            format,
            line: 0,
        });
    }
    Ok(config)
}

async fn run(opts: Opts) -> anyhow::Result<()> {
    let config = load(&opts)?;
    for ignored in &config.ignored {
        eprintln!("balancer: ignoring {ignored}");
    }
    let listen = opts
        .listen
        .clone()
        .or_else(|| config.listen.first().cloned())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| anyhow!("--listen {listen}: not an address like 127.0.0.1:8080"))?;
    let mut options = Options::new(listen, config);
    options.trust_forwarded_for = opts.trust_forwarded_for;
    options.seed = opts.seed;
    if let Some(d) = &opts.dynamic_weights {
        options.dynamic_weights =
            Some(primitives::parse_duration(d).map_err(|e| anyhow!("--dynamic-weights {d}: {e}"))?);
    }
    let summary: Vec<String> = options
        .config
        .upstreams
        .iter()
        .map(|u| {
            let servers: Vec<String> = u.servers.iter().map(ToString::to_string).collect();
            format!(
                "{} ({}): {}",
                u.name,
                u.method.directive(),
                servers.join(", ")
            )
        })
        .collect();
    // Listening before the "listening" line: a script that signals as soon
    // as it reads it must be heard, not kill the process outright.
    let mut listening = primitives::Signals::new()?;
    let proxy = Proxy::start(options).await?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "balancer: listening on {}://{} -> {}",
        if proxy.tls() { "https" } else { "http" },
        proxy.addr(),
        summary.join("; ")
    );
    eprintln!(
        "balancer: up to {} client connections at once",
        proxy.max_connections()
    );
    listening.next().await;
    eprintln!("balancer: shutting down");
    proxy.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let opts: Opts = match primitives::parse_flags() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("balancer: error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("balancer: error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("balancer: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
