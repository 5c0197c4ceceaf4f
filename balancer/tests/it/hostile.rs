//! The proxy against hostile clients and servers: slow or idle clients,
//! a flood of connections, requests nginx refuses, headers that belong to
//! one connection, and upstream answers whose length lies. Each test sends
//! real bytes on loopback and checks what came back, and the access log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::canned;
use balancer::conf;
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, Profile, Server as Mock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound on any wait here: a guard against hanging, not a speed check.
const PATIENCE: Duration = Duration::from_secs(10);

struct Bed {
    proxy: Proxy,
    log: std::path::PathBuf,
    _dir: Dir,
}

/// A temporary directory removed on drop.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Bed {
    /// The proxy on `servers` with `extra` directives at the http level,
    /// logging `$status "$request"` per line.
    async fn start(servers: &[SocketAddr], extra: &str) -> Bed {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbkit-hostile-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let servers: String = servers.iter().map(|a| format!("server {a}; ")).collect();
        let text = format!(
            "{extra}\nlog_format t '$status \"$request\" $body_bytes_sent';\naccess_log {} t;\n\
             upstream u {{ {servers} }}\nserver {{ location / {{ proxy_pass http://u; }} }}",
            log.display()
        );
        let config = conf::load("hostile.conf", &text).unwrap();
        let proxy = Proxy::start(Options::new("127.0.0.1:0".parse().unwrap(), config))
            .await
            .unwrap();
        Bed {
            proxy,
            log,
            _dir: Dir(dir),
        }
    }

    /// The access log's lines once the proxy has stopped (and flushed).
    async fn stop(self) -> Vec<String> {
        let Bed { proxy, log, _dir } = self;
        proxy.shutdown().await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.proxy.addr()).await.unwrap()
    }

    /// Sends raw bytes on a new connection; what came back before it closed.
    async fn raw(&self, request: &[u8]) -> String {
        let mut s = self.connect().await;
        s.write_all(request).await.unwrap();
        read_all(&mut s).await
    }
}

/// Reads until the peer closes (or PATIENCE runs out).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the proxy closes `s` (EOF or reset) before PATIENCE, and when.
async fn closed_after(s: &mut TcpStream) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn mock(settings: &[(&str, &str)]) -> Mock {
    let mut p = Profile::default();
    for (k, v) in settings {
        p.set(k, v).unwrap();
    }
    Mock::start(Config::ephemeral(1, p)).await.unwrap()
}

