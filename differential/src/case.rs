//! One differential case, as values: the nginx.conf both proxies run
//! (upstreams, directives at each level, workers), the backends behind it
//! with what each does in every round, and the requests sent, round by
//! round. A case is saved as JSON when it is kept as a regression.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Where it came from: `seed 7 case 12`, or what a regression shows.
    pub name: String,
    /// `worker_processes`: 1 unless a case says more.
    #[serde(default = "one")]
    pub workers: u32,
    /// `listen ... reuseport`: the kernel hashes connections over workers.
    #[serde(default)]
    pub reuseport: bool,
    /// The first is `pool`, which `location /` proxies to; a second
    /// (`spare`) is where `@fallback` proxies.
    pub upstreams: Vec<UpstreamDef>,
    /// Directives at each level, as nginx.conf text without the `;`.
    #[serde(default)]
    pub http: Vec<String>,
    #[serde(default)]
    pub server: Vec<String>,
    #[serde(default)]
    pub location: Vec<String>,
    /// `location @fallback { proxy_pass http://spare; ... }`, when present.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    pub backends: Vec<BackendDef>,
    pub rounds: Vec<Round>,
    /// Clients keep their connection to the proxy open between requests.
    #[serde(default)]
    pub client_keepalive: bool,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamDef {
    pub name: String,
    /// The method's directive (`least_conn`, `hash $request_uri consistent`),
    /// none for round robin.
    #[serde(default)]
    pub method: Option<String>,
    pub servers: Vec<ServerDef>,
    /// `keepalive 2`, `zone pool 64k`, `keepalive_requests 3` ...
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDef {
    /// Which backend this server line points at.
    pub backend: usize,
    /// `weight=2 max_fails=1 backup` ...
    #[serde(default)]
    pub params: String,
}

/// What a backend does in each round; past the list's end, its last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendDef {
    pub script: Vec<Behaviour>,
}

impl BackendDef {
    pub fn in_round(&self, round: usize) -> Behaviour {
        let last = self.script.len().saturating_sub(1);
        self.script
            .get(round.min(last))
            .copied()
            .unwrap_or(Behaviour::Ok)
    }
}

/// What a backend does with a request. Every answer it makes echoes the
/// request head it received, so a difference in what the proxy sent
/// upstream shows in the body the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// 200 and the echo, keeping the connection as HTTP/1.x says.
    Ok,
    /// This status, with the echo.
    Status(u16),
    /// 200 only for requests whose Host is `vhost.test`, 404 otherwise: a
    /// name-based virtual host.
    Vhost,
    /// Nothing listens: connections are refused.
    Refuse,
    /// Reads the request and closes without a word.
    Close,
    /// Reads the request and resets the connection.
    Reset,
    /// Reads the request and never answers.
    Hang,
    /// 200 after this many milliseconds.
    Slow(u64),
    /// A head promising 100 bytes, 5 sent, then closed.
    Cut,
    /// A head that does not parse.
    BadHeader(BadHead),
    /// Keeps connections alive (HTTP/1.1 even to an HTTP/1.0 request that
    /// does not say close), and closes one idle this long, as uvicorn
    /// closes after 5 s.
    IdleClose(u64),
    /// Keeps connections alive, but a request on a connection that already
    /// served one is met with a close (or a reset): a stale connection.
    StaleClose,
    StaleReset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadHead {
    /// `X Bad: 1`: a space in a header name.
    SpaceInName,
    /// A header line without a colon.
    NoColon,
    /// A status line that is not one (`HTTP/1.1 abc`).
    BadStatus,
    /// Not HTTP at all: `hello`.
    NotHttp,
    /// A header larger than nginx's 4k/8k proxy_buffer_size.
    TooBig,
    /// Content-Length and Transfer-Encoding both.
    LengthAndChunked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// Sent at once.
    pub requests: Vec<Request>,
    /// The pause after the round, in milliseconds.
    #[serde(default)]
    pub pause_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Client k connects from 127.0.k.1.
    #[serde(default)]
    pub client: u8,
    /// The Host header, none when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// More headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: Option<String>,
}

/// What both proxies log per request; the harness matches lines to
/// requests by the id each request carries.
pub const LOG_FORMAT: &str = "$http_x_fuzz_id|$status|$upstream_addr|$upstream_status";

/// Where a rendered config puts nginx's files and what it listens on.
pub struct Placement<'a> {
    pub dir: &'a Path,
    pub listen: SocketAddr,
    pub log: &'a Path,
    /// Each backend's address, by index.
    pub backends: &'a [SocketAddr],
}

impl Case {
    /// The nginx.conf both proxies run.
    pub fn render(&self, at: &Placement<'_>) -> String {
        let d = at.dir.display();
        let mut c = String::new();
        let _ = writeln!(c, "worker_processes {};", self.workers);
        let _ = writeln!(c, "pid {d}/nginx.pid;");
        let _ = writeln!(c, "error_log {d}/error.log info;");
        let _ = writeln!(c, "events {{ worker_connections 1024; }}");
        c.push_str("http {\n");
        let _ = writeln!(c, "  access_log off;");
        let _ = writeln!(c, "  log_format fuzz '{LOG_FORMAT}';");
        for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let _ = writeln!(c, "  {temp}_temp_path {d}/{temp};");
        }
        for h in &self.http {
            let _ = writeln!(c, "  {h};");
        }
        for u in &self.upstreams {
            let _ = writeln!(c, "  upstream {} {{", u.name);
            if let Some(m) = &u.method {
                let _ = writeln!(c, "    {m};");
            }
            for s in &u.servers {
                let addr = at.backends[s.backend];
                let _ = writeln!(c, "    server {addr} {};", s.params);
            }
            for e in &u.extra {
                let _ = writeln!(c, "    {e};");
            }
            c.push_str("  }\n");
        }
        c.push_str("  server {\n");
        let reuseport = if self.reuseport { " reuseport" } else { "" };
        let _ = writeln!(c, "    listen {}{reuseport};", at.listen);
        let _ = writeln!(c, "    access_log {} fuzz;", at.log.display());
        for s in &self.server {
            let _ = writeln!(c, "    {s};");
        }
        c.push_str("    location / {\n      proxy_pass http://pool;\n");
        for l in &self.location {
            let _ = writeln!(c, "      {l};");
        }
        c.push_str("    }\n");
        if let Some(fallback) = &self.fallback {
            c.push_str("    location @fallback {\n      proxy_pass http://spare;\n");
            for l in fallback {
                let _ = writeln!(c, "      {l};");
            }
            c.push_str("    }\n");
        }
        c.push_str("  }\n}\n");
        c
    }

    /// Every request, numbered in the order they are sent.
    pub fn requests(&self) -> impl Iterator<Item = (usize, usize, &Request)> {
        self.rounds
            .iter()
            .enumerate()
            .flat_map(|(r, round)| round.requests.iter().map(move |q| (r, q)))
            .enumerate()
            .map(|(id, (r, q))| (id, r, q))
    }

    /// The balancing method of `pool`.
    pub fn method(&self) -> &str {
        self.upstreams
            .first()
            .and_then(|u| u.method.as_deref())
            .unwrap_or("round_robin")
    }

    /// Whether which server answers is the scheduler's or the kernel's
    /// choice rather than the config's: `random`, or several workers.
    pub fn is_random(&self) -> bool {
        self.workers > 1
            || self
                .upstreams
                .iter()
                .any(|u| u.method.as_deref().is_some_and(|m| m.starts_with("random")))
    }
}
