//! The report for machines: JSON with every figure, and JUnit XML with one
//! testcase per check for CI test tabs. Only bytes; the caller writes them.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::check::Check;
use crate::report::{rows, Context, Row};
use crate::summary::{percentile, Summary, Tally};

const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

fn latency_ms(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let mut m = Map::new();
    for (name, p) in PERCENTILES {
        m.insert(name.into(), json!(ms(percentile(h, p))));
    }
    m.insert("max".into(), json!(ms(percentile(h, 100.0))));
    m.insert("mean".into(), json!(h.mean() / 1000.0));
    Value::Object(m)
}

fn tally(t: &Tally) -> Value {
    let [c1, c2, c3, c4, c5] = t.classes;
    json!({
        "requests": t.requests,
        "status_classes": {"1xx": c1, "2xx": c2, "3xx": c3, "4xx": c4, "5xx": c5},
        "errors": t.errors,
        "cut": t.cut,
        "error_rate": t.error_rate(),
        "request_time_ms": latency_ms(&t.request_time),
        "upstream_response_time_ms": latency_ms(&t.upstream_time),
    })
}

fn row(r: &Row<'_>) -> Value {
    let mut v = tally(r.tally);
    let m = v.as_object_mut().expect("a tally is an object");
    m.insert("node".into(), json!(r.node));
    m.insert("share".into(), json!(r.share));
    m.insert("expected_share".into(), json!(r.expected));
    m.insert("deviation".into(), json!(r.deviation()));
    v
}

/// Every figure, with an explicit `ok` per check and overall, as text.
pub fn json(s: &Summary, cx: &Context<'_>, checks: &[Check]) -> String {
    let mut text =
        serde_json::to_string_pretty(&json_value(s, cx, checks)).expect("JSON values serialise");
    text.push('\n');
    text
}

/// [`json`] as a value, for a report that holds it (a scenario's).
pub fn json_value(s: &Summary, cx: &Context<'_>, checks: &[Check]) -> serde_json::Value {
    let empty = Tally::default();
    let mut rows = rows(s, cx.expected, &empty);
    let all = rows.pop().expect("rows end with all");
    let sticky = s.stickiness();
    json!({
        "ok": checks.iter().all(|c| c.ok),
        "inputs": cx.inputs,
        "format": cx.format,
        "format_detected": cx.detected,
        "timing_field": cx.timing,
        "lines": s.lines,
        "malformed": s.malformed,
                "malformed_examples": s.malformed_examples.iter().map(|(_, e)| e).collect::<Vec<_>>(),
        "requests": s.all.requests,
        "retried": s.retried,
        "extra_attempts": s.extra_attempts,
        "no_upstream": s.no_upstream,
        "nodes_overflow": s.nodes_overflow(),
        "first_at": s.first_at,
        "last_at": s.last_at,
        "rate": s.rate().map(|r| r.per_second),
        "rate_basis": s.rate().map(|r| r.how),
        "nodes": rows.iter().map(row).collect::<Vec<_>>(),
        "all": row(&all),
        "stickiness": {
            "clients": sticky.clients,
            "split": sticky.split,
            "most_nodes": sticky.most_nodes,
            "clients_overflow": s.clients_overflow,
        },
                "notes": cx.notes,
        "over_time": s.over_time(crate::report::TIME_BUCKETS).iter().map(|(start, seconds, rates)| json!({
            "start": start,
            "seconds": seconds,
            "requests_per_second": s.nodes.keys().zip(rates).map(|(n, r)| (n.clone(), json!(r))).collect::<Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "checks": checks.iter().map(|c| json!({
            "name": c.name,
            "ok": c.ok,
            "measured": c.measured,
            "line": c.line,
        })).collect::<Vec<_>>(),
    })
}

/// One testsuite, one testcase per check; a breach is a `<failure>`.
pub fn junit(suite: &str, checks: &[Check]) -> String {
    let failures = checks.iter().filter(|c| !c.ok).count();
    let suite = xml(suite);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{suite}\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\">\n",
        checks.len(),
        checks.len()
    ));
    for c in checks {
        let name = xml(&c.name);
        if c.ok {
            out.push_str(&format!(
                "    <testcase classname=\"{suite}\" name=\"{name}\"/>\n"
            ));
        } else {
            let line = xml(&c.line);
            out.push_str(&format!(
                "    <testcase classname=\"{suite}\" name=\"{name}\">\n      <failure message=\"{line}\">{line}</failure>\n    </testcase>\n"
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn check(name: &str, ok: bool) -> Check {
        Check {
            name: name.into(),
            ok,
            measured: Some(0.7),
            line: format!("{} {name}  (measured 700ms)", if ok { "✓" } else { "✗" }),
        }
    }

    #[test]
    fn junit_has_a_testcase_per_check_and_escapes() {
        let xml = junit(
            "analyzer",
            &[
                check("error_rate<5%", true),
                check("p(95){node=a}<500ms", false),
            ],
        );
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<testcase classname=\"analyzer\" name=\"error_rate&lt;5%\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"✗ p(95){node=a}&lt;500ms  (measured 700ms)\">"),
            "{xml}"
        );
    }

    #[test]
    fn json_has_every_node_and_an_ok_per_check() {
        let mut s = Summary::default();
        s.add(&Entry {
            cut: false,
            node: Some("a"),
            attempts: 1,
            status: Some(200),
            request_time: Some(0.012),
            upstream_time: None,
            client: None,
            at: None,
        });
        let inputs = ["access.log".to_string()];
        let expected = [("a".to_string(), 1.0), ("b".to_string(), 1.0)];
        let cx = Context {
            inputs: &inputs,
            format: "lbkit",
            detected: true,
            timing: Some("$request_time"),
            has_node: true,
            expected: Some(&expected),
            notes: &[],
            names: &[],
        };
        let v: Value = serde_json::from_str(&json(&s, &cx, &[check("x", false)])).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][0]["ok"], false);
        assert_eq!(v["nodes"][0]["node"], "a");
        assert_eq!(
            v["nodes"][0]["request_time_ms"]["p50"], 12.004,
            "12 ms within 0.05%"
        );
        assert_eq!(v["nodes"][1]["node"], "b");
        assert_eq!(v["nodes"][1]["requests"], 0);
        assert_eq!(v["nodes"][1]["expected_share"], 0.5);
        assert_eq!(v["all"]["requests"], 1);
        assert_eq!(v["all"]["upstream_response_time_ms"], Value::Null);
    }
}