#[tokio::test]
async fn a_slow_head_gets_408_in_the_log_and_idle_connections_close() {
    let m = mock(&[]).await;
    let bed = Bed::start(
        &m.addrs(),
        "client_header_timeout 300ms; keepalive_timeout 400ms;",
    )
    .await;
    // Slowloris: part of a head, then nothing.
    let mut slow = bed.connect().await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow")
        .await
        .unwrap();
    // Connected, never sent a byte.
    let mut silent = bed.connect().await;
    // Served once, then idle on keep-alive.
    let mut kept = bed.connect().await;
    kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 256];
    let n = kept.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    for (name, s) in [
        ("slow", &mut slow),
        ("silent", &mut silent),
        ("kept", &mut kept),
    ] {
        let after = closed_after(s).await;
        assert!(after.is_some(), "{name}: the proxy closed it");
    }
    let log = bed.stop().await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("200 \"GET / HTTP/1.1\""), "{log:?}");
    assert_eq!(log[1], "408 \"-\" 0", "the slow head, as nginx logs it");
    m.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_limit_idle_connections_make_room() {
    let m = mock(&[("latency", "1500ms")]).await;
    let bed = Bed::start(&m.addrs(), "events { worker_connections 4; }").await;
    assert_eq!(bed.proxy.max_connections(), 4);
    // Four idle connections fill the proxy; a new client is still served.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(bed.connect().await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("http://{}/", bed.proxy.addr());
    let quick = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let served = quick.get(&url).send().await.unwrap();
    assert_eq!(served.status(), 200, "an idle connection gave way");
    for s in &mut idle[..1] {
        assert!(
            closed_after(s).await.is_some(),
            "the oldest idle ones were closed"
        );
    }
    // Four requests in flight hold every place: a fifth client is closed.
    let mut busy = Vec::new();
    for i in 0..4 {
        let mut s = bed.connect().await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
        // Each in flight before the next connects: one whose head is
        // still unread counts as idle, as in nginx.
        let deadline = Instant::now() + PATIENCE;
        while m.in_flight() < i + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut fifth = bed.connect().await;
    let _ = fifth.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let answer = read_all(&mut fifth).await;
    assert_eq!(answer, "", "turned away unanswered");
    for s in &mut busy {
        let mut head = [0u8; 64];
        let n = tokio::time::timeout(PATIENCE, s.read(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    }
    bed.stop().await;
    m.shutdown().await;
}

#[tokio::test]
async fn requests_nginx_refuses_get_400_and_are_logged() {
    let m = mock(&[]).await;
    let bed = Bed::start(&m.addrs(), "").await;
    for (request, why) in [
        (
            &b"GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            "above the root",
        ),
        (b"GET / HTTP/1.1\r\n\r\n", "without \"Host\""),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "duplicate host",
        ),
    ] {
        let answer = bed.raw(request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains(why), "{answer}");
    }
    // What hyper refuses before a handler sees it is logged too.
    let answer = bed.raw(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "x".repeat(600 << 10)
    );
    let answer = bed.raw(huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A path with dots inside the root is routed normalized, forwarded as sent.
    let answer = bed
        .raw(b"GET /a/../b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let log = bed.stop().await;
    let statuses: Vec<&str> = log.iter().map(|l| &l[..3]).collect();
    assert_eq!(
        statuses,
        ["400", "400", "400", "400", "431", "200"],
        "{log:?}"
    );
    assert_eq!(log[3], "400 \"-\" 0");
    m.shutdown().await;
}

#[tokio::test]
async fn headers_named_in_connection_pass_both_ways_as_through_nginx() {
    // nginx drops only its own list (Connection, Keep-Alive, TE, Upgrade,
    // Expect ...) and the names proxy_set_header sets: a header the
    // client's Connection names still goes upstream, and one the
    // upstream's names still reaches the client.
    let m = mock(&[]).await;
    let bed = Bed::start(&m.addrs(), "").await;
    let seen = bed
        .raw(b"GET /_mock/headers HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo\r\nX-Foo: bar\r\nX-Kept: k\r\nKeep-Alive: 300\r\nConnection: close\r\n\r\n")
        .await;
    assert!(seen.contains("\"x-kept\""), "{seen}");
    assert!(seen.contains("\"x-foo\":\"bar\""), "{seen}");
    assert!(!seen.contains("keep-alive"), "{seen}");
    bed.stop().await;
    m.shutdown().await;

    let secret = canned(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\nok",
    )
    .await;
    let bed = Bed::start(&[secret], "").await;
    let answer = bed
        .raw(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    let lower = answer.to_lowercase();
    assert!(lower.contains("x-kept: k"), "{answer}");
    assert!(lower.contains("x-secret: s"), "{answer}");
    bed.stop().await;
}

#[tokio::test]
async fn an_answer_with_two_lengths_is_read_as_nginx_1_22_reads_it() {
    // Chunked wins over Content-Length, and of two lengths the last
    // counts; the client gets one consistent framing either way, and the
    // next pipelined request its own answer.
    let both = canned(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let twice = canned("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 2\r\n\r\nok").await;
    for (upstream, body) in [(both, "hello"), (twice, "ok")] {
        let bed = Bed::start(&[upstream], "").await;
        let answer = bed
            .raw(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer}");
        assert!(answer.contains(body), "{answer}");
        assert!(!answer.contains("content-length: 100"), "{answer}");
        bed.stop().await;
    }
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_an_absolute_uri_names_the_host() {
    let m = mock(&[]).await;
    let bed = Bed::start(
        &m.addrs(),
        "client_body_timeout 300ms; proxy_set_header Host $host;",
    )
    .await;
    let answer = bed
        .raw(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly part")
        .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let seen = bed
        .raw(b"GET http://abs.example/_mock/headers HTTP/1.1\r\nHost: client\r\nConnection: close\r\n\r\n")
        .await;
    assert!(seen.contains("\"host\":\"abs.example\""), "{seen}");
    // 99 client headers plus the proxy's own stay within the backend's limit.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for i in 0..97 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let answer = bed.raw(many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let log = bed.stop().await;
    assert!(log[0].starts_with("408 \"POST / HTTP/1.1\""), "{log:?}");
    m.shutdown().await;
}

#[tokio::test]
async fn mock_fault_control_through_the_proxy_is_refused_even_with_the_token() {
    let mut config = Config::ephemeral(2, Profile::default());
    config.admin_token = Some("t0k".into());
    let m = Mock::start(config).await.unwrap();
    // The mock knows a proxy by the headers it adds, as seed 000's does.
    let bed = Bed::start(
        &m.addrs(),
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let through = format!("http://{}/_mock/down?port=all&for=5s", bed.proxy.addr());
    for token in [None, Some("t0k")] {
        let mut r = client.post(&through);
        if let Some(t) = token {
            r = r.header("x-mock-token", t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 403, "token {token:?}");
    }
    let url = format!("http://{}/", bed.proxy.addr());
    for _ in 0..4 {
        assert_eq!(
            client.get(&url).send().await.unwrap().status(),
            200,
            "every backend still up"
        );
    }
    bed.stop().await;
    m.shutdown().await;
}
