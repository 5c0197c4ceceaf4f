//! The terminal report: what was read, the per-node table, retries, and a
//! ✓/✗ line per check. Only produces text; the caller prints it.

use std::fmt::Write as _;

use comfy_table::{presets, CellAlignment, Table};
use hdrhistogram::Histogram;

use crate::check::Check;
use crate::summary::{Summary, Tally};

/// What the report says about where its figures came from.
pub struct Context<'a> {
    pub inputs: &'a [String],
    pub format: &'a str,
    pub detected: bool,
    /// The nginx variable latency comes from, if the format has one.
    pub timing: Option<&'static str>,
    pub has_node: bool,
    pub expected: Option<&'a [(String, f64)]>,
    /// Lines about what the log is judged against (the config's promise,
    /// stickiness), printed under the table.
    pub notes: &'a [String],
}

const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("max", 100.0),
];

pub fn text(s: &Summary, cx: &Context<'_>, checks: &[Check]) -> String {
    let mut out = String::new();
    let how = if cx.detected {
        "recognised"
    } else {
        "as given"
    };
    let _ = writeln!(
        out,
        "{} lines from {}; format {} ({how})",
        s.lines,
        cx.inputs.join(", "),
        cx.format,
    );
    if s.malformed > 0 {
        let _ = writeln!(
            out,
            "{} lines do not match the format, the first:",
            s.malformed
        );
        for example in &s.malformed_examples {
            let _ = writeln!(out, "  {example}");
        }
    }
    if !cx.has_node {
        out.push_str(
            "The format has no $upstream_addr, so no node is known: add \
             `to: $upstream_addr` to the log_format for a per-node view.\n",
        );
    }
    match cx.timing {
        Some(field) => {
            let _ = writeln!(out, "Latency from {field}, in milliseconds.");
        }
        None => out.push_str(
            "No timing in this format: percentiles need $request_time; add \
             `rt=$request_time urt=$upstream_response_time` to the log_format \
             (the balancer's default format has both).\n",
        ),
    }
    out.push('\n');
    out.push_str(&nodes_table(s, cx));
    out.push('\n');
    if s.retried > 0 || s.no_upstream > 0 {
        let _ = writeln!(
            out,
            "Retried: {} requests ({} extra attempts); answered without an upstream: {}",
            s.retried, s.extra_attempts, s.no_upstream
        );
    }
    for note in cx.notes {
        let _ = writeln!(out, "{note}");
    }
    if let Some(rate) = s.rate() {
        let _ = writeln!(out, "Rate: {rate:.1} requests/s over the log's span");
    }
    if !checks.is_empty() {
        out.push('\n');
        for c in checks {
            let _ = writeln!(out, "{}", c.line);
        }
    }
    out
}

