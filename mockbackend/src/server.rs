//! The I/O edge: listeners, connections, shutdown, and the fault controls that
//! need a socket (closing and reopening a port).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulConnection;
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::faults::{Control, Fault, FaultKind, FaultState, Target};
use crate::node::{Listening, Node};
use crate::service::{handle, Conn, Ctx};

/// Why the server could not start; each names the flag to change.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--ports: {addr} is already in use; stop what holds it or pick another port")]
    InUse { addr: SocketAddr },
    #[error(
        "--ports: {addr} needs root (ports below 1024 are privileged); pick a port above 1024"
    )]
    Privileged { addr: SocketAddr },
    #[error("--bind: {addr} is not an address of this machine")]
    NotLocal { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Other { addr: SocketAddr, source: io::Error },
}

/// The ports being served. Dropping it does not stop them; call `shutdown`.
pub struct Server {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub nodes: Vec<Arc<Node>>,
    pub shutdown: CancellationToken,
    pub max_body: usize,
    grace: Duration,
    header_timeout: Option<Duration>,
    pub admin_token: String,
    epoch: Instant,
    /// HTTP/1.1, and HTTP/2 for a client that opens with its preface (h2c)
    /// or agrees to it by ALPN.
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    tls: Option<primitives::tls::TlsAcceptor>,
    tasks: TaskTracker,
}

const BACKLOG: i32 = 4096;

/// Request headers accepted: hyper's default of 100 plus room for a proxy's.
const MAX_HEADERS: usize = 128;

/// 128 random bits in hex: unguessable by a web page or a client behind a proxy.
fn random_token() -> String {
    use rand::{Rng as _, SeedableRng as _};
    format!(
        "{:032x}",
        rand::rngs::StdRng::from_os_rng().random::<u128>()
    )
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let classify = |source: io::Error| match source.kind() {
        io::ErrorKind::AddrInUse => StartError::InUse { addr },
        io::ErrorKind::PermissionDenied => StartError::Privileged { addr },
        io::ErrorKind::AddrNotAvailable => StartError::NotLocal { addr },
        _ => StartError::Other { addr, source },
    };
    primitives::listen(addr, BACKLOG).map_err(classify)
}

impl Server {
    /// Binds every port (all or none: the first failure is returned and
    /// nothing is served), then serves them on the current tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let mut listeners = Vec::with_capacity(config.ports.len());
        for p in &config.ports {
            listeners.push(bind(SocketAddr::new(config.bind, p.port))?);
        }
        let mut nodes = Vec::with_capacity(listeners.len());
        for (index, (listener, p)) in listeners.iter().zip(&config.ports).enumerate() {
            let addr = listener.local_addr().map_err(|source| StartError::Other {
                addr: SocketAddr::new(config.bind, p.port),
                source,
            })?;
            nodes.push(Arc::new(Node::new(
                index,
                addr,
                p.profile.clone(),
                config.seed,
                config.log,
            )));
        }
        // No hyper timer: its header timeout costs a timer registration per
        // request; `serve` keeps one lazy timer per connection instead.
        let mut http1 = http1::Builder::new();
        http1.keep_alive(true);
        // A proxy in front adds its own headers (lbkit's balancer three,
        // nginx's as configured): a client within hyper's default of 100
        // must not get 431 from us for what the proxy added.
        http1.max_headers(MAX_HEADERS);
        let shared = Arc::new(Shared {
            nodes,
            shutdown: CancellationToken::new(),
            max_body: config.max_body,
            grace: config.grace,
            header_timeout: (!config.header_timeout.is_zero()).then_some(config.header_timeout),
            admin_token: config.admin_token.unwrap_or_else(random_token),
            epoch: Instant::now(),
            http1,
            http2: http2::Builder::new(TokioExecutor::new()),
            tls: config.tls.map(|t| primitives::tls::TlsAcceptor::from(t.0)),
            tasks: TaskTracker::new(),
        });
        for (node, listener) in shared.nodes.iter().zip(listeners) {
            let listening = shared.listen(node, listener);
            *node.listening.lock().unwrap_or_else(|e| e.into_inner()) = Some(listening);
        }
        Ok(Server { shared })
    }

    /// Whether the ports speak HTTPS.
    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// What a `/_mock/` control must send in `X-Mock-Token`.
    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    /// The bound addresses, in the order of the configured ports.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.shared.nodes.iter().map(|n| n.addr).collect()
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.shared.nodes
    }

    /// Changes the faults of the port at `index`, as `/_mock/` does. Returns
    /// once the change is in force (a downed port refuses connections).
    pub async fn control(&self, index: usize, control: Control) -> Result<(), String> {
        let node = self
            .shared
            .nodes
            .get(index)
            .ok_or_else(|| format!("no port at index {index}"))?;
        self.shared
            .control(node, Target::This, control, None)
            .await
            .map(|_| ())
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace
    /// period), then returns.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(
            self.shared.grace + Duration::from_secs(1),
            self.shared.tasks.wait(),
        )
        .await;
    }

    /// Requests in flight on every port.
    pub fn in_flight(&self) -> u64 {
        self.shared
            .nodes
            .iter()
            .map(|n| n.metrics.in_flight())
            .sum()
    }
}

