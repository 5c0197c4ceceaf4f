//! HTTPS and HTTP/2 on loopback with a self-signed certificate: loadgen
//! against mockbackend over TLS (HTTP/1.1 and HTTP/2, plain requests and
//! event streams), over h2c, and against real nginx `listen ssl http2`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mockbackend::{Config, Profile, Server};
use primitives::tls::{self, Identity, ServerTls};
use serde_json::Value;

use crate::binary::loadgen;

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbkit-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` mock ports speaking HTTPS with a fresh self-signed certificate,
/// which is written to `dir` as cert.pem (and key.pem).
async fn tls_mock(n: usize, settings: &[(&str, &str)], dir: &Dir) -> Server {
    let identity = Identity::self_signed().unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    identity.write_pem(&cert, &key).unwrap();
    let mut profile = Profile::default();
    for (k, v) in settings {
        profile.set(k, v).unwrap();
    }
    let mut config = Config::ephemeral(n, profile);
    let server = tls::server_config(identity, &[tls::H2, tls::HTTP11]).unwrap();
    config.tls = Some(ServerTls(server));
    Server::start(config).await.unwrap()
}

/// Runs loadgen with `args` and `--json`, returning its exit code, its
/// report on stdout and the JSON.
async fn run(args: &[&str], dir: &Dir) -> (Option<i32>, String, Value) {
    let json = dir.file("run.json");
    let _ = std::fs::remove_file(&json);
    let mut all: Vec<String> = vec!["--json".into(), json.clone()];
    all.extend(args.iter().map(|a| a.to_string()));
    let o = loadgen(all, None).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let value = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (o.status.code(), text, value)
}

fn connections(v: &Value) -> (u64, u64) {
    let c = &v["connections"];
    (
        c["opened"].as_u64().unwrap(),
        c["tls_resumed"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn https_with_a_trusted_certificate_keeps_or_resumes_its_sessions() {
    let dir = Dir::new();
    let m = tls_mock(1, &[], &dir).await;
    let url = format!("https://{}/health", m.addrs()[0]);
    let ca = dir.file("cert.pem");
    // -k: one TLS connection per worker, every request on it.
    let (code, out, v) = run(&["-k", "-n", "300", "-c", "3", "--cacert", &ca, &url], &dir).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["complete"], 300, "{out}");
    assert_eq!(v["failed"]["total"], 0, "{out}");
    assert_eq!(v["protocol"], "HTTP/1.1 over TLS");
    assert_eq!(v["target"]["scheme"], "https");
    // (A worker that connects after another's handshake may resume it.)
    assert_eq!(connections(&v).0, 3, "{out}");
    assert!(out.contains("TLS Server Name:        127.0.0.1"), "{out}");
    // Without -k every request is a new connection, as ab's; after the
    // first, each resumes the session instead of a full handshake.
    let (code, out, v) = run(&["-n", "40", "--cacert", &ca, &url], &dir).await;
    assert_eq!((code, v["complete"].as_u64()), (Some(0), Some(40)), "{out}");
    let (opened, resumed) = connections(&v);
    assert_eq!(opened, 40);
    assert!(resumed >= 39, "{resumed} of 40 handshakes resumed");
    m.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_fails_closed_and_says_how_to_trust_it() {
    let dir = Dir::new();
    let m = tls_mock(1, &[], &dir).await;
    let url = format!("https://{}/health", m.addrs()[0]);
    // The system's roots do not hold a certificate made a moment ago.
    let (code, out, v) = run(&["-n", "5", &url], &dir).await;
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(v["complete"], 0, "{out}");
    assert!(out.contains("invalid peer certificate"), "{out}");
    assert!(out.contains("--cacert FILE, or --insecure"), "{out}");
    // --insecure takes it (and only for https://).
    let (code, out, _) = run(&["-n", "5", "--insecure", &url], &dir).await;
    assert_eq!(code, Some(0), "{out}");
    let plain = format!("http://{}/health", m.addrs()[0]);
    let (code, out, _) = run(&["-n", "5", "--insecure", &plain], &dir).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--insecure: is for https:// URLs"), "{out}");
    m.shutdown().await;
}

#[tokio::test]
async fn http2_over_tls_shares_each_connection_among_its_streams() {
    let dir = Dir::new();
    let m = tls_mock(2, &[("latency", "2ms")], &dir).await;
    let url = format!("https://{}/health", m.addrs()[0]);
    let args = [
        "--http2",
        "--insecure",
        "-n",
        "400",
        "-c",
        "8",
        "--streams-per-conn",
        "4",
        &url,
    ];
    let (code, out, v) = run(&args, &dir).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["complete"], 400, "{out}");
    assert_eq!(v["protocol"], "HTTP/2 over TLS");
    // 8 streams, 4 to a connection: two connections carried them all.
    assert_eq!(connections(&v).0, 2, "{out}");
    // The node's header came through HTTP/2's head as HTTP/1's would.
    let node = m.addrs()[0].to_string();
    assert_eq!(v["nodes"][&node]["requests"], 400, "{out}");
    m.shutdown().await;
}

#[tokio::test]
async fn event_streams_over_http2_tls_and_h2c_are_read_token_by_token() {
    let dir = Dir::new();
    let settings = [
        ("ttft", "20ms"),
        ("tokens_per_sec", "500"),
        ("output_tokens", "8"),
    ];
    let m = tls_mock(1, &settings, &dir).await;
    let https = format!("https://{}/v1/chat/completions", m.addrs()[0]);
    let mut plain = Profile::default();
    for (k, v) in settings {
        plain.set(k, v).unwrap();
    }
    let h = Server::start(Config::ephemeral(1, plain)).await.unwrap();
    let http = format!("http://{}/v1/chat/completions", h.addrs()[0]);
    for (transport, url) in [("--http2", &https), ("--h2c", &http)] {
        let args = [
            transport,
            "--stream",
            "-n",
            "40",
            "-c",
            "4",
            "--streams-per-conn",
            "4",
            url,
        ];
        let mut args: Vec<&str> = args.to_vec();
        if transport == "--http2" {
            args.push("--insecure");
        }
        let (code, out, v) = run(&args, &dir).await;
        assert_eq!(code, Some(0), "{transport}: {out}");
        let s = &v["streams"];
        assert_eq!(
            (s["answered"].as_u64(), s["whole"].as_u64()),
            (Some(40), Some(40)),
            "{out}"
        );
        assert_eq!(s["output_tokens"], 320, "{transport}: {out}");
        // The first token waits for the mock's 20 ms; the rest are paced.
        let ttft = s["ttft_ms"]["p50"].as_f64().unwrap();
        assert!(ttft >= 19.0, "{transport}: ttft p50 {ttft} ms");
        assert!(s["itl_ms"]["p50"].as_f64().unwrap() > 0.5, "{out}");
        assert_eq!(connections(&v).0, 1, "{transport}: {out}");
    }
    m.shutdown().await;
    h.shutdown().await;
}

/// Real nginx, started on `conf` in `dir`, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers too (SIGKILL would leave
    /// them running); SIGKILL only if it has not gone within 5 s.
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary(test: &str) -> Option<&'static Path> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("LBKIT_NEED_REAL_BALANCERS").is_none(),
            "{test}: LBKIT_NEED_REAL_BALANCERS is set and nginx is not installed"
        );
        eprintln!("{test}: skipped, nginx is not installed (apt-get install -y nginx)");
    }
    found
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_nginx(binary: &Path, dir: &Dir, conf: &str, port: u16) -> Nginx {
    std::fs::create_dir_all(dir.0.join("logs")).unwrap();
    std::fs::write(dir.file("nginx.conf"), conf).unwrap();
    let child = Command::new(binary)
        .args(["-p", &dir.file(""), "-e", &dir.file("logs/error.log")])
        .args(["-c", &dir.file("nginx.conf"), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let nginx = Nginx(child);
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nginx did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// nginx 1.22 (Debian 12) spells HTTP/2 `listen ... ssl http2`.
fn nginx_conf(dir: &Dir, port: u16, listen: &str, upstream: &str, scheme: &str) -> String {
    format!(
        "worker_processes 1;\npid {pid};\nevents {{ worker_connections 512; }}\nhttp {{\n\
         access_log off;\n client_body_temp_path {tmp}; proxy_temp_path {tmp};\n\
         upstream ai {{ {upstream} keepalive 16; }}\n\
         server {{\n listen 127.0.0.1:{port} {listen};\n\
         ssl_certificate {cert}; ssl_certificate_key {key};\n\
         location / {{ proxy_pass {scheme}://ai; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }}\n}}\n}}\n",
        pid = dir.file("nginx.pid"),
        tmp = dir.file("tmp"),
        cert = dir.file("cert.pem"),
        key = dir.file("key.pem"),
    )
}

/// What a run through a balancer showed: answers by status, and the share
/// of each node.
async fn through(url: &str, extra: &[&str], dir: &Dir) -> (Value, Vec<(String, f64)>) {
    let ca = dir.file("cert.pem");
    let mut args = extra.to_vec();
    args.extend(["--cacert", &ca, url]);
    let (code, out, v) = run(&args, dir).await;
    assert_eq!(code, Some(0), "{args:?}: {out}");
    assert_eq!(v["failed"]["total"], 0, "{args:?}: {out}");
    if args.contains(&"--stream") {
        assert_eq!(v["streams"]["whole"], 40, "{out}");
    }
    let nodes = v["nodes"].as_object().unwrap();
    let shares = nodes
        .iter()
        .map(|(n, s)| (n.clone(), s["share"].as_f64().unwrap()))
        .collect();
    (v["statuses"].clone(), shares)
}

#[tokio::test]
async fn real_nginx_listen_ssl_http2_and_the_balancer_agree_end_to_end_over_tls() {
    let test = "real_nginx_listen_ssl_http2_and_the_balancer_agree_end_to_end_over_tls";
    let Some(binary) = nginx_binary(test) else {
        return;
    };
    let dir = Dir::new();
    // TLS mocks; nginx and the balancer serve the mocks' certificate too
    // (it names 127.0.0.1 and localhost), which loadgen trusts by --cacert.
    let m = tls_mock(2, &[("ttft", "5ms"), ("output_tokens", "6")], &dir).await;
    let upstream = crate::common::servers(&m);
    let port = free_port();
    let conf = nginx_conf(&dir, port, "ssl http2", &upstream, "https");
    let _nginx = start_nginx(binary, &dir, &conf, port);
    // The same config on the balancer, on a port of its own.
    let ours = conf.replace(&format!("127.0.0.1:{port} "), "127.0.0.1:0 ");
    let config = balancer::conf::load("nginx.conf", &ours).unwrap();
    let proxy = balancer::proxy::Proxy::start(balancer::proxy::Options::new(
        "127.0.0.1:0".parse().unwrap(),
        config,
    ))
    .await
    .unwrap();
    // HTTP/1.1 over TLS, HTTP/2 over TLS (by ALPN), and streams on HTTP/2;
    // both proxies speak TLS to the mocks (proxy_pass https://). nginx ends
    // an HTTP/2 connection after 1000 requests (http2_max_requests) with a
    // GOAWAY: the streams it refused go again on a new one, none is lost.
    let runs: [&[&str]; 3] = [
        &["-k", "-n", "400", "-c", "4"],
        &[
            "--http2",
            "--streams-per-conn",
            "4",
            "-n",
            "2400",
            "-c",
            "8",
        ],
        &["--http2", "--stream", "-n", "40", "-c", "4"],
    ];
    for (i, args) in runs.iter().enumerate() {
        let path = if i == 2 {
            "/v1/chat/completions"
        } else {
            "/health"
        };
        let nginx = through(&format!("https://localhost:{port}{path}"), args, &dir).await;
        let reference = through(&format!("https://{}{path}", proxy.addr()), args, &dir).await;
        assert_eq!(nginx.0, reference.0, "{args:?}: statuses");
        // Round robin over the two mocks, through TLS and HTTP/2, on both
        // (nodes named by the mocks' X-Backend through nginx, by X-Upstream
        // through the balancer: the same addresses).
        assert_eq!(nginx.1, reference.1, "{args:?}");
        assert!(
            nginx.1.iter().all(|(_, s)| (s - 0.5).abs() < 1e-9),
            "{args:?}: {:?}",
            nginx.1
        );
    }
    proxy.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn http2_refused_by_alpn_is_a_clear_failure() {
    let test = "http2_refused_by_alpn_is_a_clear_failure";
    let Some(binary) = nginx_binary(test) else {
        return;
    };
    let dir = Dir::new();
    let m = Server::start(Config::ephemeral(1, Profile::default()))
        .await
        .unwrap();
    let identity = Identity::self_signed().unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    identity.write_pem(&cert, &key).unwrap();
    let port = free_port();
    let upstream = format!("server {};", m.addrs()[0]);
    let _nginx = start_nginx(
        binary,
        &dir,
        &nginx_conf(&dir, port, "ssl", &upstream, "http"),
        port,
    );
    let url = format!("https://127.0.0.1:{port}/health");
    let (code, out, v) = run(&["--http2", "--insecure", "-n", "3", &url], &dir).await;
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(v["complete"], 0, "{out}");
    assert!(
        out.contains("does not speak HTTP/2 (by ALPN); drop --http2"),
        "{out}"
    );
    let (code, out, _) = run(&["--insecure", "-n", "3", &url], &dir).await;
    assert_eq!(code, Some(0), "HTTP/1.1 is what it speaks: {out}");
    m.shutdown().await;
}

/// The reference balancer on `conf`, with `{cert}` and `{key}` in it
/// replaced by the files in `dir`.
async fn tls_balancer(conf: &str, dir: &Dir) -> balancer::proxy::Proxy {
    use balancer::proxy::{Options, Proxy};
    let conf = conf
        .replace("{cert}", &dir.file("cert.pem"))
        .replace("{key}", &dir.file("key.pem"));
    let config = balancer::conf::load("tls.conf", &conf).unwrap();
    Proxy::start(Options::new("127.0.0.1:0".parse().unwrap(), config))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_balancer_serves_tls_and_http2_and_speaks_tls_to_its_upstreams() {
    let dir = Dir::new();
    let m = tls_mock(2, &[], &dir).await;
    let servers = crate::common::servers(&m);
    // The mocks' certificate is for localhost: verified by that name.
    let conf = format!(
        "upstream ai {{ {servers} }}\nserver {{ listen 127.0.0.1:0 ssl http2;\n\
         ssl_certificate {{cert}}; ssl_certificate_key {{key}};\n\
         location / {{ proxy_pass https://ai; proxy_ssl_verify on;\n\
         proxy_ssl_trusted_certificate {{cert}}; proxy_ssl_name localhost; }} }}"
    );
    let proxy = tls_balancer(&conf, &dir).await;
    assert!(proxy.tls());
    let url = format!("https://{}/health", proxy.addr());
    let ca = dir.file("cert.pem");
    for args in [
        vec!["-k", "-n", "400", "-c", "4"],
        vec!["--http2", "--streams-per-conn", "4", "-n", "400", "-c", "8"],
    ] {
        let mut args = args.clone();
        args.extend(["--cacert", &ca, &url]);
        let (code, out, v) = run(&args, &dir).await;
        assert_eq!(code, Some(0), "{args:?}: {out}");
        assert_eq!(v["complete"], 400, "{out}");
        assert_eq!(v["non_2xx"].as_u64().unwrap_or(0), 0, "{out}");
        // Round robin over both TLS upstreams, named by X-Upstream.
        for a in m.addrs() {
            assert_eq!(
                v["nodes"][a.to_string()]["requests"],
                200,
                "{args:?}: {out}"
            );
        }
    }
    proxy.shutdown().await;
    // A name the upstreams' certificate does not carry fails verification:
    // nginx answers 502, and so does the balancer.
    let wrong = conf.replace("proxy_ssl_name localhost", "proxy_ssl_name other.example");
    let proxy = tls_balancer(&wrong, &dir).await;
    let url = format!("https://{}/health", proxy.addr());
    let (code, out, v) = run(&["-n", "5", "--cacert", &ca, &url], &dir).await;
    assert_eq!(v["complete"], 5, "{out}");
    assert_eq!(v["statuses"]["502"], 5, "{code:?} {out}");
    proxy.shutdown().await;
    m.shutdown().await;
}