fn nodes_table(s: &Summary, cx: &Context<'_>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["node", "requests", "share"];
    if cx.expected.is_some() {
        header.extend(["expected", "deviation"]);
    }
    header.extend(["2xx", "3xx", "4xx", "5xx", "errors"]);
    if cx.timing.is_some() {
        header.extend(PERCENTILES.iter().map(|(name, _)| *name));
    }
    table.set_header(header.clone());
    let total = s.all.requests.max(1) as f64;
    let weight_sum: f64 = cx.expected.map_or(0.0, |e| e.iter().map(|(_, w)| w).sum());
    let expected_share = |node: &str| {
        let e = cx.expected?;
        let w = e.iter().find(|(n, _)| n == node).map_or(0.0, |(_, w)| *w);
        Some(w / weight_sum.max(f64::MIN_POSITIVE))
    };
    let mut names: Vec<&str> = s.nodes.keys().map(String::as_str).collect();
    // Expected nodes that served nothing get a row: that is the news.
    for (n, _) in cx.expected.unwrap_or_default() {
        if !s.nodes.contains_key(n) {
            names.push(n);
        }
    }
    let empty = Tally::default();
    for name in names {
        let t = s.nodes.get(name).unwrap_or(&empty);
        let share = t.requests as f64 / total;
        let mut row = vec![name.to_string(), t.requests.to_string(), percent(share)];
        if cx.expected.is_some() {
            let e = expected_share(name).unwrap_or(0.0);
            let deviation = if e > 0.0 {
                format!("{:+.1}%", (share - e) / e * 100.0)
            } else {
                "-".to_string()
            };
            row.extend([percent(e), deviation]);
        }
        row.extend(tally_cells(t, cx));
        table.add_row(row);
    }
    let mut all = vec!["all".to_string(), s.all.requests.to_string(), percent(1.0)];
    if cx.expected.is_some() {
        all.extend([percent(1.0), String::new()]);
    }
    all.extend(tally_cells(&s.all, cx));
    table.add_row(all);
    for i in 1..header.len() {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

fn tally_cells(t: &Tally, cx: &Context<'_>) -> Vec<String> {
    let mut cells: Vec<String> = t.classes[1..].iter().map(u64::to_string).collect();
    cells.push(t.errors.to_string());
    if cx.timing.is_some() {
        cells.extend(PERCENTILES.iter().map(|(_, p)| millis(t.latency(), *p)));
    }
    cells
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn millis(h: &Histogram<u64>, p: f64) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    let us = if p >= 100.0 {
        h.max()
    } else {
        h.value_at_quantile(p / 100.0)
    };
    format!("{:.1}", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn summary() -> Summary {
        let mut s = Summary::default();
        for (i, node) in ["a:1", "a:1", "a:1", "b:2"].into_iter().enumerate() {
            s.add(&Entry {
                node: Some(node),
                attempts: 1 + usize::from(i == 3),
                status: Some(if i == 1 { 502 } else { 200 }),
                request_time: Some(0.010 * (i + 1) as f64),
                upstream_time: None,
                client: None,
                at: None,
            });
        }
        s.add_malformed(|| "access.log:5: column 1: expected a number".into());
        s
    }

    fn context<'a>(expected: Option<&'a [(String, f64)]>, inputs: &'a [String]) -> Context<'a> {
        Context {
            inputs,
            format: "lbkit",
            detected: true,
            timing: Some("$request_time"),
            has_node: true,
            expected,
            notes: &[],
        }
    }

    #[test]
    fn says_what_it_read_and_what_it_found() {
        let inputs = ["access.log".to_string()];
        let weights = [
            ("a:1".to_string(), 1.0),
            ("b:2".to_string(), 1.0),
            ("c:3".to_string(), 2.0),
        ];
        let out = text(&summary(), &context(Some(&weights), &inputs), &[]);
        assert!(
            out.starts_with("5 lines from access.log; format lbkit (recognised)\n"),
            "{out}"
        );
        assert!(
            out.contains("1 lines do not match the format, the first:\n  access.log:5: column 1")
        );
        assert!(out.contains("Retried: 1 requests (1 extra attempts)"));
        let row = |node: &str| out.lines().find(|l| l.contains(node)).unwrap().to_string();
        let cells = |l: String| -> Vec<String> {
            l.split(['│', '┆'])
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        // node, requests, share, expected, deviation, 2xx..5xx, errors, p50..max.
        assert_eq!(
            cells(row("a:1"))[..10],
            ["a:1", "3", "75.0%", "25.0%", "+200.0%", "2", "0", "0", "1", "1"]
        );
        assert_eq!(
            cells(row("c:3"))[..5],
            ["c:3", "0", "0.0%", "50.0%", "-100.0%"]
        );
        assert_eq!(
            cells(row("all")).last().unwrap(),
            "40.0",
            "max of 10..40 ms"
        );
    }

    #[test]
    fn says_how_to_get_what_the_format_lacks() {
        let inputs = ["-".to_string()];
        let cx = Context {
            timing: None,
            has_node: false,
            ..context(None, &inputs)
        };
        let out = text(&Summary::default(), &cx, &[]);
        assert!(out.contains("add `to: $upstream_addr`"), "{out}");
        assert!(out.contains("percentiles need $request_time"), "{out}");
        assert!(!out.contains("p50"), "{out}");
    }
}
