//! A verdict needs evidence, from loadgen too: each mistake a user makes
//! on the command line, and a run that checks nothing it claims to, ends
//! with the right exit code and one line; a mistake in the flags is
//! refused before a single request is sent.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{balancer, mock, servers};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

struct Case {
    name: &'static str,
    /// `{url}`: the balancer in front of two mock nodes; `{dead}`: a port
    /// nothing listens on; `{dir}`: a scratch directory.
    args: &'static [&'static str],
    code: i32,
    says: &'static str,
    /// Refused before any request reached a node.
    sends_nothing: bool,
}

const fn case(
    name: &'static str,
    args: &'static [&'static str],
    code: i32,
    says: &'static str,
    sends_nothing: bool,
) -> Case {
    Case {
        name,
        args,
        code,
        says,
        sends_nothing,
    }
}

const CASES: &[Case] = &[
    case(
        "nothing listening",
        &["-q", "-n", "10", "-c", "2", "{dead}"],
        1,
        "no request got an answer (10 failed: connect=10); the first: could not connect to",
        true,
    ),
    case(
        "not an http URL",
        &["ftp://127.0.0.1/"],
        2,
        "unsupported scheme ftp://",
        true,
    ),
    case(
        "a URL without a path",
        &["http://127.0.0.1:1"],
        2,
        "needs a path",
        true,
    ),
    case(
        "a typo'd flag",
        &["--thresold", "p(95)<1s", "{url}"],
        2,
        "unexpected argument '--thresold'",
        true,
    ),
    case(
        "an unknown value",
        &["--output", "xml", "{url}"],
        2,
        "possible values: text, json",
        true,
    ),
    case(
        "no requests",
        &["-n", "0", "{url}"],
        2,
        "-n: must be at least 1",
        true,
    ),
    case(
        "an unknown metric",
        &["-n", "5", "--threshold", "p95<5ms", "{url}"],
        2,
        "--threshold 'p95<5ms': no metric 'p95' (did you mean p(95)?)",
        true,
    ),
    case(
        "a metric only a log holds",
        &["-n", "5", "--threshold", "split_clients==0", "{url}"],
        2,
        "cannot measure split_clients",
        true,
    ),
    case(
        "goodput without an SLO",
        &["-n", "5", "--stream", "--threshold", "goodput>90%", "{url}"],
        2,
        "goodput is the share of streams that met --slo",
        true,
    ),
    case(
        "a filter that is not a node",
        &["-n", "5", "--threshold", "p(95){pool=a}<1s", "{url}"],
        2,
        "the only filter is {node=NAME}",
        true,
    ),
    case(
        "weights all zero",
        &["-n", "5", "--expect-weights", "a=0,b=0", "{url}"],
        2,
        "every weight is 0",
        true,
    ),
    case(
        "a body file that is not there",
        &["-p", "{dir}/none.json", "{url}"],
        2,
        "-p: cannot read",
        true,
    ),
    case(
        "-n with --scenario",
        &["--scenario", "{dir}/s.toml", "-n", "10"],
        2,
        "'--scenario <FILE>' cannot be used with '-n <requests>'",
        true,
    ),
    case(
        "a URL with --scenario",
        &["--scenario", "{dir}/s.toml", "{url}"],
        2,
        "cannot be used with",
        true,
    ),
    case(
        "weights that name no node seen",
        &[
            "-q",
            "-n",
            "20",
            "-c",
            "2",
            "--expect-weights",
            "a=3,b=2",
            "{url}",
        ],
        2,
        "--expect-weights: none of a, b is a node that answered; the nodes seen: 127.0.0.1:",
        false,
    ),
    case(
        "a threshold on a node that never answered",
        &[
            "-q",
            "-n",
            "20",
            "--threshold",
            "p(95){node=nobody}<1s",
            "{url}",
        ],
        2,
        "no node nobody; the nodes are 127.0.0.1:",
        false,
    ),
    case(
        "a stream figure with no stream",
        &["-q", "-n", "20", "--threshold", "p(95)_ttft<1s", "{url}"],
        2,
        "no answer was an event stream",
        false,
    ),
    case(
        "a JUnit file that cannot be written",
        &[
            "-q",
            "-n",
            "5",
            "--junit",
            "/nonexistent/dir/r.xml",
            "{url}",
        ],
        2,
        "--junit /nonexistent/dir/r.xml",
        false,
    ),
];

