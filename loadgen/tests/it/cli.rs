use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

fn usage_error(args: &[&str], needle: &str) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{args:?}: {err} lacks {needle:?}");
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    usage_error(
        &["-n", "5", "-c", "10", "http://127.0.0.1:1/"],
        "-c: cannot use concurrency level greater than total number of requests",
    );
    usage_error(&["http://127.0.0.1:1"], "needs a path");
    usage_error(&["127.0.0.1/"], "invalid URL");
    usage_error(
        &["-p", "/nonexistent/body.json", "http://127.0.0.1:1/"],
        "-p: cannot read /nonexistent/body.json",
    );
    usage_error(
        &["-H", "NoColon", "http://127.0.0.1:1/"],
        "-H: 'NoColon' has no ':'",
    );
    usage_error(&["http://no-such-host.invalid/"], "cannot resolve");
    usage_error(
        &[
            "--dataset",
            "/nonexistent/prompts.jsonl",
            "http://127.0.0.1:1/",
        ],
        "--dataset: cannot read /nonexistent/prompts.jsonl",
    );
    usage_error(
        &["--input-len", "64", "http://127.0.0.1:1/"],
        "--input-len: goes with --dataset random",
    );
    usage_error(
        &[
            "--dataset",
            "random",
            "--range-ratio",
            "1.5",
            "http://127.0.0.1:1/",
        ],
        "--range-ratio: 1.5 is not from 0 up to 1",
    );
    usage_error(
        &["-s", "1e20", "http://127.0.0.1:1/"],
        "-s: 100000000000000000000 seconds is over a century",
    );
    usage_error(&["-z", "10", "http://127.0.0.1:1/"], "-z: ");
    usage_error(
        &["-z", "0s", "http://127.0.0.1:1/"],
        "-z: must be longer than 0s",
    );
    usage_error(
        &["--streams-per-conn", "4", "http://127.0.0.1:1/"],
        "--streams-per-conn: needs --http2 or --h2c",
    );
    usage_error(
        &["--h2c", "https://127.0.0.1:1/"],
        "--h2c: is HTTP/2 without TLS",
    );
    usage_error(
        &["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/"],
        "--cacert: cannot read /nonexistent/ca.pem",
    );
    usage_error(
        &["--threads", "0", "http://127.0.0.1:1/"],
        "--threads: must be at least 1",
    );
    usage_error(
        &["-c", "4", "--max-concurrency", "8", "http://127.0.0.1:1/"],
        "--max-concurrency: is -c by vLLM's name",
    );
    usage_error(
        &[
            "--shard",
            "3/3",
            "-c",
            "3",
            "-n",
            "9",
            "http://127.0.0.1:1/",
        ],
        "--shard: shard 3 of 3: the index counts from 0 to 2",
    );
    usage_error(
        &[
            "--shard",
            "0/4",
            "-c",
            "2",
            "-n",
            "9",
            "http://127.0.0.1:1/",
        ],
        "--shard: -c 2 cannot be shared by 4 shards",
    );
    usage_error(
        &[
            "--shard-from-env",
            "--shards",
            "3",
            "-c",
            "3",
            "-n",
            "9",
            "http://127.0.0.1:1/",
        ],
        "--shard-from-env: JOB_COMPLETION_INDEX is not set",
    );
    usage_error(
        &["--start-at", "tomorrow", "http://127.0.0.1:1/"],
        "--start-at: 'tomorrow': write an RFC 3339 time",
    );
    usage_error(&["--shard-from-env", "http://127.0.0.1:1/"], "--shards");
    usage_error(&["merge"], "RUN.json");
    usage_error(
        &["merge", "/nonexistent/shard-0.json"],
        "/nonexistent/shard-0.json",
    );
    let bad = std::env::temp_dir().join(format!("loadgen-bad-{}.jsonl", std::process::id()));
    std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"prompt\": 7}\n").unwrap();
    usage_error(
        &["--dataset", bad.to_str().unwrap(), "http://127.0.0.1:1/"],
        "line 2: \"prompt\" must be a string",
    );
    let _ = std::fs::remove_file(&bad);
}

