//! The reverse proxy with real mockbackend ports behind it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::status_and_upstream;
use balancer::conf;
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, Control, Fault, Profile, Server as Mock};

const PATIENCE: Duration = Duration::from_secs(10);

struct Bed {
    mock: Mock,
    proxy: Proxy,
    log: PathBuf,
}

impl Bed {
    /// `n` mock backends and a proxy configured by `conf`, a function of the
    /// backends' addresses returning nginx.conf text (an access_log line is added).
    async fn start(n: usize, profile: Profile, conf: impl Fn(&[SocketAddr]) -> String) -> Bed {
        Bed::start_with(n, profile, conf, |_| {}).await
    }

    async fn start_with(
        n: usize,
        profile: Profile,
        conf: impl Fn(&[SocketAddr]) -> String,
        tune: impl Fn(&mut Options),
    ) -> Bed {
        let mock = Mock::start(Config::ephemeral(n, profile)).await.unwrap();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log =
            std::env::temp_dir().join(format!("balancer-test-{}-{n}.log", std::process::id()));
        let text = format!(
            "{}\naccess_log {} lbkit;\n",
            conf(&mock.addrs()),
            log.display()
        );
        let config = conf::load("test.conf", &text).unwrap();
        let mut options = Options::new("127.0.0.1:0".parse().unwrap(), config);
        tune(&mut options);
        let proxy = Proxy::start(options).await.unwrap();
        Bed { mock, proxy, log }
    }

    async fn kill(&self, i: usize) {
        let down = Control::Set {
            fault: Fault::Down,
            revert_after: None,
        };
        self.mock.control(i, down).await.unwrap();
    }