#[tokio::test]
async fn every_mistake_fails_closed_with_one_line() {
    let m = mock(2, &[]).await;
    let (proxy, _) = balancer(&servers(&m), false).await;
    let url = format!("http://{}/", proxy.addr());
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let dir = std::env::temp_dir().join(format!("loadgen-fc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("s.toml"),
        "[[backend]]\n[load]\nrequests = 5\n[expect]\nthresholds = [\"client_errors == 0\"]\n",
    )
    .unwrap();
    let dir_text = dir.display().to_string();
    let served = || m.nodes().iter().map(|n| n.metrics.total()).sum::<u64>();
    let mut wrong = Vec::new();
    for c in CASES {
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| {
                a.replace("{url}", &url)
                    .replace("{dead}", &dead)
                    .replace("{dir}", &dir_text)
            })
            .collect();
        let before = served();
        let o = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let one_line = err.trim_end().lines().count() == 1;
        let said = out.contains(c.says) || err.contains(c.says);
        let sent = served() - before;
        if o.status.code() != Some(c.code) || !said || !one_line || (c.sends_nothing && sent > 0) {
            wrong.push(format!(
                "{}: exit {:?} (want {}), {sent} requests served, wants {:?}\n--- stdout\n{out}--- stderr\n{err}",
                c.name,
                o.status.code(),
                c.code,
                c.says
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await;
    m.shutdown().await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn node_names_by_port_meet_the_logged_ones() {
    let m = mock(2, &[]).await;
    let a = m.addrs();
    let upstream = format!("server {} weight=3; server {} weight=1;", a[0], a[1]);
    let (proxy, _) = balancer(&upstream, false).await;
    let args = vec![
        "-q".to_string(),
        "-n".into(),
        "400".into(),
        "-c".into(),
        "4".into(),
        "--expect-weights".into(),
        format!("{}=3,{}=1", a[0].port(), a[1].port()),
        "--threshold".into(),
        format!("share{{node={}}}==25%", a[1].port()),
        format!("http://{}/", proxy.addr()),
    ];
    let o = tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("✓ shares as expected"), "{out}");
    assert!(
        out.contains(&format!("✓ share{{node={}}}==25%", a[1].port())),
        "{out}"
    );
    proxy.shutdown().await;
    m.shutdown().await;
}

/// A mixed 200/503 run: loadgen's Failed (Length) and Non-2xx are ab's
/// definitions applied to the run's own answers (one reference length,
/// the first answer's), and error_rate counts the 503s only, run after run.
#[tokio::test]
async fn failed_and_non_2xx_are_abs_definitions_run_after_run() {
    let m = mock(1, &[("error_rate", "0.2"), ("error_status", "503")]).await;
    let url = format!("http://{}/", m.addrs()[0]);
    let dir = std::env::temp_dir().join(format!("loadgen-ab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for run in 0..10 {
        let (json, log) = (dir.join("r.json"), dir.join("r.log"));
        let args = vec![
            "-q".to_string(),
            "-n".into(),
            "500".into(),
            "-c".into(),
            "10".into(),
            "--json".into(),
            json.display().to_string(),
            "--log".into(),
            log.display().to_string(),
            url.clone(),
        ];
        let o = tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
            .await
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "run {run}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        // The answers, a line each: `msec status request_time body node`.
        let rows: Vec<(u16, u64)> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[1].parse().unwrap(), f[3].parse().unwrap())
            })
            .collect();
        assert_eq!(rows.len(), 500);
        let reference = v["document_length"].as_u64().unwrap();
        let lengths: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.1).collect();
        assert_eq!(lengths.len(), 2, "a 200 and a 503 body: {lengths:?}");
        assert!(lengths.contains(&reference));
        let non_2xx = rows.iter().filter(|r| !(200..300).contains(&r.0)).count() as u64;
        let other_length = rows.iter().filter(|r| r.1 != reference).count() as u64;
        assert!(non_2xx > 50 && non_2xx < 150, "about a fifth: {non_2xx}");
        assert_eq!(v["non_2xx"], non_2xx, "run {run}");
        assert_eq!(v["failed"]["length"], other_length, "run {run}");
        assert_eq!(v["failed"]["total"], other_length, "run {run}");
        let rate = v["error_rate"].as_f64().unwrap();
        assert!(
            (rate - non_2xx as f64 / 500.0).abs() < 1e-12,
            "run {run}: {rate}"
        );
        // ab's rule, by status: with a 200 first, Failed is the 503s.
        if reference == rows.iter().find(|r| r.0 == 200).unwrap().1 {
            assert_eq!(other_length, non_2xx, "run {run}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    m.shutdown().await;
}

#[tokio::test]
async fn sigterm_prints_the_partial_report_and_writes_the_json() {
    let m = mock(1, &[("latency", "5ms")]).await;
    let url = format!("http://{}/", m.addrs()[0]);
    let json = std::env::temp_dir().join(format!("loadgen-term-{}.json", std::process::id()));
    let child = Command::new(BIN)
        .args(["-q", "-n", "1000000", "-c", "2", "--json"])
        .arg(&json)
        .arg(&url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("Complete requests:"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let complete = v["complete"].as_u64().unwrap();
    assert!(complete > 0 && complete < 1_000_000, "{complete}");
    let _ = std::fs::remove_file(&json);
    m.shutdown().await;
}
