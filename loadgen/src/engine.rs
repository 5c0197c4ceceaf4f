//! The request engine: `concurrency` workers running one loop. The pacing is
//! a value the loop asks for its next ticket, closed (go as soon as free) or
//! open (go when the schedule says), so there is one loop for both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::files::{Row, Rows};
use crate::http1::{self, Framing};
use hyper::header::{HeaderName, HeaderValue};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};

use crate::plan::{
    due_in_phases, Arrival, Clients, ClientsVia, Pacing, Phase, PhaseLoad, Plan, Variant,
};
use crate::sse::Stream;
use crate::stats::{Answer, Stats};
use crate::streams::Finished;
use crate::template::Text;

/// Hands out request tickets until the count or the time runs out, or the
/// run is stopped.
pub struct Schedule {
    next: AtomicU64,
    requests: u64,
    start: Instant,
    deadline: Option<Instant>,
    pacing: Pacing,
    phases: Vec<Phase>,
    due: Vec<Duration>,
    /// Random arrivals: the next one's time, in seconds from the start.
    arrivals: Option<std::sync::Mutex<Arrivals>>,
    pub stop: AtomicBool,
    /// Every worker is done (progress displays end on it).
    pub finished: AtomicBool,
    /// Requests finished so far, and how many of them failed: for progress.
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    /// The first answer's body length: ab holds every answer of the run to
    /// it, whichever worker got it.
    pub document_length: std::sync::OnceLock<u64>,
}