    async fn revive(&self, i: usize) {
        self.mock.control(i, Control::Reset).await.unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy.addr())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        status_and_upstream(client().get(self.url(path))).await
    }

    /// The port of the backend that finally answered (X-Upstream's last entry).
    fn index_of(&self, upstream: &str) -> Option<usize> {
        let last = upstream.rsplit(", ").next()?;
        self.mock.addrs().iter().position(|a| a.to_string() == last)
    }

    async fn finish(self) -> Vec<String> {
        self.proxy.shutdown().await;
        self.mock.shutdown().await;
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines().map(str::to_string).collect()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// One upstream `b` with `method` and these server parameters, serving `/`.
fn simple(addrs: &[SocketAddr], method: &str, params: &[&str]) -> String {
    format!(
        "upstream b {{ {method} {} }}\nserver {{ location / {{ proxy_pass http://b; }} }}",
        servers(addrs, params)
    )
}

fn servers(addrs: &[SocketAddr], params: &[&str]) -> String {
    addrs
        .iter()
        .zip(params)
        .map(|(a, p)| format!("server {a} {p};\n"))
        .collect()
}

fn letter(bed: &Bed, upstream: &str) -> char {
    (b'a' + bed.index_of(upstream).unwrap() as u8) as char
}

#[tokio::test]
async fn sequential_requests_follow_smooth_weighted_round_robin() {
    let bed = Bed::start(3, Profile::default(), |a| {
        simple(a, "", &["weight=5", "", ""])
    })
    .await;
    let mut seq = String::new();
    for _ in 0..14 {
        let (status, upstream) = bed.get("/").await;
        assert_eq!(status, 200);
        seq.push(letter(&bed, &upstream));
    }
    assert_eq!(seq, "aabacaaaabacaa");
    let log = bed.finish().await;
    assert_eq!(log.len(), 14);
    assert!(
        log[0].contains("\"GET / HTTP/1.1\" 200 ") && log[0].contains(" us=200"),
        "{}",
        log[0]
    );
}

#[tokio::test]
async fn a_node_killed_mid_run_costs_no_client_error_and_comes_back() {
    let bed = Bed::start(3, Profile::default(), |a| {
        let p = "max_fails=1 fail_timeout=1s";
        simple(a, "", &[p, p, p])
    })
    .await;
    let mut per_node = [0usize; 3];
    for i in 0..90 {
        if i == 10 {
            bed.kill(1).await;
        }
        if i == 40 {
            bed.revive(1).await;
        }
        if i == 41 {
            // fail_timeout is 1 s in nginx's whole seconds: at most 2 s to wait.
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
        let (status, upstream) = bed.get("/").await;
        assert_eq!(status, 200, "request {i} failed through a killed node");
        if i > 41 {
            per_node[bed.index_of(&upstream).unwrap()] += 1;
        }
    }
    assert!(
        per_node[1] > 0,
        "the revived node is back in rotation: {per_node:?}"
    );
    let b = bed.mock.addrs()[1].to_string();
    let log = bed.finish().await;
    let retried: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(&format!("to: {b}, ")))
        .collect();
    assert!(!retried.is_empty(), "the log shows the retry");
    assert!(retried[0].contains(" us=502, 200"), "{}", retried[0]);
}

#[tokio::test]
async fn backup_serves_only_while_the_primaries_are_down() {
    let bed = Bed::start(3, Profile::default(), |a| {
        let p = "max_fails=1 fail_timeout=1s";
        simple(a, "", &[p, p, "backup"])
    })
    .await;
    for _ in 0..6 {
        let (_, upstream) = bed.get("/").await;
        assert_ne!(
            bed.index_of(&upstream),
            Some(2),
            "backup used while primaries are up"
        );
    }
    bed.kill(0).await;
    bed.kill(1).await;
    for _ in 0..6 {
        let (status, upstream) = bed.get("/").await;
        assert_eq!(status, 200);
        assert_eq!(bed.index_of(&upstream), Some(2), "{upstream}");
    }
    bed.revive(0).await;
    bed.revive(1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut on_backup = 0;
    for _ in 0..10 {
        let (_, upstream) = bed.get("/").await;
        on_backup += usize::from(bed.index_of(&upstream) == Some(2));
    }
    assert_eq!(on_backup, 0, "primaries took over again");
    bed.finish().await;
}

#[tokio::test]
async fn all_down_answers_502_no_live_upstreams() {
    let bed = Bed::start(2, Profile::default(), |a| simple(a, "", &["", ""])).await;
    bed.kill(0).await;
    bed.kill(1).await;
    // The first request tries both and fails; the next finds none live.
    assert_eq!(bed.get("/").await.0, 502);
    let started = Instant::now();
    let r = client().get(bed.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "no live upstreams\n");
    assert!(started.elapsed() < PATIENCE);
    let log = bed.finish().await;
    assert!(
        log.last().unwrap().contains("to: b rt="),
        "nginx logs the group name: {}",
        log.last().unwrap()
    );
}

#[tokio::test]
async fn streams_pass_through_chunk_by_chunk() {
    let mut profile = Profile::default();
    profile.set("ttft", "200ms").unwrap();
    profile.set("tokens_per_sec", "10").unwrap();
    let bed = Bed::start(1, profile, |a| simple(a, "", &[""])).await;
    let sent = Instant::now();
    let mut r = client()
        .post(bed.url("/v1/chat/completions"))
        .body(r#"{"messages":[],"stream":true,"max_tokens":6}"#)
        .send()
        .await
        .unwrap();
    let mut arrivals = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        if String::from_utf8_lossy(&chunk).contains("\"content\"") {
            arrivals.push(sent.elapsed());
        }
    }
    let total = sent.elapsed();
    assert!(arrivals.len() >= 2, "{arrivals:?}");
    // Tokens come 100 ms apart for 0.5 s after the first: a buffering proxy
    // would deliver them all at the end.
    assert!(
        total - arrivals[0] >= Duration::from_millis(400),
        "first token at {:?}, end at {total:?}",
        arrivals[0]
    );
    bed.finish().await;
}

#[tokio::test]
async fn ip_hash_keeps_each_forwarded_client_on_one_node() {
    let bed = Bed::start_with(
        3,
        Profile::default(),
        |a| {
            format!(
                "upstream b {{ ip_hash; {} }}\nserver {{ location / {{ proxy_pass http://b; }} }}",
                servers(a, &["", "", ""])
            )
        },
        |o| o.trust_forwarded_for = true,
    )
    .await;
    let mut used = std::collections::HashSet::new();
    for c in 0..40 {
        let ip = format!("10.{}.{}.7", c / 8, c % 8 * 13);
        let mut nodes = std::collections::HashSet::new();
        for _ in 0..4 {
            let r = client()
                .get(bed.url("/"))
                .header("x-forwarded-for", &ip)
                .send()
                .await
                .unwrap();
            let upstream = r.headers()["x-upstream"].to_str().unwrap().to_string();
            nodes.insert(upstream.clone());
            used.insert(upstream);
        }
        assert_eq!(nodes.len(), 1, "{ip} moved: {nodes:?}");
    }
    assert_eq!(used.len(), 3, "40 clients spread over all nodes");
    bed.finish().await;
}

#[tokio::test]
async fn paths_route_to_their_own_pools() {
    let bed = Bed::start(4, Profile::default(), |a| {
        format!(
            "upstream text {{ least_conn; server {}; server {}; }}\nupstream image {{ server {}; server {}; }}
             server {{ location /api/text/ {{ proxy_pass http://text; }} location /api/image/ {{ proxy_pass http://image; }}
                       location = /health {{ return 200 \"healthy\\n\"; }} }}",
            a[0], a[1], a[2], a[3]
        )
    })
    .await;
    for _ in 0..6 {
        let (_, up) = bed.get("/api/text/generate").await;
        assert!(matches!(bed.index_of(&up), Some(0 | 1)), "{up}");
        let (_, up) = bed.get("/api/image/generate").await;
        assert!(matches!(bed.index_of(&up), Some(2 | 3)), "{up}");
    }
    let r = client().get(bed.url("/health")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "healthy\n");
    assert_eq!(bed.get("/elsewhere").await.0, 404);
    bed.finish().await;
}

#[tokio::test]
async fn active_health_checks_take_a_hung_node_out_and_back() {
    // max_fails=0: passive checks never act, so only the probe can.
    let bed = Bed::start(2, Profile::default(), |a| {
        format!(
            "upstream b {{ {} }}\nserver {{ location / {{ proxy_pass http://b; proxy_read_timeout 5s; health_check interval=100ms fails=2 passes=1 uri=/health; }} }}",
            servers(a, &["max_fails=0", "max_fails=0"])
        )
    })
    .await;
    bed.kill(1).await;
    let deadline = Instant::now() + PATIENCE;
    let unhealthy = |bed: &Bed| {
        bed.proxy
            .upstream("b")
            .unwrap()
            .peers()
            .nth(1)
            .unwrap()
            .1
            .unhealthy
    };
    while !unhealthy(&bed) {
        assert!(Instant::now() < deadline, "the probe never marked it down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..6 {
        assert_eq!(bed.index_of(&bed.get("/").await.1), Some(0));
    }
    bed.revive(1).await;
    while unhealthy(&bed) {
        assert!(Instant::now() < deadline, "the probe never brought it back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = [0; 2];
    for _ in 0..6 {
        seen[bed.index_of(&bed.get("/").await.1).unwrap()] += 1;
    }
    assert_eq!(seen, [3, 3]);
    bed.finish().await;
}

#[tokio::test]
async fn dynamic_weights_halve_a_peer_short_of_memory() {
    let bed = Bed::start_with(
        2,
        Profile::default(),
        |a| simple(a, "", &["weight=4", "weight=4"]),
        |o| o.dynamic_weights = Some(Duration::from_millis(100)),
    )
    .await;
    let weight = |bed: &Bed, i: usize| {
        bed.proxy
            .upstream("b")
            .unwrap()
            .peers()
            .nth(i)
            .unwrap()
            .1
            .server
            .weight
    };
    let load = Fault::Load {
        cpu: 50.0,
        memory: 95.0,
    };
    bed.mock
        .control(
            0,
            Control::Set {
                fault: load,
                revert_after: None,
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while weight(&bed, 0) != 2 {
        assert!(Instant::now() < deadline, "weight never halved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(weight(&bed, 1), 4, "the other peer keeps its weight");
    // Weights 2:4 now: in a block of 6 sequential requests, a gets 2.
    let mut on_a = 0;
    for _ in 0..6 {
        on_a += usize::from(bed.index_of(&bed.get("/").await.1) == Some(0));
    }
    assert_eq!(on_a, 2);
    bed.revive(0).await;
    while weight(&bed, 0) != 4 {
        assert!(Instant::now() < deadline, "weight never restored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bed.finish().await;
}

#[tokio::test]
async fn upstreams_get_the_headers_the_config_sets() {
    // Seed 000's proxy_set_header lines.
    let bed = Bed::start(1, Profile::default(), |a| {
        format!(
            "proxy_set_header Host $host; proxy_set_header X-Real-IP $remote_addr;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Forwarded-Proto $scheme;\n{}",
            simple(a, "", &[""])
        )
    })
    .await;
    let r = client()
        .get(bed.url("/_mock/headers"))
        .header("host", "AI.example.com:8080")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "keep-alive, x-secret")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["x-upstream"]
        .to_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let v: serde_json::Value = r.json().await.unwrap();
    let h = &v["headers"];
    assert_eq!(h["host"], "ai.example.com", "$host: lowercased, no port");
    assert_eq!(h["x-real-ip"], "127.0.0.1");
    assert_eq!(
        h["x-forwarded-for"], "203.0.113.9, 127.0.0.1",
        "appended, as $proxy_add_x_forwarded_for"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["connection"], "close", "nginx's own Connection");
    bed.finish().await;
}

#[tokio::test]
async fn without_proxy_set_header_upstreams_get_nginx_defaults() {
    let bed = Bed::start(1, Profile::default(), |a| simple(a, "", &[""])).await;
    let r = client()
        .get(bed.url("/_mock/headers"))
        .header("host", "ai.example.com")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let h = &v["headers"];
    assert_eq!(h["host"], "b", "$proxy_host: the upstream's name");
    assert_eq!(h["connection"], "close");
    assert_eq!(
        h["x-forwarded-for"], "203.0.113.9",
        "the client's, untouched"
    );
    assert!(h.get("x-real-ip").is_none(), "{h}");
    bed.finish().await;
}

#[tokio::test]
async fn a_location_with_access_log_off_is_not_logged() {
    // Seed 000's /health: answered by the balancer itself, and, as nginx
    // does, left out of every access log, including inherited ones.
    let bed = Bed::start(1, Profile::default(), |a| {
        format!(
            "upstream b {{ server {}; }}\nserver {{ location / {{ proxy_pass http://b; }}\nlocation /health {{ access_log off; return 200 \"healthy\\n\"; }} }}",
            a[0]
        )
    })
    .await;
    assert_eq!(bed.get("/health").await.0, 200);
    assert_eq!(bed.get("/v1/models").await.0, 200);
    assert_eq!(bed.get("/health").await.0, 200);
    let log = bed.finish().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].contains("\"GET /v1/models HTTP/1.1\" 200 "),
        "{}",
        log[0]
    );
}
