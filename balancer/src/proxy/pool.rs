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
use tokio::net::TcpStream;

type Sender = SendRequest<Full<Bytes>>;

/// Why a request did not get a response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made: the request never left.
    Connect,
    /// The connection broke after the request may have gone out.
    Io,
}

pub(crate) struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
    connect_timeout: Duration,
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
    pub(crate) fn new(addr: SocketAddr, max_idle: usize, connect_timeout: Duration) -> Pool {
        Pool {
            addr,
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
        }
    }

    async fn connect(&self) -> Result<Sender, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| SendError::Connect)?
            .map_err(|_| SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| SendError::Connect)?;
        // The connection is driven by its own task; it ends when the last
        // sender is dropped or the server closes it.
        tokio::spawn(connection);
        Ok(sender)
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
    /// the connection it came on.
    pub(crate) async fn send(
        self: &Arc<Self>,
        make: impl Fn() -> Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let (mut sender, reused) = self.checkout().await?;
        match sender.send_request(make()).await {
            Ok(response) => Ok((
                response,
                Lease {
                    sender: Some(sender),
                    pool: self.clone(),
                },
            )),
            // A kept-alive connection the server closed just as we took it:
            // the request was never written, so a fresh connection carries
            // it, as nginx retries on a cached connection.
            Err(e) if e.is_canceled() && reused => {
                let mut fresh = self.connect().await?;
                let response = fresh
                    .send_request(make())
                    .await
                    .map_err(|_| SendError::Io)?;
                Ok((
                    response,
                    Lease {
                        sender: Some(fresh),
                        pool: self.clone(),
                    },
                ))
            }
            Err(e) if e.is_canceled() => Err(SendError::Connect),
            Err(_) => Err(SendError::Io),
        }
    }
}
