//! `loadgen compare`: a run against itself is no significant change; a run
//! in which one node answers 20 ms slower is a significant regression on
//! that node, and with --max-regression the exit code says so.

use std::time::Duration;

use mockbackend::{Control, Fault};

use crate::binary::loadgen;
use crate::common::{balancer, mock, servers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_is_not_a_regression_and_a_slower_node_is() {
    let m = mock(2, &[("latency", "5ms")]).await;
    let (proxy, _) = balancer(&servers(&m), false).await;
    let url = format!("http://{}/", proxy.addr());
    let dir = std::env::temp_dir().join(format!("lbkit-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |n: &str| dir.join(n).display().to_string();
    let run = |out: String| {
        let args = ["-q", "-k", "-n", "400", "-c", "4", "--json", &out, &url];
        loadgen(args.map(String::from).to_vec(), None)
    };
    assert_eq!(run(file("base.json")).await.status.code(), Some(0));
    let slow = Control::Set {
        fault: Fault::Slow(Duration::from_millis(20)),
        revert_after: None,
    };
    m.control(1, slow).await.unwrap();
    assert_eq!(run(file("slower.json")).await.status.code(), Some(0));
    let compare = |new: &str, extra: &[&str]| {
        let mut args = vec!["compare".to_string(), file("base.json"), file(new)];
        args.extend(extra.iter().map(|s| s.to_string()));
        loadgen(args, None)
    };

    let same = compare("base.json", &["--max-regression", "10%"]).await;
    let out = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{out}");
    assert!(out.contains("✓ no significant change"), "{out}");

    let md = file("summary.md");
    let html = file("compare.html");
    let worse = compare(
        "slower.json",
        &[
            "--max-regression",
            "10%",
            "--markdown",
            &md,
            "--html",
            &html,
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&worse.stdout);
    assert_eq!(worse.status.code(), Some(1), "{out}");
    let slow_node = m.addrs()[1].to_string();
    let fast_node = m.addrs()[0].to_string();
    let verdict = out.lines().last().unwrap();
    assert!(verdict.starts_with("✗ significant regression"), "{out}");
    assert!(verdict.contains(&format!("{slow_node} p50 ms")), "{out}");
    assert!(
        !verdict.contains(&fast_node),
        "the other node is as fast: {out}"
    );
    let line = |node: &str| {
        let wanted = format!("{node:<24} p50 ms");
        out.lines()
            .find(|l| l.starts_with(&wanted))
            .unwrap()
            .to_string()
    };
    assert!(line(&slow_node).ends_with("REGRESSION"), "{out}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.starts_with("### ✗ significant regression"),
        "{markdown}"
    );

    // The page: both runs' CDFs and shares, the table, the verdict.
    let page = crate::html::check_page(
        std::path::Path::new(&html),
        2,
        &["✗ significant regression", "REGRESSION"],
    );
    assert!(page.contains("<div class=\"verdict fail\">"));

    // Reported, not failed, without a bound.
    let reported = compare("slower.json", &[]).await;
    assert_eq!(reported.status.code(), Some(0));
    // Bad input: one line, exit 2.
    for (args, says) in [
        (
            vec![
                "compare".to_string(),
                file("base.json"),
                "/nonexistent.json".into(),
            ],
            "/nonexistent.json",
        ),
        (
            vec![
                "compare".to_string(),
                file("base.json"),
                file("base.json"),
                "--max-regression".into(),
                "lots".into(),
            ],
            "not a percentage",
        ),
        (
            vec!["compare".to_string(), md.clone(), file("base.json")],
            "not JSON",
        ),
    ] {
        let o = loadgen(args, None).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(says) && err.trim_end().lines().count() == 1,
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
