//! What a run is, checked before anything touches the network: the target,
//! the requests, the pacing and the clients (flags.rs makes one from ab's
//! flags; a scenario builds one directly).

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;

use crate::schedule::{Arrival, Pacing, Phase};
use crate::shard::Shard;
use crate::streams::Slo;
use crate::template::Text;
use crate::transport::Transport;

/// A URL loadgen cannot send to, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// What to hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`: the connection speaks TLS.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, as sent on the request line.
    pub path: String,
}

impl Target {
    /// `http[s]://host[:port]/path`; like ab, the path is required.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        Target::read(url).map_err(TargetError)
    }

    fn read(url: &str) -> Result<Target, String> {
        let (tls, rest) = match url.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            Some((scheme, _)) => return Err(format!("{url}: unsupported scheme {scheme}://")),
            None => return Err(format!("{url}: invalid URL; write http://host[:port]/path")),
        };
        let slash = rest
            .find('/')
            .ok_or_else(|| format!("{url}: invalid URL; it needs a path, e.g. {url}/"))?;
        let (authority, path) = rest.split_at(slash);
        let (host, port) = match authority.rsplit_once(':') {
            // [::1]:8080, or host:port
            Some((h, p)) if !p.contains(']') => {
                let port = p
                    .parse()
                    .map_err(|_| format!("{url}: '{p}' is not a port"))?;
                (h, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: invalid URL; no host"));
        }
        Ok(Target {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The Host header ab sends: the port only when it is not the scheme's.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn scheme(&self) -> &'static str {
        scheme(self.tls)
    }

    fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }
}

/// `https` for a TLS target, else `http`.
pub(crate) fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

/// Many client identities from one machine, so ip_hash and stickiness can
/// be exercised on a loopback test bed: request `i` acts as client
/// `base + (i / every) % size` (times the stride).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clients {
    pub via: ClientsVia,
    pub base: u32,
    pub size: u32,
    /// The step between identities: 1 for a CIDR pool, 256 to put each
    /// client in its own /24 (ip_hash looks at three octets).
    pub stride: u32,
    /// 1; N for shard I of N, whose requests are every Nth of the whole
    /// run: its own range is then used evenly (see `Shard::apply`).
    pub every: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientsVia {
    /// An `X-Forwarded-For` header (for a balancer run with --trust-forwarded-for).
    ForwardedFor,
    /// The connection's source address (within 127.0.0.0/8: loopback only).
    Source,
}

impl Clients {
    pub fn address(&self, i: u64) -> std::net::Ipv4Addr {
        let k = (i / u64::from(self.every.max(1)) % u64::from(self.size)) as u32;
        std::net::Ipv4Addr::from(self.base.wrapping_add(k.wrapping_mul(self.stride)))
    }
}

/// `10.0.0.0/16` as its first address and how many it holds.
pub fn parse_cidr(text: &str) -> Result<(u32, u32), String> {
    let (ip, bits) = text.split_once('/').unwrap_or((text, "32"));
    let ip: std::net::Ipv4Addr = ip
        .trim()
        .parse()
        .map_err(|_| format!("'{ip}' is not an IPv4 address"))?;
    let bits: u32 = bits
        .trim()
        .parse()
        .ok()
        .filter(|b| *b <= 32)
        .ok_or_else(|| format!("'/{bits}' is not a prefix length"))?;
    // At most 2^24 identities: enough for every /24 ip_hash can tell apart.
    let size = 1u64 << (32 - bits).min(24);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Ok((u32::from(ip) & mask, size as u32))
}

/// One request of a scenario's weighted mix.
#[derive(Debug, Clone)]
pub struct Variant {
    pub method: Method,
    pub path: Text,
    /// Added to the plan's headers, replacing those of the same name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Text>,
    pub weight: u32,
}

/// The OpenAI-style request `--stream` sends when no body is given: it asks
/// for the usage chunk, so output tokens are the server's own count.
pub fn stream_body(model: &str) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say something."}],
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string()
}

/// The model named in requests loadgen writes, unless `--model` says.
pub const DEFAULT_MODEL: &str = "mock-model";

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    /// Connect here instead (`-X proxy:port`), sending the absolute URL.
    pub proxy: Option<(String, u16)>,
    pub requests: u64,
    pub time_limit: Option<Duration>,
    pub concurrency: usize,
    pub pacing: Pacing,
    pub keepalive: bool,
    pub method: Method,
    pub body: Option<Bytes>,
    /// Headers in the order they are sent (ab's defaults first, then `-H`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    /// `-r`: keep going after receive errors (ab stops otherwise).
    pub keep_going: bool,
    /// `-l`: a body length different from the first is not a failure.
    pub variable_length: bool,
    /// Response headers that name the node that answered, first found wins.
    pub node_headers: Vec<HeaderName>,
    pub clients: Option<Clients>,
    /// Read the node from this field of a JSON answer instead of a header.
    pub node_field: Option<String>,
    /// ab's -v: 2 warns of each non-2xx answer, 4 prints the request and
    /// every response head.
    pub verbosity: u8,
    /// A scenario's weighted requests; empty: the one the flags describe.
    pub mix: Vec<Variant>,
    /// A scenario's phases, run one after another; empty: none.
    pub phases: Vec<Phase>,
    /// A timed replay: when each request is due, from the start.
    pub due: Vec<Duration>,
    pub arrival: Arrival,
    /// Streams that meet it count towards goodput.
    pub slo: Option<Slo>,
    /// This run is one part of a sharded one (`--shard I/N`).
    pub shard: Option<Shard>,
    /// When the run begins (`--start-at`): the shards of one run share it,
    /// so their schedules line up.
    pub start_at: Option<std::time::SystemTime>,
    /// Nodes' names by address (a scenario's backends), for reports.
    pub node_names: Vec<(String, String)>,
    /// TLS or not, HTTP/1.1 or HTTP/2.
    pub transport: Transport,
}

