use std::net::IpAddr;
use std::time::Duration;

use balancer::{Client, KeyExpr, Method, Outcome, Server, Upstream, UpstreamSpec};

pub fn upstream(method: Method, servers: Vec<Server>) -> Upstream {
    Upstream::new(UpstreamSpec::new("backend", method, servers), 7).unwrap()
}

/// Servers a, b, c, ... on port 80 with the given weights.
pub fn weighted(weights: &[u32]) -> Vec<Server> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| Server::new(format!("{}:80", (b'a' + i as u8) as char)).weight(*w))
        .collect()
}

pub fn hash(key: &str, consistent: bool) -> Method {
    Method::Hash {
        key: KeyExpr::parse(key).unwrap(),
        consistent,
    }
}

/// Sends `request`: the status and `X-Upstream` (empty when absent).
pub async fn status_and_upstream(request: reqwest::RequestBuilder) -> (u16, String) {
    let r = request.send().await.unwrap();
    let upstream = r
        .headers()
        .get("x-upstream")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), upstream)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One request start to finish: returns the short name ("a") of the peer it
/// ended on, or "-" when nothing could be picked.
pub fn request(up: &mut Upstream, client: &Client, now: Duration, outcome: Outcome) -> String {
    let mut a = up.start(client);
    match up.pick(&mut a, now) {
        Some(p) => {
            let name = short(up, p);
            up.finish(&mut a, outcome, now);
            name
        }
        None => "-".to_string(),
    }
}

pub fn short(up: &Upstream, p: balancer::PeerRef) -> String {
    let addr = &up.peer(p).server.addr;
    addr.split(':').next().unwrap_or(addr).to_string()
}

/// `n` sequential, successful requests from one client at time zero.
pub fn picks(up: &mut Upstream, client: &Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| request(up, client, Duration::ZERO, Outcome::OK))
        .collect()
}

pub fn client(ip: &str) -> Client {
    Client::from_addr(ip.parse::<IpAddr>().unwrap())
}

pub fn keyed(key: &str) -> Client {
    Client {
        addr: None,
        key: key.to_string(),
    }
}

/// Every method, each with a client that exercises it.
pub fn every_method() -> Vec<(Method, Client)> {
    vec![
        (Method::RoundRobin, Client::default()),
        (Method::LeastConn, Client::default()),
        (Method::LeastTime { last_byte: false }, Client::default()),
        (Method::IpHash, client("10.0.0.1")),
        (hash("$request_uri", false), keyed("/chat")),
        (hash("$request_uri", true), keyed("/chat")),
        (Method::Random { two: false }, Client::default()),
        (Method::Random { two: true }, Client::default()),
    ]
}

/// A backend that answers every connection's first request with `answer`,
/// byte for byte, then closes: a hostile or broken server.
pub async fn canned(answer: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}
