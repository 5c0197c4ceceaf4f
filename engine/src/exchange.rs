//! One exchange on a connection: connect if needed, send, read the
//! answer's head (http1.rs parses it) and body by its framing, an event
//! stream token by token as it arrives (HTTP/2's in h2.rs); and why a
//! request got no answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connect::{Connector, Io};
use crate::h2;
use crate::http1::{self, Framing};
use crate::sse::Stream;
use crate::stats::Answer;

/// The most of a response head read before it is a malformed answer, as
/// ab's "response header too long".
const MAX_HEAD: usize = 64 << 10;

/// The most of a body kept (for `--node-field`); the rest is counted and
/// dropped, so a 10 GB answer costs no more memory than a small one.
pub(crate) const KEPT_BODY: usize = 64 << 10;

/// One connection and the bytes read from it that the last answer left.
pub(crate) struct Conn {
    io: Io,
    pub(crate) buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 << 10);
        }
        match &mut self.io {
            Io::Plain(s) => s.read_buf(&mut self.buf).await,
            Io::Tls(s) => s.read_buf(&mut self.buf).await,
            Io::H2(..) => Ok(0),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.write_all(bytes).await,
            // TLS holds back what it has not yet sealed into a record.
            Io::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Io::H2(..) => Ok(()),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Miss {
    Connect(std::io::ErrorKind),
    /// The TLS handshake failed (an untrusted certificate, say): rustls's reason.
    Tls(String),
    /// An HTTP/2 connection going away (GOAWAY) refused the request before
    /// processing it: it is sent again on a new connection.
    Refused,
    Receive,
    Timeout,
    /// An event stream that ended or broke before `data: [DONE]`.
    StreamCut,
    /// An event stream that went quiet until the request timed out.
    StreamStalled,
    /// An event stream that carried an error event (`data: {"error": ...}`).
    StreamError,
    /// An answer that breaks HTTP: a head that does not parse or never
    /// ends, two different lengths, broken chunks. ab's "Exceptions".
    Malformed(String),
}

/// What is sent for one request.
pub(crate) struct Send<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) head_request: bool,
    pub(crate) source: Option<std::net::Ipv4Addr>,
    pub(crate) via: &'a Connector,
    /// The worker sending it: HTTP/2 connections are shared by groups.
    pub(crate) worker: usize,
}

/// An event-stream answer as it arrives: read token by token, its gaps
/// kept for the worker to record once the stream is judged.
#[derive(Default)]
pub(crate) struct Streaming {
    pub(crate) active: bool,
    pub(crate) sse: Stream,
    pub(crate) gaps: Vec<Duration>,
}

impl Streaming {
    pub(crate) fn reset(&mut self) {
        self.active = false;
        self.sse = Stream::default();
        self.gaps.clear();
    }
}

/// A failed request in words, for the report's "why nothing answered".
pub(crate) fn describe(
    miss: &Miss,
    addr: SocketAddr,
    timeout: Duration,
    streaming: &Streaming,
) -> String {
    match miss {
        Miss::Connect(kind) => format!("could not connect to {addr}: {kind}"),
        Miss::Tls(why) if why.contains("certificate") => {
            format!("TLS with {addr} failed: {why}; trust it with --cacert FILE, or --insecure")
        }
        Miss::Tls(why) => format!("TLS with {addr} failed: {why}"),
        Miss::Receive => format!("{addr} closed the connection before a whole answer"),
        Miss::Refused => format!("{addr} refused the request twice (HTTP/2 GOAWAY)"),
        Miss::Timeout => format!("no whole answer from {addr} within {timeout:?} (-s)"),
        Miss::StreamCut => "an event stream ended before data: [DONE]".to_string(),
        Miss::StreamStalled => format!("an event stream went quiet for {timeout:?} (-s)"),
        Miss::StreamError => format!(
            "an event stream carried an error: {}",
            streaming.sse.error.as_deref().unwrap_or("")
        ),
        Miss::Malformed(why) => format!("{addr} sent a malformed answer: {why}"),
    }
}

