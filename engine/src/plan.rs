//! ab's flags, checked and turned into a plan before anything touches the
//! network. Pure: the caller reads `-p`/`-u` files and hands their bytes in.

use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;

use crate::schedule::{Arrival, Pacing, Phase};
use crate::streams::Slo;
use crate::template::Text;

/// What to hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Path and query, as sent on the request line.
    pub path: String,
}

impl Target {
    /// `http://host[:port]/path`; like ab, the path is required.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{url}: https is not supported; test the plain-http side"
                ))
            }
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
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: invalid URL; no host"));
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The Host header ab sends: the port only when it is not 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Many client identities from one machine, so ip_hash and stickiness can
/// be exercised on a loopback test bed: request `i` acts as client
/// `base + i % size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clients {
    pub via: ClientsVia,
    pub base: u32,
    pub size: u32,
    /// The step between identities: 1 for a CIDR pool, 256 to put each
    /// client in its own /24 (ip_hash looks at three octets).
    pub stride: u32,
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
        let k = (i % u64::from(self.size)) as u32;
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

/// The OpenAI-style request `--stream` sends when no body is given.
pub const STREAM_BODY: &str = r#"{"model":"mock-model","messages":[{"role":"user","content":"Say something."}],"stream":true}"#;

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
}

/// ab's flags as given, before checking.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub url: String,
    pub requests: Option<u64>,
    pub concurrency: Option<usize>,
    pub time_limit: Option<f64>,
    pub timeout: Option<f64>,
    pub post: Option<Bytes>,
    pub put: Option<Bytes>,
    pub content_type: Option<String>,
    pub headers: Vec<String>,
    pub cookies: Vec<String>,
    pub basic_auth: Option<String>,
    pub keepalive: bool,
    pub method: Option<String>,
    pub head: bool,
    pub keep_going: bool,
    pub variable_length: bool,
    pub proxy: Option<String>,
    pub rate: Option<f64>,
    pub node_headers: Vec<String>,
    pub forwarded_for_pool: Option<String>,
    pub source_ips: Option<String>,
    pub verbosity: u8,
    pub node_field: Option<String>,
    /// Send OpenAI-style streaming requests (a default chat body unless -p).
    pub stream: bool,
    pub slo: Option<String>,
    /// even, poisson or gamma (with `burstiness`).
    pub arrival: Option<String>,
    pub burstiness: Option<f64>,
    pub seed: Option<u64>,
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

fn err(flag: &str, why: impl Into<String>) -> PlanError {
    PlanError {
        flag: flag.to_string(),
        why: why.into(),
    }
}

