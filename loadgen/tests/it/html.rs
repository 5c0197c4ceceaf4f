//! `--html FILE`: one self-contained page per run, scenario, sweep and
//! comparison, with the verdict on top and every chart drawn with data.
//! (bench/html-report.sh opens them in headless Chromium.)

use std::path::Path;

use crate::binary::loadgen;
use crate::common::{balancer, mock, servers};

/// Reads the page at `path` and checks what every page must be: one
/// HTML document with nothing loaded from elsewhere, `charts` charts at
/// least, each with data drawn, and each of `says` in it.
pub fn check_page(path: &Path, charts: usize, says: &[&str]) -> String {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..80.min(html.len())]
    );
    assert!(html.trim_end().ends_with("</html>"));
    let external = analyzer::html::external_references(&html);
    assert!(external.is_empty(), "loads from elsewhere: {external:?}");
    let marks = analyzer::html::chart_marks(&html);
    assert!(
        marks.len() >= charts,
        "{} charts, wanted {charts}",
        marks.len()
    );
    assert!(
        marks.iter().all(|m| *m > 0),
        "a chart without data: {marks:?}"
    );
    for s in says {
        assert!(html.contains(s), "{s:?} is not on the page");
    }
    html
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_and_a_scenario_each_make_one_page() {
    let m = mock(2, &[("latency", "2ms")]).await;
    let (proxy, _) = balancer(&servers(&m), false).await;
    let dir = std::env::temp_dir().join(format!("lbkit-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("run.html");
    let url = format!("http://{}/", proxy.addr());
    let weights = format!("{}=1,{}=1", m.addrs()[0], m.addrs()[1]);
    let args = [
        "-q",
        "-k",
        "-n",
        "300",
        "-c",
        "4",
        "--expect-weights",
        &weights,
        "--threshold",
        "p(99)<2s",
        "--html",
        page.to_str().unwrap(),
        &url,
    ];
    let o = loadgen(args.map(String::from).to_vec(), None).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Latency CDF, distribution, shares; the verdict; ab's report.
    let html = check_page(
        &page,
        3,
        &["✓ all 2 checks held", "Complete requests:      300"],
    );
    assert!(html.contains("<div class=\"verdict ok\">"));
    assert!(html.contains(&m.addrs()[1].to_string()));

    // A scenario with events: its backends by name, the events on the
    // balancer's requests over time, the log's charts and table.
    let page = dir.join("scenario.html");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/failover-recovery.toml");
    let args = [
        "--scenario",
        file.to_str().unwrap(),
        "-q",
        "--engine",
        "reference",
        "--html",
        page.to_str().unwrap(),
    ];
    let o = loadgen(args.map(String::from).to_vec(), None).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    check_page(
        &page,
        6,
        &[
            "✓ scenario failover-recovery: all 3 checks held",
            "Requests per second per node",
            "kill flaky",
            "revive flaky",
            "<td>flaky 127.0.0.1:",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
