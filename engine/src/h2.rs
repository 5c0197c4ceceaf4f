//! One request over HTTP/2: the request the template rendered as HTTP/1
//! bytes is sent as HTTP/2 frames, and the answer's head is written into
//! the connection's buffer in HTTP/1's form, so the worker reads node and
//! server names (and `-v 4` prints the head) as it does for HTTP/1.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::connect::Sender;
use crate::exchange::{Miss, Send, Streaming, KEPT_BODY};
use crate::stats::Answer;

/// Headers HTTP/2 forbids (RFC 9113 8.2.2), and Host, which `:authority`
/// carries instead.
const NOT_IN_H2: [&str; 7] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// The request of `bytes` as HTTP/2 wants it, to `origin` (`https://host`),
/// and its body.
fn request(bytes: &[u8], origin: &str) -> Result<(hyper::Request<()>, Bytes), Miss> {
    let bad = |why: &str| Miss::Malformed(format!("the request to send: {why}"));
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err(bad("not a whole HTTP/1 request")),
    };
    let mut builder = hyper::Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(format!("{origin}{}", parsed.path.unwrap_or("/")));
    for h in parsed.headers.iter() {
        if !NOT_IN_H2.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            builder = builder.header(h.name, h.value);
        }
    }
    let req = builder.body(()).map_err(|e| bad(&e.to_string()))?;
    Ok((req, Bytes::copy_from_slice(&bytes[len..])))
}

/// Whether the server refused the stream before processing it, or it never
/// left: RFC 9113 8.7's REFUSED_STREAM, and a graceful GOAWAY (NO_ERROR:
/// nginx's after keepalive_requests) for a stream past its last id.
fn unprocessed(e: &h2::Error) -> bool {
    match e.reason() {
        Some(h2::Reason::REFUSED_STREAM) => true,
        Some(h2::Reason::NO_ERROR) => e.is_go_away() && e.is_remote(),
        _ => false,
    }
}

/// Sends the request on `sender` and reads the whole answer into `buf`
/// (its head in HTTP/1's form, then the first `KEPT_BODY` bytes of body;
/// an event stream's body is fed to the stream reader instead).
pub(crate) async fn once(
    sender: &mut Sender,
    send: &Send<'_>,
    node_headers: &[&str],
    buf: &mut Vec<u8>,
    start: Instant,
    connect: Duration,
    streaming: &mut Streaming,
) -> Result<Answer, Miss> {
    let (req, body) = request(send.bytes, &send.via.origin)?;
    let refused = |e: h2::Error| {
        if unprocessed(&e) {
            Miss::Refused
        } else {
            Miss::Receive
        }
    };
    // A connection that can take no more streams has not seen the request.
    std::future::poll_fn(|cx| sender.send.poll_ready(cx))
        .await
        .map_err(|_| Miss::Refused)?;
    let sent = Instant::now();
    let (response, mut stream) = sender
        .send
        .send_request(req, body.is_empty())
        .map_err(|_| Miss::Refused)?;
    if !body.is_empty() {
        // Sent as the peer's flow-control window allows.
        stream.send_data(body, true).map_err(|_| Miss::Receive)?;
    }
    let response = response.await.map_err(refused)?;
    let waiting = sent.elapsed();
    buf.clear();
    buf.extend_from_slice(format!("HTTP/2 {}\r\n", response.status().as_u16()).as_bytes());
    let (mut node, mut node_rank, mut server) = (None, usize::MAX, None);
    let mut event_stream = false;
    for (name, value) in response.headers() {
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        let range = (buf.len(), buf.len() + value.len());
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if name == hyper::header::CONTENT_TYPE {
            event_stream = crate::http1::is_event_stream(value.as_bytes());
        } else if name == hyper::header::SERVER {
            server = Some(range);
        } else if let Some(rank) = node_headers.iter().position(|n| name.as_str() == *n) {
            if rank < node_rank {
                (node, node_rank) = (Some(range), rank);
            }
        }
    }
    buf.extend_from_slice(b"\r\n");
    let head_len = buf.len();
    streaming.active = event_stream;
    let Streaming { active, sse, gaps } = streaming;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut body_bytes = 0u64;
    while let Some(data) = body.data().await {
        let data = data.map_err(|_| Miss::Receive)?;
        // Read: the server may send as much again.
        let _ = body.flow_control().release_capacity(data.len());
        body_bytes += data.len() as u64;
        if *active {
            sse.feed(&data, start.elapsed(), &mut |gap| gaps.push(gap));
        } else if buf.len() < head_len + KEPT_BODY {
            let room = head_len + KEPT_BODY - buf.len();
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Answer {
        status,
        node,
        server,
        head_bytes: head_len as u64,
        body_bytes,
        connect,
        waiting,
        total: start.elapsed(),
        since_due: None,
        lag: None,
        keepalive: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http1_request_becomes_an_http2_one() {
        let bytes = b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: a:1\r\nConnection: keep-alive\r\n\
            Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let (req, body) = request(bytes, "https://a:1").unwrap();
        assert_eq!(&body[..], b"{}");
        assert_eq!(req.method(), hyper::Method::POST);
        assert_eq!(req.uri().to_string(), "https://a:1/v1/chat?x=1");
        let names: Vec<_> = req.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "content-length"]);
        assert!(matches!(
            request(b"GET / HTTP/1.1\r\n", "http://a"),
            Err(Miss::Malformed(_))
        ));
    }
}
