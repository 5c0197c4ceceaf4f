//! The same scenario on several balancers (`engine = ["reference",
//! "nginx"]`): their per-node counts side by side, and whether they agree:
//! a chi-square test of homogeneity on the counts (do both split the
//! requests alike?) and the same outcome for every check. Pure.

use analyzer::significance::homogeneity;
use analyzer::Check;
use analyzer::ALPHA;

/// What the agreement check is called in reports, JSON and JUnit.
pub const CHECK_NAME: &str = "engines agree";

/// One balancer's run, as the comparison sees it.
pub struct Side<'a> {
    pub engine: &'a str,
    /// Requests per node, from its log (by backend name).
    pub counts: Vec<(String, u64)>,
    pub checks: &'a [Check],
}

/// The side-by-side table, and the check that the engines agree.
pub fn compare(sides: &[Side<'_>]) -> (String, Check) {
    let mut nodes: Vec<&str> = Vec::new();
    for side in sides {
        for (n, _) in &side.counts {
            if !nodes.contains(&n.as_str()) {
                nodes.push(n);
            }
        }
    }
    let count = |side: &Side<'_>, node: &str| {
        side.counts
            .iter()
            .find(|(n, _)| n == node)
            .map_or(0, |(_, c)| *c)
    };
    let rows: Vec<Vec<u64>> = sides
        .iter()
        .map(|s| nodes.iter().map(|n| count(s, n)).collect())
        .collect();
    let (chi, df, p) = homogeneity(&rows);

    let mut names: Vec<&str> = Vec::new();
    for side in sides {
        for c in side.checks {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    let outcome =
        |side: &Side<'_>, name: &str| side.checks.iter().find(|c| c.name == name).map(|c| c.ok);
    // Checks only one engine makes (nginx's own access log) are shown, not
    // compared.
    let shared: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| sides.iter().all(|s| outcome(s, n).is_some()))
        .collect();
    let differing: Vec<&str> = shared
        .iter()
        .copied()
        .filter(|n| sides.iter().any(|s| outcome(s, n) != outcome(&sides[0], n)))
        .collect();

    let mark = |o: Option<bool>| match o {
        Some(true) => "✓",
        Some(false) => "✗",
        None => "-",
    };
    let mut table: Vec<Vec<String>> = vec![std::iter::once(String::new())
        .chain(sides.iter().map(|s| s.engine.to_string()))
        .collect()];
    for (j, node) in nodes.iter().enumerate() {
        let mut row = vec![format!("requests {node}")];
        row.extend(rows.iter().map(|r| r[j].to_string()));
        table.push(row);
    }
    for name in &names {
        let mut row = vec![name.to_string()];
        row.extend(sides.iter().map(|s| mark(outcome(s, name)).to_string()));
        table.push(row);
    }
    let text = layout(&table);

    let engines: Vec<&str> = sides.iter().map(|s| s.engine).collect();
    let engines = engines.join(" and ");
    let counts_agree = p.is_finite() && p >= ALPHA;
    let ok = counts_agree && differing.is_empty();
    let mut why = format!("per-node counts: chi-square {chi:.2}, {df} df, p={p:.4}");
    match differing.as_slice() {
        [] => why.push_str(&format!("; all {} checks the same", shared.len())),
        some => {
            let each: Vec<String> = some
                .iter()
                .map(|n| {
                    let by: Vec<String> = sides
                        .iter()
                        .map(|s| format!("{} on {}", mark(outcome(s, n)), s.engine))
                        .collect();
                    format!("'{n}' {}", by.join(", "))
                })
                .collect();
            why.push_str(&format!("; checks differ: {}", each.join("; ")));
        }
    }
    let check = Check {
        name: CHECK_NAME.to_string(),
        ok,
        measured: Some(p),
        line: format!("{} {engines} agree  ({why})", if ok { "✓" } else { "✗" }),
    };
    (text, check)
}

/// Rows as columns: the first left-aligned, the others right-aligned.
pub(crate) fn layout(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) -> Check {
        Check {
            name: name.into(),
            ok,
            measured: None,
            line: String::new(),
        }
    }

    fn counts(c: &[(&str, u64)]) -> Vec<(String, u64)> {
        c.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    #[test]
    fn engines_agree_on_like_counts_and_the_same_outcomes() {
        let checks = [
            check("shares as expected", true),
            check("client_errors == 0", true),
        ];
        let sides = [
            Side {
                engine: "reference",
                counts: counts(&[("a", 600), ("b", 400)]),
                checks: &checks,
            },
            Side {
                engine: "nginx",
                counts: counts(&[("a", 598), ("b", 402)]),
                checks: &checks,
            },
        ];
        let (table, c) = compare(&sides);
        assert!(c.ok, "{}", c.line);
        assert!(
            c.line.starts_with(
                "✓ reference and nginx agree  (per-node counts: chi-square 0.01, 1 df"
            ),
            "{}",
            c.line
        );
        assert!(
            table.contains("requests a                600    598"),
            "{table}"
        );
        assert!(
            table.contains("shares as expected          ✓      ✓"),
            "{table}"
        );
    }

    #[test]
    fn a_different_split_or_outcome_is_disagreement() {
        let good = [check("shares as expected", true)];
        let bad = [check("shares as expected", false)];
        let sides = [
            Side {
                engine: "reference",
                counts: counts(&[("a", 750), ("b", 250)]),
                checks: &good,
            },
            Side {
                engine: "nginx",
                counts: counts(&[("a", 500), ("b", 500)]),
                checks: &bad,
            },
        ];
        let (_, c) = compare(&sides);
        assert!(!c.ok);
        assert!(
            c.line
                .contains("checks differ: 'shares as expected' ✓ on reference, ✗ on nginx"),
            "{}",
            c.line
        );
    }
}
