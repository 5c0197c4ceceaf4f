//! The engine against servers that break HTTP or never stop talking: huge
//! and endless bodies, interim answers, lengths that disagree, heads with
//! no end. Each is a real server on loopback writing exactly these bytes.

use std::net::SocketAddr;

use engine::{Flags, Stats};

async fn run(addr: SocketAddr, n: u64, timeout: u64) -> Stats {
    let flags = Flags {
        url: format!("http://{addr}/"),
        requests: Some(n),
        concurrency: Some(1),
        timeout: Some(timeout as f64),
        keep_going: true,
        ..Flags::default()
    };
    crate::run::run(flags).await.0
}

const MIB: &[u8] = &[b'x'; 1 << 20];

#[tokio::test]
async fn a_huge_body_is_counted_not_kept() {
    // 256 MiB: read through a fixed buffer (bench/hostile.sh measures RSS).
    let addr = crate::run::canned(
        "HTTP/1.1 200 OK\r\nContent-Length: 268435456\r\n\r\n",
        MIB,
        Some(256),
    )
    .await;
    let s = run(addr, 1, 30).await;
    assert_eq!((s.complete, s.failed()), (1, 0));
    assert_eq!(s.document_length, Some(256 << 20));
}

#[tokio::test]
async fn an_endless_chunked_body_ends_at_the_timeout() {
    let addr = crate::run::canned(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"8\r\n01234567\r\n",
        None,
    )
    .await;
    let s = run(addr, 1, 1).await;
    assert_eq!(s.failed_receive, 1);
    assert_eq!(s.errors.get("timeout"), Some(&1));
}

#[tokio::test]
async fn interim_answers_are_not_the_answer() {
    let addr = crate::run::canned(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"",
        Some(0),
    )
    .await;
    let s = run(addr, 3, 10).await;
    assert_eq!((s.complete, s.failed()), (3, 0));
    assert_eq!(s.statuses.get(&200), Some(&3));
    assert_eq!(s.statuses.get(&100), None);
    assert_eq!(s.document_length, Some(2));
}

#[tokio::test]
async fn answers_that_break_http_are_exceptions() {
    let two_lengths = crate::run::canned(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 200\r\n\r\nok",
        b"",
        Some(0),
    )
    .await;
    let endless_head = crate::run::canned(
        "HTTP/1.1 200 OK\r\n",
        b"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n",
        None,
    )
    .await;
    for addr in [two_lengths, endless_head] {
        let s = run(addr, 2, 10).await;
        assert_eq!(s.failed_exceptions, 2, "{addr}");
        assert_eq!(s.errors.get("malformed answer"), Some(&2));
        assert!(
            s.first_error
                .as_deref()
                .is_some_and(|e| e.contains("malformed answer")),
            "{:?}",
            s.first_error
        );
    }
}

/// An upstream that promises 100 bytes and sends 5: the client sees 20
/// failures, and the balancer's log (lbkit's format) must show 20 too.
#[tokio::test]
async fn a_body_cut_by_the_upstream_is_an_error_for_the_client_and_in_the_log() {
    let cut = crate::run::canned(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
        b"",
        Some(0),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("engine-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let conf = format!(
        "access_log {} lbkit;\nupstream u {{ server {cut}; }}\nserver {{ location / {{ proxy_pass http://u; }} }}",
        log.display()
    );
    let config = balancer::conf::load("cut.conf", &conf).unwrap();
    let proxy = balancer::proxy::Proxy::start(balancer::proxy::Options::new(
        "127.0.0.1:0".parse().unwrap(),
        config,
    ))
    .await
    .unwrap();
    let s = run(proxy.addr(), 20, 10).await;
    proxy.shutdown().await;
    assert_eq!(
        (s.complete, s.failed_receive),
        (0, 20),
        "the client saw every body cut"
    );
    let read = analyzer::summarize(
        &[analyzer::Input::File(log.clone())],
        analyzer::formats::named("lbkit").unwrap(),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let all = &read.summary.all;
    assert_eq!(
        (all.requests, all.classes[1]),
        (20, 20),
        "logged 200, as nginx does"
    );
    assert_eq!(
        (all.cut, all.errors),
        (20, 20),
        "and each one cut: an error"
    );
}
