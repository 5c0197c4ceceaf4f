use std::io::ErrorKind;
use std::time::{Duration, Instant};

use mockbackend::{Config, Control, Fault, Profile, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

async fn control(addr: std::net::SocketAddr, action: &str) -> serde_json::Value {
    let r = control_request(addr, action).send().await.unwrap();
    assert_eq!(r.status(), 200, "{action}");
    json(r).await
}

async fn refused(addr: std::net::SocketAddr) -> bool {
    matches!(TcpStream::connect(addr).await, Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[tokio::test]
async fn down_refuses_and_drops_connections_then_up_revives() {
    let server = start(2, &[]).await;
    let [a, b] = server.addrs()[..] else {
        unreachable!()
    };

    // A keep-alive connection to b that has already been served once.
    let mut open = TcpStream::connect(b).await.unwrap();
    open.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 512];
    let n = open.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));

    let state = control(a, &format!("down?port={}", b.port())).await;
    assert_eq!(state["ports"][0]["faults"]["down"], true);
    assert!(refused(b).await, "a down port refuses connections");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, open.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(
        read.is_err() || rest.is_empty(),
        "the open connection was closed"
    );
    assert_eq!(
        get(a, "/").await.status(),
        200,
        "the other port is untouched"
    );

    control(a, &format!("up?port={}", b.port())).await;
    let r = get(b, "/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("响应来自:{}", b.port()));
    server.shutdown().await;
}

#[tokio::test]
async fn down_for_a_while_comes_back_by_itself() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    // Asked on its own port: the answer still arrives before the port closes.
    let state = control(addr, "down?for=300ms").await;
    assert_eq!(state["ports"][0]["faults"]["down"], true);
    assert!(refused(addr).await);
    let deadline = Instant::now() + PATIENCE;
    while refused(addr).await {
        assert!(Instant::now() < deadline, "port never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(addr, "/").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn library_control_kills_and_revives_a_node() {
    let server = Server::start(Config::ephemeral(1, profile(&[])))
        .await
        .unwrap();
    let addr = server.addrs()[0];
    server
        .control(
            0,
            Control::Set {
                fault: Fault::Down,
                revert_after: None,
            },
        )
        .await
        .unwrap();
    assert!(refused(addr).await);
    server.control(0, Control::Reset).await.unwrap();
    assert_eq!(get(addr, "/").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn hang_accepts_and_never_answers_until_reset() {
    let server = start(2, &[]).await;
    let [a, b] = server.addrs()[..] else {
        unreachable!()
    };
    control(a, &format!("hang?port={}", b.port())).await;

    let mut hung = TcpStream::connect(b).await.unwrap();
    hung.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(300), hung.read(&mut buf)).await;
    assert!(early.is_err(), "no answer while hung, not even to /health");
    let quick = client()
        .get(url(b, "/"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(quick.unwrap_err().is_timeout());

    control(a, "reset?port=all").await;
    let n = tokio::time::timeout(PATIENCE, hung.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the hung request is closed without an answer");
    assert_eq!(get(b, "/").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_delays_every_answer() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    control(addr, "slow?delay=300ms").await;
    for path in ["/", "/health"] {
        let t = Instant::now();
        assert_eq!(get(addr, path).await.status(), 200);
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{path} {:?}",
            t.elapsed()
        );
    }
    assert_eq!(get(addr, "/ready").await.status(), 503);
    server.shutdown().await;
}

#[tokio::test]
async fn errors_fail_work_but_not_health() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    control(addr, "errors?rate=1&status=503").await;
    for _ in 0..5 {
        let r = get(addr, "/").await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
        assert_eq!(json(r).await["error"], "injected error");
    }
    let r = post(addr, "/v1/chat/completions", r#"{"messages":[]}"#).await;
    assert_eq!(r.status(), 503);
    assert_eq!(json(r).await["error"]["type"], "server_error");
    assert_eq!(get(addr, "/health").await.status(), 200);
    let r = get(addr, "/ready").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "not ready: faulted\n");
    control(addr, "clear?fault=errors").await;
    assert_eq!(get(addr, "/").await.status(), 200);
    assert_eq!(get(addr, "/ready").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn reset_connections_cuts_the_body_and_sends_rst() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    control(addr, "reset-connections?after=4").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let end = tokio::time::timeout(PATIENCE, s.read_to_end(&mut got))
        .await
        .unwrap();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers arrive");
    let (head, body) = (String::from_utf8_lossy(&got[..split]), &got[split + 4..]);
    let full = mockbackend::replies::text_reply(addr.port()).len();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {full}")), "{head}");
    assert_eq!(
        body,
        &"响应来自".as_bytes()[..4],
        "only the first 4 body bytes"
    );
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);

    let err = client()
        .get(url(addr, "/"))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    assert!(err.is_err(), "a real client sees the cut");
    server.shutdown().await;
}

#[tokio::test]
async fn drain_closes_connections_and_says_not_ready() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    control(addr, "drain").await;
    let r = get(addr, "/").await;
    assert_eq!(r.status(), 200, "draining still serves");
    assert_eq!(r.headers()["connection"], "close");
    let r = get(addr, "/ready").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "not ready: draining\n");
    control(addr, "undrain").await;
    assert_eq!(get(addr, "/ready").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn load_pins_the_metrics_a_dynamic_weight_balancer_reads() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    control(addr, "load?cpu=91&memory=96").await;
    let v = json(get(addr, "/metrics").await).await;
    assert_eq!(v["cpu_usage"], 91.0);
    assert_eq!(v["memory_usage"], 96.0);
    assert_eq!(
        get(addr, "/ready").await.status(),
        200,
        "a busy node is still ready"
    );
    let state = control(addr, "reset").await;
    assert_eq!(state["ports"][0]["faults"]["load"], serde_json::Value::Null);
    assert_eq!(json(get(addr, "/metrics").await).await["cpu_usage"], 5.0);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_control_requests_get_400_or_409() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let r = control_request(addr, "explode").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(json(r).await["error"]
        .as_str()
        .unwrap()
        .contains("unknown action"));
    let r = control_request(addr, "down?port=1").send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(json(r).await["error"].as_str().unwrap().contains("port 1"));
    assert_eq!(get(addr, "/").await.status(), 200, "nothing changed");
    server.shutdown().await;
}

/// A control without the token, from behind a proxy, or from another site's
/// page is refused with 403 and changes nothing; a random token is drawn
/// when none is configured.
#[tokio::test]
async fn controls_need_the_token_and_refuse_proxies_and_foreign_pages() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let down = || client().post(url(addr, "/_mock/down?for=5s"));
    let refusals = [
        (down(), "X-Mock-Token"),
        (down().header("x-mock-token", "guess"), "X-Mock-Token"),
        (
            down()
                .header("x-mock-token", TOKEN)
                .header("x-forwarded-for", "10.0.0.9"),
            "x-forwarded-for",
        ),
        (
            down()
                .header("x-mock-token", TOKEN)
                .header("via", "1.1 nginx"),
            "via",
        ),
        (
            down()
                .header("x-mock-token", TOKEN)
                .header("origin", "http://evil.example")
                .header("content-type", "application/x-www-form-urlencoded"),
            "other sites",
        ),
    ];
    for (request, why) in refusals {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403, "{why}");
        let error = json(r).await["error"].as_str().unwrap().to_string();
        assert!(error.contains(why), "{error}");
    }
    assert_eq!(get(addr, "/").await.status(), 200, "still up");
    assert_eq!(
        get(addr, "/_mock/state").await.status(),
        200,
        "reads stay open"
    );
    server.shutdown().await;

    let drawn = Server::start(Config::ephemeral(1, Profile::default()))
        .await
        .unwrap();
    assert_eq!(drawn.admin_token().len(), 32);
    let other = Server::start(Config::ephemeral(1, Profile::default()))
        .await
        .unwrap();
    assert_ne!(drawn.admin_token(), other.admin_token());
    drawn.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn injected_errors_must_be_final_statuses() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    for status in ["101", "100", "199"] {
        let r = control_request(addr, &format!("errors?rate=1&status={status}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{status}");
        let error = json(r).await["error"].as_str().unwrap().to_string();
        assert!(error.contains("between 200 and 599"), "{error}");
    }
    assert_eq!(get(addr, "/").await.status(), 200, "no error injected");
    server.shutdown().await;
}

#[tokio::test]
async fn error_rate_is_repeatable_with_a_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let mut config = Config::ephemeral(
            1,
            profile(&[("error_rate", "0.5"), ("error_status", "502")]),
        );
        config.seed = Some(seed);
        let server = Server::start(config).await.unwrap();
        let addr = server.addrs()[0];
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(get(addr, "/").await.status().as_u16());
        }
        server.shutdown().await;
        out
    }
    let a = statuses(7).await;
    assert_eq!(a, statuses(7).await, "same seed, same answers");
    assert_ne!(a, statuses(8).await, "another seed, other answers");
    let fails = a.iter().filter(|s| **s == 502).count();
    assert!((8..=32).contains(&fails), "about half fail: {fails}/40");
}