#[test]
fn refused_connections_are_counted_and_no_answer_fails() {
    // Nothing listens on this port: every request fails to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args([
            "-q",
            "-n",
            "20",
            "-c",
            "2",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // Every request counted, and no answer at all is not a pass.
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert_eq!(
        err.trim_end(),
        format!("loadgen: no request got an answer (20 failed: connect=20); the first: could not connect to 127.0.0.1:{port}: connection refused")
    );
    assert!(text.contains("Complete requests:      0"), "{text}");
    assert!(
        text.contains(
            "Failed requests:        20\n   (Connect: 20, Receive: 0, Length: 0, Exceptions: 0)"
        ),
        "{text}"
    );
}

/// Runs loadgen with `args`, sends it Ctrl-C after 400 ms, and returns
/// what it printed once it exited.
async fn interrupted(args: &[&str]) -> std::process::Output {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn ctrl_c_prints_the_partial_report() {
    let mut profile = mockbackend::Profile::default();
    profile.set("latency", "5ms").unwrap();
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, profile))
        .await
        .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    let started = Instant::now();
    let out = interrupted(&["-q", "-n", "1000000", "-c", "2", &url]).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130));
    let complete: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Complete requests:"))
        .map(|n| n.trim().parse().unwrap())
        .expect("a report");
    assert!(complete > 0 && complete < 1_000_000, "{complete}");
    assert!(text.contains("Percentage of the requests served within a certain time (ms)"));
    m.shutdown().await;
}

/// A server that accepts and never answers: Ctrl-C must not wait out `-s`.
#[tokio::test]
async fn ctrl_c_with_requests_stuck_on_a_silent_server_stops_at_once() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    // Not a speed check: -s would hold it for 120 s.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        interrupted(&["-q", "-n", "10", "-c", "2", "-s", "120", &url]),
    )
    .await
    .expect("stopped long before -s ran out");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("Complete requests:      0"), "{text}");
    drop(silent);
}

