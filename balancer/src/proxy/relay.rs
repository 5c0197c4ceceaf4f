//! What the proxy answers with: a small page of its own, or an upstream's
//! body relayed as it is read. When the answer ends (or is dropped), the
//! peer it held is freed and the request's log line written.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::access_log::Record;
use super::body::{BodyError, UpstreamBody};
use super::clients::Busy;
use super::{Group, Shared};
use crate::upstream::{Attempt, Method as Balancing, Outcome};

pub struct ProxyBody {
    inner: Inner,
    /// Runs when the body is done: frees the peer and writes the log line.
    pub(super) done: Option<Done>,
    /// Keeps the client connection counted busy until the answer ends.
    pub(super) busy: Option<Busy>,
}

enum Inner {
    Full(Option<Bytes>),
    Relay {
        body: UpstreamBody,
        /// `proxy_read_timeout` between two reads, as nginx applies it
        /// while a body streams; reset by every frame.
        read_timeout: Duration,
        quiet: Pin<Box<tokio::time::Sleep>>,
    },
}

/// Why a relayed body ended early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Upstream(#[from] BodyError),
    #[error("upstream timed out while reading the body (proxy_read_timeout)")]
    TimedOut,
}

impl ProxyBody {
    pub(super) fn full(bytes: Bytes) -> ProxyBody {
        ProxyBody {
            inner: Inner::Full(Some(bytes)),
            done: None,
            busy: None,
        }
    }

    pub(super) fn relay(body: UpstreamBody, read_timeout: Duration) -> ProxyBody {
        ProxyBody {
            inner: Inner::Relay {
                body,
                read_timeout,
                quiet: Box::pin(tokio::time::sleep(read_timeout)),
            },
            done: None,
            busy: None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Relay {
                body,
                read_timeout,
                quiet,
            } => match body.poll_frame(cx) {
                Poll::Pending => match quiet.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(RelayError::TimedOut))),
                    Poll::Pending => Poll::Pending,
                },
                Poll::Ready(ready) => {
                    let deadline = tokio::time::Instant::now() + *read_timeout;
                    quiet.as_mut().reset(deadline);
                    Poll::Ready(ready.map(|f| f.map_err(RelayError::from)))
                }
            },
        };
        // A body cut short by the upstream is not counted against it:
        // nginx frees the peer as a success once the head was relayed.
        match (&polled, &mut this.done) {
            (Poll::Ready(Some(Ok(frame))), Some(done)) => {
                if let Some(data) = frame.data_ref() {
                    done.record.body_bytes_sent += data.len() as u64;
                }
            }
            (Poll::Ready(Some(Err(_))), Some(done)) => done.record.cut = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Relay { body, .. } => body.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Relay { body, .. } => body.size_hint(),
        }
    }
}

/// The peer a relayed answer still occupies (least_conn counts it) until
/// its body ends.
pub(super) struct Held {
    pub group: Arc<Group>,
    pub worker: usize,
    pub attempt: Attempt,
    /// Time to the response head, what least_time learns from.
    pub rtt: Duration,
    pub sent_at: Instant,
}

impl Held {
    /// Frees the peer as a success, as nginx does when an answer ends.
    pub(super) fn free(mut self, record: &mut Record) {
        let mut upstream = self.group.lock(self.worker);
        // least_time learns from the head, or with last_byte from the
        // whole answer (a token stream's length shows only there).
        let last_byte = matches!(upstream.method, Balancing::LeastTime { last_byte: true });
        let rtt = if last_byte {
            self.sent_at.elapsed()
        } else {
            self.rtt
        };
        let outcome = Outcome {
            failed: false,
            rtt: Some(rtt),
        };
        upstream.finish(&mut self.attempt, outcome, super::clock());
        drop(upstream);
        // nginx's $upstream_response_time runs to the answer's last byte.
        record.set_last_upstream_time(self.sent_at.elapsed());
    }
}

/// The end of a request: the peer to free (if one is still held) and the log line.
pub(super) struct Done {
    pub shared: Arc<Shared>,
    pub held: Option<Held>,
    pub record: Record,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.free(&mut self.record);
        }
        self.record.request_time = self.record.started.elapsed();
        if self.record.cut {
            eprintln!("balancer: {}", self.record.cut_line());
        }
        if let Some(log) = self.shared.log.as_ref().filter(|_| self.record.logged()) {
            log.write(&self.record);
        }
    }
}
