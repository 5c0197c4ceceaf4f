//! An upstream's response body, read as nginx's proxy module frames it:
//! none for HEAD, 204, 304 and a zero length; chunks when chunked (which
//! wins over a length); the length when given; else everything to the
//! close. Read to its end on a connection that allows it, the connection
//! goes back to the worker's keepalive cache.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use tokio_util::io::poll_read_buf;

use super::pool::{Conn, Keepalive};

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// This many bytes still to come.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunk),
    /// Everything until the server closes.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Waiting for a size line.
    Size,
    /// This many data bytes of the current chunk to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

impl Framing {
    /// As nginx's `ngx_http_proxy_input_filter_init` and `process_header` set it.
    pub(crate) fn of(head: &super::head::Head, head_request: bool, http09: bool) -> Framing {
        if http09 {
            Framing::Close
        } else if head_request
            || matches!(head.status, 204 | 304)
            || (100..200).contains(&head.status)
        {
            Framing::Empty
        } else if head.chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            match head.content_length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        }
    }
}

/// Why a body ended before its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("upstream prematurely closed connection while reading upstream")]
    Closed,
    #[error("upstream sent invalid chunked response")]
    BadChunk,
    #[error("upstream: {0}")]
    Io(#[from] std::io::Error),
}

/// The body on its connection.
pub(crate) struct UpstreamBody {
    conn: Option<Conn>,
    framing: Framing,
    /// The answer lets the connection be kept (HTTP/1.1, no close).
    reusable: bool,
    /// Where the connection goes when the body ends cleanly.
    keepalive: Option<Arc<Keepalive>>,
    done: bool,
    /// The upstream closed early; the error waits one turn, so the bytes
    /// already relayed reach the client first (nginx sends them, then
    /// closes).
    cut: bool,
}

impl UpstreamBody {
    pub(crate) fn new(
        conn: Conn,
        framing: Framing,
        reusable: bool,
        keepalive: Option<Arc<Keepalive>>,
    ) -> UpstreamBody {
        let mut body = UpstreamBody {
            conn: Some(conn),
            framing,
            reusable,
            keepalive,
            done: false,
            cut: false,
        };
        if framing == Framing::Empty {
            body.finish();
        }
        body
    }

    /// The body ended where its framing said: the connection is kept if
    /// the answer allowed it and nothing more came after it.
    fn finish(&mut self) {
        self.done = true;
        if let (Some(conn), Some(cache)) = (self.conn.take(), &self.keepalive) {
            if self.reusable && conn.buf.is_empty() {
                cache.put(conn);
            }
        }
    }

