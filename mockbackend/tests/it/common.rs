use std::net::SocketAddr;
use std::time::Duration;

use mockbackend::{Config, Profile, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound on any single wait in these tests: not a speed check, a guard
/// against a test hanging forever.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn profile(settings: &[(&str, &str)]) -> Profile {
    let mut p = Profile::default();
    for (k, v) in settings {
        p.set(k, v).unwrap();
    }
    p
}

/// The admin token the test servers are started with.
pub const TOKEN: &str = "it-token";

pub async fn start(n: usize, settings: &[(&str, &str)]) -> Server {
    let mut config = Config::ephemeral(n, profile(settings));
    config.admin_token = Some(TOKEN.into());
    Server::start(config).await.unwrap()
}

/// A `/_mock/` control as a user on this machine sends it.
pub fn control_request(addr: SocketAddr, action: &str) -> reqwest::RequestBuilder {
    client()
        .post(url(addr, &format!("/_mock/{action}")))
        .header("x-mock-token", TOKEN)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

pub async fn get(addr: SocketAddr, path: &str) -> reqwest::Response {
    client().get(url(addr, path)).send().await.unwrap()
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(url(addr, path))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

pub async fn json(r: reqwest::Response) -> serde_json::Value {
    r.json().await.unwrap()
}

/// Sends raw bytes and reads until the server closes (or PATIENCE runs out).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `/_mock/state` until `check` holds for port `index`'s entry.
pub async fn wait_state(
    addr: SocketAddr,
    index: usize,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let state = json(get(addr, "/_mock/state").await).await;
        if check(&state["ports"][index]) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state never matched: {state}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
