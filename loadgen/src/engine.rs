//! The request engine: `concurrency` workers running one loop. The pacing is
//! a value the loop asks for its next ticket, closed (go as soon as free) or
//! open (go when the schedule says), so there is one loop for both.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, SERVER};
use hyper::{Request, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::plan::{Pacing, Plan};
use crate::stats::{Answer, Stats};

/// Hands out request tickets until the count or the time runs out, or the
/// run is stopped.
pub struct Schedule {
    next: AtomicU64,
    requests: u64,
    start: Instant,
    deadline: Option<Instant>,
    pacing: Pacing,
    pub stop: AtomicBool,
    /// Answers so far, for progress lines.
    pub completed: AtomicU64,
}

impl Schedule {
    pub fn new(plan: &Plan) -> Schedule {
        let start = Instant::now();
        Schedule {
            next: AtomicU64::new(0),
            requests: plan.requests,
            start,
            deadline: plan.time_limit.map(|t| start + t),
            pacing: plan.pacing,
            stop: AtomicBool::new(false),
            completed: AtomicU64::new(0),
        }
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    /// The next request to send, with the time it is due (open loop); waits
    /// until then. `None` when the run is over.
    async fn ticket(&self) -> Option<Option<Instant>> {
        if self.stop.load(Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed);
        if i >= self.requests {
            return None;
        }
        match self.pacing {
            Pacing::Closed => Some(None),
            Pacing::Rate(r) => {
                let due = self.start + Duration::from_secs_f64(i as f64 / r);
                if self.deadline.is_some_and(|d| due >= d) {
                    return None;
                }
                tokio::time::sleep_until(due.into()).await;
                Some(Some(due))
            }
        }
    }
}

/// What every request repeats, made once per worker so that cloning it
/// touches no reference count shared with other workers.
struct Template {
    uri: Uri,
    version: Version,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    bytes_out: u64,
}

impl Template {
    fn new(plan: &Plan) -> Template {
        let uri = match &plan.proxy {
            Some(_) => format!("http://{}{}", plan.target.host_header(), plan.target.path),
            None => plan.target.path.clone(),
        };
        let mut headers: Vec<(HeaderName, HeaderValue)> = plan
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    HeaderValue::from_bytes(v.as_bytes()).unwrap_or(HeaderValue::from_static("")),
                )
            })
            .collect();
        // ab: HTTP/1.0 and a new connection per request, unless -k.
        let version = if plan.keepalive {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        let body = plan
            .body
            .as_ref()
            .map(|b| Bytes::copy_from_slice(b))
            .unwrap_or_default();
        if !body.is_empty() || plan.body.is_some() {
            headers.push((hyper::header::CONTENT_LENGTH, HeaderValue::from(body.len())));
        }
        let request_line = plan.method.as_str().len() + uri.len() + 11;
        let header_bytes: usize = headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        Template {
            uri: uri.parse().unwrap_or_default(),
            version,
            headers,
            bytes_out: (request_line + header_bytes + 2 + body.len()) as u64,
            body,
        }
    }

    fn request(&self, plan: &Plan) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = plan.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        let h = req.headers_mut();
        for (n, v) in &self.headers {
            h.insert(n.clone(), v.clone());
        }
        req
    }
}

/// A connection and the future that drives it. The worker polls both
/// itself: a separate task per connection would cost a cross-task wake-up
/// (often a cross-core one) on every request.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
        })
    }
}

/// Why a request got no answer.
enum Miss {
    Connect,
    Receive,
    Timeout,
}