/// Sends the request and reads the whole answer, leaving its head in the
/// connection's buffer for the caller to read names from.
pub(crate) async fn once(
    send: &Send<'_>,
    node_headers: &[&str],
    conn: &mut Option<Conn>,
    start: Instant,
    streaming: &mut Streaming,
) -> Result<Answer, Miss> {
    let mut connect_time = Duration::ZERO;
    // A request an HTTP/2 connection refused unprocessed goes once more,
    // on a new connection, as browsers and oha do.
    let mut tries = 0;
    let c = loop {
        if conn.is_none() {
            *conn = Some(Conn {
                io: send.via.open(send.worker, send.source).await?,
                buf: Vec::with_capacity(8 << 10),
            });
            connect_time = start.elapsed();
        }
        let c = conn
            .as_mut()
            .ok_or(Miss::Connect(std::io::ErrorKind::NotConnected))?;
        let Io::H2(sender, n) = &mut c.io else {
            break c;
        };
        let buf = &mut c.buf;
        match h2::once(
            sender,
            send,
            node_headers,
            buf,
            start,
            connect_time,
            streaming,
        )
        .await
        {
            Err(Miss::Refused) if tries == 0 => {
                tries += 1;
                send.via.retire(send.worker, *n).await;
                *conn = None;
            }
            answered => return answered,
        }
    };
    c.write(send.bytes).await.map_err(|_| Miss::Receive)?;
    let sent = Instant::now();
    let mut waiting = None;
    let malformed = |e: http1::ParseError| Miss::Malformed(e.to_string());
    let head = loop {
        match http1::parse_head(&c.buf, send.head_request, node_headers).map_err(malformed)? {
            // An interim answer (100 Continue, 103 Early Hints) is not the
            // answer: the final one follows on the same connection.
            Some(head) if (100..200).contains(&head.status) && head.status != 101 => {
                c.buf.drain(..head.len);
                continue;
            }
            Some(head) => break head,
            None if c.buf.len() > MAX_HEAD => {
                return Err(Miss::Malformed("a response head over 64 KiB".into()))
            }
            None => {}
        }
        // A kept-alive connection the server closed before answering is a
        // receive failure, as ab counts it.
        if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
            return Err(Miss::Receive);
        }
        waiting.get_or_insert_with(|| sent.elapsed());
    };
    // An event stream is read token by token as its bytes arrive, and its
    // body is not kept: only the head stays (node names point into it).
    // Other bodies keep their first KEPT_BODY bytes; the rest is counted.
    streaming.active = head.event_stream;
    let kept = if head.event_stream {
        head.len
    } else {
        head.len + KEPT_BODY
    };
    let Streaming { active, sse, gaps } = streaming;
    let mut feed = |data: &[u8]| {
        if *active {
            sse.feed(data, start.elapsed(), &mut |gap| gaps.push(gap));
        }
    };
    // Bytes of the buffer already fed; the buffer is cut back to `kept`.
    let mut seen = head.len;
    let mut body_bytes = 0u64;
    let bound = |buf: &mut Vec<u8>, seen: &mut usize| {
        buf.truncate(kept);
        *seen = buf.len();
    };
    match head.framing {
        Framing::None => {}
        Framing::Length(len) => {
            let mut received = (c.buf.len() - head.len) as u64;
            loop {
                feed(&c.buf[seen..]);
                if received >= len {
                    body_bytes = len;
                    break;
                }
                bound(&mut c.buf, &mut seen);
                match c.fill().await.map_err(|_| Miss::Receive)? {
                    0 => return Err(Miss::Receive),
                    n => received += n as u64,
                }
            }
        }
        Framing::Chunked => {
            let mut chunks = http1::Chunked::default();
            loop {
                if chunks
                    .feed(&c.buf[seen..], &mut feed)
                    .map_err(malformed)?
                    .is_some()
                {
                    break;
                }
                bound(&mut c.buf, &mut seen);
                if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
                    return Err(Miss::Receive);
                }
            }
            body_bytes = chunks.body;
        }
        Framing::Close => loop {
            feed(&c.buf[seen..]);
            body_bytes += (c.buf.len() - seen) as u64;
            bound(&mut c.buf, &mut seen);
            if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
                break;
            }
        },
    }
    Ok(Answer {
        status: head.status,
        node: head.node,
        server: head.server,
        head_bytes: head.len as u64,
        body_bytes,
        connect: connect_time,
        waiting: waiting.unwrap_or_default(),
        total: start.elapsed(),
        since_due: None,
        lag: None,
        keepalive: head.keep_alive,
    })
}

/// A top-level field of a JSON body, as text (`"server": 8001` -> `8001`).
/// Chunked bodies are not decoded for this; their node stays unknown.
pub(crate) fn body_field(body: &[u8], field: &str) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)?
    {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
