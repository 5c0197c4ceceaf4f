//! `--html FILE`: one self-contained page (inline CSS, charts as inline
//! SVG; no script, font, image or stylesheet from anywhere else) with the
//! verdict on top, then sections of charts, tables and the text report.
//! The tools build a [`Page`]; this renders it. Only bytes.

use std::fmt::Write;

use crate::check::Check;
use crate::plot::{self, Chart};
use crate::report::{self, Context};
use crate::summary::Summary;

/// A report page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub title: String,
    /// Lines under the title: what was run or read.
    pub about: Vec<String>,
    /// The verdict: whether it held, and its line.
    pub verdict: Option<(bool, String)>,
    pub checks: Vec<Check>,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Default)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub enum Block {
    Chart(Chart),
    /// A header row, then rows; the first column is a name, the others
    /// figures (right-aligned).
    Table(Vec<String>, Vec<Vec<String>>),
    /// A line of prose.
    Note(String),
    /// Preformatted text: a terminal report as the tool prints it.
    Text(String),
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#fff;border-bottom:1px solid #dde1e7;padding:20px 32px}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:18px;margin:0 0 12px}
.about{color:#586174;margin:2px 0;font-size:14px}
.verdict{font-size:18px;font-weight:600;margin:14px 0 8px;padding:10px 14px;border-radius:6px}
.ok{color:#11612f}.fail{color:#a3161a}
.verdict.ok{background:#e3f4e8}.verdict.fail{background:#fbe5e5}
ul.checks{list-style:none;padding:0;margin:0;font-size:14px}
ul.checks li{padding:2px 0}
section{background:#fff;margin:16px 32px;padding:16px 20px;border:1px solid #dde1e7;border-radius:8px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}
.charts svg{width:100%;height:auto;border:1px solid #eef0f3}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f0f2f5}
pre{font-size:12px;background:#f7f8fa;padding:10px;overflow-x:auto;border-radius:6px}
footer{color:#8a92a3;font-size:12px;margin:16px 32px 32px}
";

/// The page as one HTML document.
pub fn render(page: &Page) -> Result<String, String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        escape(&page.title),
        escape(&page.title)
    );
    for line in &page.about {
        let _ = writeln!(out, "<p class=\"about\">{}</p>", escape(line));
    }
    if let Some((ok, line)) = &page.verdict {
        let _ = writeln!(
            out,
            "<div class=\"verdict {}\">{}</div>",
            class(*ok),
            escape(line)
        );
    }
    if !page.checks.is_empty() {
        out.push_str("<ul class=\"checks\">\n");
        for c in &page.checks {
            let _ = writeln!(
                out,
                "<li class=\"{}\">{}</li>",
                class(c.ok),
                escape(&c.line)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</header>\n");
    for section in &page.sections {
        let _ = writeln!(out, "<section>\n<h2>{}</h2>", escape(&section.heading));
        let mut charts = false;
        for block in &section.blocks {
            let is_chart = matches!(block, Block::Chart(_));
            if is_chart != charts {
                out.push_str(if is_chart {
                    "<div class=\"charts\">\n"
                } else {
                    "</div>\n"
                });
                charts = is_chart;
            }
            match block {
                Block::Chart(chart) => {
                    let svg = plot::svg(chart)?;
                    let svg = String::from_utf8(svg).map_err(|e| e.to_string())?;
                    out.push_str(inline(&svg));
                    out.push('\n');
                }
                Block::Table(head, rows) => table(&mut out, head, rows),
                Block::Note(line) => {
                    let _ = writeln!(out, "<p>{}</p>", escape(line));
                }
                Block::Text(text) => {
                    let _ = writeln!(out, "<pre>{}</pre>", escape(text));
                }
            }
        }
        if charts {
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(
        out,
        "<footer>lbkit {}: this page is one file, with nothing loaded from elsewhere.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    Ok(out)
}

/// The verdict of `total` checks of which `failed` failed.
pub fn checks_verdict(failed: usize, total: usize) -> (bool, String) {
    match (failed, total) {
        (0, 1) => (true, "✓ the one check held".into()),
        (0, n) => (true, format!("✓ all {n} checks held")),
        (f, n) => (false, format!("✗ {f} of {n} checks failed")),
    }
}

fn class(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "fail"
    }
}

/// An SVG document as an element of the page: without its XML prolog, and
/// scaled by the page (its viewBox kept).
fn inline(svg: &str) -> &str {
    let start = svg.find("<svg").unwrap_or(0);
    &svg[start..]
}

fn table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str("<table>\n<tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// What in a page would load something from elsewhere: a script, frame,
/// object, stylesheet link, image, any `src` or `href` attribute, a CSS
/// `url()` or `@import`. A URL in the text (the target's) loads nothing.
/// Empty for a self-contained page.
pub fn external_references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let needles = [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", " src=", " href=", ":href=",
        "url(", "@import",
    ];
    let mut found = Vec::new();
    for needle in needles {
        for (at, _) in lower.match_indices(needle) {
            let end = (at + 60).min(html.len());
            let end = (end..=html.len())
                .find(|e| html.is_char_boundary(*e))
                .unwrap_or(html.len());
            found.push(html[at..end].to_string());
        }
    }
    found
}

/// For each chart on a page, how many marks of data it draws: curves
/// (a line of at least three points; a legend's sample has two) and bars.
/// A chart drawn with no data has 0.
pub fn chart_marks(html: &str) -> Vec<usize> {
    html.split("<svg")
        .skip(1)
        .map(|chart| {
            let chart = chart.split("</svg>").next().unwrap_or("");
            let curves = (chart.split("<polyline").skip(1))
                .filter(|p| {
                    let points = p.split("points=\"").nth(1).unwrap_or("");
                    let points = points.split('"').next().unwrap_or("");
                    points.split_whitespace().count() >= 3
                })
                .count();
            // Bars are drawn translucent, the page and legend boxes not;
            // the legend's sample bar is 16 by 10.
            let bars = (chart.split("<rect").skip(1))
                .map(|r| r.split('>').next().unwrap_or(""))
                .filter(|r| r.contains("opacity=\"0.6\""))
                .filter(|r| !r.contains("width=\"16\" height=\"10\""))
                .count();
            curves + bars
        })
        .collect()
}

/// A log's part of a page: its charts (shares against expected, latency
/// CDF and distribution, requests over time with `marks`), the per-node
/// table and the notes.
pub fn log_blocks(s: &Summary, cx: &Context<'_>, marks: &[(f64, String)]) -> Vec<Block> {
    let mut blocks: Vec<Block> = plot::charts(s, cx)
        .into_iter()
        .map(|chart| match chart {
            Chart::OverTime(series, _) => Chart::OverTime(series, marks.to_vec()),
            other => other,
        })
        .map(Block::Chart)
        .collect();
    if let Some(field) = cx.timing {
        let bins = plot::bins_of(s.all.latency());
        if !bins.is_empty() {
            blocks.push(Block::Chart(Chart::Histogram(field.to_string(), bins)));
        }
    }
    let (head, rows) = report::table_cells(s, cx);
    blocks.push(Block::Table(head, rows));
    blocks.extend(cx.notes.iter().map(|n| Block::Note(n.clone())));
    blocks
}

/// The analyzer's page: what was read, the verdict and checks, the log's
/// charts and table, and the terminal report.
pub fn log_page(s: &Summary, cx: &Context<'_>, checks: &[Check], verdict: (bool, String)) -> Page {
    Page {
        title: format!("analyzer: {}", cx.inputs.join(", ")),
        about: vec![format!(
            "{} lines, format {}{}",
            s.lines,
            cx.format,
            cx.timing
                .map_or(String::new(), |t| format!(", latency from {t}"))
        )],
        verdict: Some(verdict),
        checks: checks.to_vec(),
        sections: vec![
            Section {
                heading: "Per node".into(),
                blocks: log_blocks(s, cx, &[]),
            },
            Section {
                heading: "The report".into(),
                blocks: vec![Block::Text(report::text(s, cx, checks))],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_one_file_with_its_verdict_charts_and_tables() {
        let page = Page {
            title: "a <test>".into(),
            about: vec!["1000 requests".into()],
            verdict: Some((false, "✗ 1 of 2 checks failed".into())),
            checks: vec![Check {
                name: "p(99)".into(),
                ok: false,
                measured: Some(3.0),
                line: "✗ p(99) < 2ms".into(),
            }],
            sections: vec![Section {
                heading: "Per node".into(),
                blocks: vec![
                    Block::Chart(Chart::Shares(vec![("a".into(), 0.5, Some(0.5))])),
                    Block::Table(
                        vec!["node".into(), "n".into()],
                        vec![vec!["a".into(), "1".into()]],
                    ),
                    Block::Text("ab's <report>".into()),
                ],
            }],
        };
        let html = render(&page).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>a &lt;test&gt;</title>"));
        assert!(html.contains("<div class=\"verdict fail\">✗ 1 of 2 checks failed</div>"));
        assert!(html.contains("<li class=\"fail\">✗ p(99) &lt; 2ms</li>"));
        assert!(html.contains("<div class=\"charts\">\n<svg"), "{html}");
        assert!(!html.contains("<?xml"));
        assert!(html.contains("<td>a</td><td>1</td>"));
        assert!(html.contains("ab's &lt;report&gt;"));
        assert_eq!(external_references(&html), Vec::<String>::new());
        assert_eq!(chart_marks(&html), vec![1]);
        // A chart with nothing to draw is found out.
        let empty = Page {
            sections: vec![Section {
                heading: "x".into(),
                blocks: vec![Block::Chart(Chart::OverTime(vec![], vec![]))],
            }],
            ..Page::default()
        };
        assert_eq!(chart_marks(&render(&empty).unwrap()), vec![0]);
    }

    #[test]
    fn external_references_are_found() {
        for bad in [
            "<script>x</script>",
            "<link rel=stylesheet href=a.css>",
            "<img src=\"a.png\">",
            "<style>body{background:url(a.png)}</style>",
            "<style>@import 'x.css';</style>",
            "<a href=\"https://example.com\">x</a>",
            "<svg><use xlink:href=\"x.svg#a\"/></svg>",
        ] {
            assert!(!external_references(bad).is_empty(), "{bad}");
        }
        // Namespaces and URLs in the text load nothing.
        let fine = "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg><h1>GET http://127.0.0.1:8001/?src=a</h1>";
        assert!(external_references(fine).is_empty());
    }
}
