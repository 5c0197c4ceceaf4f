//! `--summary-out` and `analyzer merge`: the summaries of a log cut into
//! pieces, merged, are the summary of the whole log, and are judged alike.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn analyzer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analyzer"))
        .args(args)
        .output()
        .unwrap()
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("lbkit-merge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A busy log in lbkit's format: four nodes (one slower, one failing
/// now and then), 700 clients some of which meet two nodes, two minutes
/// of time, and a few lines that are not in the format.
fn log() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..6000u32 {
        if i % 997 == 13 {
            lines.push(format!("garbage line {i}"));
            continue;
        }
        let node = 8001 + (i * 7 + i / 5) % 4;
        let status = if node == 8004 && i % 41 == 0 {
            502
        } else {
            200
        };
        let rt = f64::from(1 + (i * 37) % 400) / 1000.0 + if node == 8003 { 0.25 } else { 0.0 };
        let client = i % 700;
        let (m, s) = (i / 50 / 60, i / 50 % 60);
        lines.push(format!(
            "10.0.{}.{} - - [02/Dec/2026:07:{:02}:{:02} +0000] \"GET /v1/chat HTTP/1.1\" {status} 18 \"-\" \"loadgen\" \"-\" to: 127.0.0.1:{node} rt={rt:.3} urt={rt:.3} us={status} cl=18",
            client / 256, client % 256, 10 + m, s
        ));
    }
    lines
}

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A summary file without the names of what it summarised (a malformed
/// line is shown at its place in its own file, a piece's or the whole's).
fn figures(path: &str) -> Value {
    let mut v = json(path);
    v["inputs"] = Value::Null;
    for example in v["summary"]["malformed_examples"].as_array_mut().unwrap() {
        example[1] = Value::Null;
    }
    v
}

#[test]
fn the_merged_summaries_of_a_logs_pieces_are_the_whole_logs() {
    let dir = Dir::new("pieces");
    let lines = log();
    std::fs::write(dir.path("access.log"), lines.join("\n") + "\n").unwrap();
    let checks = [
        "--threshold",
        "p(95)<500ms",
        "--threshold",
        "error_rate<1%",
        "--allow-malformed",
    ];
    let run = |inputs: &[String], merge: bool, out: &str| {
        let mut args: Vec<String> = Vec::new();
        if merge {
            args.push("merge".into());
        }
        args.extend(inputs.iter().cloned());
        args.extend(checks.iter().map(|s| s.to_string()));
        for (flag, file) in [("--summary-out", "summary"), ("--json", "report")] {
            args.extend([flag.to_string(), dir.path(&format!("{out}.{file}.json"))]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        analyzer(&args)
    };
    let whole = run(&[dir.path("access.log")], false, "whole");
    // Pieces of three sizes, cut mid-second.
    let cuts = [0, 1234, 4321, lines.len()];
    let mut summaries = Vec::new();
    for (k, w) in cuts.windows(2).enumerate() {
        let piece = dir.path(&format!("piece-{k}.log"));
        std::fs::write(&piece, lines[w[0]..w[1]].join("\n") + "\n").unwrap();
        let o = run(&[piece], false, &format!("piece-{k}"));
        assert!(
            o.status.code().is_some_and(|c| c < 2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        summaries.push(dir.path(&format!("piece-{k}.summary.json")));
    }
    let merged = run(&summaries, true, "merged");
    let (w, m) = (
        String::from_utf8_lossy(&whole.stdout),
        String::from_utf8_lossy(&merged.stdout),
    );
    assert_eq!(
        merged.status.code(),
        whole.status.code(),
        "{m}{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    // The same report, but for the names of the inputs on its first line
    // and of the files that hold the malformed lines shown.
    let body = |t: &str| {
        let kept = t.lines().skip(1).filter(|l| !l.contains(".log:"));
        kept.collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body(&m), body(&w));
    assert!(w.contains("127.0.0.1:8003"), "{w}");
    // The same summary, every count and histogram, clients and seconds.
    assert_eq!(
        figures(&dir.path("merged.summary.json")),
        figures(&dir.path("whole.summary.json"))
    );
    let (rw, rm) = (
        json(&dir.path("whole.report.json")),
        json(&dir.path("merged.report.json")),
    );
    assert_eq!(rm["checks"], rw["checks"]);
    assert_eq!(rm["nodes"], rw["nodes"]);
    assert_eq!(rw["lines"].as_u64(), Some(6000), "{rw:#}");
}

#[test]
fn merge_refuses_what_is_not_a_summary_and_logs_read_apart() {
    let dir = Dir::new("refused");
    let lbkit = "10.0.0.1 - - [02/Dec/2026:07:00:00 +0000] \"GET / HTTP/1.1\" 200 18 \"-\" \"x\" \"-\" to: 127.0.0.1:8001 rt=0.010 urt=0.010 us=200 cl=18\n";
    let main = "10.0.0.1 - - [02/Dec/2026:07:00:00 +0000] \"GET / HTTP/1.1\" 200 18 \"-\" \"x\"\n";
    std::fs::write(dir.path("a.log"), lbkit).unwrap();
    std::fs::write(dir.path("b.log"), main).unwrap();
    for (log, out, format) in [
        ("a.log", "a.json", "lbkit"),
        ("b.log", "b.json", "combined"),
    ] {
        let o = analyzer(&[
            &dir.path(log),
            "--format",
            format,
            "--summary-out",
            &dir.path(out),
            "--allow-malformed",
        ]);
        assert!(
            o.status.code().is_some_and(|c| c < 2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let one_line_2 = |args: &[&str], says: &str| {
        let o = analyzer(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    one_line_2(
        &["merge", &dir.path("a.json"), &dir.path("b.json")],
        "were not read alike",
    );
    one_line_2(&["merge", &dir.path("a.log")], "not JSON");
    std::fs::write(dir.path("report.json"), "{\"tool\": \"analyzer\"}").unwrap();
    one_line_2(&["merge", &dir.path("report.json")], "not a summary");
    one_line_2(
        &["merge", "--format", "lbkit", &dir.path("a.json")],
        "--format: merge reads summaries",
    );
    let o = analyzer(&["merge", &dir.path("a.json"), "--threshold", "p(99)<1s"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