impl Shared {
    pub fn millis_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Starts the accept loop of `node` on `listener`.
    fn listen(self: &Arc<Self>, node: &Arc<Node>, listener: TcpListener) -> Listening {
        let down = CancellationToken::new();
        let (shared, node, stop) = (self.clone(), node.clone(), down.clone());
        let task = self.tasks.spawn(async move {
            let down = stop;
            loop {
                let accepted = tokio::select! {
                    () = down.cancelled() => break,
                    () = shared.shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        let task = serve(shared.clone(), node.clone(), stream, peer, down.clone());
                        shared.tasks.spawn(task);
                    }
                    // Out of file descriptors or a connection reset before accept:
                    // back off a moment, never give up the port.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Listening { down, task }
    }

    /// Applies a control to the targeted ports and returns them.
    pub async fn control(
        self: &Arc<Self>,
        from: &Arc<Node>,
        target: Target,
        control: Control,
        via: Option<&Conn>,
    ) -> Result<Vec<&Arc<Node>>, String> {
        let targets: Vec<&Arc<Node>> = match target {
            Target::This => vec![self.node_of(from)],
            Target::All => self.nodes.iter().collect(),
            Target::Port(p) => vec![self
                .nodes
                .iter()
                .find(|n| n.port() == p)
                .ok_or_else(|| format!("port {p} is not served by this process"))?],
        };
        for node in &targets {
            match &control {
                Control::Set {
                    fault,
                    revert_after,
                } => {
                    let generation = node.modify_faults(|f| f.set(fault));
                    if let Some(after) = revert_after {
                        self.revert_later(node, fault.kind(), generation, *after);
                    }
                }
                Control::Clear(kind) => node.modify_faults(|f| f.clear(*kind)),
                Control::Reset => node.modify_faults(|f| *f = FaultState::default()),
            }
            // A request that takes its own port down still gets its answer.
            let downs_itself = matches!(
                &control,
                Control::Set {
                    fault: Fault::Down,
                    ..
                }
            ) && Arc::ptr_eq(node, from);
            if let (Some(conn), true) = (via, downs_itself) {
                conn.exempt.store(true, Relaxed);
            }
            self.sync_listener(node).await?;
        }
        Ok(targets)
    }

    fn node_of(&self, from: &Node) -> &Arc<Node> {
        &self.nodes[from.index]
    }

    /// Closes or reopens `node`'s listener to match its `down` fault; returns
    /// once a closed listener is really closed.
    async fn sync_listener(self: &Arc<Self>, node: &Arc<Node>) -> Result<(), String> {
        let down = node.fault_state().down;
        let closing = {
            let mut listening = node.listening.lock().unwrap_or_else(|e| e.into_inner());
            match (down, listening.is_some()) {
                (true, true) => listening.take(),
                (false, false) if !self.shutdown.is_cancelled() => {
                    let listener = bind(node.addr).map_err(|e| {
                        node.modify_faults(|f| f.set(&Fault::Down));
                        format!("could not reopen the port: {e}")
                    })?;
                    *listening = Some(self.listen(node, listener));
                    None
                }
                _ => None,
            }
        };
        if let Some(Listening { down, task }) = closing {
            down.cancel();
            let _ = task.await;
        }
        Ok(())
    }

    fn revert_later(
        self: &Arc<Self>,
        node: &Arc<Node>,
        kind: FaultKind,
        generation: u64,
        after: Duration,
    ) {
        let (shared, node) = (self.clone(), node.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => {
                    if node.modify_faults(|f| f.clear_if(kind, generation)) {
                        let _ = shared.sync_listener(&node).await;
                    }
                }
                () = shared.shutdown.cancelled() => {}
            }
        });
    }
}

/// Serves one connection, over TLS when the ports speak HTTPS: the
/// handshake has the header timeout to finish in, as a request's headers.
async fn serve(
    shared: Arc<Shared>,
    node: Arc<Node>,
    stream: TcpStream,
    peer: SocketAddr,
    down: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let rst = Arc::new(AtomicBool::new(false));
    let limit = shared.header_timeout.unwrap_or(HANDSHAKE_TIMEOUT);
    let Some(acceptor) = shared.tls.clone() else {
        // h2c by prior knowledge: the client opens with HTTP/2's preface.
        let mut first = [0u8; 3];
        let peeked = tokio::select! {
            // --header-timeout 0 leaves a silent client be, as before.
            peeked = tokio::time::timeout(
                shared.header_timeout.unwrap_or(Duration::MAX),
                stream.peek(&mut first),
            ) => peeked,
            () = down.cancelled() => return,
        };
        // Silent past the header timeout, or closed: nothing to serve.
        let h2 = match peeked {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n == 3 && &first == b"PRI",
        };
        let stream = primitives::Hooked::new(stream, Rst(rst.clone()));
        return serve_http(shared, node, stream, h2, peer, down, rst).await;
    };
    let stream = primitives::Hooked::new(stream, Rst(rst.clone()));
    let handshake = tokio::select! {
        shook = tokio::time::timeout(limit, acceptor.accept(stream)) => shook,
        () = down.cancelled() => return,
    };
    if let Ok(Ok(tls)) = handshake {
        let h2 = tls.get_ref().1.alpn_protocol() == Some(primitives::tls::H2);
        serve_http(shared, node, tls, h2, peer, down, rst).await;
    }
}

/// How long a TLS handshake (or an h2c client's preface) may take with no
/// header timeout set.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one connection until it closes, its port goes down, or the server
/// shuts down (then in-flight requests get the grace period).
async fn serve_http<I>(
    shared: Arc<Shared>,
    node: Arc<Node>,
    io: I,
    h2: bool,
    peer: SocketAddr,
    down: CancellationToken,
    rst: Arc<AtomicBool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        backend_header: HeaderValue::from_str(&node.label)
            .unwrap_or(HeaderValue::from_static("mockbackend")),
        text_reply: bytes::Bytes::from(crate::replies::text_reply(node.port())),
        node,
        conn: Conn {
            peer,
            rst,
            exempt: AtomicBool::new(false),
            busy: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(0),
        },
    });
    let svc = {
        let ctx = ctx.clone();
        service_fn(move |req| handle(ctx.clone(), req))
    };
    if h2 {
        let conn = shared.http2.serve_connection(io, svc);
        drive(conn, &shared, &ctx, &down).await;
    } else {
        let conn = shared.http1.serve_connection(io, svc);
        drive(conn, &shared, &ctx, &down).await;
    }
}

