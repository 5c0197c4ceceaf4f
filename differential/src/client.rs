//! The clients: raw HTTP/1.1 from 127.0.k.1 (so ip_hash and
//! `$remote_addr` see k different clients), on a connection per request
//! or one kept open per client, reading each answer to its end.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::case::Request;

/// What the client saw of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A status, and the body (or as much as came before the close).
    Got {
        status: u16,
        body: String,
        whole: bool,
    },
    /// The connection closed (or reset) with no status line.
    Nothing,
    /// No end to the answer within `PATIENCE` (nginx keeps a client
    /// waiting after relaying an HTTP/0.9 answer, for one).
    Hung,
}

/// How long an answer may take before it is called hung. Every timing in
/// a generated case is far below it.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Connections kept open, by client, when clients keep alive.
#[derive(Default)]
pub struct Clients {
    open: HashMap<u8, TcpStream>,
}

impl Clients {
    /// Sends request `id` to `proxy`; `Err` only when the harness itself
    /// failed (a connect error, or no end to the answer).
    pub async fn send(
        &mut self,
        proxy: SocketAddr,
        id: usize,
        request: &Request,
        keepalive: bool,
    ) -> Result<Answer, String> {
        let mut stream = match self.open.remove(&request.client) {
            Some(s) if keepalive => s,
            _ => connect(proxy, request.client).await?,
        };
        let bytes = encode(id, request, keepalive);
        if stream.write_all(&bytes).await.is_err() {
            // A kept connection the proxy closed meanwhile: once more, new.
            stream = connect(proxy, request.client).await?;
            stream
                .write_all(&bytes)
                .await
                .map_err(|e| format!("request {id}: {e}"))?;
        }
        let head_only = request.method == "HEAD";
        let Ok((answer, reusable)) =
            tokio::time::timeout(PATIENCE, read_answer(&mut stream, head_only)).await
        else {
            return Ok(Answer::Hung);
        };
        if keepalive && reusable {
            self.open.insert(request.client, stream);
        }
        Ok(answer)
    }
}

async fn connect(proxy: SocketAddr, client: u8) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let from = SocketAddr::from((Ipv4Addr::new(127, 0, client, 1), 0));
    socket
        .bind(from)
        .map_err(|e| format!("cannot bind {from}: {e}"))?;
    let stream = socket
        .connect(proxy)
        .await
        .map_err(|e| format!("cannot connect to {proxy}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn encode(id: usize, r: &Request, keepalive: bool) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\n", r.method, r.path);
    if let Some(host) = &r.host {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    head.push_str(&format!("X-Fuzz-Id: {id}\r\n"));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keepalive {
        head.push_str("Connection: close\r\n");
    }
    if let Some(body) = &r.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    if let Some(body) = &r.body {
        head.push_str(body);
    }
    head.into_bytes()
}

/// Reads one answer: the head, then the body by its length, chunks, or to
/// the close. Returns whether the connection may carry another request.
async fn read_answer(stream: &mut TcpStream, head_only: bool) -> (Answer, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return (Answer::Nothing, false),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.contains("chunked"),
            "connection" => close = v.contains("close"),
            _ => {}
        }
    }
    let mut body = buf[end..].to_vec();
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    let whole = if no_body {
        true
    } else if chunked {
        read_chunked(stream, &mut body).await
    } else if let Some(n) = length {
        while body.len() < n {
            match stream.read(&mut chunk).await {
                Ok(k) if k > 0 => body.extend_from_slice(&chunk[..k]),
                _ => break,
            }
        }
        body.len() >= n
    } else {
        close = true;
        loop {
            match stream.read(&mut chunk).await {
                Ok(k) if k > 0 => body.extend_from_slice(&chunk[..k]),
                _ => break,
            }
        }
        true
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let answer = Answer::Got {
        status,
        body,
        whole,
    };
    (answer, whole && !close)
}

/// Reads a chunked body into `body` (the bytes already read first),
/// leaving the decoded data; whether it ended with its last chunk.
async fn read_chunked(stream: &mut TcpStream, body: &mut Vec<u8>) -> bool {
    let mut raw = std::mem::take(body);
    let mut chunk = [0u8; 16384];
    let mut pos = 0;
    loop {
        // The size line.
        let line_end = loop {
            if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            match stream.read(&mut chunk).await {
                Ok(k) if k > 0 => raw.extend_from_slice(&chunk[..k]),
                _ => return false,
            }
        };
        let size_text = String::from_utf8_lossy(&raw[pos..line_end]).to_string();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return false;
        };
        let data = line_end + 2;
        while raw.len() < data + size + 2 {
            match stream.read(&mut chunk).await {
                Ok(k) if k > 0 => raw.extend_from_slice(&chunk[..k]),
                _ => {
                    body.extend_from_slice(&raw[data.min(raw.len())..]);
                    return false;
                }
            }
        }
        if size == 0 {
            return true;
        }
        body.extend_from_slice(&raw[data..data + size]);
        pos = data + size + 2;
    }
}
