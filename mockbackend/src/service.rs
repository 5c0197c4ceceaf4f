//! From a request to a response: routing, faults, capacity, latency, then the
//! endpoint itself. Every response carries `X-Backend` and records itself in
//! the port's metrics when its body is done.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::sync::OwnedSemaphorePermit;

use crate::body::Reply;
use crate::faults::{parse_control, FaultState};
use crate::node::Node;
use crate::openai::{self, Kind};
use crate::pace::wait;
use crate::replies;
use crate::routes::{route, Route, Routed};
use crate::server::Shared;

/// One accepted connection.
pub(crate) struct Conn {
    pub peer: SocketAddr,
    /// Close with RST rather than FIN (the reset-connections fault).
    pub rst: Arc<AtomicBool>,
    /// This connection carried the request that took its own port down: let it
    /// finish that answer instead of dropping it.
    pub exempt: AtomicBool,
    /// Requests in progress on this connection, and when the last one ended
    /// (milliseconds since `Shared::epoch`): the header timeout's clock.
    pub busy: AtomicU32,
    pub idle_since_ms: AtomicU64,
}

/// A request in progress on its connection, from its head to its body's end.
pub(crate) struct Active(Arc<Ctx>);

impl Active {
    fn new(ctx: Arc<Ctx>) -> Active {
        ctx.conn.busy.fetch_add(1, Relaxed);
        Active(ctx)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let conn = &self.0.conn;
        conn.idle_since_ms
            .store(self.0.shared.millis_since_epoch(Instant::now()), Relaxed);
        conn.busy.fetch_sub(1, Relaxed);
    }
}

/// Everything a request on one connection needs, behind one `Arc`.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub node: Arc<Node>,
    pub conn: Conn,
    /// This connection's own copies of what every response repeats, so
    /// cloning them touches no reference count that other cores share.
    pub backend_header: HeaderValue,
    pub text_reply: Bytes,
}

/// A capacity slot, held until the response body is done.
pub(crate) struct Ticket {
    _permit: Option<OwnedSemaphorePermit>,
    ctx: Arc<Ctx>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.ctx.node.metrics.leave();
    }
}

/// What `--log` prints about a request.
pub(crate) struct LogLine {
    peer: SocketAddr,
    method: Method,
    target: String,
    version: Version,
}

/// Records a request (metrics, `--log`) when its response body is dropped,
/// which is when its last byte has gone out or the client went away.
pub struct Done {
    active: Active,
    route: Route,
    status: u16,
    start: Instant,
    _ticket: Option<Ticket>,
    log: Option<Box<LogLine>>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let elapsed = self.start.elapsed();
        let node = &self.active.0.node;
        node.metrics.record(self.route, self.status, elapsed);
        if let Some(l) = &self.log {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            // A closed stdout (`mockbackend --log | head`) must not take the port down.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{now} :{} {} \"{} {} {:?}\" {} {:.3}ms",
                node.port(),
                l.peer,
                l.method,
                l.target,
                l.version,
                self.status,
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
}

/// The request was swallowed by the hang fault: close without answering.
#[derive(Debug, thiserror::Error)]
#[error("request dropped by the hang fault")]
pub struct Hangup;

const X_BACKEND: HeaderName = HeaderName::from_static("x-backend");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const SERVER: HeaderValue =
    HeaderValue::from_static(concat!("lbkit-mockbackend/", env!("CARGO_PKG_VERSION")));

fn respond(status: StatusCode, content_type: HeaderValue, body: Reply) -> Response<Reply> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, content_type);
    r
}

fn json_error(status: StatusCode, message: &str, server: u16) -> Response<Reply> {
    respond(
        status,
        JSON,
        Reply::full(replies::error_json(message, server)),
    )
}

fn openai_error(status: StatusCode, message: &str, kind: &str) -> Response<Reply> {
    respond(status, JSON, Reply::full(openai::error(message, kind)))
}

