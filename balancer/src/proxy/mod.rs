//! The reverse proxy around the selection library: hyper on both sides,
//! keep-alive to the upstreams, bodies streamed back without buffering,
//! `proxy_next_upstream` retries, an access log written through `logformat`,
//! and optional active health checks and dynamic weights.

mod access_log;
mod body;
mod clients;
mod forward;
mod head;
mod hygiene;
mod pool;
mod probe;
mod relay;
mod request;
mod tls;
mod vars;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use primitives::tls::TlsAcceptor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conf::{Action, Location, ProxyConfig};
use crate::upstream::{PeerRef, Upstream};
use clients::{Clients, Expired, Watch};
use pool::{Connector, Keepalive};

pub use access_log::AccessLogWriter;

/// How to run the proxy.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub config: ProxyConfig,
    /// Let ip_hash and `$remote_addr` see the first X-Forwarded-For address,
    /// so a load generator on one loopback address can act as many clients.
    pub trust_forwarded_for: bool,
    /// Seeds the `random` methods.
    pub seed: u64,
    /// Poll each peer's `/metrics` this often and halve the weight of a peer
    /// whose memory use is over 85% (seeds 000 and 001).
    pub dynamic_weights: Option<Duration>,
    /// On shutdown, how long in-flight requests get to finish.
    pub grace: Duration,
}

