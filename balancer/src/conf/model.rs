//! What an nginx.conf says, as values: upstreams, locations and what they
//! do, log formats and the access log. A caller may build these directly
//! (lbkit's scenario runner does) instead of writing text to parse.

use std::time::Duration;

use crate::key::KeyExpr;
use crate::upstream::UpstreamSpec;

/// Everything the reverse proxy needs from nginx.conf.
#[derive(Debug, Clone, PartialEq)]
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
    /// What each upstream block says of its connections (`keepalive`)
    /// and of sharing its state between workers (`zone`), by name.
    pub upstream_options: Vec<(String, UpstreamOptions)>,
    /// `worker_processes`: each keeps its own upstream state unless the
    /// upstream has a `zone`; `auto` is this machine's cores.
    pub workers: usize,
    /// How long and how many clients may hold the proxy.
    pub clients: ClientLimits,
    /// Directives the reference does not act on because they change
    /// nothing a request gets (the fuzzer shows it), as `file:line: name`.
    pub ignored: Vec<String>,
    /// Directives the reference does not model, read from a config only
    /// read (`read`, not `load`), as `file:line: name`: running such a
    /// config on the reference would not be nginx's behaviour.
    pub unmodelled: Vec<String>,
    /// `listen ... ssl http2` and the certificate served on it.
    pub tls: ListenTls,
    /// `listen ... reuseport`: the kernel spreads connections over workers.
    pub reuseport: bool,
    /// `accept_mutex on` (events): one worker at a time accepts.
    pub accept_mutex: bool,
    /// nginx's realip module: the client address a trusted peer's header
    /// names.
    pub real_ip: Option<super::RealIp>,
    /// The first server's first `server_name` (nginx's `$host` when a
    /// request names no host); "" when none is written.
    pub server_name: String,
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

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            upstreams: Vec::new(),
            listen: Vec::new(),
            locations: Vec::new(),
            log_formats: Vec::new(),
            access_log: None,
            access_logs: Vec::new(),
            upstream_options: Vec::new(),
            workers: 1,
            clients: ClientLimits::default(),
            ignored: Vec::new(),
            unmodelled: Vec::new(),
            tls: ListenTls::default(),
            reuseport: false,
            accept_mutex: false,
            server_name: String::new(),
            real_ip: None,
        }
    }
}

/// What an `upstream {}` block says beyond its method and servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamOptions {
    pub keepalive: Option<Keepalive>,
    /// `zone NAME SIZE`: one state for all workers.
    pub zone: bool,
}

/// `keepalive N` and its companions, with nginx 1.22's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle connections each worker keeps for the whole upstream.
    pub connections: usize,
    /// `keepalive_requests` (1000): a connection serves at most this many.
    pub requests: u32,
    /// `keepalive_timeout` (60 s): an idle connection is closed after it.
    pub timeout: Duration,
    /// `keepalive_time` (1 h): a connection is not reused past this age.
    pub time: Duration,
}

impl Keepalive {
    pub fn new(connections: usize) -> Keepalive {
        Keepalive {
            connections,
            requests: 1000,
            timeout: Duration::from_secs(60),
            time: Duration::from_secs(3600),
        }
    }
}

impl ProxyConfig {
    /// The options of the upstream called `name` (none written: defaults).
    pub fn upstream_options(&self, name: &str) -> UpstreamOptions {
        self.upstream_options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    }

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
    /// `location @name`: reached only from an `error_page`.
    pub named: bool,
    pub action: Action,
    pub next_upstream: NextUpstream,
    pub timeouts: Timeouts,
    pub health: Option<HealthSpec>,
    /// Its requests are logged; `access_log off` in it says not.
    pub logged: bool,
    /// `proxy_pass https://`: how to speak TLS to the upstream.
    pub upstream_tls: Option<UpstreamTls>,
    /// What is sent upstream, and how.
    pub upstream_request: UpstreamRequest,
    /// `proxy_buffer_size`: an upstream's response head must fit in it.
    pub buffer_size: usize,
    /// The `error_page` lines in force here.
    pub error_pages: Vec<ErrorPage>,
    /// `proxy_intercept_errors`: upstream answers of 300 and up that an
    /// `error_page` names go to it too.
    pub intercept_errors: bool,
    /// `recursive_error_pages`: an error page's own error may go to one.
    pub recursive_error_pages: bool,
    /// `client_max_body_size` (nginx's 1m; `None` is 0, no limit): a
    /// longer request body gets 413.
    pub max_body: Option<u64>,
}

impl Location {
    /// A location with nginx's defaults for everything but what it does.
    pub fn new(path: &str, action: Action) -> Location {
        Location {
            path: path.to_string(),
            exact: false,
            named: false,
            action,
            next_upstream: NextUpstream::default(),
            timeouts: Timeouts::default(),
            health: None,
            logged: true,
            upstream_tls: None,
            upstream_request: UpstreamRequest::default(),
            buffer_size: 4096,
            error_pages: Vec::new(),
            intercept_errors: false,
            recursive_error_pages: false,
            max_body: Some(1 << 20),
        }
    }
}

/// How nginx writes the request it sends upstream: `proxy_http_version`,
/// the headers `proxy_set_header` sets (in their order, then nginx's
/// defaults for the names they leave), and whether the client's own
/// headers and body go too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `proxy_http_version 1.1` (nginx's default is 1.0).
    pub http11: bool,
    /// Set headers, merged with nginx's defaults: a header whose value is
    /// empty is not sent, and the client's header of that name is not
    /// passed either.
    pub headers: Vec<SetHeader>,
    pub pass_request_headers: bool,
    pub pass_request_body: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetHeader {
    pub name: String,
    pub value: KeyExpr,
}

/// nginx's own `proxy_set_header` list, in force under what a config sets.
pub const DEFAULT_SET_HEADERS: [(&str, &str); 8] = [
    ("Host", "$proxy_host"),
    ("Connection", "close"),
    ("Content-Length", "$proxy_internal_body_length"),
    ("Transfer-Encoding", "$proxy_internal_chunked"),
    ("TE", ""),
    ("Keep-Alive", ""),
    ("Expect", ""),
    ("Upgrade", ""),
];

impl UpstreamRequest {
    /// `set` (a level's proxy_set_header lines), then each of nginx's
    /// defaults whose name `set` leaves, as nginx merges them.
    pub fn with_headers(set: Vec<SetHeader>) -> UpstreamRequest {
        let mut headers = set;
        for (name, value) in DEFAULT_SET_HEADERS {
            if !headers.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
                headers.push(SetHeader {
                    name: name.to_string(),
                    value: KeyExpr::parse(value).expect("nginx's defaults parse"),
                });
            }
        }
        UpstreamRequest {
            http11: false,
            headers,
            pass_request_headers: true,
            pass_request_body: true,
        }
    }
}

impl Default for UpstreamRequest {
    fn default() -> Self {
        UpstreamRequest::with_headers(Vec::new())
    }
}

/// `error_page CODE ... [=[STATUS]] URI|@NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub codes: Vec<u16>,
    pub answer: ErrorAnswer,
    /// A named location (`@fallback`) or a URI.
    pub target: String,
}

/// The status the client gets from an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAnswer {
    /// No `=`: the error's own status.
    Same,
    /// `=`: whatever the error page answers.
    Page,
    /// `=CODE`.
    Status(u16),
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
