//! `loadgen --scenario`: the scenario files in scenarios/ run whole (mock
//! backends and balancer in this test's child process, real requests on
//! 127.0.0.1), and broken files are refused before anything starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Runs a scenario on the reference only: the library's files also name
/// real nginx, which these tests do not assume (tests/it/nginx.rs and
/// .ci/run's scenario step run them on it).
fn run(file: &Path) -> Output {
    Command::new(BIN)
        .args(["--scenario", file.to_str().unwrap(), "-q"])
        .args(reference_only(file))
        .output()
        .unwrap()
}

/// `--engine reference`, unless the scenario tests an external `target`
/// (which has no engine to choose).
fn reference_only(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match text.lines().any(|l| l.trim_start().starts_with("target =")) {
        true => vec![],
        false => vec!["--engine".into(), "reference".into()],
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn quickstart_prints_ab_the_table_and_a_verdict() {
    let o = run(&scenarios().join("quickstart.toml"));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("Complete requests:      1000"), "{out}");
    assert!(out.contains("Failed requests:        0"), "{out}");
    // The balancer's log, read by the analyzer: a row per backend.
    assert_eq!(out.matches("┆      33").count(), 3, "{out}");
    assert!(out.contains("✓ shares as expected"), "{out}");
    assert!(
        out.trim_end()
            .ends_with("✓ scenario quickstart: all 5 checks held"),
        "{out}"
    );
}

#[test]
fn a_broken_balancer_is_caught_with_exit_1() {
    let o = run(&scenarios().join("broken-weights.toml"));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("✗ shares as expected"), "{out}");
    assert!(out.contains("the verification caught it"), "{out}");
}

#[test]
fn a_timed_kill_and_revive_is_verified_not_described() {
    let o = run(&scenarios().join("failover-recovery.toml"));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("kill flaky") && out.contains("revive flaky"),
        "{out}"
    );
    assert!(out.contains("✓ client_errors == 0"), "{out}");
    assert!(out.contains("✓ recovered_within{node=flaky} < 5s"), "{out}");
}

/// A scenario in a fresh directory, removed with it.
struct File {
    dir: PathBuf,
    path: PathBuf,
}

