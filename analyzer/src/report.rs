//! The terminal report: what was read, the per-node table, retries, and a
//! ✓/✗ line per check. Only produces text; the caller prints it.

use std::fmt::Write as _;

use comfy_table::{presets, CellAlignment, Table};
use hdrhistogram::Histogram;

use crate::check::Check;
use crate::summary::{percentile, Summary, Tally};

/// What the report says about where its figures came from.
pub struct Context<'a> {
    pub inputs: &'a [String],
    pub format: &'a str,
    pub detected: bool,
    /// The nginx variable latency comes from, if the format has one.
    pub timing: Option<&'a str>,
    pub has_node: bool,
    pub expected: Option<&'a [(String, f64)]>,
    /// Lines about what the log is judged against (the config's promise,
    /// stickiness), printed under the table.
    pub notes: &'a [String],
    /// Nodes' names by address (a scenario's `[[backend]] name`), shown
    /// beside the address.
    pub names: &'a [(String, String)],
}

impl Context<'_> {
    /// A node as tables and charts show it: `heavy 127.0.0.1:8001` when it
    /// has a name, else its address.
    pub fn node(&self, addr: &str) -> String {
        match self.names.iter().find(|(a, _)| a == addr) {
            Some((_, name)) => format!("{name} {addr}"),
            None => addr.to_string(),
        }
    }
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
        for (_, example) in &s.malformed_examples {
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
    if s.all.cut > 0 {
        let _ = writeln!(
            out,
            "{} answers were cut short ($body_bytes_sent below $sent_http_content_length); they count as errors.",
            s.all.cut
        );
    }
    if s.nodes_overflow() {
        let _ = writeln!(
            out,
            "More than {} nodes: those past the first {} are summed as {}.",
            crate::summary::MAX_NODES,
            crate::summary::MAX_NODES,
            crate::summary::OTHER_NODES
        );
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
    out.push_str(&over_time_table(s, cx));
    if let Some(rate) = s.rate() {
        let _ = writeln!(out, "Rate: {:.1} requests/s {}", rate.per_second, rate.how);
    }
    if !checks.is_empty() {
        out.push('\n');
        for c in checks {
            let _ = writeln!(out, "{}", c.line);
        }
    }
    out
}

/// One line of the per-node table: a node, or `all` last.
pub struct Row<'a> {
    pub node: &'a str,
    pub tally: &'a Tally,
    pub share: f64,
    /// When shares are expected: this node's (0 for one not expected).
    pub expected: Option<f64>,
}

impl Row<'_> {
    pub fn deviation(&self) -> Option<f64> {
        self.expected
            .filter(|e| *e > 0.0)
            .map(|e| (self.share - e) / e)
    }
}

/// The nodes seen, then expected nodes that served nothing (that is the
/// news), then `all`.
pub fn rows<'a>(
    s: &'a Summary,
    expected: Option<&'a [(String, f64)]>,
    empty: &'a Tally,
) -> Vec<Row<'a>> {
    let total = s.all.requests.max(1) as f64;
    let weight_sum: f64 = expected.map_or(0.0, |e| e.iter().map(|(_, w)| w).sum());
    let expected_share = |node: &str| {
        let w = expected?
            .iter()
            .find(|(n, _)| n == node)
            .map_or(0.0, |(_, w)| *w);
        Some(w / weight_sum.max(f64::MIN_POSITIVE))
    };
    let mut names: Vec<&str> = s.nodes.keys().map(String::as_str).collect();
    for (n, _) in expected.unwrap_or_default() {
        if !s.nodes.contains_key(n) {
            names.push(n);
        }
    }
    let mut rows: Vec<Row<'a>> = names
        .into_iter()
        .map(|node| {
            let tally = s.nodes.get(node).unwrap_or(empty);
            Row {
                node,
                tally,
                share: tally.requests as f64 / total,
                expected: expected_share(node),
            }
        })
        .collect();
    rows.push(Row {
        node: "all",
        tally: &s.all,
        share: 1.0,
        expected: expected.map(|_| 1.0),
    });
    rows
}

