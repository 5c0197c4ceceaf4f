//! One proxied request: route, pick, send, retry as `proxy_next_upstream`
//! says, relay the answer as it streams, then finish the peer and log.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::access_log::Record;
use super::clients::{Busy, Conn};
use super::hygiene::{self, not_forwarded};
use super::pool::Lease;
use super::vars::RequestView;
use super::{Group, Shared};
use crate::conf::{Action, NextUpstream};
use crate::next::{self, Attempted, Retrying, Step};
use crate::upstream::{Attempt, Client, Method as Balancing, Outcome};

const X_UPSTREAM: HeaderName = HeaderName::from_static("x-upstream");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What the proxy answers with: a small buffer of its own, or an upstream's
/// body relayed frame by frame.
pub struct ProxyBody {
    inner: Inner,
    /// Runs when the body is done: frees the peer and writes the log line.
    done: Option<Done>,
    /// Keeps the client connection counted busy until the answer ends.
    busy: Option<Busy>,
}

enum Inner {
    Full(Option<Bytes>),
    /// The upstream's body, and the connection it comes on: back to the
    /// pool once the body has been read.
    Relay {
        body: Incoming,
        _lease: Lease,
        /// `proxy_read_timeout` between two reads, as nginx applies it
        /// while a body streams; reset by every frame.
        read_timeout: Duration,
        quiet: Pin<Box<tokio::time::Sleep>>,
    },
}

/// Why a relayed body ended early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("upstream: {0}")]
    Upstream(#[from] hyper::Error),
    #[error("upstream timed out while reading the body (proxy_read_timeout)")]
    TimedOut,
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
                ..
            } => match Pin::new(body).poll_frame(cx) {
                Poll::Pending => match quiet.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(RelayError::TimedOut))),
                    Poll::Pending => Poll::Pending,
                },
                ready => {
                    let deadline = tokio::time::Instant::now() + *read_timeout;
                    quiet.as_mut().reset(deadline);
                    ready.map(|f| f.map(|r| r.map_err(RelayError::from)))
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
            Inner::Relay { body, .. } => body.is_end_stream(),
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
struct Held {
    group: Arc<Group>,
    attempt: Attempt,
    /// Time to the response head, what least_time learns from.
    rtt: Duration,
    sent_at: Instant,
}

/// The end of a request: the peer to free (if one is still held) and the log line.
struct Done {
    shared: Arc<Shared>,
    held: Option<Held>,
    record: Record,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            let mut upstream = held.group.lock();
            // least_time learns from the head, or with last_byte from the
            // whole answer (a token stream's length shows only there).
            let last_byte = matches!(upstream.method, Balancing::LeastTime { last_byte: true });
            let outcome = Outcome {
                failed: false,
                rtt: Some(if last_byte {
                    held.sent_at.elapsed()
                } else {
                    held.rtt
                }),
            };
            upstream.finish(&mut held.attempt, outcome, self.shared.now());
            drop(upstream);
            // nginx's $upstream_response_time runs to the answer's last byte.
            self.record.set_last_upstream_time(held.sent_at.elapsed());
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

fn own(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody {
        inner: Inner::Full(Some(Bytes::from(text.to_string()))),
        done: None,
        busy: None,
    });
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // After these nginx does not trust the connection's next bytes, and
    // closes it (ngx_http_special_response_handler).
    if matches!(status.as_u16(), 400 | 408 | 413 | 414 | 500 | 501) {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// Attaches the log line (and the peer to free) to a response.
fn finish(
    mut response: Response<ProxyBody>,
    shared: &Arc<Shared>,
    mut record: Record,
    held: Option<Held>,
) -> Response<ProxyBody> {
    record.status = response.status().as_u16();
    record.sent_content_length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| response.body().size_hint().exact());
    if !record.upstream_addr.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&record.upstream_addr) {
            response.headers_mut().insert(X_UPSTREAM, v);
        }
    }
    response.body_mut().done = Some(Done {
        shared: shared.clone(),
        held,
        record,
    });
    response
}

/// The client end of a connection, with the header value nginx derives
/// from it (`$remote_addr`), made once per connection.
pub(crate) struct Remote {
    addr: SocketAddr,
    ip_text: String,
    ip_header: HeaderValue,
    pub(crate) conn: Arc<Conn>,
    /// The client came over TLS: `X-Forwarded-Proto: https`.
    tls: bool,
}

impl Remote {
    pub(crate) fn new(addr: SocketAddr, conn: Arc<Conn>, tls: bool) -> Remote {
        let ip_text = addr.ip().to_canonical().to_string();
        let ip_header = HeaderValue::from_str(&ip_text).unwrap_or(HeaderValue::from_static("-"));
        Remote {
            addr,
            ip_text,
            ip_header,
            conn,
            tls,
        }
    }
}