pub(crate) async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
) -> Result<Response<Reply>, Hangup> {
    let start = Instant::now();
    let active = Active::new(ctx.clone());
    let node = &ctx.node;
    let Routed { route, not_allowed } = route(req.method(), req.uri().path());
    let log = node.logs().then(|| LogLine {
        peer: ctx.conn.peer,
        method: req.method().clone(),
        target: req.uri().to_string(),
        version: req.version(),
    });

    let faults = if route.is_control() {
        None
    } else {
        node.faults()
    };
    // A hung or slow process is hung or slow for every request but control.
    if let Some(f) = &faults {
        if f.hang {
            wait_while_hung(&ctx).await;
            return Err(Hangup);
        }
        if let Some(delay) = f.slow {
            wait(delay).await;
        }
    }
    let (mut response, ticket) = if let Some(allow) = not_allowed {
        let mut r = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            node.port(),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        (r, None)
    } else if route.is_control() {
        (control(&ctx, route, &req).await, None)
    } else if route.is_work() {
        work(&ctx, route, req, faults.as_ref()).await
    } else {
        (info(node, route, &req, faults.as_ref()), None)
    };

    let headers = response.headers_mut();
    headers.insert(X_BACKEND, ctx.backend_header.clone());
    headers.insert(header::SERVER, SERVER);
    if faults.as_ref().is_some_and(|f| f.drain) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let done = Done {
        active,
        route,
        status,
        start,
        _ticket: ticket,
        log: log.map(Box::new),
    };
    Ok(response.map(|body| body.with_done(done)))
}

