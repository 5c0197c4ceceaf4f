//! Scripted backends on loopback, written at the byte level so that each
//! behaviour is exactly the one meant: a refusal is a closed port, a stale
//! kept-alive connection is a close on the second request, a bad head is
//! the bytes named. Every answer echoes the request head it received.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::case::{BackendDef, BadHead, Behaviour};

/// The host a `Vhost` backend answers for.
pub const VHOST: &str = "vhost.test";

/// The backends of one run, moved from round to round together.
pub struct Backends {
    backends: Vec<Backend>,
}

struct Backend {
    index: usize,
    addr: SocketAddr,
    def: BackendDef,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    round: AtomicUsize,
    /// Bumped to close every open connection (the process "died").
    generation: watch::Sender<u64>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Backends {
    /// Binds every backend, on `ports` when given (those of an earlier
    /// run, so a consistent hash, which hashes addresses, sees the same
    /// ring); each listens (or not) as round 0 says.
    pub async fn start(
        defs: &[BackendDef],
        ports: Option<&[SocketAddr]>,
    ) -> std::io::Result<Backends> {
        let mut backends = Vec::new();
        for (index, def) in defs.iter().enumerate() {
            let listener = match ports.and_then(|p| p.get(index)) {
                Some(addr) => rebind(*addr)?,
                None => TcpListener::bind("127.0.0.1:0").await?,
            };
            let addr = listener.local_addr()?;
            let (generation, _) = watch::channel(0);
            let mut b = Backend {
                index,
                addr,
                def: def.clone(),
                shared: Arc::new(Shared {
                    round: AtomicUsize::new(0),
                    generation,
                    tasks: Mutex::new(Vec::new()),
                }),
                accept: None,
            };
            if def.in_round(0) != Behaviour::Refuse {
                b.accept = Some(b.serve(listener));
            }
            backends.push(b);
        }
        Ok(Backends { backends })
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.backends.iter().map(|b| b.addr).collect()
    }

    /// Moves every backend to `round`: one that starts refusing stops
    /// listening and drops its connections, as a process that died; one
    /// that stops refusing listens again on its port.
    pub async fn enter(&mut self, round: usize) -> std::io::Result<()> {
        for b in &mut self.backends {
            let before = b.def.in_round(round.saturating_sub(1));
            let now = b.def.in_round(round);
            b.shared.round.store(round, Ordering::SeqCst);
            if now == Behaviour::Refuse && b.accept.is_some() {
                if let Some(a) = b.accept.take() {
                    a.abort();
                    let _ = a.await;
                }
                b.shared.generation.send_modify(|g| *g += 1);
            } else if now != Behaviour::Refuse && b.accept.is_none() {
                let listener = rebind(b.addr)?;
                b.accept = Some(b.serve(listener));
            } else if before != now && matches!(before, Behaviour::Hang) {
                // Connections held by a hang are let go with it.
                b.shared.generation.send_modify(|g| *g += 1);
            }
        }
        Ok(())
    }

    /// Stops every backend and waits until their sockets are closed, so
    /// the next run can bind the same ports.
    pub async fn stop(self) {
        let mut handles = Vec::new();
        for b in self.backends {
            handles.extend(b.accept);
            handles.extend(
                b.shared
                    .tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain(..),
            );
        }
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
    }
}

/// The same port again, for a backend that comes back.
fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Backend {
    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let (index, def, shared) = (self.index, self.def.clone(), self.shared.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let conn = tokio::spawn(connection(stream, index, def.clone(), shared.clone()));
                let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
                tasks.retain(|t| !t.is_finished());
                tasks.push(conn);
            }
        })
    }
}

/// One request as the backend read it.
struct Head {
    /// The head as received, CRLFs and all.
    raw: String,
    http10: bool,
    /// `Connection: close` (1.1) or no `Connection: keep-alive` (1.0).
    close: bool,
    head_method: bool,
    host: Option<String>,
}

