//! `--sweep`: against a backend that takes 8 requests at once, each for
//! 50 ms, the capacity found is its 160 requests/s, within 10%.

use crate::binary::loadgen;
use crate::common::mock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_sweep_finds_the_capacity_of_a_bounded_backend() {
    // Past 8 in flight requests queue: beyond 160/s the queue grows, and
    // latency (from when each request was due) with it. (Without a queue
    // the mock answers 503 past 8, and the capacity found depends on the
    // latency's tail on the machine, not on the backend's throughput.)
    let settings = [
        ("max_concurrency", "8"),
        ("queue", "1000"),
        ("latency", "50ms"),
    ];
    let m = mock(1, &settings).await;
    let url = format!("http://{}/", m.addrs()[0]);
    let json = std::env::temp_dir().join(format!("lbkit-sweep-{}.json", std::process::id()));
    let html = json.with_extension("html");
    let sweep = |range: &str, extra: &[&str]| {
        let mut args: Vec<String> = [
            "-q",
            "-k",
            "--sweep",
            range,
            "--step-duration",
            "1s",
            "--warmup",
            "300ms",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url.clone());
        loadgen(args, None)
    };
    let o = sweep(
        "rate=20..1000",
        &[
            "--threshold",
            "error_rate<1%",
            "--threshold",
            "p(99)<100ms",
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let capacity = report["sweep"]["capacity"].as_f64().unwrap();
    assert!(
        (144.0..=176.0).contains(&capacity),
        "capacity {capacity}: {out}"
    );
    let steps = report["sweep"]["steps"].as_array().unwrap();
    assert!(steps.len() <= 16, "bounded: {} steps", steps.len());
    // Every step past the capacity failed its checks; every one at or
    // below it held.
    for s in steps {
        let (load, held) = (s["load"].as_f64().unwrap(), s["held"].as_bool().unwrap());
        assert_eq!(held, load <= capacity, "{s}");
        assert!(s["achieved_per_second"].as_f64().unwrap() > 0.0);
    }
    assert!(
        out.contains(&format!("Capacity: {capacity} requests/s")),
        "{out}"
    );
    // The page: latency and delivered rate against load, the capacity
    // marked, the step table.
    let capacity_line = format!("✓ capacity {capacity} requests/s");
    crate::html::check_page(&html, 2, &[&capacity_line, "Latency against rate"]);
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&html);

    // A CI gate: below --min-capacity is exit 1.
    // (A narrow range: the capacity is found in a few steps.)
    let gate = ["--threshold", "error_rate<1%", "--min-capacity", "400"];
    let o = sweep("rate=100..200", &gate).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("✗ capacity >= 400"), "{out}");
    // Nothing to hold: no sweep at all.
    let o = sweep("rate=20..1000", &[]).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--sweep: say what must hold"), "{err}");
}

/// `[sweep]` in a scenario: its backends and balancer staged once, the
/// steps through them. The library's capacity-sweep.toml is sized to run
/// out at 160 requests/s (weights 3:1 on backends of 6 and 2 at 50 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_sweeps_its_own_balancer() {
    let dir = std::env::temp_dir().join(format!("lbkit-scenario-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("sweep.json");
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/capacity-sweep.toml");
    let args = [
        "--scenario",
        file.to_str().unwrap(),
        "-q",
        "--json",
        json.to_str().unwrap(),
    ];
    let o = loadgen(args.map(String::from).to_vec(), None).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let capacity = report["sweep"]["capacity"].as_f64().unwrap();
    assert!(
        (144.0..=176.0).contains(&capacity),
        "capacity {capacity}: {out}"
    );
    // Each step's shares follow the weights, and the text names the
    // backends as the scenario does.
    for s in report["sweep"]["steps"].as_array().unwrap() {
        let shares: Vec<f64> = s["shares"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(shares.iter().any(|v| (v - 0.75).abs() < 0.02), "{s}");
    }
    assert!(
        out.contains("heavy 127.0.0.1:") && out.contains("light 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("✓ capacity >= 140"), "{out}");

    // What a sweep cannot go with is refused before anything starts.
    let text = std::fs::read_to_string(&file).unwrap();
    let bad = dir.join("bad.toml");
    for (change, says) in [
        (
            "[load]\nrequests = 100",
            "[sweep] [load] requests cannot go with a sweep",
        ),
        (
            "[load]\n[[event]]\nat = \"1s\"\nbackend = \"light\"\naction = \"kill\"",
            "[sweep] [[event]] cannot go with a sweep",
        ),
        (
            "[load]",
            "'retries == 0': retries is read from the balancer's access log",
        ),
    ] {
        let t = text.replacen("[load]", change, 1);
        // The last case: a threshold only the balancer's log can measure.
        let t = match change {
            "[load]" => t.replace("\"client_errors == 0\"", "\"retries == 0\""),
            _ => t,
        };
        std::fs::write(&bad, t).unwrap();
        let o = loadgen(vec!["--scenario".into(), bad.display().to_string()], None).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
