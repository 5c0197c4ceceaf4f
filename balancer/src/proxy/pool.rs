//! Keep-alive connections to one upstream server (nginx's `keepalive N`):
//! idle HTTP/1.1 connections wait in a stack; a request takes the most
//! recent one that is still open, or opens a new one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::next::Failure;
use primitives::tls::{ServerName, TlsConnector};
use tokio::net::TcpStream;

type Sender = SendRequest<Full<Bytes>>;

/// HTTP/1.1 on an open stream; the connection is driven by its own task,
/// which ends when the last sender is dropped or the server closes it.
async fn handshake<T>(io: T) -> Result<Sender, SendError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| SendError::Connect)?;
    tokio::spawn(connection);
    Ok(sender)
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
    /// `proxy_read_timeout` ran out waiting for the response head.
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

/// What a failed send says about why.
fn classify(e: &hyper::Error) -> SendError {
    if e.is_parse() {
        SendError::InvalidHeader
    } else {
        SendError::Io
    }
}

pub(crate) struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
    connect_timeout: Duration,
    /// `proxy_pass https://`: TLS on each connection, to this name.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// A connection lent to one request; it goes back to the pool when the
/// response has been read to the end (when this is dropped).
pub(crate) struct Lease {
    sender: Option<Sender>,
    pool: Arc<Pool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            if !sender.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < self.pool.max_idle {
                    idle.push(sender);
                }
            }
        }
    }
}

impl Pool {
    pub(crate) fn new(
        addr: SocketAddr,
        max_idle: usize,
        connect_timeout: Duration,
        tls: Option<(TlsConnector, ServerName<'static>)>,
    ) -> Pool {
        Pool {
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
            tls,
        }
    }

    /// A new connection; the TLS handshake, as nginx's, counts towards
    /// `proxy_connect_timeout` and its failure is a connect error.
    async fn connect(&self) -> Result<Sender, SendError> {
        let open = async {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|_| SendError::Connect)?;
            let _ = stream.set_nodelay(true);
            match &self.tls {
                None => handshake(stream).await,
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), stream)
                        .await
                        .map_err(|_| SendError::Connect)?;
                    handshake(tls).await
                }
            }
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| SendError::ConnectTimeout)?
    }

    /// An idle connection ready for a request, or a new one.
    async fn checkout(&self) -> Result<(Sender, bool), SendError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut sender) = idle else {
                return Ok((self.connect().await?, false));
            };
            // A lent connection becomes ready once its last response was
            // read; one the server closed meanwhile is dropped.
            if sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
    }

    /// Sends the request `make` builds and returns the response head with
    /// the connection it came on. Connecting is timed by the pool's connect
    /// timeout, and the wait for the head once the request is out by
    /// `read_timeout`, separately, as nginx times them.
    pub(crate) async fn send(
        self: &Arc<Self>,
        make: impl Fn() -> Request<Full<Bytes>>,
        read_timeout: Duration,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let (mut sender, reused) = self.checkout().await?;
        let lease = |sender, pool: &Arc<Pool>| Lease {
            sender: Some(sender),
            pool: pool.clone(),
        };
        let first = tokio::time::timeout(read_timeout, sender.send_request(make())).await;
        match first {
            Err(_) => Err(SendError::ReadTimeout),
            // Its connection is dropped with it: what follows is unframed.
            Ok(Ok(response)) if super::hygiene::bad_framing(response.headers()) => {
                Err(SendError::InvalidHeader)
            }
            Ok(Ok(response)) => Ok((response, lease(sender, self))),
            // A kept-alive connection the server closed just as we took it:
            // the request was never written, so a fresh connection carries
            // it, as nginx retries on a cached connection.
            Ok(Err(e)) if e.is_canceled() && reused => {
                let mut fresh = self.connect().await?;
                match tokio::time::timeout(read_timeout, fresh.send_request(make())).await {
                    Err(_) => Err(SendError::ReadTimeout),
                    Ok(Ok(response)) if super::hygiene::bad_framing(response.headers()) => {
                        Err(SendError::InvalidHeader)
                    }
                    Ok(Ok(response)) => Ok((response, lease(fresh, self))),
                    Ok(Err(e)) => Err(classify(&e)),
                }
            }
            Ok(Err(e)) if e.is_canceled() => Err(SendError::Connect),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}