/// Logs a request hyper refused before it reached `handle`: a head that
/// did not parse (400) or was too large (431), as nginx logs those.
pub(crate) fn log_refused(shared: &Shared, remote: &Remote, e: &hyper::Error) {
    let status = if e.is_parse_too_large() {
        431
    } else if e.is_parse() {
        400
    } else {
        return;
    };
    log_unread(shared, remote, status);
}

/// Logs a head cut short by `client_header_timeout`: nginx's 408.
pub(crate) fn log_timed_out(shared: &Shared, remote: &Remote) {
    log_unread(shared, remote, 408);
}

fn log_unread(shared: &Shared, remote: &Remote, status: u16) {
    if let Some(log) = &shared.log {
        let mut record = Record::unread(remote.addr, status);
        record.request_time = record.started.elapsed();
        log.write(&record);
    }
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    remote: Arc<Remote>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let busy = remote.conn.begin();
    let mut response = respond(shared, remote, req).await;
    response.body_mut().busy = Some(busy);
    Ok(response)
}

async fn respond(
    shared: Arc<Shared>,
    remote: Arc<Remote>,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    // An absolute-form request names its host on the request line, and
    // that is the host nginx's $host and the upstream see.
    if let Some(authority) = req.uri().authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    let peer = remote.addr;
    // With X-Forwarded-For trusted, the log's $remote_addr is the client it
    // names, as nginx's realip module makes it.
    let client = SocketAddr::new(client_ip(&shared, req.headers(), peer), peer.port());
    let refused = hygiene::refusal(&req);
    let path = hygiene::normalized_path(req.uri().path());
    let route = path.as_deref().and_then(|p| shared.route(p));
    let logging = shared.log.is_some() && route.is_none_or(|r| r.location.logged);
    let mut record = Record::new(&req, client, logging);
    if let Some(why) = refused {
        let text = format!("bad request: {why}\n");
        return finish(own(StatusCode::BAD_REQUEST, &text), &shared, record, None);
    }
    let Some(route) = route else {
        return finish(
            own(StatusCode::NOT_FOUND, "not found\n"),
            &shared,
            record,
            None,
        );
    };
    let response = match (&route.location.action, route.group) {
        (Action::Return { status, body }, _) => own(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
            body,
        ),
        (Action::Proxy { .. }, Some(g)) => {
            let group = shared.groups[g].clone();
            let next = route.location.next_upstream.clone();
            let timeouts = route.location.timeouts.clone();
            return proxy(&shared, group, &next, timeouts.read, req, &remote, record).await;
        }
        (Action::Proxy { .. }, None) => own(StatusCode::BAD_GATEWAY, "no such upstream\n"),
    };
    record.upstream_addr.clear();
    finish(response, &shared, record, None)
}

/// The client as balancing sees it: its address (X-Forwarded-For's first
/// entry when trusted) and the evaluated hash key.
fn client_of(
    shared: &Shared,
    group: &Group,
    parts: &hyper::http::request::Parts,
    peer: SocketAddr,
) -> Client {
    let addr = client_ip(shared, &parts.headers, peer);
    let key = match &group.lock().method {
        Balancing::Hash { key, .. } => key.clone(),
        _ => return Client::from_addr(addr),
    };
    let key = key.eval(|name| variable(parts, name, addr));
    Client {
        addr: Some(addr),
        key,
    }
}

/// The client's address: X-Forwarded-For's first entry when trusted.
fn client_ip(shared: &Shared, headers: &hyper::HeaderMap, peer: SocketAddr) -> IpAddr {
    let forwarded = || {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok())
    };
    match shared.trust_forwarded_for {
        true => forwarded().unwrap_or(peer.ip()),
        false => peer.ip(),
    }
}

/// The nginx variables a hash key may use: the request with the client
/// the balancer sees.
fn variable(parts: &hyper::http::request::Parts, name: &str, addr: IpAddr) -> Option<String> {
    let view = RequestView {
        method: parts.method.as_str(),
        request_uri: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        protocol: "",
        remote: SocketAddr::new(addr, 0),
        headers: &parts.headers,
    };
    view.variable(name).map(|v| v.into_owned())
}