/// ab's wait for each answer, `-s`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The response headers that name the node that answered, first found wins.
pub const DEFAULT_NODE_HEADERS: [&str; 2] = ["x-upstream", "x-backend"];

impl Plan {
    /// One GET of `http://addr/` as ab sends it with no flags (one request,
    /// one at a time, HTTP/1.0, ab's headers, a 30 s timeout): the plan a
    /// caller that is not the command line (a scenario) starts from.
    pub fn to(addr: std::net::SocketAddr) -> Plan {
        let target = Target {
            tls: false,
            host: addr.ip().to_string(),
            port: addr.port(),
            path: "/".to_string(),
        };
        let header = |name: &'static str, value: &str| {
            let value = HeaderValue::from_str(value).expect("an address is a header value");
            (HeaderName::from_static(name), value)
        };
        Plan {
            headers: vec![
                header("host", &target.host_header()),
                header("user-agent", "ApacheBench/2.3"),
                header("accept", "*/*"),
            ],
            target,
            proxy: None,
            requests: 1,
            time_limit: None,
            concurrency: 1,
            pacing: Pacing::Closed,
            keepalive: false,
            method: Method::GET,
            body: None,
            timeout: DEFAULT_TIMEOUT,
            keep_going: false,
            variable_length: false,
            node_headers: DEFAULT_NODE_HEADERS
                .iter()
                .map(|n| HeaderName::from_static(n))
                .collect(),
            clients: None,
            node_field: None,
            verbosity: 0,
            mix: Vec::new(),
            phases: Vec::new(),
            due: Vec::new(),
            arrival: Arrival::Even,
            slo: None,
            shard: None,
            start_at: None,
            node_names: Vec::new(),
            transport: Transport::default(),
        }
    }

    /// A node as reports show it: `heavy 127.0.0.1:8001` when it has a
    /// name, else as it was given.
    pub fn node_label(&self, node: &str) -> String {
        match self.node_names.iter().find(|(a, _)| a == node) {
            Some((_, name)) => format!("{name} {node}"),
            None => node.to_string(),
        }
    }

    /// Points the plan at `addr`, Host header included: for a caller that
    /// checks its plan before it knows where the load goes.
    pub fn aim(&mut self, addr: std::net::SocketAddr) {
        let tls = self.target.tls;
        self.target = Target {
            tls,
            ..Plan::to(addr).target
        };
        let value = HeaderValue::from_str(&self.target.host_header())
            .expect("an address is a header value");
        self.headers.retain(|(n, _)| *n != hyper::header::HOST);
        self.headers.insert(0, (hyper::header::HOST, value));
    }
}
