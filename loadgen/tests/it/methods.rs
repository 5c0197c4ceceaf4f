//! `[compare] methods`: one scenario under several balancing methods, the
//! methods side by side and ranked, and a verdict that fails closed.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

const SLOW_NODE: &str = r#"
name = "slow-node"
[[backend]]
name = "fast1"
profile = { latency = "5ms" }
[[backend]]
name = "fast2"
profile = { latency = "5ms" }
[[backend]]
name = "slow"
profile = { latency = "100ms" }
[load]
requests = 600
concurrency = 12
[compare]
methods = ["round_robin", "least_conn", "least_time last_byte"]
objective = "mean"
EXPECT
[expect]
thresholds = ["client_errors == 0"]
"#;

fn run(dir: &std::path::Path, expect_best: &str) -> (Option<i32>, String, serde_json::Value) {
    let file = dir.join("slow-node.toml");
    std::fs::write(&file, SLOW_NODE.replace("EXPECT", expect_best)).unwrap();
    let json = dir.join("methods.json");
    let o = Command::new(BIN)
        .args(["--scenario", file.to_str().unwrap(), "-q"])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let json = std::fs::read_to_string(&json).unwrap_or_default();
    (
        o.status.code(),
        out,
        serde_json::from_str(&json).unwrap_or_default(),
    )
}

/// A directory of this test's own.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lbkit-methods-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn on_a_slow_node_least_conn_and_least_time_rank_ahead_of_round_robin() {
    let dir = scratch("rank");
    // The scenario expects round robin to win: it must not, so exit 1,
    // with the whole comparison still reported.
    let (code, out, json) = run(&dir, r#"expect_best = ["round_robin"]"#);
    assert_eq!(code, Some(1), "{out}");
    let ranked: Vec<&str> = json["compare"]["ranked"]
        .as_array()
        .unwrap_or_else(|| panic!("no ranking in the JSON: {out}"))
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    let place = |m: &str| ranked.iter().position(|r| *r == m).unwrap();
    assert!(
        place("least_conn") < place("round_robin"),
        "{ranked:?}\n{out}"
    );
    assert!(
        place("least_time last_byte") < place("round_robin"),
        "{ranked:?}\n{out}"
    );
    // Round robin sends the slow node its third; the others steer away.
    let share = |m: &str| {
        json["compare"]["ranked"][place(m)]["shares"]["slow"]
            .as_f64()
            .unwrap()
    };
    assert!((share("round_robin") - 1.0 / 3.0).abs() < 0.02, "{out}");
    assert!(share("least_conn") < 0.15, "{out}");
    // One report per method, then one table with a column for each.
    for m in ["round_robin", "least_conn", "least_time last_byte"] {
        assert!(
            out.contains(&format!("Scenario: slow-node with {m}")),
            "{out}"
        );
    }
    assert!(out.contains("the methods side by side"), "{out}");
    assert!(out.contains("share slow"), "{out}");
    assert!(
        out.contains("not one of [compare] expect_best (exit 1)"),
        "{out}"
    );
    assert_eq!(json["ok"], false);
}

#[test]
fn a_comparison_that_cannot_be_run_is_refused_before_anything_starts() {
    let dir = scratch("refused");
    // One line, exit 2, and nothing run.
    let (code, out, _) = run(&dir, r#"expect_best = ["least_time"]"#);
    assert_eq!(code, Some(2), "{out}");
    let says = "[compare] expect_best: \"least_time\" is not one of the methods";
    assert!(out.contains(says), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let file = dir.join("bad.toml");
    let bad = [
        (
            SLOW_NODE
                .replace("\"least_conn\", ", "\"least_con\", ")
                .replace("EXPECT", ""),
            "methods: \"least_con\"",
        ),
        (
            SLOW_NODE
                .replace("EXPECT", "")
                .replace("\"mean\"", "\"p95\""),
            "objective: \"p95\": the objectives are",
        ),
        (
            SLOW_NODE
                .replace("EXPECT", "")
                .replace("[load]", "[balancer]\nmethod = \"least_conn\"\n[load]"),
            "[balancer] method cannot go with",
        ),
    ];
    for (text, says) in bad {
        std::fs::write(&file, text).unwrap();
        let o = Command::new(BIN)
            .args(["--scenario", file.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
