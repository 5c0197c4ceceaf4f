//! Opening a connection as the transport says: TCP (from a source address
//! when acting as many clients), TLS on it for https://, and HTTP/2 on that,
//! one HTTP/2 connection shared by each group of `--streams-per-conn`
//! workers.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use primitives::tls::{self, client::TlsStream, ServerName, TlsConnector};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::exchange::Miss;
use crate::plan::Plan;

/// A handle on an HTTP/2 connection, whose other end is a task of its own
/// (the `h2` crate's, without hyper's task per request on top).
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) send: h2::client::SendRequest<Bytes>,
    /// Set when the connection's task has ended.
    closed: Arc<AtomicBool>,
}

/// One group's HTTP/2 connection, and its number.
type Slot = Mutex<Option<(Sender, u64)>>;

/// An open connection.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A handle on an HTTP/2 connection (its other end is a spawned task),
    /// and which of its group's connections it is.
    H2(Sender, u64),
}

/// What every worker of a run opens its connections with.
pub(crate) struct Connector {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    h2: Option<Shared>,
    /// `https://host:port`, the scheme and authority of HTTP/2 requests.
    pub(crate) origin: String,
    /// Connections opened, and TLS handshakes that resumed a session.
    pub(crate) opened: AtomicU64,
    pub(crate) resumed: AtomicU64,
}

/// HTTP/2 connections, each shared by `streams` workers in turn, and
/// numbered so that a worker retires only the one it found going away.
struct Shared {
    streams: usize,
    slots: Vec<Slot>,
    opened: AtomicU64,
}

impl Connector {
    pub(crate) fn new(plan: &Plan, addr: SocketAddr, workers: usize) -> Connector {
        let target = &plan.target;
        let tls = plan.transport.tls.clone().map(|config| {
            // The URL's host, as SNI and for the certificate; an address
            // the flags could not name falls back to the one connected to.
            let name = tls::server_name(&target.host)
                .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
            (TlsConnector::from(config), name)
        });
        let h2 = plan.transport.http2.map(|streams| Shared {
            streams,
            slots: (0..workers.div_ceil(streams).max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            opened: AtomicU64::new(0),
        });
        Connector {
            addr,
            tls,
            h2,
            origin: format!("{}://{}", target.scheme(), target.host_header()),
            opened: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        }
    }

    /// A connection for `worker`: a new one, or for HTTP/2 the one its
    /// group shares while that is open.
    pub(crate) async fn open(&self, worker: usize, source: Option<Ipv4Addr>) -> Result<Io, Miss> {
        let Some(shared) = &self.h2 else {
            return self.stream(source).await;
        };
        let mut held = shared.slot(worker).lock().await;
        if let Some((sender, n)) = held.as_ref().filter(|(s, _)| !s.closed.load(Relaxed)) {
            return Ok(Io::H2(sender.clone(), *n));
        }
        let sender = match self.stream(source).await? {
            Io::Plain(tcp) => handshake(tcp).await?,
            Io::Tls(tls) => {
                if tls.get_ref().1.alpn_protocol() != Some(tls::H2) {
                    return Err(Miss::Tls(NO_H2.into()));
                }
                handshake(*tls).await?
            }
            Io::H2(sender, _) => sender,
        };
        let n = shared.opened.fetch_add(1, Relaxed);
        *held = Some((sender.clone(), n));
        Ok(Io::H2(sender, n))
    }

    /// `worker`'s group stops using HTTP/2 connection `n`, which refused a
    /// stream (it is going away): the next request opens a new one.
    pub(crate) async fn retire(&self, worker: usize, n: u64) {
        if let Some(shared) = &self.h2 {
            let mut held = shared.slot(worker).lock().await;
            if held.as_ref().is_some_and(|(_, held)| *held == n) {
                *held = None;
            }
        }
    }

    /// A TCP connection, with TLS on it for https://.
    async fn stream(&self, source: Option<Ipv4Addr>) -> Result<Io, Miss> {
        let tcp = match source {
            None => TcpStream::connect(self.addr).await,
            Some(ip) => {
                async {
                    let socket = tokio::net::TcpSocket::new_v4()?;
                    socket.bind(SocketAddr::new(ip.into(), 0))?;
                    socket.connect(self.addr).await
                }
                .await
            }
        }
        .map_err(|e| Miss::Connect(e.kind()))?;
        let _ = tcp.set_nodelay(true);
        self.opened.fetch_add(1, Relaxed);
        let Some((connector, name)) = &self.tls else {
            return Ok(Io::Plain(tcp));
        };
        let tls = connector
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| Miss::Tls(self.tls_reason(e)))?;
        if tls.get_ref().1.handshake_kind() == Some(tls::HandshakeKind::Resumed) {
            self.resumed.fetch_add(1, Relaxed);
        }
        Ok(Io::Tls(Box::new(tls)))
    }

    /// rustls's reason, without the io::Error wrapping around it.
    fn tls_reason(&self, e: std::io::Error) -> String {
        let why = e
            .get_ref()
            .map_or_else(|| e.to_string(), |inner| inner.to_string());
        if self.h2.is_some() && why.contains("NoApplicationProtocol") {
            format!("{why}: {NO_H2}")
        } else {
            why
        }
    }
}

impl Shared {
    fn slot(&self, worker: usize) -> &Slot {
        &self.slots[(worker / self.streams).min(self.slots.len() - 1)]
    }
}

/// A server that agreed to no protocol ALPN offered, or to another.
const NO_H2: &str = "the server does not speak HTTP/2 (by ALPN); drop --http2";

/// HTTP/2's preface and settings on an open stream; the connection is
/// driven by a task of its own until every handle on it is dropped.
async fn handshake<T>(io: T) -> Result<Sender, Miss>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::handshake(io).await.map_err(|_| Miss::Receive)?;
    let closed = Arc::new(AtomicBool::new(false));
    let ended = closed.clone();
    tokio::spawn(Deferred {
        inner: Box::pin(async move {
            let _ = connection.await;
            ended.store(true, Relaxed);
        }),
        yielded: false,
    });
    Ok(Sender { send, closed })
}

/// A future that, each time it is woken, lets the tasks already queued run
/// before it does. The HTTP/2 connection is woken by the first of its
/// streams' workers to send; deferred, it then writes every request those
/// workers queued in one TLS record and one write, instead of a write each
/// (measured: 2.6 requests a write at 32 connections without it).
struct Deferred<F> {
    inner: Pin<Box<F>>,
    yielded: bool,
}

impl<F: Future> Future for Deferred<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        self.inner.as_mut().poll(cx)
    }
}
