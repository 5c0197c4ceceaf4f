//! One proxied request: route, pick, send, retry as `proxy_next_upstream`
//! says, relay the answer as it streams, then free the peer and log; an
//! error the location's `error_page` names goes to its named location.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::access_log::Record;
use super::body::{Framing, UpstreamBody};
use super::clients::Conn;
use super::hygiene;
use super::pool;
use super::relay::{Done, Held, ProxyBody};
use super::request::Incoming as Outgoing;
use super::vars::RequestView;
use super::{Group, Route, Shared};
use crate::conf::{Action, ErrorAnswer};
use crate::next::{self, Attempted, Retrying, Step};
use crate::upstream::{Client, Method as Balancing};

const X_UPSTREAM: HeaderName = HeaderName::from_static("x-upstream");

/// The client end of a connection, with what nginx derives from it, made
/// once per connection.
pub(crate) struct Remote {
    addr: SocketAddr,
    /// Where the client connected to (`$server_port`, `$server_addr`).
    local: SocketAddr,
    pub(crate) conn: Arc<Conn>,
    /// The client came over TLS (`$scheme` is https).
    tls: bool,
    /// The worker that accepted the connection: its upstream state and
    /// idle connections serve the connection's requests.
    worker: usize,
}

impl Remote {
    pub(crate) fn new(
        addr: SocketAddr,
        local: SocketAddr,
        conn: Arc<Conn>,
        tls: bool,
        worker: usize,
    ) -> Remote {
        Remote {
            addr,
            local,
            conn,
            tls,
            worker,
        }
    }
}

fn own(status: u16) -> Response<ProxyBody> {
    let text = match status {
        502 => "bad gateway\n".to_string(),
        504 => "gateway timeout\n".to_string(),
        404 => "not found\n".to_string(),
        s => format!("{s}\n"),
    };
    own_text(status, text)
}

