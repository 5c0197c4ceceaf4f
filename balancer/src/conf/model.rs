//! What an nginx.conf says, as values: upstreams, locations and what they
//! do, log formats and the access log. A caller may build these directly
//! (lbkit's scenario runner does) instead of writing text to parse.

use std::time::Duration;

use crate::upstream::UpstreamSpec;

/// Everything the reverse proxy needs from nginx.conf.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyConfig {
    pub upstreams: Vec<UpstreamSpec>,
    /// `listen` addresses, as `host:port`.
    pub listen: Vec<String>,
    pub locations: Vec<Location>,
    pub log_formats: Vec<LogFormatDef>,
    /// The access log the proxy writes: the last one configured.
    pub access_log: Option<AccessLog>,
    /// Every `access_log` configured, in order (nginx writes them all).
    pub access_logs: Vec<AccessLog>,
    /// `keepalive N` of the upstreams: idle connections kept per upstream.
    pub keepalive: Option<usize>,
    /// How long and how many clients may hold the proxy.
    pub clients: ClientLimits,
    /// Directives nginx has that this balancer does not act on, as `file:line: name`.
    pub ignored: Vec<String>,
    /// `listen ... ssl http2` and the certificate served on it.
    pub tls: ListenTls,
}

/// `listen ... ssl` and `listen ... http2`, and the certificate nginx
/// serves: `ssl_certificate` and `ssl_certificate_key`, PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenTls {
    pub ssl: bool,
    /// HTTP/2: by ALPN over TLS, with prior knowledge (h2c) without.
    pub http2: bool,
    pub certificate: Option<String>,
    pub certificate_key: Option<String>,
}

/// `proxy_pass https://`: TLS to the upstream's servers, as the
/// `proxy_ssl_*` directives of its location set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `proxy_ssl_verify` (nginx's default: off).
    pub verify: bool,
    /// `proxy_ssl_trusted_certificate`: the CA certificates (PEM) a
    /// verified server's certificate must chain to.
    pub trusted_certificate: Option<String>,
    /// `proxy_ssl_server_name` (default off): send the name as SNI.
    pub server_name: bool,
    /// `proxy_ssl_name`: the name checked and sent; by default the host
    /// of proxy_pass (the upstream's name).
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormatDef {
    pub name: String,
    /// nginx's `escape=`: default, json or none.
    pub escape: logformat::Escape,
    pub format: String,
}