/// Drives a connection being served until it ends, its port goes down, the
/// server shuts down (then in-flight requests get the grace period), or
/// the header timeout runs out.
async fn drive<C: GracefulConnection>(
    conn: C,
    shared: &Shared,
    ctx: &Ctx,
    down: &CancellationToken,
) {
    tokio::pin!(conn);
    ctx.conn
        .idle_since_ms
        .store(shared.millis_since_epoch(Instant::now()), Relaxed);
    let mut idle = shared.header_timeout.map(IdleClock::new);
    // Wait for the connection to end, its port to go down, shutdown, or the
    // header timeout. The cancellation futures are polled once, to register
    // this task's waker; after that an atomic check suffices, so a request
    // does not pay for polls that would lock the tokens' shared state.
    let mut port_down = std::pin::pin!(down.cancelled());
    let mut stopping = std::pin::pin!(shared.shutdown.cancelled());
    let mut registered = false;
    let end = std::future::poll_fn(|cx| {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Closed);
        }
        if !registered {
            registered = true;
            let _ = port_down.as_mut().poll(cx);
            let _ = stopping.as_mut().poll(cx);
        }
        if down.is_cancelled() {
            let exempt = ctx.conn.exempt.load(Relaxed);
            Poll::Ready(if exempt { End::Graceful } else { End::Drop })
        } else if shared.shutdown.is_cancelled() {
            Poll::Ready(End::Graceful)
        } else if idle
            .as_mut()
            .is_some_and(|clock| clock.expired(cx, shared, &ctx.conn))
        {
            Poll::Ready(End::Drop)
        } else {
            Poll::Pending
        }
    })
    .await;
    if end == End::Graceful {
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(shared.grace, conn).await;
    }
    // On `Drop` (port down, or a client too slow with its headers), dropping
    // the connection closes it, as a killed process's connections close.
}

#[derive(Debug, PartialEq)]
enum End {
    Closed,
    Graceful,
    Drop,
}

/// The header timeout, kept per connection rather than per request: the
/// timer is set once and only re-armed when it fires early, so a busy
/// keep-alive connection costs no timer work per request. A connection is
/// dropped when no request has been in progress on it for `limit`, which
/// covers both a client stalling mid-headers and an idle keep-alive.
struct IdleClock {
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl IdleClock {
    fn new(limit: Duration) -> IdleClock {
        IdleClock {
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>, shared: &Shared, conn: &Conn) -> bool {
        loop {
            if !self.armed {
                self.armed = true;
                if self.sleep.as_mut().poll(cx).is_pending() {
                    return false;
                }
            } else if !self.sleep.is_elapsed() {
                return false;
            }
            // The timer ran out; was the connection really idle all along?
            let now = Instant::now();
            let deadline = if conn.busy.load(Relaxed) > 0 {
                now + self.limit
            } else {
                shared.epoch + Duration::from_millis(conn.idle_since_ms.load(Relaxed)) + self.limit
            };
            if deadline <= now {
                return true;
            }
            self.sleep.as_mut().reset(deadline.into());
            self.armed = false;
        }
    }
}

/// Closes the stream with RST instead of FIN when asked to.
struct Rst(Arc<AtomicBool>);

impl primitives::Hooks for Rst {
    fn closing(&self, stream: &TcpStream) {
        if self.0.load(Relaxed) {
            let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
    }
}
