//! A run made by N loadgen processes, as the pods of a Kubernetes Indexed
//! Job make it (each told its shard by JOB_COMPLETION_INDEX), merged with
//! `loadgen merge`, is the run one process makes: the same requests, the
//! same per-node counts, the same verdicts.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::binary::loadgen;
use crate::common::{balancer, mock, servers};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lbkit-shards-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What two runs must share: requests, statuses, per-node counts, and each
/// check with its outcome.
fn verdict(report: &Value) -> Value {
    let nodes: serde_json::Map<String, Value> = report["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v["requests"].clone()))
        .collect();
    let checks: Vec<Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!([c["check"], c["ok"]]))
        .collect();
    serde_json::json!({
        "complete": report["complete"],
        "failed": report["failed"]["total"],
        "statuses": report["statuses"],
        "nodes": nodes,
        "checks": checks,
        "ok": report["ok"],
    })
}

/// The load `args` makes in one process, then in `n` shards merged: both
/// judged by `checks`. Returns the one process's verdict.
async fn same_as_one_process(dir: &Path, url: &str, args: &[&str], checks: &[&str]) -> Value {
    let mut base: Vec<String> = ["-q"].iter().chain(args).map(|s| s.to_string()).collect();
    for c in checks {
        base.push(c.to_string());
    }
    let one = dir.join("one.json");
    let mut single = base.clone();
    single.extend(["--json".into(), one.display().to_string(), url.into()]);
    let o = loadgen(single, None).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let whole = verdict(&json(&one));
    for n in [1u32, 3, 4] {
        // The pods of one run begin together at a time they share.
        let start = std::time::SystemTime::now() + std::time::Duration::from_millis(500);
        let start = start
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let runs: Vec<_> = (0..n)
            .map(|i| {
                let mut a = base.clone();
                let file = dir.join(format!("shard-{n}-{i}.json"));
                a.extend(["--shard-from-env", "--shards", &n.to_string()].map(String::from));
                a.extend(["--start-at".into(), format!("{start:.3}")]);
                a.extend(["--json".into(), file.display().to_string(), url.into()]);
                (file, tokio::spawn(loadgen(a, Some(i))))
            })
            .collect();
        let mut files = Vec::new();
        for (file, run) in runs {
            let o = run.await.unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(json(&file)["run"]["settings"]["shards"], n);
            files.push(file.display().to_string());
        }
        let merged = dir.join(format!("merged-{n}.json"));
        let mut m: Vec<String> = vec!["merge".into()];
        m.extend(files);
        m.extend(["--json".into(), merged.display().to_string()]);
        let o = loadgen(m, None).await;
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("Complete requests:"), "ab's report: {out}");
        assert_eq!(
            verdict(&json(&merged)),
            whole,
            "{n} shards against one process, {args:?}"
        );
    }
    whole
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_merged_are_the_run_one_process_makes() {
    let m = mock(3, &[]).await;
    let a = m.addrs();
    let weighted = format!(
        "server {} weight=3; server {} weight=2; server {};",
        a[0], a[1], a[2]
    );
    let (proxy, _) = balancer(&weighted, false).await;
    let url = format!("http://{}/", proxy.addr());
    let dir = Scratch::new("closed");
    let weights = format!("--expect-weights={}=3,{}=2,{}=1", a[0], a[1], a[2]);
    // Closed loop; 1200 requests are whole turns of the 3:2:1 weights, so
    // each run starts the balancer where the one before did.
    let v = same_as_one_process(
        &dir.0,
        &url,
        &["-n", "1200", "-c", "12", "-k"],
        &[&weights, "--threshold=error_rate<1%"],
    )
    .await;
    assert_eq!(v["nodes"][a[0].to_string()], 600, "{v}");
    assert_eq!(v["checks"].as_array().unwrap().len(), 2, "{v}");
    // Open loop: each shard takes every Nth arrival of the 400/s schedule.
    let v = same_as_one_process(
        &dir.0,
        &url,
        &["-n", "300", "-c", "8", "--rate", "400"],
        &["--threshold=p(99)<2s"],
    )
    .await;
    assert_eq!(v["complete"], 300);
    let rate = json(&dir.0.join("merged-3.json"));
    assert_eq!(rate["pacing"]["per_second"], 400.0, "the whole run's rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_client_pools_keep_ip_hash_testable() {
    let m = mock(3, &[]).await;
    let (proxy, _) = balancer(&format!("ip_hash; {}", servers(&m)), true).await;
    let url = format!("http://{}/", proxy.addr());
    let dir = Scratch::new("ip-hash");
    // 3000 clients in 12 /24s (what ip_hash tells apart): the shards'
    // clients are disjoint and each request is the client it is in one
    // process, so every /24 lands where it does in one process.
    let args = [
        "-n",
        "3000",
        "-c",
        "6",
        "-k",
        "--x-forwarded-for-pool",
        "10.0.0.0/8",
    ];
    let v = same_as_one_process(&dir.0, &url, &args, &["--threshold=error_rate<1%"]).await;
    let counts: Vec<u64> = v["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert!(counts.len() > 1, "ip_hash spread the /24s: {v}");
    assert_eq!(counts.iter().sum::<u64>(), 3000);
    // Each of the four shards sent its part (the unit tests show their
    // clients are disjoint).
    let shards: Vec<Value> = (0..4)
        .map(|i| json(&dir.0.join(format!("shard-4-{i}.json"))))
        .collect();
    let total: u64 = shards.iter().map(|s| s["complete"].as_u64().unwrap()).sum();
    assert_eq!(total, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_of_part_of_a_run_or_of_two_loads_is_refused() {
    let m = mock(2, &[]).await;
    let (proxy, _) = balancer(&servers(&m), false).await;
    let url = format!("http://{}/", proxy.addr());
    let dir = Scratch::new("refused");
    let file = |name: &str| dir.0.join(name).display().to_string();
    for (name, shard, n) in [
        ("a0", "0/2", "100"),
        ("a1", "1/2", "100"),
        ("b1", "1/2", "200"),
    ] {
        let args = [
            "-q",
            "-n",
            n,
            "-c",
            "2",
            "--shard",
            shard,
            "--json",
            &file(name),
            &url,
        ]
        .map(String::from);
        let o = loadgen(args.to_vec(), None).await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for (files, says) in [
        (vec!["a0"], "shard 1 of 2 is missing"),
        (vec!["a0", "a0"], "both shard 0 of 2"),
        (vec!["a0", "b1"], "-n differs: 100 and 200"),
    ] {
        let mut args = vec!["merge".to_string()];
        args.extend(files.iter().map(|f| file(f)));
        let o = loadgen(args, None).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{files:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(says), "{files:?}: {err}");
    }
    let o = loadgen(vec!["merge".into(), file("a0"), file("a1")], None).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let not_run = dir.0.join("not-a-run.json");
    std::fs::write(&not_run, "{\"tool\": \"analyzer\"}").unwrap();
    let o = loadgen(vec!["merge".into(), not_run.display().to_string()], None).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run block"));
}