impl File {
    fn new(name: &str, text: &str) -> File {
        let dir =
            std::env::temp_dir().join(format!("loadgen-scenario-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        File { dir, path }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const GOOD: &str = r#"[[backend]]
[[backend]]
name = "b"
[load]
requests = 20
[[event]]
at = "1s"
backend = "b"
action = "kill"
[expect]
thresholds = ["client_errors == 0"]
"#;

#[test]
fn mistakes_name_file_line_and_key_and_exit_2_before_anything_starts() {
    for (name, from, to, says) in [
        (
            "unknown-key",
            "requests = 20",
            "requests = 20\nconcurency = 2",
            ":6:1: unknown field `concurency`",
        ),
        (
            "bad-duration",
            "at = \"1s\"",
            "at = \"soon\"",
            ":7:6: \"soon\"",
        ),
        (
            "no-such-backend",
            "backend = \"b\"",
            "backend = 5",
            ":6:1: [[event]] backend: no backend 5",
        ),
        (
            "no-such-metric",
            "client_errors == 0",
            "happiness > 3",
            ":11:14: threshold 'happiness > 3': no metric 'happiness'",
        ),
    ] {
        let f = File::new(name, &GOOD.replace(from, to));
        let o = run(&f.path);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}{err}");
        assert!(out.is_empty(), "{name}: nothing ran: {out}");
        let line = err.trim_end();
        assert_eq!(line.lines().count(), 1, "{name}: one line: {err}");
        let want = format!("{}{says}", f.path.display());
        assert!(line.contains(&want), "{name}: {line}\nwants {want}");
    }
}

#[test]
fn phases_templates_and_a_weight_change_at_run_time() {
    let f = File::new(
        "phased",
        r#"[[backend]]
name = "a"
[[backend]]
name = "b"
[load]
[[load.phase]]
duration = "1s"
rate = 100
[[load.phase]]
duration = "1s"
rate = 100
ramp_to = 300
[[load.request]]
method = "POST"
path = "/chat"
json = { message = "{{line(\"words.txt\")}} {{seq}}" }
[[event]]
at = "1s"
backend = "b"
action = "weight"
weight = 3
[expect]
thresholds = ["requests == 300", "client_errors == 0", "share{node=b} > 60%"]
"#,
    );
    std::fs::write(f.dir.join("words.txt"), "hello\nworld\n").unwrap();
    let o = run(&f.path);
    let (out, err) = text(&o);
    // 100 in the first second, (100 + 300) / 2 in the ramp; b at weight 3
    // for the second: 50 + 150 of 300.
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("weight b"), "{out}");
    assert!(out.contains("✓ share{node=b} > 60%"), "{out}");
}

#[test]
fn an_access_log_is_replayed_request_line_by_request_line() {
    let f = File::new(
        "replay",
        r#"[[backend]]
[load]
replay = "access.log"
speed = 10.0
[expect]
thresholds = ["requests == 4", "client_errors == 0"]
"#,
    );
    // Seed 003's format; the third line comes 2 s after the first.
    let log = [
        "127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] \"GET /a HTTP/1.0\" 200 18 \"-\" \"ab\" \"-\" to: 127.0.0.1:8001",
        "127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] \"GET /b?x=1 HTTP/1.0\" 200 18 \"-\" \"ab\" \"-\" to: 127.0.0.1:8002",
        "127.0.0.1 - - [02/Mar/2025:21:10:13 +0800] \"HEAD /c HTTP/1.0\" 200 0 \"-\" \"ab\" \"-\" to: 127.0.0.1:8001",
        "127.0.0.1 - - [02/Mar/2025:21:10:13 +0800] \"GET /d HTTP/1.0\" 200 18 \"-\" \"ab\" \"-\" to: 127.0.0.1:8002",
    ];
    std::fs::write(f.dir.join("access.log"), log.join("\n")).unwrap();
    let o = run(&f.path);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    // 2 s of log at 10x: the run lasts about 0.2 s, not 2.
    assert!(out.contains("Complete requests:      4"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_balancer_is_judged_from_what_clients_saw() {
    // A balancer and nodes that the scenario did not start: the weights
    // promised in [expect] are checked against X-Upstream counts.
    let mock = crate::common::mock(2, &[]).await;
    let [a, b] = [mock.addrs()[0], mock.addrs()[1]];
    let upstream = format!("server {a} weight=3; server {b};");
    let (proxy, _) = crate::common::balancer(&upstream, false).await;
    let f = File::new(
        "external",
        &format!(
            r#"[[backend]]
name = "a"
url = "http://{a}"
[[backend]]
name = "b"
url = "http://{b}"
[balancer]
target = "http://{}"
[load]
requests = 400
concurrency = 4
[expect]
weights = {{ a = 3, b = 1 }}
thresholds = ["share{{node=a}} == 75%", "client_errors == 0"]
"#,
            proxy.addr()
        ),
    );
    let path = f.path.clone();
    let o = tokio::task::spawn_blocking(move || run(&path))
        .await
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("✓ shares as expected"), "{out}");
    assert!(out.contains("✓ share{node=a} == 75%"), "{out}");
    proxy.shutdown().await;
    mock.shutdown().await;
}

/// Runs `loadgen --scenario FILE` with more flags, off the test's runtime.
async fn run_with(file: &Path, flags: &[&str]) -> Output {
    let mut args = vec![
        "--scenario".to_string(),
        file.display().to_string(),
        "-q".into(),
    ];
    args.extend(reference_only(file));
    args.extend(flags.iter().map(|f| f.to_string()));
    tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_fail_closed() {
    let mock = crate::common::mock(2, &[]).await;
    let [a, b] = [mock.addrs()[0], mock.addrs()[1]];
    let (proxy, _) =
        crate::common::balancer(&format!("server {a} weight=3; server {b};"), false).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let external = |balancer: &str, extra_backend: &str, expect: &str| {
        format!(
            "[[backend]]\nname = \"a\"\nurl = \"http://{a}\"\n{extra_backend}\n[[backend]]\nname = \"b\"\nurl = \"http://{b}\"\n[balancer]\ntarget = \"http://{balancer}\"\n[load]\nrequests = 200\nconcurrency = 4\n[expect]\n{expect}\n"
        )
    };
    let target = proxy.addr().to_string();
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            // lbkit's one duration grammar: a bare number is refused.
            "bare-duration",
            "[[backend]]\n[load]\nrequests = 10\nslo = \"ttft<500\"\n[expect]\nthresholds = [\"client_errors == 0\"]\n".into(),
            2,
            "[load] slo: 'ttft<500': '500' has no unit; write e.g. 20ms",
        ),
        (
            "nothing-checked",
            "[[backend]]\n[load]\nrequests = 10\n[expect]\nshares = false\n".into(),
            2,
            "no verdict: this scenario checks nothing",
        ),
        (
            // The issue's case: `shares = true` against an external balancer
            // was "all 0 checks held". Weights default to 1, as nginx's, so
            // this 3:1 balancer fails an even split.
            "target-shares-even",
            external(&target, "", "shares = true"),
            1,
            "✗ shares as expected",
        ),
        (
            "target-weights",
            external(&target, "weight = 3", ""),
            0,
            "✓ shares as expected",
        ),
        (
            "target-backup",
            external(&target, "backup = true", "shares = true"),
            2,
            "[[backend]] backup: with [balancer] target, the external balancer's own config decides this",
        ),
        (
            "target-method",
            external(&target, "", "shares = true").replace("[balancer]\n", "[balancer]\nmethod = \"least_conn\"\n"),
            2,
            "[balancer] method: with [balancer] target",
        ),
        (
            "target-log-metric",
            external(&target, "", "thresholds = [\"retries == 0\"]"),
            2,
            "retries is read from the balancer's access log, and a target run has none",
        ),
        (
            "target-dead",
            external(&dead.to_string(), "", "thresholds = [\"client_errors == 0\"]"),
            1,
            "no request got an answer (200 failed: connect=200)",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, text, code, says) in &cases {
        let f = File::new(name, text);
        let o = run_with(&f.path, &[]).await;
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        if o.status.code() != Some(*code) || !(out.contains(says) || err.contains(says)) {
            wrong.push(format!(
                "{name}: exit {:?} (want {code}), wants {says:?}\n{out}{err}",
                o.status.code()
            ));
        }
    }
    proxy.shutdown().await;
    mock.shutdown().await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_json_and_junit_flags_apply_to_scenarios() {
    let f = File::new(
        "flags",
        "name = \"flags\"\n[[backend]]\nname = \"a\"\n[[backend]]\nname = \"b\"\n[load]\nrequests = 40\nconcurrency = 2\n[expect]\nthresholds = [\"client_errors == 0\"]\n",
    );
    let (json, junit) = (f.dir.join("s.json"), f.dir.join("s.xml"));
    let o = run_with(
        &f.path,
        &[
            "--threshold",
            "requests{node=a}>20",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("✗ requests{node=a}>20"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["ok"], false);
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "shares as expected",
            "client_errors == 0",
            "requests{node=a}>20"
        ]
    );
    assert_eq!(v["load"]["complete"], 40);
    assert_eq!(v["log"]["requests"], 40);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert!(xml.contains("<testsuite name=\"scenario flags\""), "{xml}");
    // A node the scenario does not have is refused before anything runs.
    let o = run_with(&f.path, &["--threshold", "p(95){node=zz}<1s"]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--threshold 'p(95){node=zz}<1s': {node=zz}: no backend \"zz\""),
        "{err}"
    );
}

#[test]
fn a_dataset_file_feeds_a_scenario_one_record_per_request() {
    let f = File::new(
        "dataset",
        r#"[[backend]]
profile = { output_tokens = 50 }
[[backend]]
profile = { output_tokens = 50 }
[load]
concurrency = 2
[load.dataset]
file = "prompts.jsonl"
[expect]
thresholds = ["requests == 3", "stream_errors == 0", "client_errors == 0"]
"#,
    );
    let records = [
        r#"{"prompt": "first", "output_tokens": 4}"#,
        r#"{"messages": [{"role": "user", "content": "second"}], "output_tokens": 6}"#,
        r#"{"prompt": "third", "output_tokens": 9}"#,
    ];
    std::fs::write(f.dir.join("prompts.jsonl"), records.join("\n")).unwrap();
    let o = run(&f.path);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("output tokens: 19 ("),
        "4 + 6 + 9, not 3 x 50: {out}"
    );
    assert!(out.contains("from the servers' usage"), "{out}");
}