/// The table's column names, as both the terminal and Markdown show them.
fn header(cx: &Context<'_>) -> Vec<&'static str> {
    let mut header = vec!["node", "requests", "share"];
    if cx.expected.is_some() {
        header.extend(["expected", "deviation"]);
    }
    header.extend(["2xx", "3xx", "4xx", "5xx", "errors"]);
    if cx.timing.is_some() {
        header.extend(PERCENTILES.iter().map(|(name, _)| *name));
    }
    header
}

/// One precision per latency column, for every row: as many decimals as 3
/// significant digits of the column's smallest value above zero need
/// (`0.342` 3, `1.25` 2, `12.0` 1, `700` 0), so a column reads `0.00 / 1.00
/// / 10.00 / 301.00`, not `0 / 1.00 / 10.0 / 301`.
fn latency_decimals(rows: &[Row<'_>]) -> Vec<usize> {
    PERCENTILES
        .iter()
        .map(|(_, p)| {
            let smallest = rows
                .iter()
                .map(|r| r.tally.latency())
                .filter(|h| !h.is_empty())
                .map(|h| percentile(h, *p) as f64 / 1000.0)
                .filter(|ms| *ms > 0.0)
                .fold(f64::MAX, f64::min);
            match smallest {
                m if m >= 100.0 => 0,
                m if m >= 10.0 => 1,
                m if m >= 1.0 => 2,
                _ => 3,
            }
        })
        .collect()
}

fn cells(row: &Row<'_>, cx: &Context<'_>, decimals: &[usize]) -> Vec<String> {
    let t = row.tally;
    let node = match row.node {
        "all" => "all".to_string(),
        addr => cx.node(addr),
    };
    let mut cells = vec![node, t.requests.to_string(), percent(row.share)];
    if let Some(e) = row.expected {
        let deviation = match row.deviation() {
            Some(d) if row.node != "all" => format!("{:+.1}%", d * 100.0),
            _ if row.node == "all" => String::new(),
            _ => "-".to_string(),
        };
        cells.extend([percent(e), deviation]);
    }
    cells.extend(t.classes[1..].iter().map(u64::to_string));
    cells.push(t.errors.to_string());
    if cx.timing.is_some() {
        let columns = PERCENTILES.iter().zip(decimals);
        cells.extend(columns.map(|((_, p), d)| millis(t.latency(), *p, *d)));
    }
    cells
}

/// The per-node table's header and cells, as the terminal shows them: for
/// other renderings (HTML).
pub fn table_cells(s: &Summary, cx: &Context<'_>) -> (Vec<String>, Vec<Vec<String>>) {
    let empty = Tally::default();
    let rows = rows(s, cx.expected, &empty);
    let decimals = latency_decimals(&rows);
    let header = header(cx).into_iter().map(str::to_string).collect();
    (
        header,
        rows.iter().map(|r| cells(r, cx, &decimals)).collect(),
    )
}

fn nodes_table(s: &Summary, cx: &Context<'_>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    let header = header(cx);
    table.set_header(header.clone());
    let empty = Tally::default();
    let rows = rows(s, cx.expected, &empty);
    let decimals = latency_decimals(&rows);
    for row in &rows {
        table.add_row(cells(row, cx, &decimals));
    }
    for i in 1..header.len() {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("{table}\n")
}

/// Spans of the log's time the over-time view splits it into.
pub const TIME_BUCKETS: usize = 10;

/// Requests per second by node over the log's time, when it covers more
/// than a few seconds: a node that died and came back shows as a dip.
fn over_time_table(s: &Summary, cx: &Context<'_>) -> String {
    let spans = s.over_time(TIME_BUCKETS);
    if spans.len() < 2 {
        return String::new();
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["from".to_string(), "seconds".to_string()];
    header.extend(s.nodes.keys().map(|n| cx.node(n)));
    table.set_header(header);
    let first = spans[0].0;
    for (start, seconds, rates) in &spans {
        let mut row = vec![format!("+{}s", start - first), seconds.to_string()];
        row.extend(rates.iter().map(|r| format!("{r:.1}")));
        table.add_row(row);
    }
    for i in 1..=s.nodes.len() + 1 {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    format!("\nRequests per second by node over time:\n{table}\n")
}

/// The report as Markdown, for a CI job summary: what was read, the table,
/// the notes and the checks.
pub fn markdown(s: &Summary, cx: &Context<'_>, checks: &[Check]) -> String {
    let mut out = String::new();
    let ok = checks.iter().all(|c| c.ok);
    let _ = writeln!(
        out,
        "### analyzer: {}\n\n{} lines from {}, format {}.\n",
        if ok { "✓ passed" } else { "✗ breached" },
        s.lines,
        cx.inputs
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", "),
        cx.format,
    );
    let header = header(cx);
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    let empty = Tally::default();
    let rows = rows(s, cx.expected, &empty);
    let decimals = latency_decimals(&rows);
    for row in &rows {
        let cells: Vec<String> = cells(row, cx, &decimals)
            .iter()
            .map(|c| c.replace('|', "\\|"))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
    for note in cx.notes {
        let _ = writeln!(out, "{note}\n");
    }
    for c in checks {
        let _ = writeln!(out, "- {}", c.line);
    }
    out
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn millis(h: &Histogram<u64>, p: f64, decimals: usize) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    format!("{:.*}", decimals, percentile(h, p) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn summary() -> Summary {
        let mut s = Summary::default();
        for (i, node) in ["a:1", "a:1", "a:1", "b:2"].into_iter().enumerate() {
            s.add(&Entry {
                cut: false,
                node: Some(node),
                attempts: 1 + usize::from(i == 3),
                status: Some(if i == 1 { 502 } else { 200 }),
                request_time: Some(0.010 * (i + 1) as f64),
                upstream_time: None,
                client: None,
                at: None,
            });
        }
        s.add_malformed(5, || "access.log:5: column 1: expected a number".into());
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
            names: &[],
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
        // One precision per column: a:1's 30 ms max and all's 40 ms alike.
        assert_eq!(cells(row("a:1")).last().unwrap(), "30.0");
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