/// Holds a request while the hang fault lasts; the caller then drops the
/// connection without an answer, as a hung process never sends one.
async fn wait_while_hung(ctx: &Ctx) {
    let mut faults = ctx.node.subscribe_faults();
    while faults.borrow_and_update().hang {
        tokio::select! {
            changed = faults.changed() => if changed.is_err() { return },
            () = ctx.shared.shutdown.cancelled() => return,
        }
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = req.into_body();
    // Most bodies arrive in one frame: keep it as it is, copy only if more follow.
    let (mut first, mut joined, mut total) = (Bytes::new(), None::<BytesMut>, 0);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total > max {
            return Err(BodyError::TooLarge);
        }
        match &mut joined {
            None if first.is_empty() => first = data,
            None => {
                let mut all = BytesMut::with_capacity(total);
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
            Some(all) => all.extend_from_slice(&data),
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// The endpoints that stand for real work: capacity, latency and injected
/// errors apply here.
async fn work(
    ctx: &Arc<Ctx>,
    route: Route,
    req: Request<Incoming>,
    faults: Option<&FaultState>,
) -> (Response<Reply>, Option<Ticket>) {
    let node = &ctx.node;
    let port = node.port();
    let openai_kind = match route {
        Route::ChatCompletions => Some(Kind::Chat),
        Route::TextCompletions => Some(Kind::Text),
        _ => None,
    };
    let body = if route == Route::Text {
        Bytes::new()
    } else {
        match read_body(req, ctx.shared.max_body).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                let msg = format!(
                    "Request body is larger than the limit of {} bytes",
                    ctx.shared.max_body
                );
                return (json_error(StatusCode::PAYLOAD_TOO_LARGE, &msg, port), None);
            }
            Err(BodyError::Broken) => {
                return (
                    json_error(
                        StatusCode::BAD_REQUEST,
                        "Request body could not be read",
                        port,
                    ),
                    None,
                )
            }
        }
    };
    let Ok(permit) = node.admit().await else {
        let busy = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is busy. Please try again later.",
            port,
        );
        return (busy, None);
    };
    let ticket = Ticket {
        _permit: permit,
        ctx: ctx.clone(),
    };
    let (rate, error_status) = match faults.and_then(|f| f.errors) {
        Some(e) => (e.rate, e.status),
        None => (node.profile.error_rate, node.profile.error_status),
    };
    let (delay, fail) = node.draw(rate);
    if !delay.is_zero() {
        wait(delay).await;
    }
    if fail {
        node.metrics.injected_errors.fetch_add(1, Relaxed);
        let status =
            StatusCode::from_u16(error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let r = match openai_kind {
            Some(_) => openai_error(status, "injected error", "server_error"),
            None => json_error(status, "injected error", port),
        };
        return (r, Some(ticket));
    }
    let response = match (route, openai_kind) {
        (_, Some(kind)) => completion(node, kind, &body).await,
        (Route::Chat, _) => match replies::chat(&body, port) {
            Ok(json) => respond(StatusCode::OK, JSON, Reply::full(json)),
            Err(msg) => json_error(StatusCode::BAD_REQUEST, &msg, port),
        },
        (Route::Completions, _) => match replies::completions(&body, port) {
            Ok(json) => respond(StatusCode::OK, JSON, Reply::full(json)),
            Err(msg) => json_error(StatusCode::BAD_REQUEST, &msg, port),
        },
        _ => respond(StatusCode::OK, TEXT, Reply::full(ctx.text_reply.clone())),
    };
    let response = match faults.and_then(|f| f.reset_after) {
        Some(after) => response.map(|b| b.cut_after(after, ctx.conn.rst.clone())),
        None => response,
    };
    (response, Some(ticket))
}

/// `/v1/chat/completions` and `/v1/completions`, streamed or whole, paced by
/// the profile's time to first token and tokens per second.
async fn completion(node: &Node, kind: Kind, body: &[u8]) -> Response<Reply> {
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Text => "cmpl",
    };
    let cx = openai::Context {
        id: format!("{prefix}-{}-{}", node.port(), node.next_id()),
        created: crate::metrics::unix_seconds() as u64,
        default_model: &node.profile.model,
        output_tokens: node.draw_tokens(),
        server: node.port(),
        prefixes: node.caches_prefixes(),
    };
    let openai::Parsed {
        mut answer,
        prefixes,
    } = match openai::parse(kind, body, cx) {
        Ok(p) => p,
        Err(msg) => return openai_error(StatusCode::BAD_REQUEST, &msg, "invalid_request_error"),
    };
    let (ttft, cached) = node.first_token_after(answer.prompt_tokens, &prefixes);
    answer.cached_tokens = cached;
    let gap = node.profile.token_gap();
    let first_at = tokio::time::Instant::now() + ttft;
    if answer.stream {
        let mut r = respond(
            StatusCode::OK,
            HeaderValue::from_static("text/event-stream"),
            Reply::tokens(answer, first_at, gap, node.profile.stall_after),
        );
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Asks nginx not to buffer the stream (proxy_buffering off for this response).
        h.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        r
    } else {
        // A whole answer takes as long as streaming it would have.
        crate::pace::wait_until((first_at + gap * answer.tokens.saturating_sub(1)).into_std())
            .await;
        respond(StatusCode::OK, JSON, Reply::full(answer.full_body()))
    }
}

/// Endpoints that report on the port rather than do work.
fn info(
    node: &Node,
    route: Route,
    req: &Request<Incoming>,
    faults: Option<&FaultState>,
) -> Response<Reply> {
    let text = |status, s: String| respond(status, TEXT, Reply::full(s));
    match route {
        Route::Health => text(StatusCode::OK, "healthy\n".to_string()),
        Route::Ready => {
            let reason = faults
                .and_then(FaultState::unready_reason)
                .or_else(|| node.saturated().then_some("at capacity"));
            match reason {
                Some(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
                None => text(StatusCode::OK, "ready\n".to_string()),
            }
        }
        Route::Metrics => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let load = node.load();
            if accept.contains("application/openmetrics-text") {
                let ct = HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                );
                respond(
                    StatusCode::OK,
                    ct,
                    Reply::full(node.metrics.render_text(node.port(), load, true)),
                )
            } else if accept.contains("text/plain") {
                let ct = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
                respond(
                    StatusCode::OK,
                    ct,
                    Reply::full(node.metrics.render_text(node.port(), load, false)),
                )
            } else {
                let json = node.metrics.render_json(
                    node.port(),
                    &node.label,
                    load,
                    node.profile.max_concurrency,
                );
                respond(StatusCode::OK, JSON, Reply::full(json))
            }
        }
        Route::Load => {
            let load = node.load();
            let json = serde_json::json!({"cpu": load.cpu, "memory": load.memory, "timestamp": crate::metrics::unix_seconds()});
            respond(StatusCode::OK, JSON, Reply::full(json.to_string()))
        }
        Route::Models => {
            let model = &node.profile.model;
            match req.uri().path().strip_prefix("/v1/models/") {
                None => respond(StatusCode::OK, JSON, Reply::full(openai::models(model))),
                // Model ids may hold a slash (`org/name`); the rest of the path is the id.
                Some(id) => match openai::model(model, id) {
                    Some(body) => respond(StatusCode::OK, JSON, Reply::full(body)),
                    None => respond(
                        StatusCode::NOT_FOUND,
                        JSON,
                        Reply::full(openai::model_not_found(id)),
                    ),
                },
            }
        }
        _ => json_error(StatusCode::NOT_FOUND, "API not found", node.port()),
    }
}

/// Headers a proxy adds: a control that carries one came through a balancer
/// (which is always a loopback peer when it runs here) from anyone.
const PROXIED: [&str; 4] = ["x-forwarded-for", "forwarded", "via", "x-real-ip"];