impl Schedule {
    pub fn new(plan: &Plan) -> Schedule {
        let start = Instant::now();
        let phased = (!plan.phases.is_empty())
            .then(|| start + plan.phases.iter().map(|p| p.duration).sum::<Duration>());
        let limit = plan.time_limit.map(|t| start + t);
        Schedule {
            next: AtomicU64::new(0),
            requests: plan.requests,
            start,
            deadline: match (limit, phased) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            pacing: plan.pacing,
            phases: plan.phases.clone(),
            due: plan.due.clone(),
            arrivals: match (plan.arrival, plan.pacing) {
                (Arrival::Gamma { shape, seed }, Pacing::Rate(rate)) => {
                    Some(std::sync::Mutex::new(Arrivals {
                        next: 0.0,
                        rng: SmallRng::seed_from_u64(seed),
                        // Mean gap 1/rate whatever the shape.
                        gaps: Gamma::new(shape, 1.0 / (rate * shape)).ok(),
                    }))
                }
                _ => None,
            },
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            document_length: std::sync::OnceLock::new(),
        }
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    /// How many requests the run will send at most, and for how long.
    pub fn bounds(&self) -> (u64, Option<Instant>) {
        (self.requests, self.deadline)
    }

    /// How many workers may be busy now, under concurrency phases.
    fn concurrency_now(&self) -> Option<usize> {
        let mut end = Duration::ZERO;
        let elapsed = self.start.elapsed();
        for phase in &self.phases {
            end += phase.duration;
            match phase.load {
                PhaseLoad::Concurrency(c) if elapsed < end => return Some(c),
                PhaseLoad::Concurrency(_) => {}
                PhaseLoad::Rate { .. } => return None,
            }
        }
        None
    }

    /// Worker `worker`'s next request, with the time it is due (open
    /// loop); waits until then. `None` when the run is over.
    async fn ticket(&self, worker: usize) -> Option<(u64, Option<Instant>)> {
        loop {
            if self.stop.load(Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            // A phase with fewer clients than workers idles the rest.
            match self.concurrency_now() {
                Some(c) if worker >= c => tokio::time::sleep(Duration::from_millis(10)).await,
                _ => break,
            }
        }
        let i = self.next.fetch_add(1, Relaxed);
        if i >= self.requests {
            return None;
        }
        let due = match self.pacing {
            Pacing::Closed => return Some((i, None)),
            Pacing::Rate(_) if !self.due.is_empty() => self.start + *self.due.get(i as usize)?,
            Pacing::Rate(r) if self.arrivals.is_some() => {
                let mut guard = self
                    .arrivals
                    .as_ref()?
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let a = &mut *guard;
                let at = a.next;
                a.next += match &a.gaps {
                    Some(g) => g.sample(&mut a.rng),
                    None => 1.0 / r,
                };
                self.start + Duration::from_secs_f64(at)
            }
            Pacing::Rate(_) if !self.phases.is_empty() => {
                self.start + due_in_phases(&self.phases, i)?
            }
            Pacing::Rate(r) => self.start + Duration::from_secs_f64(i as f64 / r),
        };
        if self.deadline.is_some_and(|d| due >= d) {
            return None;
        }
        tokio::time::sleep_until(due.into()).await;
        Some((i, Some(due)))
    }
}

/// Where a random arrival process is: its next arrival and its draws.
struct Arrivals {
    next: f64,
    rng: SmallRng,
    gaps: Option<Gamma<f64>>,
}

/// The requests of a run, rendered once to bytes where they never change:
/// one request for ab's flags, a weighted mix for a scenario. A request's
/// client identity goes between its head and tail.
struct Template {
    parts: Vec<Part>,
    /// Running totals of the parts' weights: request `i` takes the part
    /// its place in the cycle falls in.
    cumulative: Vec<u64>,
    clients: Option<Clients>,
}

struct Part {
    /// Fixed: the request line and headers. Templated: the headers only
    /// (the request line and Content-Length depend on the request).
    head: Vec<u8>,
    /// Fixed: the blank line and the body.
    tail: Vec<u8>,
    templated: Option<Templated>,
    head_request: bool,
}

struct Templated {
    method: String,
    path: Text,
    version: &'static str,
    body: Option<Text>,
}

/// `user-agent` -> `User-Agent`, as ab and browsers write header names.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

fn header_bytes<'h>(headers: impl Iterator<Item = &'h (HeaderName, HeaderValue)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (name, value) in headers {
        bytes.extend_from_slice(title_case(name.as_str()).as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

impl Template {
    fn new(plan: &Plan) -> Template {
        let one = [Variant {
            method: plan.method.clone(),
            path: Text::literal(&plan.target.path),
            headers: Vec::new(),
            body: plan
                .body
                .as_ref()
                .map(|b| Text::literal(&String::from_utf8_lossy(b))),
            weight: 1,
        }];
        let variants = if plan.mix.is_empty() {
            &one[..]
        } else {
            &plan.mix[..]
        };
        // ab: HTTP/1.0 and a new connection per request, unless -k.
        let version = if plan.keepalive {
            "HTTP/1.1"
        } else {
            "HTTP/1.0"
        };
        let parts = variants
            .iter()
            .map(|v| {
                // A variant's own headers replace the plan's of that name.
                let shared = plan
                    .headers
                    .iter()
                    .filter(|(n, _)| !v.headers.iter().any(|(m, _)| m == n));
                let headers = header_bytes(shared.chain(&v.headers));
                let head_request = v.method == hyper::Method::HEAD;
                let fixed_body = match &v.body {
                    // The bytes as given (a -p file need not be UTF-8).
                    Some(_) if plan.mix.is_empty() => plan.body.as_ref().map(|b| b.to_vec()),
                    Some(b) if b.is_fixed() => {
                        let mut out = Vec::new();
                        b.render(0, &mut out);
                        Some(out)
                    }
                    Some(_) => None,
                    None => Some(Vec::new()),
                };
                match fixed_body {
                    Some(body) if v.path.is_fixed() => {
                        let mut path = Vec::new();
                        v.path.render(0, &mut path);
                        let target = match &plan.proxy {
                            Some(_) => format!(
                                "http://{}{}",
                                plan.target.host_header(),
                                String::from_utf8_lossy(&path)
                            ),
                            None => String::from_utf8_lossy(&path).into_owned(),
                        };
                        let mut head = format!("{} {target} {version}\r\n", v.method).into_bytes();
                        head.extend_from_slice(&headers);
                        if v.body.is_some() {
                            head.extend_from_slice(
                                format!("Content-Length: {}\r\n", body.len()).as_bytes(),
                            );
                        }
                        let mut tail = b"\r\n".to_vec();
                        tail.extend_from_slice(&body);
                        Part {
                            head,
                            tail,
                            templated: None,
                            head_request,
                        }
                    }
                    _ => Part {
                        head: headers,
                        tail: Vec::new(),
                        templated: Some(Templated {
                            method: v.method.to_string(),
                            path: v.path.clone(),
                            version,
                            body: v.body.clone(),
                        }),
                        head_request,
                    },
                }
            })
            .collect();
        let cumulative = variants
            .iter()
            .scan(0, |sum, v| {
                *sum += u64::from(v.weight.max(1));
                Some(*sum)
            })
            .collect();
        Template {
            parts,
            cumulative,
            clients: plan.clients,
        }
    }

    fn part(&self, i: u64) -> &Part {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let at = i % total;
        let n = self.cumulative.partition_point(|c| *c <= at);
        &self.parts[n.min(self.parts.len() - 1)]
    }

    /// The bytes of request `i`, and whether it is a HEAD request.
    fn render(&self, i: u64, out: &mut Vec<u8>) -> bool {
        out.clear();
        let part = self.part(i);
        let forwarded = self.clients.filter(|c| c.via == ClientsVia::ForwardedFor);
        let forwarded_for = |out: &mut Vec<u8>| {
            if let Some(c) = forwarded {
                out.extend_from_slice(b"X-Forwarded-For: ");
                out.extend_from_slice(c.address(i).to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        };
        match &part.templated {
            None => {
                out.extend_from_slice(&part.head);
                forwarded_for(out);
                out.extend_from_slice(&part.tail);
            }
            Some(t) => {
                out.extend_from_slice(t.method.as_bytes());
                out.push(b' ');
                t.path.render(i, out);
                out.push(b' ');
                out.extend_from_slice(t.version.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&part.head);
                forwarded_for(out);
                let mut body = Vec::new();
                if let Some(b) = &t.body {
                    b.render(i, &mut body);
                    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&body);
            }
        }
        part.head_request
    }

    /// The source address for a connection opened by request `i`.
    fn source(&self, i: u64) -> Option<std::net::Ipv4Addr> {
        self.clients
            .filter(|c| c.via == ClientsVia::Source)
            .map(|c| c.address(i))
    }
}

/// One connection and the bytes read from it that the last answer left.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr, source: Option<std::net::Ipv4Addr>) -> std::io::Result<Conn> {
        let stream = match source {
            None => TcpStream::connect(addr).await?,
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(ip.into(), 0))?;
                socket.connect(addr).await?
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8 << 10),
        })
    }

    /// Reads more bytes; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 << 10);
        }
        self.stream.read_buf(&mut self.buf).await
    }
}