/// Copies the request for one upstream, with the headers seed 003's nginx
/// sets: Host, X-Real-IP, X-Forwarded-For (appended), X-Forwarded-Proto.
/// `named` are the headers the client's `Connection:` names, not forwarded.
fn upstream_request(
    parts: &hyper::http::request::Parts,
    named: &[HeaderName],
    body: &Bytes,
    remote: &Remote,
) -> Request<Full<Bytes>> {
    // Origin form (`/path?query`), as nginx sends it; Host says where.
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = hyper::Uri::from(path);
    let headers = req.headers_mut();
    headers.reserve(parts.headers.len() + 4);
    for (name, value) in &parts.headers {
        if !not_forwarded(name, named) && name != header::HOST && name != X_FORWARDED_FOR {
            headers.append(name.clone(), value.clone());
        }
    }
    let host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("localhost"));
    headers.insert(header::HOST, host);
    // $proxy_add_x_forwarded_for: the client's list with $remote_addr appended.
    let forwarded = match parts
        .headers
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {}", remote.ip_text)).ok(),
        None => Some(remote.ip_header.clone()),
    };
    if let Some(v) = forwarded {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_REAL_IP, remote.ip_header.clone());
    let proto = if remote.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    req
}

async fn proxy(
    shared: &Arc<Shared>,
    group: Arc<Group>,
    next: &NextUpstream,
    read_timeout: Duration,
    req: Request<Incoming>,
    remote: &Remote,
    mut record: Record,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match read_body(body, shared.max_body, shared.clients.limits.body_timeout).await {
        Ok(b) => b,
        Err((status, why)) => return finish(own(status, why), shared, record, None),
    };
    let client = client_of(shared, &group, &parts, remote.addr);
    let mut attempt = group.lock().start(&client);
    attempt.limit_tries(next.tries);
    let idempotent = next::idempotent(parts.method.as_str());
    // Once per request, not per attempt: every retry leaves the same out.
    let named = hygiene::connection_named(&parts.headers);
    loop {
        let picked = group.lock().pick(&mut attempt, shared.now());
        let Some(peer_ref) = picked else {
            // nginx logs "no live upstreams" and the group's name as the
            // attempt's address, after any servers already tried.
            record.push_attempt(&group.name, "502", Duration::ZERO);
            return finish(
                own(StatusCode::BAD_GATEWAY, "no live upstreams\n"),
                shared,
                record,
                None,
            );
        };
        let to = group.target(peer_ref);
        let sent_at = Instant::now();
        let result = to
            .pool
            .send(
                || upstream_request(&parts, &named, &body, remote),
                read_timeout,
            )
            .await;
        let rtt = sent_at.elapsed();
        let (attempted, response) = match result {
            Ok((response, lease)) => {
                let status = response.status().as_u16();
                (Attempted::Answer { status, rtt }, Some((response, lease)))
            }
            Err(e) => (Attempted::Failed(e.failure()), None),
        };
        let logged = match attempted {
            Attempted::Answer { status, .. } => status,
            Attempted::Failed(f) => f.status(),
        };
        record.push_attempt(&to.text, &logged.to_string(), rtt);
        let request = Retrying {
            idempotent,
            elapsed: started.elapsed(),
        };
        let step = next::after_attempt(
            &mut group.lock(),
            &mut attempt,
            next,
            attempted,
            &request,
            shared.now(),
        );
        match (step, response) {
            (Step::Relay, Some((response, lease))) => {
                let held = Held {
                    group,
                    attempt,
                    rtt,
                    sent_at,
                };
                let relayed = relay(response, lease, read_timeout);
                return finish(relayed, shared, record, Some(held));
            }
            (Step::GiveUp(status), _) => {
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                let text = if status == 504 {
                    "gateway timeout\n"
                } else {
                    "bad gateway\n"
                };
                return finish(own(code, text), shared, record, None);
            }
            // The answer is dropped with its connection; the next peer tries.
            (Step::Next | Step::Relay, _) => {}
        }
    }
}

/// The request body, buffered so a retry can resend it: at most `max`
/// bytes (413 past it), with at most `timeout` between two reads
/// (`client_body_timeout`; 408 past it, as nginx answers).
async fn read_body(
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, (StatusCode, &'static str)> {
    // Most requests have no body: skip collecting one.
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut body = Limited::new(body, max);
    let mut collected = Vec::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "request body timed out\n")),
            Ok(None) => return Ok(Bytes::from(collected)),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    collected.extend_from_slice(data);
                }
            }
            Ok(Some(Err(e)))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"))
            }
            Ok(Some(Err(_))) => {
                return Err((StatusCode::BAD_REQUEST, "request body could not be read\n"))
            }
        }
    }
}

/// An upstream's response, with its connection-level headers dropped.
fn relay(
    response: Response<Incoming>,
    lease: Lease,
    read_timeout: Duration,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    hygiene::strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        ProxyBody {
            inner: Inner::Relay {
                body,
                _lease: lease,
                read_timeout,
                quiet: Box::pin(tokio::time::sleep(read_timeout)),
            },
            done: None,
            busy: None,
        },
    )
}
