//! A verdict needs evidence: every way a user can point the analyzer at
//! the wrong thing, and what it must say. Each case is the input files,
//! the flags, the exit code and a fragment of what is printed; exit 2 is
//! always one line on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(DATA).join(name)).unwrap()
}

/// lbkit lines: `n` per node, spread over `seconds` whole seconds.
fn lbkit(nodes: &[(&str, usize)], seconds: usize) -> Vec<u8> {
    let mut out = String::new();
    for (node, n) in nodes {
        for i in 0..*n {
            out.push_str(&format!(
                "10.0.{}.{} - - [21/Nov/2026:08:00:{:02} +0000] \"GET / HTTP/1.1\" 200 18 \"-\" \"loadgen\" \"-\" to: {node} rt=0.010 urt=0.009 us=200 cl=18\n",
                i / 200,
                i % 200 + 1,
                i % seconds
            ));
        }
    }
    out.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

const TRAEFIK_JSON: &str = r#"{"ClientHost":"10.1.2.3","DownstreamStatus":200,"Duration":41000000,"RouterName":"llm@file","ServiceAddr":"10.0.3.7:8000","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"10.0.3.7:8000","Path":"","RawPath":"","ForceQuery":false,"RawQuery":"","Fragment":"","RawFragment":""},"StartUTC":"2026-11-21T08:00:01.25Z"}
{"ClientHost":"10.1.2.4","DownstreamStatus":200,"Duration":39000000,"RouterName":"llm@file","ServiceAddr":"10.0.3.8:8000","ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"10.0.3.8:8000","Path":"","RawPath":"","ForceQuery":false,"RawQuery":"","Fragment":"","RawFragment":""},"StartUTC":"2026-11-21T08:00:01.50Z"}
"#;

const TRAEFIK_15: &str = r#"10.0.0.9 - - [21/Nov/2026:08:00:01 +0000] "POST /chat HTTP/1.1" 200 2814 - "python-requests/2.31" 7 "frontend-ai" "http://10.0.0.21:8000" 12ms
10.0.0.9 - - [21/Nov/2026:08:00:01 +0000] "POST /chat HTTP/1.1" 200 2814 - "python-requests/2.31" 8 "frontend-ai" "http://10.0.0.22:8000" 14ms
10.0.0.9 - - [21/Nov/2026:08:00:02 +0000] "GET / HTTP/1.1" 404 19 "-" "curl/7.88" 9 "backend not found" "/" 0ms
"#;

const ENVOY: &str = r#"[2026-11-21T08:00:00.310Z] "POST /v1/chat/completions HTTP/1.1" 200 - 154 900 226 200 "10.0.35.28" "openai-python" "cc21d9b0" "llm" "tcp://10.0.2.1:80"
[2026-11-21T08:00:00.410Z] "POST /v1/chat/completions HTTP/1.1" 200 - 154 900 230 210 "10.0.35.29" "openai-python" "cc21d9b1" "llm" "tcp://10.0.2.2:80"
"#;

/// seed 003's second nginx.conf, reduced to what the analyzer reads: its
/// log_format writes the word `remote_port` where the article's samples
/// show a port, so no line nginx wrote with the first version matches.
const SEED_CONF: &str = r#"http {
  log_format upstream_log '$remote_addr remote_port $request_uri - $remote_user [$time_local] "$request" '
                          '$status $body_bytes_sent "$http_referer" '
                          '"$http_user_agent" "$http_x_forwarded_for" '
                          'to: $upstream_addr';
  access_log /var/log/nginx/access.log upstream_log;
  upstream backend { server 127.0.0.1:45023 weight=3; server 127.0.0.1:34719 weight=2; }
  server { listen 80; location / { proxy_pass http://backend; } }
}
"#;

/// Two access logs: the upstream log, and a JSON one after it.
const TWO_LOGS: &str = r#"http {
  log_format upstream_log '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" to: $upstream_addr';
  log_format j escape=json '{"status":"$status","upstream_addr":"$upstream_addr"}';
  upstream backend { server 127.0.0.1:45023; server 127.0.0.1:34719; }
  server {
    listen 80;
    access_log /var/log/nginx/upstream.log upstream_log;
    access_log /var/log/nginx/json.log j;
    location / { proxy_pass http://backend; }
  }
}
"#;

struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    /// `{}` stands for the case's directory.
    args: Vec<&'static str>,
    code: i32,
    says: &'static str,
}

fn case(
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    args: &[&'static str],
    code: i32,
    says: &'static str,
) -> Case {
    Case {
        name,
        files,
        args: args.to_vec(),
        code,
        says,
    }
}

fn cases() -> Vec<Case> {
    let upstream = || ("up.log", fixture("nginx-upstream_log.log"));
    let combined = || ("combined.log", fixture("nginx-combined.log"));
    let lbkit_log = || ("lbkit.log", fixture("nginx-lbkit.log"));
    let mut malformed = lbkit(&[("127.0.0.1:8001", 50), ("127.0.0.1:8002", 50)], 10);
    malformed.extend_from_slice(b"garbage\nmore garbage\n");
    vec![
        // Nothing to read.
        case("0-byte file", vec![("empty.log", vec![])], &["{}/empty.log", "--expect-weights", "a=3,b=2"], 2, "empty.log: no lines to read (empty)"),
        case("blank lines only", vec![("blank.log", b"\n\n  \n".to_vec())], &["{}/blank.log"], 2, "blank.log: no lines to read (empty)"),
        case("empty stdin", vec![], &["-"], 2, "(stdin): no lines to read"),
        case("missing file", vec![], &["{}/nope.log"], 2, "nope.log: No such file"),
        case("a directory", vec![("d/x.log", b"x\n".to_vec())], &["{}/d"], 2, "is a directory"),
        case("gzip that is not gzip", vec![("bad.log.gz", b"\x1f\x8bnot really".to_vec())], &["{}/bad.log.gz"], 2, "not a whole gzip file"),
        case("no file matches a pattern", vec![], &["{}/*.log"], 2, "no file matches"),
        // The wrong format.
        case("haproxy on an nginx log", vec![upstream()], &["{}/up.log", "--format", "haproxy"], 2, "is in format haproxy (the first: \"127.0.0.1 - - ["),
        case("json on an nginx log", vec![upstream()], &["{}/up.log", "--format", "json"], 2, "try --format upstream_log"),
        case("lbkit on an upstream_log log", vec![upstream()], &["{}/up.log", "--format", "lbkit"], 2, "try --format upstream_log"),
        case("combined on an upstream_log log", vec![upstream()], &["{}/up.log", "--format", "combined"], 2, "is in format combined"),
        case("seed 003's conf on the lines it did not write", vec![upstream(), ("nginx.conf", SEED_CONF.into())], &["{}/up.log", "--nginx-conf", "{}/nginx.conf"], 2, "is in format log_format upstream_log"),
        case("a conf with two access logs", vec![upstream(), ("two.conf", TWO_LOGS.into())], &["{}/up.log", "--nginx-conf", "{}/two.conf"], 2, "which access_log wrote"),
        case("an unknown format", vec![upstream()], &["{}/up.log", "--format", "apache"], 2, "--format apache: not a format"),
        case("a vhost-prefixed line is not combined", vec![("vhost.log", br#"lessons.example.com 192.168.0.1 - - [21/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.0""#.to_vec())], &["{}/vhost.log", "--format", "combined"], 2, "no line of"),
        // A check that cannot be computed.
        case("shares on a log without nodes", vec![combined()], &["{}/combined.log", "--expect-weights", "127.0.0.1:1=3,127.0.0.1:2=2"], 2, "format combined has no $upstream_addr"),
        case("JSON lines whose node is under an unknown key", vec![("t.log", TRAEFIK_JSON.replace("ServiceAddr", "Svc").replace("\"ServiceURL\"", "\"Target\"").into_bytes())], &["{}/t.log"], 2, "no line names the node that answered (2 of 2 answered without an upstream)"),
        case("a latency threshold on a log with no timing", vec![upstream()], &["{}/up.log", "--threshold", "p(95)<500ms"], 2, "cannot be computed: no line of format upstream_log says how long"),
        case("a threshold on a node the log does not have", vec![lbkit_log()], &["{}/lbkit.log", "--threshold", "p(95){node=127.0.0.1:9}<1s"], 2, "no node 127.0.0.1:9; the nodes are"),
        case("weights that name no node seen", vec![upstream()], &["{}/up.log", "--expect-weights", "a=3,b=2"], 2, "none of a, b is a node that answered; the nodes seen: 127.0.0.1:18950"),
        case("a port two nodes share", vec![("two.log", lbkit(&[("127.0.0.1:8001", 5), ("10.0.0.2:8001", 5)], 5))], &["{}/two.log", "--expect-weights", "8001=1,9=1"], 2, "8001 could be any of"),
        case("weights all zero", vec![upstream()], &["{}/up.log", "--expect-weights", "a=0,b=0"], 2, "every weight is 0"),
        // Mistakes in the flags, refused before reading.
        case("an unknown metric", vec![upstream()], &["{}/up.log", "--threshold", "p95<5ms"], 2, "--threshold 'p95<5ms': no metric 'p95' (did you mean p(95)?)"),
        case("a metric only loadgen measures", vec![upstream()], &["{}/up.log", "--threshold", "goodput>95%"], 2, "cannot measure goodput"),
        case("a filter that is not a node", vec![upstream()], &["{}/up.log", "--threshold", "p(95){pool=a}<1s"], 2, "the only filter is {node=NAME}"),
        case("a typo'd flag", vec![upstream()], &["{}/up.log", "--expect-weight", "a=1"], 2, "unexpected argument '--expect-weight'"),
        // Evidence found, and judged.
        case("ports match the logged node names", vec![("p.log", lbkit(&[("127.0.0.1:18001", 30), ("127.0.0.1:18002", 20)], 5))], &["{}/p.log", "--expect-weights", "18001=3,18002=2", "--threshold", "share{node=18002}==40%"], 0, "✓ shares as expected"),
        case("stickiness can be gated", vec![lbkit_log()], &["{}/lbkit.log", "--threshold", "split_clients==0"], 1, "✗ split_clients==0  (measured 1)"),
        case("malformed lines are a default check", vec![("m.log", malformed.clone())], &["{}/m.log"], 1, "✗ malformed<=1%  (measured 1.96%)"),
        case("--allow-malformed turns it off", vec![("m.log", malformed.clone())], &["{}/m.log", "--allow-malformed"], 0, "2 lines do not match the format"),
        case("a malformed threshold replaces the default", vec![("m.log", malformed)], &["{}/m.log", "--threshold", "malformed<5%"], 0, "✓ malformed<5%"),
        case("gzip that is gzip", vec![("up.log.gz", gzip(&fixture("nginx-upstream_log.log")))], &["{}/up.log.gz", "--report-only"], 0, "15 lines from"),
        // Real-world logs read right.
        case("Traefik JSON with URL objects", vec![("t.log", TRAEFIK_JSON.into())], &["{}/t.log"], 0, "Latency from the JSON field Duration (the request's time, in nanoseconds)"),
        case("Traefik 1.5 CLF with bare dashes", vec![("t15.log", TRAEFIK_15.into())], &["{}/t15.log", "--expect-weights", "10.0.0.21:8000=1,10.0.0.22:8000=1", "--report-only"], 0, "answered without an upstream: 1"),
        case("Envoy nodes without their scheme", vec![("e.log", ENVOY.into())], &["{}/e.log", "--expect-weights", "10.0.2.1:80=1,10.0.2.2:80=1"], 0, "✓ shares as expected"),
        case("whole-second times say so", vec![("r.log", lbkit(&[("127.0.0.1:8001", 300)], 3))], &["{}/r.log"], 0, "Rate: 100.0 requests/s over the 1 whole seconds inside the log's span"),
        case("a rate within one second is a lower bound", vec![("r1.log", lbkit(&[("127.0.0.1:8001", 50)], 1))], &["{}/r1.log"], 0, "Rate: 50.0 requests/s at least: all within 1 logged second"),
    ]
}

fn dir_for(name: &str) -> PathBuf {
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("analyzer-fc-{}-{slug}", std::process::id()))
}

#[test]
fn every_mistake_fails_closed_with_one_line() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let dir = dir_for(c.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &c.files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let dir_text = dir.display().to_string();
        let args: Vec<String> = c.args.iter().map(|a| a.replace("{}", &dir_text)).collect();
        let o = Command::new(env!("CARGO_BIN_EXE_analyzer"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let code = o.status.code();
        let one_line = c.code != 2 || err.trim_end().lines().count() == 1;
        let said = out.contains(c.says) || err.contains(c.says);
        if code != Some(c.code) || !said || !one_line {
            wrong.push(format!(
                "{}: exit {code:?} (want {}), wants {:?}\n--- stdout\n{out}--- stderr\n{err}",
                c.name, c.code, c.says
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
