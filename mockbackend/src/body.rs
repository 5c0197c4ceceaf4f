//! The one response body type every endpoint answers with: a whole buffer, or
//! tokens paced out as SSE events, optionally cut short with a connection reset,
//! carrying the guard that records the request when the body is done.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::openai::Answer;
use crate::service::Done;

/// A response body cut short on purpose (the reset-connections fault).
#[derive(Debug, thiserror::Error)]
#[error("response cut short by the reset-connections fault")]
pub struct Aborted;

pub struct Reply {
    source: Source,
    cut: Option<Cut>,
    /// Dropped with the body, after its last byte went out (or the client left).
    done: Option<Done>,
}

enum Source {
    Full(Option<Bytes>),
    Tokens(Box<Tokens>),
}

/// Token `i` is due at `first_at + i * gap`; the schedule is absolute so a
/// late wake-up does not push every later token back.
struct Tokens {
    answer: Answer,
    stall_after: Option<u32>,
    next: u32,
    first_at: Instant,
    /// The exact wait for the first token (TTFT is measured to the
    /// microsecond downstream); the runtime's timer paces the rest.
    first: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    gap: Duration,
    sleep: Pin<Box<Sleep>>,
    finished: bool,
}

struct Cut {
    remaining: usize,
    /// Tells the connection to close with RST instead of FIN.
    rst: Arc<AtomicBool>,
    /// A moment for the bytes already written to leave before the reset.
    pause: Option<Pin<Box<Sleep>>>,
}

impl Reply {
    pub fn full(bytes: impl Into<Bytes>) -> Reply {
        Reply {
            source: Source::Full(Some(bytes.into())),
            cut: None,
            done: None,
        }
    }

    pub fn empty() -> Reply {
        Reply {
            source: Source::Full(None),
            cut: None,
            done: None,
        }
    }

    /// An SSE stream of `answer`'s tokens, the first at `first_at`.
    pub fn tokens(
        answer: Answer,
        first_at: Instant,
        gap: Duration,
        stall_after: Option<u32>,
    ) -> Reply {
        let tokens = Tokens {
            answer,
            stall_after,
            next: 0,
            first_at,
            // Unpaced streams (no ttft) skip the allocation.
            first: (first_at > Instant::now()).then(|| {
                Box::pin(crate::pace::wait_until(first_at.into_std()))
                    as Pin<Box<dyn Future<Output = ()> + Send>>
            }),
            gap,
            sleep: Box::pin(tokio::time::sleep_until(first_at)),
            finished: false,
        };
        Reply {
            source: Source::Tokens(Box::new(tokens)),
            cut: None,
            done: None,
        }
    }

    /// Sends at most `after` body bytes (for a whole buffer, at most half of it,
    /// so the cut is always mid-response), then resets the connection.
    pub fn cut_after(mut self, after: usize, rst: Arc<AtomicBool>) -> Reply {
        let remaining = match &self.source {
            Source::Full(Some(b)) => after.min(b.len() / 2),
            _ => after,
        };
        self.cut = Some(Cut {
            remaining,
            rst,
            pause: None,
        });
        self
    }

    pub fn with_done(mut self, done: Done) -> Reply {
        self.done = Some(done);
        self
    }
}

impl Tokens {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.next >= self.answer.tokens {
            self.finished = true;
            return Poll::Ready(Some(self.answer.last_chunks()));
        }
        if self.stall_after.is_some_and(|n| self.next >= n) {
            // Stalled: nothing more, and no end; the client gives up or the
            // server shuts down. The far timer only keeps a waker in place.
            self.sleep
                .as_mut()
                .reset(Instant::now() + Duration::from_secs(86_400));
            let _ = self.sleep.as_mut().poll(cx);
            return Poll::Pending;
        }
        if let Some(first) = &mut self.first {
            if first.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.first = None;
        }
        let due = self.first_at + self.gap * self.next;
        if Instant::now() < due {
            self.sleep.as_mut().reset(due);
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let chunk = self.answer.chunk(self.next);
        self.next += 1;
        Poll::Ready(Some(chunk))
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        let this = self.get_mut();
        if let Some(cut) = &mut this.cut {
            if cut.remaining == 0 {
                cut.rst.store(true, Ordering::Relaxed);
                let pause = cut
                    .pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                return pause.as_mut().poll(cx).map(|()| Some(Err(Aborted)));
            }
        }
        let data = match &mut this.source {
            Source::Full(b) => b.take(),
            Source::Tokens(t) => match t.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(b) => b,
            },
        };
        let Some(mut data) = data else {
            return Poll::Ready(None);
        };
        if let Some(cut) = &mut this.cut {
            if data.len() >= cut.remaining {
                data.truncate(cut.remaining);
                cut.remaining = 0;
                if data.is_empty() {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            } else {
                cut.remaining -= data.len();
            }
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        let pending_cut = self.cut.is_some();
        match &self.source {
            Source::Full(b) => b.is_none() && !pending_cut,
            Source::Tokens(t) => t.finished && !pending_cut,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Source::Full(None) => SizeHint::with_exact(0),
            Source::Tokens(_) => SizeHint::default(),
        }
    }
}