/// One worker: take a ticket, send, measure, repeat.
pub async fn worker(plan: Arc<Plan>, schedule: Arc<Schedule>, addr: SocketAddr) -> Stats {
    let template = Template::new(&plan);
    let mut stats = Stats::default();
    let mut conn: Option<Conn> = None;
    while let Some(due) = schedule.ticket().await {
        let start = Instant::now();
        let outcome =
            tokio::time::timeout(plan.timeout, once(&plan, &template, &mut conn, addr, start))
                .await;
        let answer = match outcome {
            Ok(Ok(mut a)) => {
                a.lag = due.map(|d| start.saturating_duration_since(d));
                a.since_due = a.lag.map(|lag| lag + a.total);
                Ok(a)
            }
            Ok(Err(miss)) => Err(miss),
            Err(_) => Err(Miss::Timeout),
        };
        match answer {
            Ok(a) => {
                let keep = a.keepalive;
                stats.bytes_out += template.bytes_out;
                stats.record(a, plan.variable_length);
                if !keep {
                    conn = None;
                }
            }
            Err(miss) => {
                conn = None;
                let kind = match miss {
                    Miss::Connect => {
                        stats.failed_connect += 1;
                        "connect"
                    }
                    Miss::Receive => {
                        stats.failed_receive += 1;
                        "receive"
                    }
                    Miss::Timeout => {
                        stats.failed_receive += 1;
                        "timeout"
                    }
                };
                stats.error(kind);
                // ab stops at a receive error unless told -r.
                if !matches!(miss, Miss::Connect) && !plan.keep_going {
                    schedule.stop.store(true, Relaxed);
                }
            }
        }
        schedule.completed.fetch_add(1, Relaxed);
    }
    stats
}

async fn once(
    plan: &Plan,
    template: &Template,
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    start: Instant,
) -> Result<Answer, Miss> {
    // A kept-alive connection the server closed is replaced.
    if let Some(c) = conn.as_mut() {
        let Conn { sender, driver } = c;
        let ready = tokio::select! {
            biased;
            r = sender.ready() => r.is_ok(),
            _ = driver.as_mut() => false,
        };
        if !ready {
            *conn = None;
        }
    }
    let mut connect_time = Duration::ZERO;
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await.map_err(|_| Miss::Connect)?);
        connect_time = start.elapsed();
    }
    let sent = Instant::now();
    let request = template.request(plan);
    let (result, ended) = {
        let Conn { sender, driver } = conn.as_mut().ok_or(Miss::Connect)?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| Miss::Receive)?;
            let waiting = sent.elapsed();
            let (head, mut body) = response.into_parts();
            let mut body_bytes = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| Miss::Receive)?;
                if let Some(data) = frame.data_ref() {
                    body_bytes += data.len() as u64;
                }
            }
            Ok::<_, Miss>((head, body_bytes, waiting))
        };
        tokio::pin!(exchange);
        tokio::select! {
            biased;
            done = &mut exchange => (done, false),
            // The connection ended (an HTTP/1.0 answer closes it): what it
            // delivered before it ended can still complete the exchange.
            _ = driver.as_mut() => (exchange.await, true),
        }
    };
    if ended {
        *conn = None;
    }
    let (head, body_bytes, waiting) = result?;
    let total = start.elapsed();
    let node = plan
        .node_headers
        .iter()
        .find_map(|n| head.headers.get(n))
        .cloned();
    let closes = head
        .headers
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let head_bytes = 17
        + head
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>() as u64
        + 2;
    Ok(Answer {
        status: head.status.as_u16(),
        node,
        head_bytes,
        body_bytes,
        connect: connect_time,
        waiting,
        total,
        since_due: None,
        lag: None,
        keepalive: plan.keepalive && head.version == Version::HTTP_11 && !closes,
        server: head
            .headers
            .get(SERVER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

/// Runs the plan to the end (or until `schedule.stop`), merging every
/// worker's figures.
pub async fn run(plan: Arc<Plan>, schedule: Arc<Schedule>, addr: SocketAddr) -> Stats {
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| tokio::spawn(worker(plan.clone(), schedule.clone(), addr)))
        .collect();
    let mut stats = Stats::default();
    for w in workers {
        if let Ok(s) = w.await {
            stats.merge(s);
        }
    }
    stats
}

/// Where to connect: the target, or the `-X` proxy.
pub async fn resolve(plan: &Plan) -> std::io::Result<SocketAddr> {
    let (host, port) = match &plan.proxy {
        Some((h, p)) => (h.clone(), *p),
        None => (plan.target.host.clone(), plan.target.port),
    };
    let found = tokio::net::lookup_host((host.as_str(), port)).await?.next();
    found.ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))
}