impl Flags {
    pub fn plan(self) -> Result<Plan, PlanError> {
        let target = Target::parse(&self.url).map_err(|why| err("URL", why))?;
        let time_limit = match self.time_limit {
            None => None,
            Some(t) if t > 0.0 && t.is_finite() => Some(Duration::from_secs_f64(t)),
            Some(t) => return Err(err("-t", format!("{t} is not a number of seconds above 0"))),
        };
        let requests = match (self.requests, time_limit) {
            (Some(0), _) => return Err(err("-n", "must be at least 1")),
            (Some(n), _) => n,
            // ab: "-t ... implies a -n 50000 internally"; an open-loop rate
            // over a time limit needs as many as the schedule holds.
            (None, Some(t)) => match self.rate {
                Some(r) => ((t.as_secs_f64() * r).ceil() as u64).max(1),
                None => TIME_LIMIT_REQUESTS,
            },
            (None, None) => 1,
        };
        let concurrency = self.concurrency.unwrap_or(1);
        if concurrency == 0 {
            return Err(err("-c", "must be at least 1"));
        }
        if concurrency as u64 > requests {
            return Err(err("-c", format!("cannot use concurrency level greater than total number of requests ({requests})")));
        }
        let timeout = match self.timeout {
            None => Duration::from_secs(30),
            Some(t) if t > 0.0 && t.is_finite() => Duration::from_secs_f64(t),
            Some(t) => return Err(err("-s", format!("{t} is not a number of seconds above 0"))),
        };
        let pacing = match self.rate {
            None => Pacing::Closed,
            Some(r) if r > 0.0 && r.is_finite() => Pacing::Rate(r),
            Some(r) => return Err(err("--rate", format!("{r} is not a rate above 0"))),
        };
        let arrival = match (self.arrival.as_deref(), self.burstiness) {
            (Some(_), _) if self.rate.is_none() => {
                return Err(err(
                    "--arrival",
                    "needs --rate: arrivals are spaced around a rate",
                ))
            }
            (None | Some("even"), None) => Arrival::Even,
            (Some("poisson"), None) => Arrival::Gamma {
                shape: 1.0,
                seed: self.seed.unwrap_or(0),
            },
            (Some("gamma"), b) => {
                let shape = b.unwrap_or(1.0);
                if !(shape > 0.0 && shape.is_finite()) {
                    return Err(err("--burstiness", format!("{shape} is not above 0")));
                }
                Arrival::Gamma {
                    shape,
                    seed: self.seed.unwrap_or(0),
                }
            }
            (_, Some(_)) => return Err(err("--burstiness", "goes with --arrival gamma")),
            (Some(other), None) => {
                return Err(err(
                    "--arrival",
                    format!("'{other}': use even, poisson or gamma"),
                ))
            }
        };
        let slo = self
            .slo
            .as_deref()
            .map(Slo::parse)
            .transpose()
            .map_err(|why| err("--slo", why))?;
        let mut post = self.post;
        let mut content_type = self.content_type;
        if self.stream && post.is_none() && self.put.is_none() {
            post = Some(Bytes::from_static(STREAM_BODY.as_bytes()));
            content_type.get_or_insert_with(|| "application/json".to_string());
        }
        let (mut method, body) = match (post, self.put) {
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
        // ab's defaults, which -H replaces.
        add("-H", "host", &target.host_header())?;
        add("-H", "user-agent", "ApacheBench/2.3")?;
        add("-H", "accept", "*/*")?;
        if body.is_some() {
            add(
                "-T",
                "content-type",
                content_type.as_deref().unwrap_or("text/plain"),
            )?;
        } else if let Some(t) = &content_type {
            add("-T", "content-type", t)?;
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
        let proxy = match &self.proxy {
            None => None,
            Some(p) => {
                let (h, port) = p
                    .rsplit_once(':')
                    .ok_or_else(|| err("-X", format!("'{p}' must be proxy:port")))?;
                let port = port
                    .parse()
                    .map_err(|_| err("-X", format!("'{port}' is not a port")))?;
                Some((h.to_string(), port))
            }
        };
        let names = if self.node_headers.is_empty() {
            vec!["x-upstream".to_string(), "x-backend".to_string()]
        } else {
            self.node_headers
        };
        let node_headers = names
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| err("--node-header", format!("'{n}' is not a header name")))
            })
            .collect::<Result<_, _>>()?;
        let clients = match (&self.forwarded_for_pool, &self.source_ips) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "--source-ips",
                    "cannot be used with --x-forwarded-for-pool",
                ))
            }
            (Some(pool), None) => {
                let (base, size) =
                    parse_cidr(pool).map_err(|why| err("--x-forwarded-for-pool", why))?;
                Some(Clients {
                    via: ClientsVia::ForwardedFor,
                    base,
                    size,
                    stride: 1,
                })
            }
            (None, Some(range)) => {
                let (base, size) = parse_cidr(range).map_err(|why| err("--source-ips", why))?;
                if base >> 24 != 127 || size > 1 << 24 {
                    return Err(err(
                        "--source-ips",
                        format!("'{range}' must lie within 127.0.0.0/8: traffic stays on loopback"),
                    ));
                }
                Some(Clients {
                    via: ClientsVia::Source,
                    base,
                    size,
                    stride: 1,
                })
            }
            (None, None) => None,
        };
        Ok(Plan {
            mix: Vec::new(),
            phases: Vec::new(),
            due: Vec::new(),
            arrival,
            slo,
            verbosity: self.verbosity,
            node_field: self.node_field,
            clients,
            target,
            proxy,
            requests,
            time_limit,
            concurrency,
            pacing,
            keepalive: self.keepalive,
            method,
            body,
            headers,
            timeout,
            keep_going: self.keep_going,
            // Streamed answers differ in length by nature (ids, times, token counts).
            variable_length: self.variable_length || self.stream,
            node_headers,
        })
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
    fn urls_like_ab() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/chat?x=1").unwrap(),
            Target {
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
            .contains("needs a path"));
        assert!(Target::parse("localhost/")
            .unwrap_err()
            .contains("invalid URL"));
        assert!(Target::parse("https://x/").unwrap_err().contains("https"));
        assert!(Target::parse("http://x:abc/")
            .unwrap_err()
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
