//! The text report has ab's lines, in ab's order, with ab's number formats:
//! compared with reports real ApacheBench 2.3 wrote (tests/data).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// A line's shape: numbers become `N`, runs of spaces one space.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            if !(c == ' ' && out.ends_with(' ')) {
                out.push(c);
            }
        }
    }
    out.trim_end().to_string()
}

/// The report from "Server Software:" to the 100% line.
fn report(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Server Software:"))
        .take_while(|l| !l.starts_with("Latency percentiles"))
        .map(shape)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs the binary off the test's runtime, which serves the mock meanwhile.
async fn loadgen(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Number formats that shapes hide: decimals per line, as ab prints them.
fn assert_formats(text: &str) {
    let decimals = |label: &str, places: usize| {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} missing"));
        let number = line[label.len()..].split_whitespace().next().unwrap();
        let frac = number.split('.').nth(1).unwrap_or("");
        assert_eq!(frac.len(), places, "{line}");
    };
    decimals("Time taken for tests:", 3);
    decimals("Requests per second:", 2);
    decimals("Time per request:", 3);
    decimals("Transfer rate:", 2);
}

async fn compare(fixture: &str, args: &[&str]) {
    let ab = report(fixture);
    let ours_text = loadgen(args).await;
    let ours = report(&ours_text);
    assert_eq!(ours, ab, "\nloadgen:\n{ours_text}");
    assert_formats(&ours_text);
}

#[tokio::test]
async fn get_report_matches_ab() {
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, Default::default()))
        .await
        .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    compare(
        include_str!("../data/ab-get.txt"),
        &["-q", "-n", "1000", "-c", "10", &url],
    )
    .await;
    m.shutdown().await;
}

#[tokio::test]
async fn keepalive_post_report_matches_ab() {
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, Default::default()))
        .await
        .unwrap();
    let url = format!("http://{}/chat", m.addrs()[0]);
    let body = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/chat.json");
    compare(
        include_str!("../data/ab-post-keepalive.txt"),
        &[
            "-q",
            "-k",
            "-n",
            "200",
            "-c",
            "4",
            "-p",
            body,
            "-T",
            "application/json",
            &url,
        ],
    )
    .await;
    m.shutdown().await;
}

#[tokio::test]
async fn failures_report_matches_ab() {
    let mut profile = mockbackend::Profile::default();
    profile.set("error_rate", "0.3").unwrap();
    profile.set("error_status", "503").unwrap();
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, profile))
        .await
        .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    compare(
        include_str!("../data/ab-failures.txt"),
        &["-q", "-n", "300", "-c", "3", &url],
    )
    .await;
    m.shutdown().await;
}