/// Why a `/_mock/` control is refused, if it is: it came through a proxy,
/// from a web page of another site (browsers send `Origin` on a cross-site
/// POST), or without the token printed at start.
fn refuse_control(headers: &hyper::HeaderMap, token: &str) -> Option<String> {
    if let Some(name) = PROXIED.iter().find(|h| headers.contains_key(**h)) {
        return Some(format!(
            "/_mock/ controls refuse requests that came through a proxy ({name})"
        ));
    }
    if let Some(origin) = headers.get(hyper::header::ORIGIN) {
        let host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.rsplit_once(':').map_or(rest, |(h, _)| h));
        if !matches!(host, Some("localhost" | "127.0.0.1" | "[::1]")) {
            return Some("/_mock/ controls refuse requests from web pages of other sites".into());
        }
    }
    if headers.get("x-mock-token").map(|v| v.as_bytes()) != Some(token.as_bytes()) {
        return Some(
            "/_mock/ controls need header X-Mock-Token with the token mockbackend printed at start (or --admin-token)"
                .into(),
        );
    }
    None
}

/// `/_mock/...`: read the fault state, or change it. Loopback clients only;
/// a change also needs the admin token and no sign of a proxy.
async fn control(ctx: &Ctx, route: Route, req: &Request<Incoming>) -> Response<Reply> {
    let port = ctx.node.port();
    if !ctx.conn.peer.ip().to_canonical().is_loopback() {
        return json_error(
            StatusCode::FORBIDDEN,
            "/_mock/ answers loopback clients only",
            port,
        );
    }
    let state = |nodes: Vec<&Arc<Node>>| {
        let ports: Vec<_> = nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "port": n.port(),
                    "name": n.label,
                    "faults": n.fault_state(),
                    "in_flight": n.metrics.in_flight(),
                    "queue_length": n.metrics.queued.load(Relaxed),
                    "requests_total": n.metrics.total(),
                })
            })
            .collect();
        respond(
            StatusCode::OK,
            JSON,
            Reply::full(serde_json::json!({ "ports": ports }).to_string()),
        )
    };
    if route == Route::MockState && req.uri().path() == "/_mock/headers" {
        // What this port received: lets a test see what a proxy in front sent.
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = serde_json::json!({ "headers": headers, "peer": ctx.conn.peer.to_string() });
        return respond(StatusCode::OK, JSON, Reply::full(body.to_string()));
    }
    if route == Route::MockState {
        return state(ctx.shared.nodes.iter().collect());
    }
    if let Some(why) = refuse_control(req.headers(), &ctx.shared.admin_token) {
        return json_error(StatusCode::FORBIDDEN, &why, port);
    }
    let action = req.uri().path().trim_start_matches("/_mock");
    let query = req.uri().query().unwrap_or("");
    let (target, control) = match parse_control(action, query) {
        Ok(c) => c,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, &why.0, port),
    };
    match ctx
        .shared
        .control(&ctx.node, target, control, Some(&ctx.conn))
        .await
    {
        Ok(nodes) => state(nodes),
        Err(why) => json_error(StatusCode::CONFLICT, &why, port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> hyper::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    hyper::header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_control_needs_the_token_and_no_proxy_or_foreign_page() {
        let ok = |pairs: &[(&'static str, &'static str)]| refuse_control(&headers(pairs), "t0k");
        assert_eq!(ok(&[("x-mock-token", "t0k")]), None);
        assert_eq!(
            ok(&[("x-mock-token", "t0k"), ("origin", "http://localhost:8001")]),
            None
        );
        assert!(ok(&[]).unwrap().contains("X-Mock-Token"));
        assert!(ok(&[("x-mock-token", "t0")])
            .unwrap()
            .contains("X-Mock-Token"));
        for proxy in PROXIED {
            let h: hyper::HeaderMap = [
                (
                    hyper::header::HeaderName::from_static(proxy),
                    HeaderValue::from_static("1.2.3.4"),
                ),
                (
                    hyper::header::HeaderName::from_static("x-mock-token"),
                    HeaderValue::from_static("t0k"),
                ),
            ]
            .into_iter()
            .collect();
            assert!(refuse_control(&h, "t0k").unwrap().contains(proxy));
        }
        for origin in [
            "http://evil.example",
            "null",
            "http://localhost.evil.example",
        ] {
            let h: hyper::HeaderMap = [
                (hyper::header::ORIGIN, HeaderValue::from_static(origin)),
                (
                    hyper::header::HeaderName::from_static("x-mock-token"),
                    HeaderValue::from_static("t0k"),
                ),
            ]
            .into_iter()
            .collect();
            assert!(
                refuse_control(&h, "t0k").unwrap().contains("other sites"),
                "{origin}"
            );
        }
    }
}
