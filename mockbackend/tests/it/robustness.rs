use std::time::Duration;

use mockbackend::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

async fn small_limits() -> Server {
    let mut config = Config::ephemeral(1, profile(&[]));
    config.max_body = 1024;
    config.header_timeout = Duration::from_millis(300);
    Server::start(config).await.unwrap()
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let server = small_limits().await;
    let addr = server.addrs()[0];
    let big = "x".repeat(2000);
    let r = post(addr, "/completions", &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
    assert!(json(r).await["error"]
        .as_str()
        .unwrap()
        .contains("1024 bytes"));

    let chunked = format!(
        "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let reply = raw(addr, chunked.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(post(addr, "/completions", "small").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_stalling_in_its_headers_is_dropped() {
    let server = small_limits().await;
    let addr = server.addrs()[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the server closed the stalled connection");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert_eq!(get(addr, "/").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_close_but_busy_ones_stay() {
    let server = small_limits().await; // header timeout 300ms
    let addr = server.addrs()[0];
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 1024];

    // Requests every 100ms for well past the timeout: the connection stays.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    for _ in 0..10 {
        busy.write_all(request).await.unwrap();
        let n = tokio::time::timeout(PATIENCE, busy.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "still served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Then left idle: the server closes it.
    let n = tokio::time::timeout(PATIENCE, busy.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "an idle keep-alive connection is closed");

    // A long request is not cut by the header timeout: it is not idle.
    let mut slow = Config::ephemeral(1, profile(&[("latency", "700ms")]));
    slow.header_timeout = Duration::from_millis(300);
    let slow = Server::start(slow).await.unwrap();
    assert_eq!(get(slow.addrs()[0], "/").await.status(), 200);
    slow.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_on_the_socket_never_takes_the_port_down() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for junk in [
        &garbage[..],
        b"\x00\x01\x02\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
    ] {
        let reply = raw(addr, junk).await;
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{reply:?}"
        );
    }
    // A client that connects and leaves at once.
    drop(TcpStream::connect(addr).await.unwrap());
    assert_eq!(get(addr, "/").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn http_1_0_gets_one_answer_then_close_like_ab_expects() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let reply = raw(addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with(&format!("响应来自:{}", addr.port())));
    let body = r#"{"message":"ab"}"#;
    let request = format!(
        "POST /chat HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = raw(addr, request.as_bytes()).await;
    assert!(reply.contains("Processed by chat API: AB"), "{reply}");
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = String::new();
        while !got.ends_with("healthy\n") {
            let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed early");
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert!(got.starts_with("HTTP/1.1 200"));
    }
    assert_eq!(server.nodes()[0].metrics.total(), 50);
    server.shutdown().await;
}

#[tokio::test]
async fn serves_ipv6_loopback_when_asked() {
    let mut config = Config::ephemeral(1, profile(&[]));
    config.bind = "::1".parse().unwrap();
    let server = match Server::start(config).await {
        Ok(s) => s,
        // A machine without IPv6 on loopback has nothing to test here.
        Err(mockbackend::StartError::NotLocal { .. }) => return,
        Err(e) => panic!("{e}"),
    };
    let addr = server.addrs()[0];
    assert!(addr.is_ipv6());
    let r = get(addr, "/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-backend"],
        format!("[::1]:{}", addr.port()).as_str()
    );
    server.shutdown().await;
}