fn own_text(status: u16, text: String) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(Bytes::from(text)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // After these nginx does not trust the connection's next bytes, and
    // closes it (ngx_http_special_response_handler).
    if matches!(status, 400 | 408 | 413 | 414 | 500 | 501) {
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
    // Seed 003's `add_header X-Upstream $upstream_addr`.
    if let Some(addrs) = record.upstream_addrs() {
        if let Ok(v) = HeaderValue::from_str(addrs) {
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

/// A request as every attempt and error page sends it: the head, the
/// body (buffered, so a retry can resend it) and the client.
struct Prepared {
    parts: hyper::http::request::Parts,
    body: Bytes,
    /// The client sent a body (a length or chunks): nginx then sends
    /// `Content-Length`, even of 0.
    has_body: bool,
    /// The client's headers, in order, as the upstream request passes them.
    headers: Vec<(String, Bytes)>,
    client_ip: IpAddr,
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
    // With realip, the log's $remote_addr is the client the trusted
    // header names.
    let client_ip = client_ip(&shared, req.headers(), remote.addr);
    let client = SocketAddr::new(client_ip, remote.addr.port());
    let refused = hygiene::refusal(&req);
    let path = hygiene::normalized_path(req.uri().path());
    let route = path.as_deref().and_then(|p| shared.route(p));
    let logging = shared.log.is_some() && route.is_none_or(|r| r.location.logged);
    let record = Record::new(&req, client, &shared.server_name, logging);
    if let Some(why) = refused {
        let text = format!("bad request: {why}\n");
        return finish(own_text(400, text), &shared, record, None);
    }
    let Some(route) = route else {
        return finish(own(404), &shared, record, None);
    };
    if let Action::Return { status, body } = &route.location.action {
        let r = own_text(*status, body.clone());
        return finish(r, &shared, record, None);
    }
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    // A declared length past client_max_body_size is refused unread.
    let max = route.location.max_body.unwrap_or(u64::MAX);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        let why = "request body too large\n".to_string();
        return finish(own_text(413, why), &shared, record, None);
    }
    let (parts, body) = req.into_parts();
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let body = match read_body(body, max, shared.clients.limits.body_timeout).await {
        Ok(b) => b,
        Err((status, why)) => return finish(own_text(status, why.into()), &shared, record, None),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), Bytes::copy_from_slice(v.as_bytes())))
        .collect();
    let request = Prepared {
        parts,
        body,
        has_body,
        headers,
        client_ip,
    };
    with_error_pages(&shared, &remote, route, &request, record).await
}

/// Proxies through `route`, then through the named location an
/// `error_page` sends an error to, as nginx's special response handler
/// does: its own errors always, an upstream's answer of 300 and up with
/// `proxy_intercept_errors`; once, unless `recursive_error_pages`.
async fn with_error_pages(
    shared: &Arc<Shared>,
    remote: &Remote,
    first: &Route,
    request: &Prepared,
    mut record: Record,
) -> Response<ProxyBody> {
    let mut route = first;
    let mut in_error_page = false;
    // The status an error page fixed (`=CODE`, or the error's own).
    let mut forced: Option<u16> = None;
    let mut hops = 0;
    loop {
        let ended = proxy(shared, route, request, remote, &mut record).await;
        let (status, own_error) = match &ended {
            Ended::Own(s) => (*s, true),
            Ended::NoneLive => (502, true),
            Ended::Answer { response, .. } => (response.status().as_u16(), false),
        };
        let location = &route.location;
        let eligible = own_error || (location.intercept_errors && status >= 300);
        if eligible && !in_error_page && !location.error_pages.is_empty() && hops < 10 {
            in_error_page = !location.recursive_error_pages;
            if let Some(page) = location
                .error_pages
                .iter()
                .find(|p| p.codes.contains(&status))
            {
                hops += 1;
                forced = match page.answer {
                    ErrorAnswer::Same => Some(status),
                    ErrorAnswer::Page => None,
                    ErrorAnswer::Status(c) => Some(c),
                };
                if let Ended::Answer { held, .. } = ended {
                    // Intercepted: the answer is dropped, its peer freed.
                    held.free(&mut record);
                }
                match shared.named(&page.target) {
                    Some(next) => {
                        route = next;
                        record.new_upstream_group();
                        continue;
                    }
                    None => return finish(own(500), shared, record, None),
                }
            }
        }
        return match ended {
            Ended::Own(s) => finish(own(s), shared, record, None),
            Ended::NoneLive => {
                let page = own_text(502, "no live upstreams\n".into());
                finish(page, shared, record, None)
            }
            Ended::Answer { mut response, held } => {
                if let Some(code) = forced {
                    *response.status_mut() =
                        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                }
                finish(*response, shared, record, Some(held))
            }
        };
    }
}

/// The client's address: the peer's, or with realip the one a trusted
/// peer's header names.
fn client_ip(shared: &Shared, headers: &hyper::HeaderMap, peer: SocketAddr) -> IpAddr {
    let Some(real_ip) = &shared.real_ip else {
        return peer.ip();
    };
    let values: Vec<&str> = headers
        .get_all(real_ip.header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    real_ip.client(peer.ip(), &values)
}

/// nginx's variables for one request to one group: the request's own
/// (`RequestView`), and those of the proxy and the connection.
fn variable<'a>(
    shared: &'a Shared,
    group: &'a Group,
    request: &'a Prepared,
    remote: &'a Remote,
    name: &str,
) -> Option<Cow<'a, str>> {
    let parts = &request.parts;
    match name {
        "proxy_host" => return Some(Cow::Borrowed(&group.proxy_host)),
        "proxy_port" => return Some(Cow::Owned(group.proxy_port.to_string())),
        "proxy_internal_body_length" => {
            return request
                .has_body
                .then(|| Cow::Owned(request.body.len().to_string()))
        }
        "proxy_internal_chunked" => return None,
        "scheme" => return Some(Cow::Borrowed(if remote.tls { "https" } else { "http" })),
        "server_port" => return Some(Cow::Owned(remote.local.port().to_string())),
        "server_addr" => return Some(Cow::Owned(remote.local.ip().to_canonical().to_string())),
        "proxy_add_x_forwarded_for" => {
            let ip = request.client_ip.to_canonical().to_string();
            let prior: Vec<&str> = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            return Some(Cow::Owned(if prior.is_empty() {
                ip
            } else {
                format!("{}, {ip}", prior.join(", "))
            }));
        }
        _ => {}
    }
    let view = RequestView {
        method: parts.method.as_str(),
        request_uri: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        protocol: "",
        remote: SocketAddr::new(request.client_ip, remote.addr.port()),
        headers: &parts.headers,
        server_name: &shared.server_name,
    };
    view.variable(name).map(|v| Cow::Owned(v.into_owned()))
}

/// How a proxied request ended, before error pages are looked at.
enum Ended {
    /// nginx's own answer after its attempts: 502, 504, ...
    Own(u16),
    /// No server was left to try: 502.
    NoneLive,
    /// An upstream's answer to relay, and the peer it holds.
    Answer {
        response: Box<Response<ProxyBody>>,
        held: Held,
    },
}