impl ProxyConfig {
    /// The `access_log` that writes `path` (a log being read): the one
    /// configured with that path, else with that file name; the only one
    /// when there is one. `Err` lists them when it cannot tell.
    pub fn access_log_for(&self, path: &str) -> Result<Option<&AccessLog>, String> {
        let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let by_path = self.access_logs.iter().find(|l| l.path == path);
        let by_name = || {
            self.access_logs
                .iter()
                .find(|l| name(&l.path) == name(path))
        };
        match (by_path.or_else(by_name), self.access_logs.as_slice()) {
            (Some(l), _) => Ok(Some(l)),
            (None, []) => Ok(None),
            (None, [only]) => Ok(Some(only)),
            (None, many) => Err(format!(
                "which access_log wrote {path}? The config has {}",
                many.iter()
                    .map(|l| format!("{} ({})", l.path, l.format))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub path: String,
    pub format: String,
    /// Where it was configured (0 when not from a file).
    pub line: usize,
}

/// A `location` block: which requests, and what happens to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub path: String,
    /// `location = /path`: that path only.
    pub exact: bool,
    pub action: Action,
    pub next_upstream: NextUpstream,
    pub timeouts: Timeouts,
    pub health: Option<HealthSpec>,
    /// Its requests are logged; `access_log off` in it says not.
    pub logged: bool,
    /// `proxy_pass https://`: how to speak TLS to the upstream.
    pub upstream_tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Proxy { upstream: String },
    Return { status: u16, body: String },
}

/// `proxy_next_upstream` and its companions: when a request moves on to the
/// next server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextUpstream {
    pub on_error: bool,
    pub on_timeout: bool,
    /// `invalid_header`: a response head that does not parse.
    pub on_invalid_header: bool,
    /// Statuses that count as failures and are retried (`http_502` ...).
    pub statuses: Vec<u16>,
    /// Retry POST and other non-idempotent requests too.
    pub non_idempotent: bool,
    /// 0 is no limit beyond one try per server.
    pub tries: u32,
    pub timeout: Option<Duration>,
}

impl Default for NextUpstream {
    /// nginx's default: `proxy_next_upstream error timeout;`
    fn default() -> Self {
        NextUpstream {
            on_error: true,
            on_timeout: true,
            on_invalid_header: false,
            statuses: Vec::new(),
            non_idempotent: false,
            tries: 0,
            timeout: None,
        }
    }
}

impl NextUpstream {
    /// These settings with the conditions of a `proxy_next_upstream` line
    /// (`error timeout http_502 non_idempotent`, or `off`) in place of
    /// their own; tries and the timeout stay.
    pub fn with_conditions(&self, words: &[&str]) -> Result<NextUpstream, super::ValueError> {
        // The line replaces every condition, as nginx's bitmask does.
        let mut next = NextUpstream {
            on_error: false,
            on_timeout: false,
            on_invalid_header: false,
            statuses: Vec::new(),
            non_idempotent: false,
            ..self.clone()
        };
        for word in words {
            match *word {
                "error" => next.on_error = true,
                "timeout" => next.on_timeout = true,
                "non_idempotent" => next.non_idempotent = true,
                "invalid_header" => next.on_invalid_header = true,
                "off" => {
                    next.on_error = false;
                    next.on_timeout = false;
                    next.on_invalid_header = false;
                    next.non_idempotent = false;
                    next.statuses.clear();
                }
                w => match w.strip_prefix("http_").and_then(|s| s.parse::<u16>().ok()) {
                    Some(s @ (500 | 502 | 503 | 504 | 403 | 404 | 429)) => next.statuses.push(s),
                    _ => return Err(super::ValueError(format!("invalid value \"{w}\""))),
                },
            }
        }
        Ok(next)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub send: Duration,
}

impl Default for Timeouts {
    /// nginx's 60 s each.
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Timeouts {
            connect: minute,
            read: minute,
            send: minute,
        }
    }
}

/// What clients may take of the proxy, as nginx bounds it. The values are
/// the proxy's, wherever the directive stands (http, server or location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// `client_header_timeout`: a request's head must have arrived this
    /// long after its first byte (or after the connection opened).
    pub header_timeout: Duration,
    /// `client_body_timeout`: the longest wait between two reads of a
    /// request body; past it the request gets 408.
    pub body_timeout: Duration,
    /// `keepalive_timeout`: an idle keep-alive connection is closed after
    /// it; 0 closes every connection after its answer.
    pub keepalive_timeout: Duration,
    /// `worker_connections` (events): client connections open at once;
    /// `None` leaves the bound to the proxy's file descriptors.
    pub connections: Option<usize>,
}

impl Default for ClientLimits {
    /// nginx's defaults: 60 s, 60 s, 75 s.
    fn default() -> Self {
        ClientLimits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            connections: None,
        }
    }
}

/// nginx Plus's `health_check` (interval, fails, passes, uri), in a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub interval: Duration,
    pub fails: u32,
    pub passes: u32,
    pub uri: String,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            interval: Duration::from_secs(5),
            fails: 1,
            passes: 1,
            uri: "/".to_string(),
        }
    }
}

/// nginx time values: `30`, `30s`, `500ms`, `1m`, `1h`, `1d`.
pub fn parse_time(v: &str) -> Option<Duration> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    let unit = &v[digits..];
    Some(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86400)?),
        _ => return None,
    })
}
