//! Backends with one behaviour each, on loopback, written at the byte level
//! so a failure is exactly the one meant (a head that does not parse, a
//! close right after the request).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200, with its own address as the body.
    Ok,
    /// This status.
    Status(u16),
    /// Nothing listens: connections are refused.
    Refuse,
    /// Reads the request, closes without a word.
    Close,
    /// Reads the request and never answers.
    Hang,
    /// A response head with a header name that holds a space.
    BadHeader,
    /// 200 after this many milliseconds.
    Slow(u64),
    /// 200 promising 100 bytes, 5 sent, then the connection closed.
    Cut,
}

pub struct Backend {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    pub async fn start(behaviour: Behaviour) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        if behaviour == Behaviour::Refuse {
            // Bound and closed: the port is free and nothing listens.
            drop(listener);
            return Backend { addr, task: None };
        }
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, behaviour, addr));
            }
        });
        Backend {
            addr,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(self) {
        if let Some(t) = self.task {
            t.abort();
        }
    }
}

/// Reads one request: the head, then as many body bytes as it declares.
async fn read_request(stream: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() - head_end < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, addr: SocketAddr) {
    if read_request(&mut stream).await.is_none() {
        return;
    }
    let answer = |status: u16, body: &str| {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let text = match behaviour {
        Behaviour::Ok => answer(200, &addr.to_string()),
        Behaviour::Status(s) => answer(s, "status"),
        Behaviour::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            answer(200, &addr.to_string())
        }
        Behaviour::Cut => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".into(),
        Behaviour::BadHeader => {
            "HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into()
        }
        Behaviour::Close | Behaviour::Refuse => return,
        Behaviour::Hang => {
            // Held open until the peer gives up or the backend stops.
            let mut sink = [0u8; 64];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
    };
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}
