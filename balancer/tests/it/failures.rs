//! The proxy under failures, as nginx behaves: real backends on loopback
//! that answer 502 or 404, refuse, answer late, stall mid-body or send a
//! head that does not parse, and the status and `X-Upstream` each request
//! gets. The same cases run against real nginx in bench/nginx-failures.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{canned, status_and_upstream};
use balancer::conf;
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, Control, Fault, Profile, Server as Mock};

/// Mock ports, one per profile (`key=value` settings each).
async fn mocks(profiles: &[&[(&str, &str)]]) -> Mock {
    let ports = profiles
        .iter()
        .map(|settings| {
            let mut p = Profile::default();
            for (k, v) in *settings {
                p.set(k, v).unwrap();
            }
            mockbackend::PortConfig {
                port: 0,
                profile: p,
            }
        })
        .collect();
    Mock::start(Config {
        ports,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// A backend whose answer's head does not parse: a header name with a space.
async fn bad_header_backend() -> SocketAddr {
    canned("HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nok").await
}

/// A port nothing listens on: connections are refused.
fn refusing() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn proxy(conf: &str) -> Proxy {
    let config = conf::load("failures.conf", conf).unwrap();
    Proxy::start(Options::new("127.0.0.1:0".parse().unwrap(), config))
        .await
        .unwrap()
}

/// `upstream pool { SERVERS }` and one location with `LOCATION` directives.
fn config(servers: &str, location: &str) -> String {
    format!("upstream pool {{ {servers} }}\nserver {{ location / {{ proxy_pass http://pool; {location} }} }}")
}

/// Sends GET / and returns the status and `X-Upstream`.
async fn get(p: &Proxy) -> (u16, String) {
    let request = reqwest::Client::new()
        .get(format!("http://{}/", p.addr()))
        .timeout(Duration::from_secs(30));
    status_and_upstream(request).await
}

async fn errors(m: &Mock, i: usize, status: u16) {
    let fault = Fault::Errors { rate: 1.0, status };
    let set = Control::Set {
        fault,
        revert_after: None,
    };
    m.control(i, set).await.unwrap();
}

#[tokio::test]
async fn a_502_on_the_last_try_is_relayed_and_not_counted_against_the_server() {
    let m = mocks(&[&[], &[]]).await;
    errors(&m, 0, 502).await;
    let [x, a] = [m.addrs()[0], m.addrs()[1]];
    let p = proxy(&config(
        &format!("server {x}; server {a};"),
        "proxy_next_upstream error timeout http_502; proxy_next_upstream_tries 1;",
    ))
    .await;
    let mut seq = Vec::new();
    for _ in 0..4 {
        seq.push(get(&p).await);
    }
    // As nginx: 502[X] 200[A] 502[X] 200[A]; X keeps its turn.
    let want = |s: u16, addr: SocketAddr| (s, addr.to_string());
    assert_eq!(
        seq,
        [want(502, x), want(200, a), want(502, x), want(200, a)]
    );
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_finds_no_server_left_names_the_upstream() {
    let (x, y) = (refusing(), refusing());
    let p = proxy(&config(&format!("server {x} max_fails=2; server {y};"), "")).await;
    assert_eq!(get(&p).await, (502, format!("{x}, {y}")));
    // Y is out; X fails its second time with a try left, and none is.
    assert_eq!(get(&p).await, (502, format!("{x}, pool")));
    p.shutdown().await;
}

#[tokio::test]
async fn down_servers_are_no_tries() {
    let m = mocks(&[&[], &[]]).await;
    errors(&m, 0, 404).await;
    let [n1, n2] = [m.addrs()[0], m.addrs()[1]];
    let p = proxy(&config(
        &format!("server {n1}; server {n2} down;"),
        "proxy_next_upstream http_404;",
    ))
    .await;
    assert_eq!(get(&p).await, (404, n1.to_string()));
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn the_read_timeout_is_its_own_not_added_to_the_connect_timeout() {
    let m = mocks(&[&[("latency", "2s")]]).await;
    let slow = m.addrs()[0];
    // The default 60 s connect timeout must not stretch the 300 ms read.
    let p = proxy(&config(
        &format!("server {slow};"),
        "proxy_read_timeout 300ms;",
    ))
    .await;
    assert_eq!(get(&p).await, (504, slow.to_string()));
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn an_invalid_header_is_a_failure_retried_only_when_listed() {
    let bad = bad_header_backend().await;
    let m = mocks(&[&[]]).await;
    let a = m.addrs()[0];
    let servers = format!("server {bad}; server {a};");
    let p = proxy(&config(&servers, "")).await;
    // Not `error`: nginx answers 502 without trying A, and counts it.
    assert_eq!(get(&p).await, (502, bad.to_string()));
    assert_eq!(get(&p).await, (200, a.to_string()), "bad is out");
    p.shutdown().await;
    let p = proxy(&config(
        &servers,
        "proxy_next_upstream error invalid_header;",
    ))
    .await;
    assert_eq!(get(&p).await, (200, format!("{bad}, {a}")));
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn the_read_timeout_applies_between_two_reads_of_a_streamed_body() {
    // A stream that stops after two tokens and never ends.
    let m = mocks(&[&[
        ("tokens_per_sec", "50"),
        ("output_tokens", "50"),
        ("stall_after", "2"),
    ]])
    .await;
    let node = m.addrs()[0];
    let p = proxy(&config(
        &format!("server {node};"),
        "proxy_read_timeout 300ms;",
    ))
    .await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", p.addr()))
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the head came in time");
    let e = r.text().await.unwrap_err();
    assert!(
        !e.is_timeout(),
        "the proxy cut the stalled body; the client did not have to: {e}"
    );
    p.shutdown().await;
    m.shutdown().await;
}