impl Options {
    pub fn new(listen: SocketAddr, config: ProxyConfig) -> Options {
        Options {
            listen,
            config,
            trust_forwarded_for: false,
            seed: 0,
            dynamic_weights: None,
            grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("upstream \"{upstream}\": server {server}: {why}")]
    Resolve {
        upstream: String,
        server: String,
        why: String,
    },
    #[error("{0}")]
    Spec(#[from] crate::upstream::SpecError),
    #[error("access log {path}: {why}")]
    AccessLog { path: String, why: String },
    #[error("{0}")]
    Tls(String),
}

/// Where a peer is, in the forms each request needs, made once.
pub(crate) struct Target {
    /// `127.0.0.1:8001`, as `$upstream_addr` and `X-Upstream` show it.
    pub text: String,
    pub addr: SocketAddr,
}

/// One upstream group: its selection state (one per worker, or one for
/// all with a `zone`), each worker's idle connections, and its peers.
pub(crate) struct Group {
    pub name: String,
    /// `$proxy_host` and `$proxy_port` of a `proxy_pass` to it.
    pub proxy_host: String,
    pub proxy_port: u16,
    states: Vec<Mutex<Upstream>>,
    keepalive: Vec<Arc<Keepalive>>,
    pub connector: Connector,
    primary: Vec<Target>,
    backup: Vec<Target>,
}

impl Group {
    pub(crate) fn target(&self, p: PeerRef) -> &Target {
        if p.backup {
            &self.backup[p.index]
        } else {
            &self.primary[p.index]
        }
    }

    /// The selection state `worker` balances with.
    pub(crate) fn lock(&self, worker: usize) -> std::sync::MutexGuard<'_, Upstream> {
        let state = &self.states[worker % self.states.len()];
        state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes every worker's state alike (an API call, a health check).
    pub(crate) fn each_state(&self, change: impl Fn(&mut Upstream)) {
        for state in &self.states {
            change(&mut state.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// `worker`'s idle connections, with `keepalive`.
    pub(crate) fn keepalive(&self, worker: usize) -> Option<&Arc<Keepalive>> {
        self.keepalive.get(worker)
    }
}

/// A location, the group it proxies to, and how it writes requests.
pub(crate) struct Route {
    location: Location,
    group: Option<usize>,
    writer: request::Writer,
}

impl Route {
    fn new(location: Location, groups: &[Arc<Group>]) -> Route {
        let group = match &location.action {
            Action::Proxy { upstream } => groups.iter().position(|g| &g.name == upstream),
            Action::Return { .. } => None,
        };
        let writer = request::Writer::new(&location.upstream_request);
        Route {
            location,
            group,
            writer,
        }
    }
}

/// Wall-clock time, as nginx's `ngx_time()`: `fail_timeout`'s whole
/// seconds turn when nginx's do, not at whole seconds since the start.
fn clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

pub(crate) struct Shared {
    groups: Vec<Arc<Group>>,
    routes: Vec<Route>,
    /// `location @name` blocks, reached from error pages.
    named: Vec<Route>,
    /// The server's first `server_name`: `$host` without a Host header.
    server_name: Arc<str>,
    /// How client connections are spread over the workers.
    spread: Spread,
    log: Option<Arc<AccessLogWriter>>,
    /// nginx's realip: the client address a trusted peer's header names.
    real_ip: Option<crate::conf::RealIp>,
    clients: Arc<Clients>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Shared {
    /// A named location (`@fallback`).
    fn named(&self, name: &str) -> Option<&Route> {
        self.named.iter().find(|r| r.location.path == name)
    }

    /// nginx's choice: an exact `=` location first, then the longest prefix.
    fn route(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.location.exact && r.location.path == path)
            .or_else(|| {
                self.routes
                    .iter()
                    .filter(|r| !r.location.exact && path.starts_with(&r.location.path))
                    .max_by_key(|r| r.location.path.len())
            })
    }
}

/// A running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    grace: Duration,
    tls: bool,
}

fn resolve(upstream: &str, server: &str) -> Result<SocketAddr, StartError> {
    let why = |why: String| StartError::Resolve {
        upstream: upstream.to_string(),
        server: server.to_string(),
        why,
    };
    server
        .to_socket_addrs()
        .map_err(|e| why(e.to_string()))?
        .next()
        .ok_or_else(|| why("resolves to no address".to_string()))
}

impl Proxy {
    /// Binds, builds every upstream, and starts serving on the current runtime.
    pub async fn start(options: Options) -> Result<Proxy, StartError> {
        let config = &options.config;
        let workers = config.workers.max(1);
        let mut groups = Vec::new();
        for (i, spec) in config.upstreams.iter().enumerate() {
            let tls = upstream_tls(config, &spec.name)?;
            let mut primary = Vec::new();
            let mut backup = Vec::new();
            for s in &spec.servers {
                let addr = resolve(&spec.name, &s.addr)?;
                let target = Target {
                    text: addr.to_string(),
                    addr,
                };
                if s.backup {
                    backup.push(target)
                } else {
                    primary.push(target)
                }
            }
            let options_of = config.upstream_options(&spec.name);
            // Without a zone each worker balances on its own state.
            let states = if options_of.zone { 1 } else { workers };
            let seed = options.seed.wrapping_add(i as u64);
            let states = (0..states)
                .map(|w| {
                    Upstream::new(spec.clone(), seed.wrapping_add((w as u64) << 32)).map(Mutex::new)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let keepalive = match &options_of.keepalive {
                Some(k) => (0..workers)
                    .map(|_| Arc::new(Keepalive::new(k.clone())))
                    .collect(),
                None => Vec::new(),
            };
            let tls = tls
                .map(|t| {
                    let first = primary.first().or(backup.first()).map(|t| t.addr);
                    tls::connector(t, first.unwrap_or(([127, 0, 0, 1], 0).into()))
                })
                .transpose()?;
            let (proxy_host, proxy_port) = proxy_host(&spec.name, tls.is_some());
            groups.push(Arc::new(Group {
                name: spec.name.clone(),
                proxy_host,
                proxy_port,
                states,
                keepalive,
                connector: Connector { tls },
                primary,
                backup,
            }));
        }
        let mut locations = config.locations.clone();
        if locations.is_empty() {
            // No server block: everything goes to the first upstream.
            if let Some(first) = config.upstreams.first() {
                let action = Action::Proxy {
                    upstream: first.name.clone(),
                };
                locations.push(Location::new("/", action));
            }
        }
        let (named, routes): (Vec<Location>, Vec<Location>) =
            locations.into_iter().partition(|l| l.named);
        let routes = routes.into_iter().map(|l| Route::new(l, &groups)).collect();
        let named = named.into_iter().map(|l| Route::new(l, &groups)).collect();
        let log = match &config.access_log {
            None => None,
            Some(spec) => Some(Arc::new(AccessLogWriter::open(config, spec).map_err(
                |why| StartError::AccessLog {
                    path: spec.path.clone(),
                    why,
                },
            )?)),
        };

        let tls = tls::acceptor(&config.tls)?;
        let listener = bind(options.listen)?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: options.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            groups,
            routes,
            named,
            server_name: Arc::from(config.server_name.as_str()),
            spread: Spread::new(config, options.seed),
            log,
            real_ip: real_ip(config, options.trust_forwarded_for),
            clients: Arc::new(Clients::new(config.clients.clone(), fd_limit())),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        probe::start(&shared, options.dynamic_weights);
        if let Some(log) = &shared.log {
            log.start_flusher(&shared.tasks, shared.shutdown.clone());
        }
        let http2 = config.tls.http2;
        let serves_tls = tls.is_some();
        shared
            .tasks
            .spawn(accept_loop(shared.clone(), listener, tls, http2));
        Ok(Proxy {
            shared,
            addr,
            grace: options.grace,
            tls: serves_tls,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether clients speak TLS to it (`listen ... ssl`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Client connections served at once (worker_connections, within the
    /// file-descriptor limit).
    pub fn max_connections(&self) -> usize {
        self.shared.clients.max
    }

    /// A copy of an upstream's state (peers, fails, weights) for tests and
    /// reports: the first worker's.
    pub fn upstream(&self, name: &str) -> Option<Upstream> {
        self.shared
            .groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.lock(0).clone())
    }

    /// Changes the weight of the server at `addr` (`127.0.0.1:8001`) in
    /// every upstream that has it, as nginx Plus's API does at run time;
    /// returns how many servers changed.
    pub fn set_weight(&self, addr: &str, weight: u32) -> usize {
        let mut changed = 0;
        for group in &self.shared.groups {
            let peers: Vec<_> = group.lock(0).peers().map(|(r, _)| r).collect();
            for peer in peers {
                if group.target(peer).text == addr {
                    group.each_state(|u| u.set_weight(peer, weight));
                    changed += 1;
                }
            }
        }
        changed
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace
    /// period), flushes the access log.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(
            self.grace + Duration::from_secs(1),
            self.shared.tasks.wait(),
        )
        .await;
        if let Some(log) = &self.shared.log {
            log.flush();
        }
    }
}

/// How the locations that proxy to `upstream` speak to it: all by
/// https:// (with the first one's proxy_ssl_* settings) or all by http://.
fn upstream_tls<'a>(
    config: &'a ProxyConfig,
    upstream: &str,
) -> Result<Option<&'a crate::conf::UpstreamTls>, StartError> {
    let mut users = config
        .locations
        .iter()
        .filter(|l| matches!(&l.action, Action::Proxy { upstream: u } if u == upstream));
    let Some(first) = users.next() else {
        return Ok(None);
    };
    if users.any(|l| l.upstream_tls.is_some() != first.upstream_tls.is_some()) {
        return Err(StartError::Tls(format!(
            "upstream \"{upstream}\" is proxied to by both http:// and https://; give each its own upstream"
        )));
    }
    Ok(first.upstream_tls.as_ref())
}

/// The config's realip, or with `trust_forwarded_for` realip trusting
/// every peer's X-Forwarded-For, as lbkit's clients send it.
fn real_ip(config: &ProxyConfig, trust_forwarded_for: bool) -> Option<crate::conf::RealIp> {
    if trust_forwarded_for {
        return Some(crate::conf::RealIp {
            from: crate::conf::Cidr::any().to_vec(),
            header: "x-forwarded-for".into(),
            recursive: false,
        });
    }
    config.real_ip.clone()
}

/// `$proxy_host` and `$proxy_port` for `proxy_pass http://NAME`: the
/// name with its port, the scheme's default port left out.
fn proxy_host(name: &str, tls: bool) -> (String, u16) {
    let default = if tls { 443 } else { 80 };
    match name.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            let port = port.parse().unwrap_or(default);
            let text = if port == default {
                host.to_string()
            } else {
                name.to_string()
            };
            (text, port)
        }
        _ => (name.to_string(), default),
    }
}

/// Which worker accepts each new client connection, as Linux and nginx
/// 1.22 spread them (measured against real nginx, see the differential):
/// - by default every worker waits on the listening socket with
///   EPOLLEXCLUSIVE and the first in the wait queue takes a connection;
///   a worker moves to the queue's tail on its 1st, 17th, 33rd... accept
///   (`ngx_reorder_accept_events`), so light load comes out 1, 1, then
///   runs of 16 per worker;
/// - with `listen ... reuseport` the kernel hashes each connection to a
///   worker's own socket: at random, as seen from outside;
/// - with `accept_mutex on` the worker holding the mutex takes them all.
///
/// Under concurrent load real nginx's runs break up with timing; the
/// model keeps the light-load order.
struct Spread {
    how: SpreadMode,
    state: Mutex<SpreadState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpreadMode {
    One,
    Exclusive,
    Reuseport,
    AcceptMutex,
}

struct SpreadState {
    /// The wait queue, its head first (EPOLLEXCLUSIVE).
    queue: std::collections::VecDeque<usize>,
    /// Accepts by each worker.
    accepted: Vec<u64>,
    draw: rand::rngs::SmallRng,
}

impl Spread {
    fn new(config: &ProxyConfig, seed: u64) -> Spread {
        use rand::SeedableRng;
        let workers = config.workers.max(1);
        let how = match (workers, config.reuseport, config.accept_mutex) {
            (1, _, _) => SpreadMode::One,
            (_, true, _) => SpreadMode::Reuseport,
            (_, false, true) => SpreadMode::AcceptMutex,
            _ => SpreadMode::Exclusive,
        };
        Spread {
            how,
            state: Mutex::new(SpreadState {
                queue: (0..workers).collect(),
                accepted: vec![0; workers],
                draw: rand::rngs::SmallRng::seed_from_u64(seed),
            }),
        }
    }

    fn next(&self) -> usize {
        use rand::Rng;
        if self.how == SpreadMode::One {
            return 0;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match self.how {
            SpreadMode::One | SpreadMode::AcceptMutex => 0,
            SpreadMode::Reuseport => {
                let n = state.accepted.len();
                state.draw.random_range(0..n)
            }
            SpreadMode::Exclusive => {
                let w = state.queue[0];
                let before = state.accepted[w];
                state.accepted[w] += 1;
                if before.is_multiple_of(16) {
                    state.queue.rotate_left(1);
                }
                w
            }
        }
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    primitives::listen(addr, 4096).map_err(|source| StartError::Listen { addr, source })
}

/// The soft limit on open files, which bounds the connections served.
fn fd_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http2: bool,
) {
    let limits = shared.clients.limits.clone();
    // keepalive_timeout 0 closes each connection after its answer.
    let keep_alive = !limits.keepalive_timeout.is_zero();
    let http = Arc::new(if http2 {
        // `listen ... http2`: HTTP/2 by its preface (after ALPN over TLS),
        // HTTP/1.1 otherwise.
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1().keep_alive(keep_alive);
        Http::Both(auto)
    } else {
        let mut one = http1::Builder::new();
        one.keep_alive(keep_alive);
        Http::One(one)
    });
    loop {
        let (stream, peer) = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // At the limit with every connection busy, the newcomer is closed.
        let Some(admitted) = shared.clients.admit() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let worker = shared.spread.next();
        let (shared, http, limits, tls) =
            (shared.clone(), http.clone(), limits.clone(), tls.clone());
        shared.tasks.clone().spawn(async move {
            let conn = admitted.conn.clone();
            let remote = Arc::new(forward::Remote::new(
                peer,
                local,
                conn.clone(),
                tls.is_some(),
                worker,
            ));
            let watch = Watch {
                conn: conn.clone(),
                header_timeout: limits.header_timeout,
            };
            let io = primitives::Hooked::new(stream, watch);
            match tls {
                None => serve(&shared, &http, &limits, remote, io).await,
                Some(acceptor) => {
                    // The handshake is part of the request's head, as far
                    // as client_header_timeout goes.
                    let handshake = tokio::select! {
                        shook = acceptor.accept(io) => shook.ok(),
                        () = tokio::time::sleep(limits.header_timeout) => None,
                        () = shared.shutdown.cancelled() => None,
                    };
                    if let Some(io) = handshake {
                        serve(&shared, &http, &limits, remote, io).await;
                    }
                }
            }
            drop(admitted);
        });
    }
}

/// Serves one client connection until it ends, the proxy shuts down, or
/// a client timeout runs out.
async fn serve<I>(
    shared: &Arc<Shared>,
    http: &Http,
    limits: &crate::conf::ClientLimits,
    remote: Arc<forward::Remote>,
    io: I,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = {
        let (shared, remote) = (shared.clone(), remote.clone());
        service_fn(move |req| forward::handle(shared.clone(), remote.clone(), req))
    };
    let io = TokioIo::new(io);
    match http {
        Http::One(one) => drive(one.serve_connection(io, svc), shared, limits, &remote).await,
        Http::Both(auto) => drive(auto.serve_connection(io, svc), shared, limits, &remote).await,
    }
}

/// How client connections are served: HTTP/1.1 only (hyper's own, with
/// nothing in between), or with `listen ... http2` HTTP/2 as well.
enum Http {
    One(http1::Builder),
    Both(auto::Builder<TokioExecutor>),
}

async fn drive<C>(
    served: C,
    shared: &Arc<Shared>,
    limits: &crate::conf::ClientLimits,
    remote: &forward::Remote,
) where
    C: GracefulConnection,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = remote.conn.clone();
    tokio::pin!(served);
    tokio::select! {
        ended = served.as_mut() => {
            // hyper answered a request it could not parse (400, 431)
            // itself; nginx logs those too.
            if let Err(e) = ended {
                let e: Box<dyn std::error::Error + Send + Sync> = e.into();
                if let Some(e) = e.downcast_ref::<hyper::Error>() {
                    forward::log_refused(shared, remote, e);
                }
            }
        }
        () = shared.shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
        expired = conn.expired(limits) => {
            // Dropping the connection closes it. A head cut short by
            // client_header_timeout is logged as 408, as nginx does.
            if expired == Expired::Header {
                forward::log_timed_out(shared, remote);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_windows_run_on_the_wall_clock() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(clock().abs_diff(wall) < Duration::from_secs(1));
    }
}
