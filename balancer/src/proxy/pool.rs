//! Connections to upstream servers, as nginx's proxy module makes and
//! keeps them: a new connection for every request unless the upstream
//! has `keepalive N`; then each worker keeps up to N idle connections for
//! the whole upstream, most recent first, and closes the oldest when a
//! newer one needs its place. A cached connection is dropped when the
//! server closes it or sends anything while it is idle (nginx's close
//! handler), when it has been idle for `keepalive_timeout`, has served
//! `keepalive_requests` or has lived `keepalive_time`.
//!
//! One exchange writes nginx's request bytes and reads the response head
//! by nginx's rules (`head.rs`); the body is read by `body.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::head::{self, Head, Parsed};
use crate::next::Failure;
use primitives::tls::{client::TlsStream, ServerName, TlsConnector};

/// A connection to one upstream server, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection, with what was read past the last response head.
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    pub(crate) peer: SocketAddr,
    /// Bytes already read and not yet consumed (the body's first bytes).
    pub(crate) buf: BytesMut,
    requests: u32,
    opened: Instant,
}

impl Conn {
    /// Whether the server closed it or sent something while it was idle:
    /// what nginx's close handler sees (without waiting for it).
    fn gone(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut peek = ReadBuf::new(&mut byte);
        !matches!(
            self.stream.tcp().poll_peek(&mut cx, &mut peek),
            Poll::Pending
        )
    }
}

/// Why a request did not get a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// No connection could be made: the request never left.
    Connect,
    /// `proxy_connect_timeout` ran out: the request never left.
    ConnectTimeout,
    /// The connection broke after the request may have gone out.
    Io,
    /// `proxy_read_timeout` (or `proxy_send_timeout`) ran out.
    ReadTimeout,
    /// The response head did not parse (nginx's `invalid_header`).
    InvalidHeader,
}

impl SendError {
    /// As nginx's retry rules classify it.
    pub(crate) fn failure(self) -> Failure {
        match self {
            SendError::Connect => Failure::Error { sent: false },
            SendError::ConnectTimeout => Failure::Timeout { sent: false },
            SendError::Io => Failure::Error { sent: true },
            SendError::ReadTimeout => Failure::Timeout { sent: true },
            SendError::InvalidHeader => Failure::InvalidHeader,
        }
    }
}

/// How to open connections to one upstream's servers.
pub(crate) struct Connector {
    /// `proxy_pass https://`: TLS on each connection, to this name.
    pub(crate) tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Connector {
    /// A new connection; the TLS handshake, as nginx's, counts towards
    /// `proxy_connect_timeout` and its failure is a connect error.
    pub(crate) async fn connect(
        &self,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Result<Conn, SendError> {
        let open = async {
            let tcp = TcpStream::connect(peer)
                .await
                .map_err(|_| SendError::Connect)?;
            let _ = tcp.set_nodelay(true);
            let stream = match &self.tls {
                None => Stream::Plain(tcp),
                Some((connector, name)) => Stream::Tls(Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|_| SendError::Connect)?,
                )),
            };
            Ok(Conn {
                stream,
                peer,
                buf: BytesMut::with_capacity(head::DEFAULT_BUFFER),
                requests: 0,
                opened: Instant::now(),
            })
        };
        tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| SendError::ConnectTimeout)?
    }
}

/// What an exchange got: the head, and the connection its body comes on.
pub(crate) struct Answer {
    pub(crate) head: Head,
    /// HTTP/0.9: no head was sent; every byte is body, to the close.
    pub(crate) http09: bool,
    pub(crate) conn: Conn,
}

/// Writes `request` on `conn` and reads the response head, which must be
/// whole within `read_timeout` of the request's end (nginx arms
/// `proxy_read_timeout` once for the head) and fit in `buffer` bytes
/// (`proxy_buffer_size`).
pub(crate) async fn exchange(
    mut conn: Conn,
    request: &[u8],
    send_timeout: Duration,
    read_timeout: Duration,
    buffer: usize,
) -> Result<Answer, SendError> {
    conn.requests += 1;
    conn.buf.clear();
    match tokio::time::timeout(send_timeout, conn.stream.write_all(request)).await {
        Err(_) => return Err(SendError::ReadTimeout),
        Ok(Err(_)) => return Err(SendError::Io),
        Ok(Ok(())) => {}
    }
    let deadline = tokio::time::Instant::now() + read_timeout;
    loop {
        match head::parse(&conn.buf, buffer) {
            Parsed::Head(head, used) => {
                let _ = conn.buf.split_to(used);
                return Ok(Answer {
                    head,
                    http09: false,
                    conn,
                });
            }
            Parsed::Http09 => {
                let head = Head {
                    status: 200,
                    version: 9,
                    headers: Vec::new(),
                    content_length: None,
                    chunked: false,
                    connection_close: true,
                };
                return Ok(Answer {
                    head,
                    http09: true,
                    conn,
                });
            }
            Parsed::Invalid(_) => return Err(SendError::InvalidHeader),
            Parsed::Partial => {}
        }
        conn.buf
            .reserve(buffer.saturating_sub(conn.buf.len()).max(1024));
        let read = tokio::time::timeout_at(deadline, conn.stream.read_buf(&mut conn.buf)).await;
        match read {
            Err(_) => return Err(SendError::ReadTimeout),
            // Closed (or reset) before a whole head: nginx's "upstream
            // prematurely closed connection", an error.
            Ok(Ok(0)) | Ok(Err(_)) => return Err(SendError::Io),
            Ok(Ok(_)) => {}
        }
    }
}

/// One worker's idle connections to one upstream's servers, most recent
/// first.
pub(crate) struct Keepalive {
    spec: crate::conf::Keepalive,
    idle: Mutex<VecDeque<(Conn, Instant)>>,
}

impl Keepalive {
    pub(crate) fn new(spec: crate::conf::Keepalive) -> Keepalive {
        Keepalive {
            idle: Mutex::new(VecDeque::with_capacity(spec.connections)),
            spec,
        }
    }

    /// Drops what nginx would have dropped by now: connections the server
    /// closed or wrote to, and those idle past `keepalive_timeout`.
    fn sweep(&self, idle: &mut VecDeque<(Conn, Instant)>) {
        idle.retain(|(conn, since)| !conn.gone() && since.elapsed() < self.spec.timeout);
    }

    /// The most recent idle connection to `peer`, if one is cached.
    pub(crate) fn take(&self, peer: SocketAddr) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep(&mut idle);
        let at = idle.iter().position(|(c, _)| c.peer == peer)?;
        idle.remove(at).map(|(c, _)| c)
    }

    /// Keeps `conn` for a later request, as nginx's free_keepalive_peer
    /// does when the answer allowed it; the oldest idle one makes room.
    pub(crate) fn put(&self, conn: Conn) {
        if conn.requests >= self.spec.requests || conn.opened.elapsed() > self.spec.time {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep(&mut idle);
        idle.push_front((conn, Instant::now()));
        idle.truncate(self.spec.connections);
    }
}