/// Why a request got no answer.
enum Miss {
    Connect(std::io::ErrorKind),
    Receive,
    Timeout,
    /// An event stream that ended or broke before `data: [DONE]`.
    StreamCut,
    /// An event stream that went quiet until the request timed out.
    StreamStalled,
    /// An event stream that carried an error event (`data: {"error": ...}`).
    StreamError,
}

/// What is sent for one request.
struct Send<'a> {
    bytes: &'a [u8],
    head_request: bool,
    source: Option<std::net::Ipv4Addr>,
}

/// An event-stream answer as it arrives: read token by token, its gaps
/// kept for the worker to record once the stream is judged.
#[derive(Default)]
struct Streaming {
    active: bool,
    sse: Stream,
    gaps: Vec<Duration>,
}

impl Streaming {
    fn reset(&mut self) {
        self.active = false;
        self.sse = Stream::default();
        self.gaps.clear();
    }
}

/// One worker: take a ticket, send, measure, repeat.
async fn worker(
    worker: usize,
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    addr: SocketAddr,
    rows: Arc<Rows>,
    template: Arc<Template>,
    shard: Arc<Mutex<Stats>>,
) {
    let node_headers: Vec<&str> = plan.node_headers.iter().map(|h| h.as_str()).collect();
    let mut conn: Option<Conn> = None;
    let mut request = Vec::with_capacity(1024);
    let mut streaming = Streaming::default();
    if plan.verbosity >= 4 {
        template.render(0, &mut request);
        eprintln!(
            "INFO: {} header == \n---\n{}\n---",
            plan.method,
            String::from_utf8_lossy(&request).trim_end()
        );
    }
    while let Some((i, due)) = schedule.ticket(worker).await {
        let head_request = template.render(i, &mut request);
        let wall = rows.wanted().then(std::time::SystemTime::now);
        let start = Instant::now();
        let send = Send {
            bytes: &request,
            head_request,
            source: template.source(i),
        };
        streaming.reset();
        let outcome = tokio::time::timeout(
            plan.timeout,
            once(&send, &node_headers, &mut conn, addr, start, &mut streaming),
        )
        .await;
        // Taken only to record, never across an await.
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let stats = &mut *guard;
        let answer = match outcome {
            Ok(Ok(_)) if streaming.active && streaming.sse.error.is_some() => {
                Err(Miss::StreamError)
            }
            Ok(Ok(_)) if streaming.active && !streaming.sse.done => Err(Miss::StreamCut),
            Ok(Ok(mut a)) => {
                a.lag = due.map(|d| start.saturating_duration_since(d));
                a.since_due = a.lag.map(|lag| lag + a.total);
                Ok(a)
            }
            Ok(Err(Miss::Receive)) if streaming.active => Err(Miss::StreamCut),
            Ok(Err(miss)) => Err(miss),
            Err(_) if streaming.active => Err(Miss::StreamStalled),
            Err(_) => Err(Miss::Timeout),
        };
        match answer {
            Ok(a) => {
                let keep = a.keepalive && plan.keepalive;
                stats.bytes_out += request.len() as u64;
                // The node and server names are still in the connection's buffer.
                let buf = conn.as_ref().map_or(&[][..], |c| &c.buf[..]);
                let text = |r: Option<(usize, usize)>| {
                    r.and_then(|(a, b)| std::str::from_utf8(buf.get(a..b)?).ok())
                };
                // --node-field: the node names itself in its JSON answer.
                let field = plan
                    .node_field
                    .as_deref()
                    .and_then(|f| body_field(buf.get(a.head_bytes as usize..)?, f));
                let (node, server) = (field.as_deref().or(text(a.node)), text(a.server));
                let reference = (!plan.variable_length)
                    .then(|| *schedule.document_length.get_or_init(|| a.body_bytes));
                stats.record(&a, node, server, reference);
                if streaming.active {
                    for gap in &streaming.gaps {
                        stats.streams.gap(*gap);
                    }
                    let finished = Finished {
                        sse: &streaming.sse,
                        worst_gap: streaming.gaps.iter().max().copied(),
                        total: a.total,
                        node,
                    };
                    stats.streams.record(&finished, plan.slo.as_ref());
                }
                if plan.verbosity >= 4 {
                    let head = conn.as_ref().map_or(&[][..], |c| {
                        &c.buf[..c.buf.len().min(a.head_bytes as usize)]
                    });
                    eprintln!(
                        "LOG: header received:\n{}",
                        String::from_utf8_lossy(head).trim_end()
                    );
                }
                if plan.verbosity >= 2 && !(200..300).contains(&a.status) {
                    eprintln!("WARNING: Response code not 2xx ({})", a.status);
                }
                if let Some(started) = wall {
                    rows.write(&Row {
                        started,
                        connect: a.connect,
                        total: a.total,
                        waiting: a.waiting,
                        status: a.status,
                        body_bytes: a.body_bytes,
                        node,
                    });
                }
                if let Some(c) = conn.as_mut() {
                    c.buf.clear();
                }
                if !keep {
                    conn = None;
                }
            }
            Err(miss) => {
                conn = None;
                if let Some(started) = wall {
                    let total = start.elapsed();
                    let none = Duration::ZERO;
                    let row = Row {
                        started,
                        connect: none,
                        total,
                        waiting: none,
                        status: 0,
                        body_bytes: 0,
                        node: None,
                    };
                    rows.write(&row);
                }
                let kind = match miss {
                    Miss::Connect(_) => "connect",
                    Miss::Receive => "receive",
                    Miss::Timeout => "timeout",
                    Miss::StreamCut => "stream cut",
                    Miss::StreamStalled => "stream stalled",
                    Miss::StreamError => "stream error",
                };
                match miss {
                    Miss::Connect(_) => stats.failed_connect += 1,
                    _ => stats.failed_receive += 1,
                }
                if streaming.active {
                    let cut = Finished {
                        sse: &streaming.sse,
                        worst_gap: None,
                        total: start.elapsed(),
                        node: None,
                    };
                    stats.streams.record(&cut, None);
                }
                stats.error(kind, || describe(&miss, addr, plan.timeout, &streaming));
                schedule.failed.fetch_add(1, Relaxed);
                // ab stops at a receive error unless told -r.
                if !matches!(miss, Miss::Connect(_)) && !plan.keep_going {
                    schedule.stop.store(true, Relaxed);
                }
            }
        }
        drop(guard);
        schedule.completed.fetch_add(1, Relaxed);
    }
}

