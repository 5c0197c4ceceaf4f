use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_mockbackend");

/// Runs the binary expecting it to refuse at once.
fn refused(args: &[&str]) -> (i32, String) {
    let Output { status, stderr, .. } = Command::new(BIN).args(args).output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn assert_one_line_exit_2(args: &[&str], needles: &[&str]) {
    let (code, err) = refused(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let line = err.trim_end();
    assert!(
        !line.contains('\n') || line.starts_with("error:"),
        "one line: {line:?}"
    );
    for needle in needles {
        assert!(line.contains(needle), "{args:?}: {line:?} lacks {needle:?}");
    }
}

#[test]
fn bad_flags_get_one_clear_line_and_exit_2() {
    assert_one_line_exit_2(
        &["--ports", "80a1"],
        &["--ports", "80a1", "not a port number"],
    );
    assert_one_line_exit_2(&["--ports", "8002-8001"], &["--ports", "low to a high"]);
    assert_one_line_exit_2(
        &["--ports", "8001", "--latency", "20"],
        &["--latency", "'20'", "no unit"],
    );
    assert_one_line_exit_2(
        &["--ports", "8001", "--latency", "normal(1s)"],
        &["--latency", "two durations"],
    );
    assert_one_line_exit_2(
        &["--ports", "8001", "--error-rate", "1.5"],
        &["--error-rate", "between 0 and 1"],
    );
    assert_one_line_exit_2(
        &["--ports", "8001", "--profile", "9999:latency=1s"],
        &["9999", "not one of the served ports"],
    );
    assert_one_line_exit_2(
        &["--ports", "8001", "--profile", "8001:speed=fast"],
        &["unknown setting 'speed'"],
    );
    assert_one_line_exit_2(&["--bind", "localhost:x"], &["--bind", "not an IP address"]);
    assert_one_line_exit_2(&["--max-body", "lots"], &["--max-body", "not a size"]);
    assert_one_line_exit_2(
        &["--config", "/nonexistent/mock.toml"],
        &["/nonexistent/mock.toml", "cannot read"],
    );
    assert_one_line_exit_2(
        &[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ],
        &["--tls-cert", "/nonexistent/c.pem", "No such file"],
    );
    let (code, _) = refused(&["--tls-cert", "/nonexistent/c.pem"]);
    assert_eq!(code, 2, "--tls-cert needs --tls-key");
    let (code, _) = refused(&["--no-such-flag"]);
    assert_eq!(code, 2, "clap's usage errors exit 2 too");
}

#[test]
fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_one_line_exit_2(&["--ports", &port], &["--ports", &port, "already in use"]);
}

#[test]
fn a_bad_config_file_names_its_line() {
    let path = std::env::temp_dir().join(format!("mockbackend-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "ports = \"0\"\nlatency = \"normal(1s,\"\n").unwrap();
    let shown = path.display().to_string();
    assert_one_line_exit_2(&["--config", &shown], &[&shown, "latency", "normal(1s,"]);
    std::fs::write(&path, "ports = [0\n").unwrap();
    assert_one_line_exit_2(&["--config", &shown], &[&shown, "line"]);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn tls_self_signed_serves_https_with_h2_and_http1_by_alpn() {
    use primitives::tls;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut running = spawn(&["--ports", "0", "--tls-self-signed"], 1);
    let addr = running.addrs[0];
    let connect = |alpn| async move { tls::connect_unverified(addr, alpn).await.unwrap() };
    // A client that asks for h2 gets it.
    let h2 = connect(&[tls::H2, tls::HTTP11]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(tls::H2));
    // One that speaks HTTP/1.1 only is answered in HTTP/1.1, over TLS.
    let mut h1 = connect(&[tls::HTTP11]).await;
    h1.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    h1.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    running.child.kill().unwrap();
    let _ = running.child.wait();
}

/// A running binary and the addresses it printed.
struct Running {
    child: Child,
    addrs: Vec<SocketAddr>,
    /// The admin token from the line after the addresses.
    token: String,
    stdout: BufReader<std::process::ChildStdout>,
}

fn spawn(args: &[&str], ports: usize) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addrs = Vec::new();
    for _ in 0..ports {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        addrs.push(addr.parse().unwrap());
    }
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let token = line
        .split("X-Mock-Token: ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no token in {line:?}"))
        .to_string();
    Running {
        child,
        addrs,
        token,
        stdout,
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mockbackend did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let mut run = spawn(&["--ports", "0,0", "--latency", "700ms"], 2);
    let addr = run.addrs[0];
    let slow = tokio::spawn(get(addr, "/"));
    wait_state(addr, 0, |p| p["in_flight"] == 1).await;
    signal(&run.child, "TERM");
    let r = slow.await.unwrap();
    assert_eq!(r.status(), 200, "the in-flight request was finished");
    assert_eq!(r.text().await.unwrap(), format!("响应来自:{}", addr.port()));
    assert_eq!(
        tokio::task::spawn_blocking(move || wait_exit(&mut run.child))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn fault_control_takes_the_printed_or_given_token() {
    for (args, given) in [
        (vec!["--ports", "0"], None),
        (
            vec!["--ports", "0", "--admin-token", "s3cret"],
            Some("s3cret"),
        ),
    ] {
        let mut run = spawn(&args, 1);
        if let Some(given) = given {
            assert_eq!(run.token, given);
        }
        let addr = run.addrs[0];
        let down = |token: &str| {
            client()
                .post(url(addr, "/_mock/errors?rate=1&status=503"))
                .header("x-mock-token", token)
                .send()
        };
        assert_eq!(down("wrong").await.unwrap().status(), 403);
        assert_eq!(down(&run.token).await.unwrap().status(), 200);
        assert_eq!(get(addr, "/").await.status(), 503);
        signal(&run.child, "TERM");
        tokio::task::spawn_blocking(move || wait_exit(&mut run.child))
            .await
            .unwrap();
    }
    assert_one_line_exit_2(
        &["--admin-token", "a b"],
        &["--admin-token", "without spaces"],
    );
}

#[tokio::test]
async fn ctrl_c_with_nothing_in_flight_exits_0_at_once() {
    let mut run = spawn(&["--ports", "0"], 1);
    assert_eq!(get(run.addrs[0], "/health").await.status(), 200);
    signal(&run.child, "INT");
    assert_eq!(
        tokio::task::spawn_blocking(move || wait_exit(&mut run.child))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn log_config_file_and_per_port_profiles_work_from_the_command_line() {
    let path = std::env::temp_dir().join(format!("mockbackend-ok-{}.toml", std::process::id()));
    std::fs::write(&path, "ports = \"0,0\"\nerror_status = 503\n").unwrap();
    let mut run = spawn(
        &[
            "--config",
            &path.display().to_string(),
            "--error-rate",
            "1",
            "--log",
        ],
        2,
    );
    let r = get(run.addrs[0], "/x").await;
    assert_eq!(r.status(), 503, "file's status, flag's rate");
    let mut line = String::new();
    run.stdout.read_line(&mut line).unwrap();
    let port = run.addrs[0].port();
    assert!(
        line.contains(&format!(":{port} ")) && line.contains("\"GET /x HTTP/1.1\" 503"),
        "{line}"
    );
    signal(&run.child, "TERM");
    assert_eq!(
        tokio::task::spawn_blocking(move || wait_exit(&mut run.child))
            .await
            .unwrap(),
        0
    );
    let _ = std::fs::remove_file(path);
}