#[tokio::test]
async fn z_runs_for_its_duration_as_oha_and_hey_do() {
    let m = crate::common::mock(1, &[("latency", "1ms")]).await;
    let url = format!("http://{}/health", m.addrs()[0]);
    let (code, out) = loadgen(vec!["-k".into(), "-z".into(), "400ms".into(), url.clone()]).await;
    assert_eq!(code, 0, "{out}");
    let taken: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Time taken for tests:"))
        .and_then(|t| t.trim().trim_end_matches(" seconds").parse().ok())
        .expect("a report");
    // Bounded by its duration, not by a request count: it ran the whole
    // 400 ms (and stopped by itself).
    assert!((0.4..30.0).contains(&taken), "{taken} s");
    assert!(!out.contains("Complete requests:      50000"), "{out}");
    // -n still stops it first.
    let (code, out) = loadgen(["-n", "7", "-z", "10s", &url].map(String::from).to_vec()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Complete requests:      7"), "{out}");
    m.shutdown().await;
}

/// Runs the binary off the test's runtime; returns (exit code, stdout).
async fn loadgen(args: Vec<String>) -> (i32, String) {
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn thresholds_and_expected_weights_set_the_exit_code() {
    let m = crate::common::mock(2, &[]).await;
    let a = m.addrs();
    let upstream = format!("server {} weight=3; server {} weight=2;", a[0], a[1]);
    let (proxy, _) = crate::common::balancer(&upstream, false).await;
    let url = format!("http://{}/", proxy.addr());
    let args = |extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ["-q", "-k", "-n", "500", "-c", "5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend_from_slice(extra);
        v.push(url.clone());
        v
    };
    let right = format!("--expect-weights={}=3,{}=2", a[0], a[1]);
    let (code, out) = loadgen(args(&[
        right,
        "--threshold=error_rate<1%".into(),
        "--threshold=p(99)<5s".into(),
    ]))
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ shares as expected"), "{out}");
    assert!(out.contains("✓ error_rate<1%  (measured 0.00%)"), "{out}");

    // A promise the balancer does not keep: equal shares.
    let wrong = format!("--expect-weights={}=1,{}=1", a[0], a[1]);
    let (code, out) = loadgen(args(&[wrong])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ shares as expected"), "{out}");

    let (code, out) = loadgen(args(&["--threshold=p(50)<1us".into()])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ p(50)<1us"), "{out}");

    let (code, _) = loadgen(args(&["--threshold=p(50)<<1ms".into()])).await;
    assert_eq!(code, 2, "a bad expression is a usage error");
    let (code, _) = loadgen(args(&["--expect-weights=a".into()])).await;
    assert_eq!(code, 2);
    proxy.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn json_output_has_the_whole_report_and_a_mergeable_histogram() {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    use hdrhistogram::serialization::Deserializer;

    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, Default::default()))
        .await
        .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    let file = std::env::temp_dir().join(format!("loadgen-{}.json", std::process::id()));
    let args = vec![
        "-q".to_string(),
        "-n".into(),
        "300".into(),
        "-c".into(),
        "3".into(),
        "--output".into(),
        "json".into(),
        format!("--json={}", file.display()),
        "--threshold=error_rate<1%".into(),
        url,
    ];
    let (code, out) = loadgen(args).await;
    assert_eq!(code, 0, "{out}");
    let printed: serde_json::Value =
        serde_json::from_str(&out).expect("stdout is the JSON report alone");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(printed["complete"], written["complete"]);
    for key in [
        "target",
        "concurrency",
        "pacing",
        "time_taken_s",
        "failed",
        "non_2xx",
        "bytes",
        "requests_per_second",
        "latency_ms",
        "statuses",
        "nodes",
        "checks",
    ] {
        assert!(printed.get(key).is_some(), "{key} missing");
    }
    assert_eq!(printed["complete"], 300);
    assert_eq!(printed["failed"]["total"], 0);
    assert_eq!(printed["statuses"]["200"], 300);
    assert_eq!(printed["checks"][0]["check"], "error_rate<1%");
    assert_eq!(printed["ok"], true);
    let p50 = printed["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0);
    // The histogram decodes with any HdrHistogram V2 reader.
    let bytes = BASE64_STANDARD
        .decode(printed["histogram"].as_str().unwrap())
        .unwrap();
    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    assert_eq!(h.len(), 300);
    assert!((h.value_at_quantile(0.5) as f64 / 1000.0 - p50).abs() < 0.01);
    m.shutdown().await;
}

#[tokio::test]
async fn ab_files_and_the_request_log() {
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, Default::default()))
        .await
        .unwrap();
    let node = m.addrs()[0].to_string();
    let dir = std::env::temp_dir().join(format!("loadgen-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, tsv, log) = (dir.join("p.csv"), dir.join("g.tsv"), dir.join("req.log"));
    let args = vec![
        "-q".to_string(),
        "-n".into(),
        "120".into(),
        "-c".into(),
        "3".into(),
        "-e".into(),
        csv.display().to_string(),
        "-g".into(),
        tsv.display().to_string(),
        format!("--log={}", log.display()),
        format!("http://{node}/"),
    ];
    let (code, out) = loadgen(args).await;
    assert_eq!(code, 0, "{out}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().next(), Some("Percentage served,Time in ms"));
    assert_eq!(csv.lines().count(), 101, "0..99 as ab writes");
    assert!(csv.lines().nth(1).unwrap().starts_with("0,"));
    let tsv = std::fs::read_to_string(&tsv).unwrap();
    assert_eq!(
        tsv.lines().next(),
        Some("starttime\tseconds\tctime\tdtime\tttime\twait")
    );
    assert_eq!(tsv.lines().count(), 121, "a line per request");
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.lines().count(), 120);
    let format = logformat::presets::preset("loadgen").unwrap();
    for line in log.lines() {
        let r = format.parse(line).unwrap();
        assert_eq!(r.get("status"), Some("200"));
        assert_eq!(r.get("upstream_addr"), Some(node.as_str()));
    }
    let _ = std::fs::remove_dir_all(dir);
    m.shutdown().await;
}

#[tokio::test]
async fn verbosity_warns_of_non_2xx_like_ab() {
    let mut profile = mockbackend::Profile::default();
    profile.set("error_rate", "1").unwrap();
    profile.set("error_status", "503").unwrap();
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, profile))
        .await
        .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["-q", "-n", "3", "-v", "2", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("WARNING: Response code not 2xx (503)").count(),
        3,
        "{err}"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn x_sends_through_a_proxy_with_the_absolute_url() {
    // The mock stands in for the proxy: it must get the absolute URL and
    // answer by its path; the target host is never resolved.
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(1, Default::default()))
        .await
        .unwrap();
    let proxy = m.addrs()[0].to_string();
    let (code, out) = loadgen(vec![
        "-q".into(),
        "-n".into(),
        "5".into(),
        "-X".into(),
        proxy,
        "http://backend.invalid:8080/health".into(),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Benchmarking backend.invalid [through 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("Complete requests:      5"), "{out}");
    assert!(
        out.contains("Document Length:        8 bytes"),
        "/health answered: {out}"
    );
    m.shutdown().await;
}

/// The `vllm` block of --json says what the text report says, under
/// vLLM's names: one streamed run printed both ways.
#[tokio::test]
async fn the_vllm_block_agrees_with_the_text_report() {
    let mut config = mockbackend::Config::ephemeral(
        1,
        mockbackend::Profile {
            ttft: std::time::Duration::from_millis(20),
            tokens_per_sec: 500.0,
            ..Default::default()
        },
    );
    config.admin_token = Some("t".into());
    let m = mockbackend::Server::start(config).await.unwrap();
    let url = format!("http://{}/v1/chat/completions", m.addrs()[0]);
    let file = std::env::temp_dir().join(format!("loadgen-vllm-{}.json", std::process::id()));
    let args: Vec<String> = [
        "-n",
        "40",
        "-c",
        "4",
        "-k",
        "--stream",
        "--slo",
        "ttft<1s",
        "--dataset",
        "random",
        "--input-len",
        "64",
        "--output-len",
        "8",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("--json={}", file.display()), url])
    .collect();
    let (code, text) = loadgen(args).await;
    assert_eq!(code, 0, "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    let v = &json["vllm"];
    assert_eq!(v["completed"], 40);
    assert_eq!(v["failed"], 0);
    assert_eq!(
        v["total_output_tokens"], 320,
        "8 tokens each, as max_tokens asked"
    );
    assert!(text.contains("output tokens: 320 ("), "{text}");
    assert!(text.contains("from the servers' usage"), "{text}");
    assert_eq!(v["total_input_tokens"], json["streams"]["input_tokens"]);
    assert!(
        text.contains(&format!("input tokens: {},", v["total_input_tokens"])),
        "{text}"
    );
    assert_eq!(v["max_concurrency"], 4);
    let peak = v["max_concurrent_requests"].as_u64().unwrap();
    assert!((1..=4).contains(&peak), "{peak}");
    // The text's TTFT p50 is the vLLM block's median, to the printed precision.
    let ttft_line = text
        .lines()
        .find(|l| l.contains("time to first token:"))
        .unwrap();
    let p50: f64 = ttft_line
        .split("p50=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let median = v["median_ttft_ms"].as_f64().unwrap();
    assert!((p50 - median).abs() < 0.01, "{p50} vs {median}");
    assert!(median >= 20.0);
    let secs = v["duration"].as_f64().unwrap();
    let rps = v["request_throughput"].as_f64().unwrap();
    assert!((rps * secs - 40.0).abs() < 1e-6);
    assert!(
        (v["request_goodput"].as_f64().unwrap() - rps).abs() < 1e-6,
        "all met the SLO"
    );
    m.shutdown().await;
}

/// `--threads 1` runs every connection on one thread, with the same report.
#[tokio::test]
async fn one_thread_drives_the_same_run() {
    let m = mockbackend::Server::start(mockbackend::Config::ephemeral(2, Default::default()))
        .await
        .unwrap();
    for threads in ["1", "3"] {
        let args = [
            "--threads",
            threads,
            "-k",
            "-n",
            "200",
            "-c",
            "8",
            "--output",
            "json",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("http://{}/", m.addrs()[0])])
        .collect();
        let (code, out) = loadgen(args).await;
        assert_eq!(code, 0, "--threads {threads}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["complete"], 200, "--threads {threads}");
        assert_eq!(v["failed"]["total"], 0);
        assert_eq!(v["keepalive_responses"], 200);
    }
    m.shutdown().await;
}