/// A failed request in words, for the report's "why nothing answered".
fn describe(miss: &Miss, addr: SocketAddr, timeout: Duration, streaming: &Streaming) -> String {
    match miss {
        Miss::Connect(kind) => format!("could not connect to {addr}: {kind}"),
        Miss::Receive => format!("{addr} closed the connection before a whole answer"),
        Miss::Timeout => format!("no whole answer from {addr} within {timeout:?} (-s)"),
        Miss::StreamCut => "an event stream ended before data: [DONE]".to_string(),
        Miss::StreamStalled => format!("an event stream went quiet for {timeout:?} (-s)"),
        Miss::StreamError => format!(
            "an event stream carried an error: {}",
            streaming.sse.error.as_deref().unwrap_or("")
        ),
    }
}

/// Sends the request and reads the whole answer, leaving its head in the
/// connection's buffer for the caller to read names from.
async fn once(
    send: &Send<'_>,
    node_headers: &[&str],
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    start: Instant,
    streaming: &mut Streaming,
) -> Result<Answer, Miss> {
    let mut connect_time = Duration::ZERO;
    if conn.is_none() {
        *conn = Some(
            Conn::open(addr, send.source)
                .await
                .map_err(|e| Miss::Connect(e.kind()))?,
        );
        connect_time = start.elapsed();
    }
    let c = conn
        .as_mut()
        .ok_or(Miss::Connect(std::io::ErrorKind::NotConnected))?;
    c.stream
        .write_all(send.bytes)
        .await
        .map_err(|_| Miss::Receive)?;
    let sent = Instant::now();
    let mut waiting = None;
    let head = loop {
        // A kept-alive connection the server closed before answering is a
        // receive failure, as ab counts it.
        if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
            return Err(Miss::Receive);
        }
        waiting.get_or_insert_with(|| sent.elapsed());
        if let Some(head) =
            http1::parse_head(&c.buf, send.head_request, node_headers).map_err(|_| Miss::Receive)?
        {
            break head;
        }
    };
    // An event stream is read token by token as its bytes arrive, and its
    // body is not kept: only the head stays (node names point into it).
    streaming.active = head.event_stream;
    let Streaming { active, sse, gaps } = streaming;
    let mut feed = |data: &[u8]| {
        if *active {
            sse.feed(data, start.elapsed(), &mut |gap| gaps.push(gap));
        }
    };
    let mut seen = head.len;
    let mut body_bytes = 0u64;
    match head.framing {
        Framing::None => {}
        Framing::Length(len) => loop {
            feed(&c.buf[seen..]);
            seen = c.buf.len();
            if ((c.buf.len() - head.len) as u64) >= len {
                body_bytes = len;
                break;
            }
            if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
                return Err(Miss::Receive);
            }
        },
        Framing::Chunked => {
            let mut chunks = http1::Chunked::default();
            loop {
                if chunks
                    .feed(&c.buf[seen..], &mut feed)
                    .map_err(|_| Miss::Receive)?
                    .is_some()
                {
                    break;
                }
                if *active {
                    c.buf.truncate(head.len);
                }
                seen = c.buf.len();
                if c.fill().await.map_err(|_| Miss::Receive)? == 0 {
                    return Err(Miss::Receive);
                }
            }
            body_bytes = chunks.body;
        }
        Framing::Close => loop {
            feed(&c.buf[seen..]);
            body_bytes += (c.buf.len() - seen) as u64;
            seen = c.buf.len();
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
fn body_field(body: &[u8], field: &str) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)?
    {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Runs the plan to the end (or until `schedule.stop`), merging every
/// worker's figures.
pub async fn run(
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    addr: SocketAddr,
    rows: Arc<Rows>,
) -> Stats {
    // Enough workers for the busiest phase.
    let most = plan.phases.iter().filter_map(|p| match p.load {
        PhaseLoad::Concurrency(c) => Some(c),
        PhaseLoad::Rate { .. } => None,
    });
    let count = most.fold(plan.concurrency, usize::max);
    // Workers record into a few shared shards, not a set of histograms
    // each: 10,000 open streams would otherwise hold 10,000 sets.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let shards: Vec<Arc<Mutex<Stats>>> = (0..count.clamp(1, 4 * cores))
        .map(|_| Arc::new(Mutex::new(Stats::default())))
        .collect();
    let template = Arc::new(Template::new(&plan));
    let workers: Vec<_> = (0..count)
        .map(|w| {
            tokio::spawn(worker(
                w,
                plan.clone(),
                schedule.clone(),
                addr,
                rows.clone(),
                template.clone(),
                shards[w % shards.len()].clone(),
            ))
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let mut stats = Stats::default();
    for shard in shards {
        let part = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
        stats.merge(part);
    }
    if let Some(len) = schedule.document_length.get() {
        stats.document_length = Some(*len);
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