/// Serves one connection until it closes, the backend "dies", or a
/// behaviour ends it.
async fn connection(mut stream: TcpStream, index: usize, def: BackendDef, shared: Arc<Shared>) {
    let mut died = shared.generation.subscribe();
    let mut buf = Vec::new();
    let mut served = 0usize;
    loop {
        // The behaviour of the round the request arrives in.
        let round_now = shared.round.load(Ordering::SeqCst);
        let idle = match def.in_round(round_now) {
            Behaviour::IdleClose(ms) => Some(Duration::from_millis(ms)),
            _ => None,
        };
        let read = read_head(&mut stream, &mut buf);
        let head = tokio::select! {
            h = read => h,
            _ = died.changed() => return,
            () = sleep_or_never(idle) => return,
        };
        let Some(head) = head else { return };
        let behaviour = def.in_round(shared.round.load(Ordering::SeqCst));
        served += 1;
        let keep = !head.close;
        let answer = |status: u16, keep: bool| answer(index, status, &head, keep);
        let text: Vec<u8> = match behaviour {
            Behaviour::Ok | Behaviour::IdleClose(_) => answer(200, keep),
            Behaviour::Status(s) => answer(s, keep),
            Behaviour::Vhost => {
                let ok = head.host.as_deref() == Some(VHOST);
                answer(if ok { 200 } else { 404 }, keep)
            }
            Behaviour::Slow(ms) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = died.changed() => return,
                }
                answer(200, keep)
            }
            Behaviour::StaleClose | Behaviour::StaleReset if served > 1 => {
                if behaviour == Behaviour::StaleReset {
                    reset(&stream);
                }
                return;
            }
            Behaviour::StaleClose | Behaviour::StaleReset => answer(200, keep),
            Behaviour::Refuse | Behaviour::Close => return,
            Behaviour::Reset => {
                reset(&stream);
                return;
            }
            Behaviour::Hang => {
                let mut sink = [0u8; 256];
                loop {
                    tokio::select! {
                        n = stream.read(&mut sink) => if !matches!(n, Ok(n) if n > 0) { return },
                        _ = died.changed() => return,
                    }
                }
            }
            Behaviour::Cut => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".to_vec(),
            Behaviour::BadHeader(bad) => bad_head(bad),
        };
        let closes = matches!(behaviour, Behaviour::Cut | Behaviour::BadHeader(_)) || !keep;
        if stream.write_all(&text).await.is_err() || closes {
            let _ = stream.shutdown().await;
            // Wait for the peer's close so the kernel sends FIN, not RST.
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await;
            return;
        }
    }
}

/// A zero linger: the close that follows sends RST. (tokio deprecates
/// set_linger because a non-zero linger blocks on drop; zero does not.)
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// 200 (or `status`) with the echo: `b<index>` and the head received.
fn answer(index: usize, status: u16, head: &Head, keep: bool) -> Vec<u8> {
    let body = format!("b{index}\n{}", head.raw.replace("\r\n", "\n"));
    let connection = match (keep, head.http10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
        body.len()
    )
    .into_bytes();
    if !head.head_method {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn bad_head(bad: BadHead) -> Vec<u8> {
    let tail = "Content-Length: 2\r\nConnection: close\r\n\r\nok";
    match bad {
        BadHead::SpaceInName => format!("HTTP/1.1 200 OK\r\nX Bad: 1\r\n{tail}"),
        BadHead::NoColon => format!("HTTP/1.1 200 OK\r\nXBad\r\n{tail}"),
        BadHead::BadStatus => format!("HTTP/1.1 abc OK\r\n{tail}"),
        BadHead::NotHttp => "hello\r\n".to_string(),
        BadHead::TooBig => format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n{tail}", "x".repeat(10_000)),
        BadHead::LengthAndChunked => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_string(),
    }
    .into_bytes()
}

/// Reads one request (its head and a Content-Length body) from `buf` and
/// the stream; `None` when the peer closed first.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Head> {
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let raw = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in raw.split("\r\n").skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let line = raw.lines().next().unwrap_or("").to_string();
    let http10 = line.ends_with("HTTP/1.0");
    let connection = headers
        .get("connection")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    let close = if http10 {
        !connection.contains("keep-alive")
    } else {
        connection.contains("close")
    };
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[end..end + length]).into_owned();
    buf.drain(..end + length);
    Some(Head {
        raw: raw + &body,
        http10,
        close,
        head_method: line.starts_with("HEAD "),
        host: headers.get("host").cloned(),
    })
}