async fn proxy(
    shared: &Arc<Shared>,
    route: &Route,
    request: &Prepared,
    remote: &Remote,
    record: &mut Record,
) -> Ended {
    let Some(g) = route.group else {
        return Ended::Own(502);
    };
    let group = shared.groups[g].clone();
    let location = &route.location;
    let next = &location.next_upstream;
    let timeouts = &location.timeouts;
    let worker = remote.worker;
    let started = Instant::now();
    let parts = &request.parts;
    let client = match &group.lock(worker).method {
        Balancing::Hash { key, .. } => {
            let key = key
                .eval(|name| variable(shared, &group, request, remote, name).map(Cow::into_owned));
            Client {
                addr: Some(request.client_ip),
                key,
            }
        }
        _ => Client::from_addr(request.client_ip),
    };
    let mut attempt = group.lock(worker).start(&client);
    attempt.limit_tries(next.tries);
    let idempotent = next::idempotent(parts.method.as_str());
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_ref()))
        .collect();
    let outgoing = Outgoing {
        method: parts.method.as_str(),
        target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &headers,
        body: &request.body,
    };
    let bytes = route.writer.write(&outgoing, |name| {
        variable(shared, &group, request, remote, name)
    });
    let head_request = parts.method == hyper::Method::HEAD;
    loop {
        let picked = group.lock(worker).pick(&mut attempt, super::clock());
        let Some(peer_ref) = picked else {
            // nginx logs "no live upstreams" and the group's name as the
            // attempt's address, after any servers already tried.
            record.push_attempt(&group.name, "502", Duration::ZERO);
            return Ended::NoneLive;
        };
        let target = group.target(peer_ref);
        let sent_at = Instant::now();
        let cached = group.keepalive(worker).and_then(|k| k.take(target.addr));
        let reused = cached.is_some();
        let conn = match cached {
            Some(c) => Ok(c),
            None => group.connector.connect(target.addr, timeouts.connect).await,
        };
        let result = match conn {
            Err(e) => Err(e),
            Ok(conn) => {
                pool::exchange(
                    conn,
                    &bytes,
                    timeouts.send,
                    timeouts.read,
                    location.buffer_size,
                )
                .await
            }
        };
        let rtt = sent_at.elapsed();
        let (attempted, answer) = match result {
            Ok(answer) => (
                Attempted::Answer {
                    status: answer.head.status,
                    rtt,
                },
                Some(answer),
            ),
            Err(e) => (Attempted::Failed(e.failure()), None),
        };
        let logged = match attempted {
            Attempted::Answer { status, .. } => status,
            Attempted::Failed(f) => f.status(),
        };
        record.push_attempt(&target.text, &logged.to_string(), rtt);
        let retrying = Retrying {
            idempotent,
            elapsed: started.elapsed(),
        };
        let step = next::after_attempt(
            &mut group.lock(worker),
            &mut attempt,
            next,
            attempted,
            reused,
            &retrying,
            super::clock(),
        );
        match (step, answer) {
            (Step::Relay, Some(answer)) => {
                let held = Held {
                    group: group.clone(),
                    worker,
                    attempt,
                    rtt,
                    sent_at,
                };
                let response = relay(
                    answer,
                    head_request,
                    group.keepalive(worker).cloned(),
                    timeouts.read,
                );
                return Ended::Answer {
                    response: Box::new(response),
                    held,
                };
            }
            (Step::GiveUp(status), _) => return Ended::Own(status),
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
) -> Result<Bytes, (u16, &'static str)> {
    // Most requests have no body: skip collecting one.
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let mut body = Limited::new(body, max);
    let mut collected = Vec::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err((408, "request body timed out\n")),
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
                return Err((413, "request body too large\n"))
            }
            Ok(Some(Err(_))) => return Err((400, "request body could not be read\n")),
        }
    }
}

/// An upstream's answer as the client gets it: its status and headers
/// (without those nginx does not pass: connection-level ones, Date and
/// Server), its body relayed as it comes.
fn relay(
    answer: pool::Answer,
    head_request: bool,
    keepalive: Option<Arc<pool::Keepalive>>,
    read_timeout: Duration,
) -> Response<ProxyBody> {
    let head = &answer.head;
    let framing = Framing::of(head, head_request, answer.http09);
    let reusable = !head.connection_close && !answer.http09;
    let mut response = Response::new(ProxyBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let out = response.headers_mut();
    for (name, value) in &head.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        if hygiene::hop_by_hop(&name)
            || name == header::DATE
            || name == header::SERVER
            || name == header::CONTENT_LENGTH
        {
            continue;
        }
        out.append(name, value);
    }
    // One length, the one the body is read by (the last written; none
    // when chunked wins), as nginx sends its own Content-Length.
    if let Framing::Length(n) = framing {
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let body = UpstreamBody::new(answer.conn, framing, reusable, keepalive);
    *response.body_mut() = ProxyBody::relay(body, read_timeout);
    response
}
