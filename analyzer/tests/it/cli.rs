use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn analyzer(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A usage error exits before reading: a closed pipe is its answer.
    let _ = pipe.write_all(stdin.unwrap_or("").as_bytes());
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A log file in a fresh directory, removed with it at the end of the test.
struct Log {
    dir: PathBuf,
    path: PathBuf,
}

impl Log {
    fn new(name: &str, contents: &[u8]) -> Log {
        let dir = std::env::temp_dir().join(format!("analyzer-it-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        Log { dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// lbkit lines: `n` answers from each node, the given status and time.
fn lbkit(lines: &[(&str, usize, u16, &str)]) -> String {
    let mut out = String::new();
    for (node, n, status, rt) in lines {
        for i in 0..*n {
            out.push_str(&format!(
                "127.0.0.{} - - [21/Nov/2026:08:00:{:02} +0000] \"GET / HTTP/1.1\" {status} 18 \"-\" \"loadgen\" \"-\" to: {node} rt={rt} urt={rt} us={status} cl=18\n",
                i % 200 + 1,
                i % 60
            ));
        }
    }
    out
}

// The seed's own sample lines (seed 003, as nginx wrote them).
const SEED: &str = r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001
127.0.0.1:48882 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8002
127.0.0.1:48892 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001
127.0.0.1:48904 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8002
"#;

#[test]
fn the_seeds_log_from_stdin() {
    let o = analyzer(&["-"], Some(SEED));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.starts_with("4 lines from (stdin); format upstream_log_port (recognised)"),
        "{out}"
    );
    assert!(out.contains("percentiles need $request_time"), "{out}");
    let row = out.lines().find(|l| l.contains("127.0.0.1:8001")).unwrap();
    assert!(row.contains(" 2 ") && row.contains("50.0%"), "{row}");
    assert!(out.contains("✓ shares as expected"), "{out}");
    // No timing: the default latency alert cannot apply and is left out;
    // one the user asks for fails as not measured.
    assert!(
        out.contains("✓ error_rate<=5%") && !out.contains("p(95)"),
        "{out}"
    );
    let o = analyzer(&["-", "--threshold", "p(95)<500ms"], Some(SEED));
    assert_eq!(o.status.code(), Some(2), "asked for, and not computable");
    let (out, err) = text(&o);
    assert!(out.contains("✗ p(95)<500ms  (not measured)"), "{out}");
    assert!(
        err.contains("threshold 'p(95)<500ms' cannot be computed: no line of format upstream_log_port says how long the request took"),
        "{err}"
    );
}

#[test]
fn a_breach_exits_1_unless_report_only() {
    let log = Log::new(
        "breach.log",
        // 10% of 8002's answers take 700 ms: its p95, not the log's.
        lbkit(&[
            ("127.0.0.1:8001", 300, 200, "0.020"),
            ("127.0.0.1:8002", 180, 200, "0.020"),
            ("127.0.0.1:8002", 20, 200, "0.700"),
        ])
        .as_bytes(),
    );
    let weights = "--expect-weights=127.0.0.1:8001=3,127.0.0.1:8002=2";
    let o = analyzer(&[log.arg(), weights], None);
    let (out, _) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "3:2 as expected, p95 under 500 ms: {out}"
    );
    assert!(out.contains("✓ p(95)<=500ms"), "{out}");

    let o = analyzer(
        &[
            log.arg(),
            weights,
            "--threshold",
            "p(95){node=127.0.0.1:8002}<500ms",
        ],
        None,
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("✗ p(95){node=127.0.0.1:8002}<500ms  (measured 700"),
        "{out}"
    );

    let o = analyzer(
        &[
            log.arg(),
            "--expect-weights=127.0.0.1:8001=1,127.0.0.1:8002=1",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "60/40 against even shares");
    let o = analyzer(
        &[
            log.arg(),
            "--expect-weights=127.0.0.1:8001=1,127.0.0.1:8002=1",
            "--report-only",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("✗ shares as expected"));
}

#[test]
fn gzip_and_many_files_make_one_report_and_bad_lines_are_counted() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(lbkit(&[("127.0.0.1:8001", 10, 200, "0.010")]).as_bytes())
        .unwrap();
    let rotated = Log::new("access.log.1.gz", &gz.finish().unwrap());
    let mut current = lbkit(&[("127.0.0.1:8002", 10, 502, "0.010")]);
    current.insert_str(0, "not a log line\n");
    let current = Log::new("access.log", current.as_bytes());
    let o = analyzer(&[rotated.arg(), current.arg(), "--report-only"], None);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.starts_with("21 lines from "), "{out}");
    assert!(
        out.contains(&format!(
            "1 lines do not match the format, the first:\n  {}:1: ",
            current.arg()
        )),
        "{out}"
    );
    assert!(out.contains("✗ error_rate<=5%  (measured 50.00%)"), "{out}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let log = Log::new(
        "ok.log",
        lbkit(&[("127.0.0.1:8001", 5, 200, "0.010")]).as_bytes(),
    );
    let junk = Log::new("junk.log", b"hello\nworld\n");
    let cases: [(&[&str], &str); 8] = [
        (
            &[log.arg(), "--nginx-conf", "/nonexistent/nginx.conf"],
            "--nginx-conf /nonexistent/nginx.conf",
        ),
        (&[log.arg(), "--nginx-conf", junk.arg()], "junk.log:1"),
        (
            &["/nonexistent/access.log"],
            "/nonexistent/access.log: No such file",
        ),
        (&[junk.arg()], "no known format matches the first lines"),
        (&[log.arg(), "--threshold", "p(95)<<1"], "--threshold"),
        (&[log.arg(), "--expect-weights", "a=x"], "--expect-weights"),
        (&[log.arg(), "--format", "apache"], "--format apache"),
        (&[log.arg(), "--log-format", "$a$b"], "--log-format"),
    ];
    for (args, says) in cases {
        let o = analyzer(args, None);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("analyzer: error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
}

const CONF: &str = "events {}
http {
    upstream backend { server 127.0.0.1:8001 weight=3; server 127.0.0.1:8002 weight=2; }
    upstream even { server 127.0.0.1:8001; server 127.0.0.1:8002; }
    upstream sticky { ip_hash; server 127.0.0.1:8001; server 127.0.0.1:8002; }
    upstream busy { least_conn; server 127.0.0.1:8001; server 127.0.0.1:8002; }
    server { listen 8080; location / { proxy_pass http://backend; } }
}
";

#[test]
fn the_configs_promise_is_what_the_log_is_checked_against() {
    let log = Log::new(
        "promise.log",
        lbkit(&[
            ("127.0.0.1:8001", 600, 200, "0.010"),
            ("127.0.0.1:8002", 400, 200, "0.010"),
        ])
        .as_bytes(),
    );
    let conf = Log::new("nginx.conf", CONF.as_bytes());
    let run = |upstream: &str| {
        let o = analyzer(
            &[
                log.arg(),
                "--nginx-conf",
                conf.arg(),
                "--upstream",
                upstream,
            ],
            None,
        );
        let (out, err) = text(&o);
        (o.status.code(), out + &err)
    };
    let (code, out) = run("backend");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Expected shares from upstream backend (round_robin) in "),
        "{out}"
    );
    assert!(out.contains("✓ shares as expected"), "{out}");

    let (code, out) = run("even");
    assert_eq!(code, Some(1), "3:2 traffic against 1:1 weights: {out}");
    assert!(out.contains("✗ shares as expected"), "{out}");

    // Each of 200 clients went to both nodes: ip_hash promised otherwise.
    let (code, out) = run("sticky");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("Stickiness: 200 clients, 200 served by more than one node (up to 2)."),
        "{out}"
    );

    let (code, out) = run("busy");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Shares are not tested: upstream busy (least_conn)"),
        "{out}"
    );
    assert!(!out.contains("shares as expected"), "{out}");

    let o = analyzer(&[log.arg(), "--nginx-conf", conf.arg()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("pick one with --upstream"));
}

#[test]
fn json_junit_and_markdown_files_for_ci() {
    let log = Log::new(
        "ci.log",
        lbkit(&[
            ("127.0.0.1:8001", 60, 200, "0.010"),
            ("127.0.0.1:8002", 40, 503, "0.900"),
        ])
        .as_bytes(),
    );
    let out = |name: &str| log.dir.join(name).to_str().unwrap().to_string();
    let (json, junit, md) = (out("r.json"), out("r.xml"), out("r.md"));
    let html = out("r.html");
    let o = analyzer(
        &[
            log.arg(),
            "--html",
            &html,
            "--json",
            &json,
            "--junit",
            &junit,
            "--markdown",
            &md,
            "--threshold",
            "error_rate<50%",
            "--threshold",
            "p(50)<100ms",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["requests"], 100);
    assert_eq!(v["format"], "lbkit");
    assert_eq!(v["nodes"][1]["node"], "127.0.0.1:8002");
    assert_eq!(v["nodes"][1]["status_classes"]["5xx"], 40);
    assert_eq!(v["nodes"][1]["error_rate"], 1.0);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "shares as expected",
            "error_rate<50%",
            "p(50)<100ms",
            "malformed<=1%"
        ]
    );
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true));
    // Stamped over 60 whole seconds: the rate is from the 58 seconds
    // wholly inside the span (97 requests; the first and last seconds are
    // partly covered), and a node's requests per second in each tenth.
    assert!(
        (v["rate"].as_f64().unwrap() - 97.0 / 58.0).abs() < 1e-9,
        "{}",
        v["rate"]
    );
    let spans = v["over_time"].as_array().unwrap();
    assert_eq!(spans.len(), 10);
    assert_eq!(spans[0]["seconds"], 6);
    let total: f64 = spans
        .iter()
        .map(|s| s["requests_per_second"]["127.0.0.1:8002"].as_f64().unwrap() * 6.0)
        .sum();
    assert!((total - 40.0).abs() < 1e-9, "{spans:?}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"4\" failures=\"0\""), "{xml}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.starts_with("### analyzer: ✓ passed"), "{md}");
    assert!(md.contains("| 127.0.0.1:8002 | 40 | 40.0% |"), "{md}");
    assert!(md.contains("- ✓ error_rate<50%"), "{md}");

    // One page: the verdict, every check, the charts each drawn with
    // data, the table; nothing loaded from elsewhere.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<div class=\"verdict ok\">✓ all 4 checks held</div>"));
    assert!(page.contains("<li class=\"ok\">✓ p(50)&lt;100ms"), "{page}");
    assert!(
        page.contains("<td>127.0.0.1:8002</td><td>40</td>"),
        "{page}"
    );
    assert!(analyzer::html::external_references(&page).is_empty());
    let marks = analyzer::html::chart_marks(&page);
    // Shares, latency CDF, requests over time, latency distribution.
    assert_eq!(marks.len(), 4, "{marks:?}");
    assert!(marks.iter().all(|m| *m > 0), "{marks:?}");

    let o = analyzer(&[log.arg(), "--json", "/nonexistent/dir/r.json"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("/nonexistent/dir/r.json"));
}

#[test]
fn json_lines_detected_or_with_named_fields() {
    let mut log = String::new();
    for i in 0..30 {
        let node = ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"][i % 3];
        log.push_str(&format!(
            "{{\"status\":\"200\",\"upstream_addr\":\"{node}\",\"request_time\":\"0.0{i:02}\"}}\n"
        ));
    }
    let o = analyzer(&["-"], Some(&log));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("json (recognised"), "{out}");
    assert!(out.contains("127.0.0.1:8003"), "{out}");

    let renamed = log
        .replace("upstream_addr", "node")
        .replace("request_time", "took_ms");
    let o = analyzer(
        &[
            "-",
            "--json-field",
            "upstream_addr=node",
            "--json-field",
            "request_time=took_ms:ms",
            "--threshold",
            "p(100)<0.03ms",
        ],
        Some(&renamed),
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("127.0.0.1:8002"), "{out}");

    let o = analyzer(&["-", "--json-field", "node=x"], Some(&log));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("--json-field \"node=x\": unknown field"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn a_quoted_glob_reads_every_matching_file() {
    let one = Log::new(
        "glob",
        lbkit(&[("127.0.0.1:8001", 3, 200, "0.010")]).as_bytes(),
    );
    std::fs::write(
        one.dir.join("glob.2"),
        lbkit(&[("127.0.0.1:8002", 2, 200, "0.010")]),
    )
    .unwrap();
    let pattern = format!("{}/glob*", one.dir.display());
    let o = analyzer(&[&pattern, "--report-only"], None);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.starts_with("5 lines from "), "{out}");
    let none = format!("{}/*.nothing", one.dir.display());
    let o = analyzer(&[&none], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no file matches"), "{:?}", text(&o));
}

#[test]
fn plot_writes_svg_and_png_charts() {
    let log = Log::new(
        "plot.log",
        lbkit(&[
            ("127.0.0.1:8001", 60, 200, "0.010"),
            ("127.0.0.1:8002", 40, 200, "0.200"),
        ])
        .as_bytes(),
    );
    let dir = log.dir.join("charts/nested");
    let o = analyzer(
        &[
            log.arg(),
            "--expect-weights",
            "127.0.0.1:8001=3,127.0.0.1:8002=2",
            "--plot",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    for stem in ["share", "latency-cdf", "over-time"] {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("127.0.0.1:8002"), "{stem}.svg names the nodes");
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{stem}.png");
    }
    let share = std::fs::read_to_string(dir.join("share.svg")).unwrap();
    assert!(share.contains("expected"), "the promised shares are drawn");

    // Without a timing field there is no latency chart to draw.
    let bare = Log::new("bare.log", SEED.as_bytes());
    let dir = bare.dir.join("charts");
    let o = analyzer(&[bare.arg(), "--plot", dir.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(dir.join("share.svg").exists());
    assert!(!dir.join("latency-cdf.svg").exists());
}

#[test]
fn a_real_haproxy_log() {
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/haproxy-httplog-syslog.log"
    );
    let o = analyzer(
        &[
            log,
            "--expect-weights",
            "ai/s1=3,ai/s2=2,ai/s3=1",
            "--report-only",
        ],
        None,
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("format haproxy (recognised)"), "{out}");
    assert!(out.contains("Latency from HAProxy's Ta"), "{out}");
    let row = |node: &str| out.lines().find(|l| l.contains(node)).unwrap().to_string();
    assert!(row("ai/s1").contains(" 4 "), "{out}");
    assert!(row("ai/s3").contains(" 1 "), "{out}");
    assert!(
        out.contains("Retried: 1 requests (3 extra attempts); answered without an upstream: 1"),
        "{out}"
    );
}

#[test]
fn a_huge_line_and_impossible_values_are_malformed_lines_not_requests() {
    let good = lbkit(&[("127.0.0.1:8001", 200, 200, "0.010")]);
    let mut log_text = good.clone();
    log_text.push_str(&"x".repeat(3 << 20));
    log_text.push('\n');
    let bad_values = lbkit(&[("127.0.0.1:8001", 1, 200, "0.010")]).replace("us=200", "us=abc");
    log_text.push_str(&bad_values);
    let huge_time = lbkit(&[("127.0.0.1:8001", 1, 200, "0.010")])
        .replace("rt=0.010", "rt=12345678901234567890123456789012345678");
    log_text.push_str(&huge_time);
    log_text.push_str(&good);
    let log = Log::new("hostile.log", log_text.as_bytes());
    let path = log.path.display().to_string();
    let o = analyzer(&["--format", "lbkit", &path], None);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "3 in 403 is within malformed<=1%: {out}{err}"
    );
    assert!(out.contains("403 lines from"), "{out}");
    assert!(out.contains("3 lines do not match the format"), "{out}");
    assert!(
        out.contains(&format!("{path}:201: a line longer than 64 KiB")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{path}:202: ")) && out.contains("\"abc\""),
        "{out}"
    );
    assert!(out.contains(&format!("{path}:203: ")), "{out}");
    let json = log.dir.join("r.json").display().to_string();
    let o = analyzer(
        &[
            "--format",
            "lbkit",
            "--allow-malformed",
            "--json",
            &json,
            &path,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let out = std::fs::read_to_string(&json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["requests"], 400, "{out}");
    assert!(
        v["all"]["request_time_ms"]["max"].as_f64().unwrap() < 11.0,
        "{out}"
    );
    assert_eq!(v["nodes_overflow"], false);
}