    /// The whole body, if it ends cleanly within `max` bytes.
    pub(crate) async fn collect(mut self, max: usize) -> Option<Bytes> {
        let mut out = BytesMut::new();
        loop {
            match std::future::poll_fn(|cx| self.poll_frame(cx)).await {
                None => return Some(out.freeze()),
                Some(Err(_)) => return None,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        out.extend_from_slice(data);
                    }
                    if out.len() > max {
                        return None;
                    }
                }
            }
        }
    }

    pub(crate) fn is_end(&self) -> bool {
        self.done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Empty => SizeHint::with_exact(0),
            Framing::Length(n) if !self.done => SizeHint::with_exact(n),
            _ if self.done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// The next piece of the body, `None` at its end.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.cut {
            self.done = true;
            self.cut = false;
            return Poll::Ready(Some(Err(BodyError::Closed)));
        }
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match step(&mut conn.buf, &mut self.framing)? {
                Step::Data(data) => {
                    if self.framing == Framing::Length(0) {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::Framing => continue,
                Step::End => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Step::Need => {}
            }
            conn.buf.reserve(16 << 10);
            let n = ready!(poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf))?;
            if n == 0 {
                if self.framing == Framing::Close {
                    // The close is the end: the connection is not kept.
                    self.reusable = false;
                    self.finish();
                    return Poll::Ready(None);
                }
                self.conn = None;
                // hyper flushes what it holds while the body is pending.
                self.cut = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// What the buffered bytes give.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Body bytes.
    Data(Bytes),
    /// Only framing was consumed (a chunk's size line or its CRLF).
    Framing,
    /// The body's end.
    End,
    /// More bytes must be read first.
    Need,
}

/// Takes what the framing allows from `buf`.
fn step(buf: &mut BytesMut, framing: &mut Framing) -> Result<Step, BodyError> {
    match framing {
        Framing::Empty | Framing::Length(0) => Ok(Step::End),
        _ if buf.is_empty() => Ok(Step::Need),
        Framing::Close => Ok(Step::Data(buf.split().freeze())),
        Framing::Length(left) => {
            let n = (*left).min(buf.len() as u64);
            *left -= n;
            Ok(Step::Data(buf.split_to(n as usize).freeze()))
        }
        Framing::Chunked(state) => chunk(buf, state),
    }
}

/// A line through its LF, without the CRLF; `None` until it is whole.
fn line(buf: &mut BytesMut) -> Option<BytesMut> {
    let i = buf.iter().position(|&b| b == b'\n')?;
    let mut line = buf.split_to(i + 1);
    line.truncate(i);
    if line.last() == Some(&b'\r') {
        line.truncate(i - 1);
    }
    Some(line)
}

/// One step of chunked decoding.
fn chunk(buf: &mut BytesMut, state: &mut Chunk) -> Result<Step, BodyError> {
    match *state {
        Chunk::Size => {
            let Some(l) = line(buf) else {
                return Ok(Step::Need);
            };
            let text = std::str::from_utf8(&l).map_err(|_| BodyError::BadChunk)?;
            let size = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| BodyError::BadChunk)?;
            *state = if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            };
            Ok(Step::Framing)
        }
        Chunk::Data(left) => {
            let n = left.min(buf.len() as u64);
            *state = if left == n {
                Chunk::DataEnd
            } else {
                Chunk::Data(left - n)
            };
            Ok(Step::Data(buf.split_to(n as usize).freeze()))
        }
        Chunk::DataEnd => match line(buf) {
            None => Ok(Step::Need),
            Some(l) if l.is_empty() => {
                *state = Chunk::Size;
                Ok(Step::Framing)
            }
            Some(_) => Err(BodyError::BadChunk),
        },
        Chunk::Trailers => match line(buf) {
            None => Ok(Step::Need),
            Some(l) if l.is_empty() => Ok(Step::End),
            Some(_) => Ok(Step::Framing),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(mut framing: Framing, input: &[u8]) -> Result<(Vec<u8>, bool), BodyError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match step(&mut buf, &mut framing)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Framing => {}
                Step::End => return Ok((out, true)),
                Step::Need => return Ok((out, false)),
            }
        }
    }

    #[test]
    fn bodies_end_where_their_framing_says() {
        assert_eq!(
            decode(Framing::Length(5), b"hello, and more").unwrap(),
            (b"hello".to_vec(), true)
        );
        assert_eq!(
            decode(Framing::Length(9), b"hello").unwrap(),
            (b"hello".to_vec(), false)
        );
        let chunked = Framing::Chunked(Chunk::Size);
        assert_eq!(
            decode(chunked, b"5\r\nhello\r\n3;x=1\r\nabc\r\n0\r\nT: v\r\n\r\n").unwrap(),
            (b"helloabc".to_vec(), true)
        );
        assert_eq!(
            decode(chunked, b"5\r\nhel").unwrap(),
            (b"hel".to_vec(), false)
        );
        assert!(decode(chunked, b"zz\r\n").is_err());
        assert!(decode(chunked, b"2\r\nokX\r\n").is_err());
        assert_eq!(decode(Framing::Empty, b"").unwrap(), (Vec::new(), true));
    }
}
