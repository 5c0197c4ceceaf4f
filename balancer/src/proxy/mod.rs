//! The reverse proxy around the selection library: hyper on both sides,
//! keep-alive to the upstreams, bodies streamed back without buffering,
//! `proxy_next_upstream` retries, an access log written through `logformat`,
//! and optional active health checks and dynamic weights.

mod access_log;
mod clients;
mod forward;
mod hygiene;
mod pool;
mod probe;
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
use pool::Pool;

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
    /// Request bodies are buffered (to retry them); larger ones get 413.
    pub max_body: usize,
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
            max_body: 10 << 20,
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
    pub pool: Arc<Pool>,
}

impl Target {
    fn new(
        addr: SocketAddr,
        keepalive: usize,
        connect_timeout: Duration,
        tls: Option<&crate::conf::UpstreamTls>,
    ) -> Result<Target, StartError> {
        let tls = tls.map(|t| tls::connector(t, addr)).transpose()?;
        Ok(Target {
            text: addr.to_string(),
            pool: Arc::new(Pool::new(addr, keepalive, connect_timeout, tls)),
        })
    }
}

/// One upstream group: its selection state and where its peers are.
pub(crate) struct Group {
    pub name: String,
    pub upstream: Mutex<Upstream>,
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

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Upstream> {
        self.upstream.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A location and the group it proxies to, if it does.
pub(crate) struct Route {
    location: Location,
    group: Option<usize>,
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
    log: Option<Arc<AccessLogWriter>>,
    trust_forwarded_for: bool,
    max_body: usize,
    clients: Arc<Clients>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Shared {
    /// Time on the selection library's clock.
    fn now(&self) -> Duration {
        clock()
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
        let connect_timeout = config
            .locations
            .iter()
            .map(|l| l.timeouts.connect)
            .min()
            .unwrap_or(Duration::from_secs(60));
        // nginx keeps no idle upstream connections without `keepalive`; a
        // load-test proxy that reconnected per request would measure itself.
        let keepalive = config.keepalive.unwrap_or(64);
        let mut groups = Vec::new();
        for (i, spec) in config.upstreams.iter().enumerate() {
            let tls = upstream_tls(config, &spec.name)?;
            let mut primary = Vec::new();
            let mut backup = Vec::new();
            for s in &spec.servers {
                let addr = resolve(&spec.name, &s.addr)?;
                let target = Target::new(addr, keepalive, connect_timeout, tls)?;
                if s.backup {
                    backup.push(target)
                } else {
                    primary.push(target)
                }
            }
            let upstream = Upstream::new(spec.clone(), options.seed.wrapping_add(i as u64))?;
            groups.push(Arc::new(Group {
                name: spec.name.clone(),
                upstream: Mutex::new(upstream),
                primary,
                backup,
            }));
        }
        let mut locations = config.locations.clone();
        if locations.is_empty() {
            // No server block: everything goes to the first upstream.
            if let Some(first) = config.upstreams.first() {
                locations.push(Location {
                    path: "/".to_string(),
                    exact: false,
                    action: Action::Proxy {
                        upstream: first.name.clone(),
                    },
                    next_upstream: Default::default(),
                    timeouts: Default::default(),
                    health: None,
                    logged: true,
                    upstream_tls: None,
                });
            }
        }
        let routes: Vec<Route> = locations
            .into_iter()
            .map(|location| {
                let group = match &location.action {
                    Action::Proxy { upstream } => groups.iter().position(|g| &g.name == upstream),
                    Action::Return { .. } => None,
                };
                Route { location, group }
            })
            .collect();
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
            log,
            trust_forwarded_for: options.trust_forwarded_for,
            max_body: options.max_body,
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

    /// A copy of an upstream's state (peers, fails, weights) for tests and reports.
    pub fn upstream(&self, name: &str) -> Option<Upstream> {
        self.shared
            .groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.lock().clone())
    }

    /// Changes the weight of the server at `addr` (`127.0.0.1:8001`) in
    /// every upstream that has it, as nginx Plus's API does at run time;
    /// returns how many servers changed.
    pub fn set_weight(&self, addr: &str, weight: u32) -> usize {
        let mut changed = 0;
        for group in &self.shared.groups {
            let mut upstream = group.lock();
            let peers: Vec<_> = upstream.peers().map(|(r, _)| r).collect();
            for peer in peers {
                if group.target(peer).text == addr {
                    upstream.set_weight(peer, weight);
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
        let (shared, http, limits, tls) =
            (shared.clone(), http.clone(), limits.clone(), tls.clone());
        shared.tasks.clone().spawn(async move {
            let conn = admitted.conn.clone();
            let remote = Arc::new(forward::Remote::new(peer, conn.clone(), tls.is_some()));
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
