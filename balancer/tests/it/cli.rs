//! The `balancer` binary: bad configuration is one line and exit 2.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_balancer");

fn refused(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
    )
}

fn config_error(text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "balancer-bad-{}-{}.conf",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    let (code, err) = refused(&["--config", &path.display().to_string()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err.replace(&path.display().to_string(), "nginx.conf")
}

#[test]
fn bad_configurations_name_file_line_and_directive() {
    assert_eq!(
        config_error("upstream b {\n  server 127.0.0.1:1;\n  sticky cookie srv;\n}\n"),
        "balancer: error: nginx.conf:3: sticky: unknown directive, or one the reference balancer does not model; run this config on nginx"
    );
    assert_eq!(
        config_error("upstream b {\n  server 127.0.0.1:1 weight=-2;\n}\n"),
        "balancer: error: nginx.conf:2: server: invalid weight \"-2\""
    );
    assert_eq!(
        config_error("upstream b {\n  server 127.0.0.1:1;\n  server 127.0.0.1:1;\n}\n"),
        "balancer: error: nginx.conf:3: server: server 127.0.0.1:1 is listed twice"
    );
    assert_eq!(
        config_error("http {\n  upstream b {\n  }\n}\n"),
        "balancer: error: nginx.conf:2: upstream: upstream \"b\" has no servers"
    );
    assert_eq!(
        config_error("server {\n listen 443 ssl;\n location / { return 200; }\n}\n"),
        "balancer: error: nginx.conf: listen: no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"
    );
}

#[test]
fn bad_flags_name_the_flag() {
    let (code, err) = refused(&["--upstream", "127.0.0.1:1 weight=x"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "balancer: error: --upstream '127.0.0.1:1 weight=x': server: invalid weight \"x\""
        )
    );
    let (code, err) = refused(&["--upstream", "127.0.0.1:1", "--method", "fastest"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("balancer: error: --method 'fastest': unknown method; use round_robin"),
        "{err}"
    );
    let (code, err) = refused(&["--upstream", "127.0.0.1:1", "--method", "hash"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "balancer: error: --method 'hash': hash: takes 1 to 2 arguments, not 0"
        )
    );
    for (flag, value) in [
        ("--keepalive-timeout", "soon"),
        ("--client-header-timeout", "1x"),
        ("--worker-connections", "0"),
    ] {
        let (code, err) = refused(&["--upstream", "127.0.0.1:1", flag, value]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.starts_with(&format!("balancer: error: {flag} {value}")),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let (code, err) = refused(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("--upstream"), "{err}");
    let (code, err) = refused(&[
        "--upstream",
        "127.0.0.1:1",
        "--ssl-certificate",
        "/nonexistent/c.pem",
        "--ssl-certificate-key",
        "/nonexistent/k.pem",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("balancer: error: ssl_certificate: /nonexistent/c.pem: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = refused(&["--config", "/nonexistent/nginx.conf"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read --config /nonexistent/nginx.conf"),
        "{err}"
    );
}

/// The address on the balancer's "listening on SCHEME://ADDR" line.
fn listening(child: &mut std::process::Child, scheme: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.split(scheme)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {scheme} in {line:?}"))
        .to_string()
}

/// `--ssl-certificate`, `--http2` and `--upstream-tls`: HTTPS in front,
/// TLS behind, as `listen ... ssl http2` and `proxy_pass https://`.
#[tokio::test]
async fn tls_flags_serve_https_and_reach_tls_upstreams() {
    use primitives::tls::{self, Identity, ServerTls};

    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let identity = Identity::self_signed().unwrap();
    let dir = std::env::temp_dir().join(format!("balancer-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    identity.write_pem(&cert, &key).unwrap();
    let mut config = mockbackend::Config::ephemeral(1, mockbackend::Profile::default());
    let server = tls::server_config(identity, &[tls::HTTP11]).unwrap();
    config.tls = Some(ServerTls(server));
    let mock = mockbackend::Server::start(config).await.unwrap();
    let upstream = mock.addrs()[0].to_string();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--upstream-tls",
        ])
        .args([
            "--ssl-certificate",
            &cert_arg,
            "--ssl-certificate-key",
            &key_arg,
            "--http2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = listening(&mut child, "https://").parse().unwrap();
    let connect = |alpn| async move { tls::connect_unverified(addr, alpn).await.unwrap() };
    let h2 = connect(&[tls::H2, tls::HTTP11]).await;
    assert_eq!(
        h2.get_ref().1.alpn_protocol(),
        Some(tls::H2),
        "--http2 offers h2"
    );
    let mut h1 = connect(&[tls::HTTP11]).await;
    h1.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    h1.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // It came from the TLS mock, through the balancer.
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("x-upstream: {upstream}")),
        "{answer}"
    );
    let _ = child.kill();
    let _ = child.wait();
    mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut profile = mockbackend::Profile::default();
    profile.set("latency", "600ms").unwrap();
    let mock = mockbackend::Server::start(mockbackend::Config::ephemeral(1, profile))
        .await
        .unwrap();
    let upstream = mock.addrs()[0].to_string();
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--upstream", &upstream])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening(&mut child, "http://");
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the in-flight request finished"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "balancer did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, Some(0));
    mock.shutdown().await;
}
