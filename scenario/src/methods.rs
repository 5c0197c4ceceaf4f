//! `[compare] methods`: the same scenario (backends, load, events, seed)
//! under each balancing method in turn, on one balancer. What each method
//! did becomes a [`Row`]; the rows are ranked by the scenario's objective
//! (methods that held every check first) and laid out as one table with a
//! verdict naming the best. Pure: the runner fills the rows.

use crate::agree::layout;

/// What "best" means for a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Mean latency: every request's time counts, the slow node's too.
    Mean,
    P50,
    P90,
    P99,
    TtftP50,
    TtftP99,
    /// Answers per second.
    Throughput,
    /// The share of streams that met the SLO.
    Goodput,
    /// The share of requests that failed.
    Errors,
}

impl Objective {
    pub const NAMES: &'static str =
        "mean, p50, p90, p99, ttft_p50, ttft_p99, throughput, goodput, errors";

    pub fn parse(text: &str) -> Result<Objective, String> {
        Ok(match text.trim() {
            "mean" => Objective::Mean,
            "p50" => Objective::P50,
            "p90" => Objective::P90,
            "p99" => Objective::P99,
            "ttft_p50" => Objective::TtftP50,
            "ttft_p99" => Objective::TtftP99,
            "throughput" => Objective::Throughput,
            "goodput" => Objective::Goodput,
            "errors" => Objective::Errors,
            other => return Err(format!("{other:?}: the objectives are {}", Self::NAMES)),
        })
    }

    /// How the verdict names it.
    pub fn describe(self) -> &'static str {
        match self {
            Objective::Mean => "mean latency",
            Objective::P50 => "median latency",
            Objective::P90 => "p90 latency",
            Objective::P99 => "p99 latency",
            Objective::TtftP50 => "median time to first token",
            Objective::TtftP99 => "p99 time to first token",
            Objective::Throughput => "throughput",
            Objective::Goodput => "goodput",
            Objective::Errors => "error rate",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Objective::Throughput | Objective::Goodput)
    }

    /// The row's figure for it; `None` when the run cannot say (no streams).
    pub fn of(self, r: &Row) -> Option<f64> {
        match self {
            Objective::Mean => Some(r.mean_ms),
            Objective::P50 => Some(r.p50_ms),
            Objective::P90 => Some(r.p90_ms),
            Objective::P99 => Some(r.p99_ms),
            Objective::TtftP50 => r.ttft_ms.map(|t| t.0),
            Objective::TtftP99 => r.ttft_ms.map(|t| t.1),
            Objective::Throughput => Some(r.throughput),
            Objective::Goodput => r.goodput,
            Objective::Errors => Some(r.errors as f64 / r.sent.max(1) as f64),
        }
    }

    /// The figure as the verdict writes it.
    fn show(self, v: f64) -> String {
        match self {
            Objective::Throughput => format!("{v:.1}/s"),
            Objective::Goodput | Objective::Errors => format!("{:.1}%", v * 100.0),
            _ => format!("{v:.1} ms"),
        }
    }
}

/// What one method did.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub method: String,
    /// Each backend's name and share of the answers the log saw.
    pub shares: Vec<(String, f64)>,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Time to first token, p50 and p99, when the load was streams.
    pub ttft_ms: Option<(f64, f64)>,
    /// Time per output token, p50, when the load was streams.
    pub tpot_ms: Option<f64>,
    pub sent: u64,
    pub errors: u64,
    pub throughput: f64,
    pub goodput: Option<f64>,
    pub checks_held: usize,
    pub checks: usize,
    /// The names of the checks that failed.
    pub failed: Vec<String>,
}

impl Row {
    fn held(&self) -> bool {
        self.checks_held == self.checks
    }
}

/// The rows' order, best first: methods that held every check ahead of
/// those that did not, then by the objective; a method the objective
/// cannot be computed for last. Ties keep the scenario's order.
pub fn rank(rows: &[Row], objective: Objective) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let key = |i: usize| {
        let v = objective.of(&rows[i]).filter(|v| v.is_finite());
        let v = v.map(|v| if objective.higher_is_better() { -v } else { v });
        (!rows[i].held(), v.is_none(), v.unwrap_or(0.0))
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        (ka.0, ka.1).cmp(&(kb.0, kb.1)).then(ka.2.total_cmp(&kb.2))
    });
    order
}

/// How the comparison ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The best method held every check (and is one the scenario expects).
    Best(usize),
    /// No method held every check.
    NoneHeld,
    /// The best is not among `expect_best`.
    Unexpected(usize),
    /// The objective cannot be computed for any method (streams' figures
    /// for a load without streams).
    NoFigure,
}

pub fn verdict(rows: &[Row], order: &[usize], objective: Objective, expect: &[String]) -> Verdict {
    let Some(&best) = order.first() else {
        return Verdict::NoFigure;
    };
    if objective.of(&rows[best]).is_none_or(|v| !v.is_finite()) {
        return Verdict::NoFigure;
    }
    if !rows[best].held() {
        return Verdict::NoneHeld;
    }
    if !expect.is_empty() && !expect.contains(&rows[best].method) {
        return Verdict::Unexpected(best);
    }
    Verdict::Best(best)
}

/// The one table: a column per method, best first.
pub fn table(rows: &[Row], order: &[usize], objective: Objective) -> String {
    let ranked: Vec<&Row> = order.iter().map(|&i| &rows[i]).collect();
    let mut out: Vec<Vec<String>> = vec![std::iter::once("method".to_string())
        .chain(ranked.iter().map(|r| r.method.clone()))
        .collect()];
    let mut line = |name: &str, cell: &dyn Fn(&Row) -> String| {
        let mut row = vec![name.to_string()];
        row.extend(ranked.iter().map(|r| cell(r)));
        out.push(row);
    };
    line("rank", &|r| {
        let place = ranked
            .iter()
            .position(|o| o.method == r.method)
            .unwrap_or(0);
        format!("{}", place + 1)
    });
    if let Some(first) = ranked.first() {
        for (n, (name, _)) in first.shares.iter().enumerate() {
            line(&format!("share {name}"), &|r| {
                r.shares
                    .get(n)
                    .map_or("-".into(), |(_, s)| format!("{:.1}%", s * 100.0))
            });
        }
    }
    let ms = |v: f64| format!("{v:.1}");
    line("mean ms", &|r| ms(r.mean_ms));
    line("p50 ms", &|r| ms(r.p50_ms));
    line("p90 ms", &|r| ms(r.p90_ms));
    line("p99 ms", &|r| ms(r.p99_ms));
    if ranked.iter().any(|r| r.ttft_ms.is_some()) {
        let opt = |v: Option<f64>| v.map_or("-".into(), ms);
        line("TTFT p50 ms", &|r| opt(r.ttft_ms.map(|t| t.0)));
        line("TTFT p99 ms", &|r| opt(r.ttft_ms.map(|t| t.1)));
        line("TPOT p50 ms", &|r| opt(r.tpot_ms));
    }
    line("requests/s", &|r| format!("{:.1}", r.throughput));
    line("errors", &|r| {
        format!(
            "{} ({:.1}%)",
            r.errors,
            100.0 * r.errors as f64 / r.sent.max(1) as f64
        )
    });
    if ranked.iter().any(|r| r.goodput.is_some()) {
        line("goodput", &|r| {
            r.goodput
                .map_or("-".into(), |g| format!("{:.1}%", g * 100.0))
        });
    }
    line("checks held", &|r| {
        let mark = if r.held() { "✓" } else { "✗" };
        format!("{mark} {}/{}", r.checks_held, r.checks)
    });
    let mut text = layout(&out);
    let failing: Vec<String> = ranked
        .iter()
        .filter(|r| !r.failed.is_empty())
        .map(|r| format!("  {} failed: {}\n", r.method, r.failed.join(", ")))
        .collect();
    text.push_str(&failing.concat());
    text.push_str(&format!("  ranked by {}", objective.describe()));
    text.push_str(", methods that held every check first\n");
    text
}

/// The verdict's line.
pub fn line(
    title: &str,
    rows: &[Row],
    order: &[usize],
    objective: Objective,
    v: &Verdict,
) -> String {
    let figure = |i: usize| {
        objective
            .of(&rows[i])
            .map_or("-".into(), |x| objective.show(x))
    };
    let runner_up = order
        .get(1)
        .map(|&i| format!(" (next: {} at {})", rows[i].method, figure(i)));
    match v {
        Verdict::Best(b) => format!(
            "✓ scenario {title}: the best method by {} is {} at {}{}",
            objective.describe(),
            rows[*b].method,
            figure(*b),
            runner_up.unwrap_or_default()
        ),
        Verdict::Unexpected(b) => format!(
            "✗ scenario {title}: the best method by {} is {} at {}{}, not one of [compare] expect_best (exit 1)",
            objective.describe(),
            rows[*b].method,
            figure(*b),
            runner_up.unwrap_or_default()
        ),
        Verdict::NoneHeld => format!(
            "✗ scenario {title}: no method held every check (exit 1)"
        ),
        Verdict::NoFigure => format!(
            "✗ scenario {title}: no verdict: {} needs streams, and no method's load had any (exit 2)",
            objective.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, mean: f64, held: usize) -> Row {
        Row {
            method: method.into(),
            shares: vec![("fast".into(), 0.6), ("slow".into(), 0.4)],
            mean_ms: mean,
            p50_ms: mean / 2.0,
            p90_ms: mean * 2.0,
            p99_ms: mean * 3.0,
            ttft_ms: None,
            tpot_ms: None,
            sent: 100,
            errors: 100 - 10 * held as u64,
            throughput: 1000.0 / mean,
            goodput: None,
            checks_held: held,
            checks: 2,
            failed: vec![],
        }
    }

    #[test]
    fn holding_every_check_comes_before_the_objective() {
        let rows = [
            row("round_robin", 40.0, 2),
            row("least_conn", 10.0, 1),
            row("random", 20.0, 2),
        ];
        let order = rank(&rows, Objective::Mean);
        assert_eq!(order, vec![2, 0, 1]);
        assert_eq!(
            verdict(&rows, &order, Objective::Mean, &[]),
            Verdict::Best(2)
        );
    }

    #[test]
    fn higher_is_better_for_throughput() {
        let rows = [row("a", 40.0, 2), row("b", 10.0, 2)];
        assert_eq!(rank(&rows, Objective::Throughput), vec![1, 0]);
        assert_eq!(rank(&rows, Objective::P99), vec![1, 0]);
        let mut rows = [row("a", 10.0, 2), row("b", 10.0, 2)];
        rows[0].errors = 90;
        assert_eq!(rank(&rows, Objective::Errors), vec![1, 0]);
    }

    #[test]
    fn the_verdict_fails_closed() {
        let rows = [row("a", 40.0, 1), row("b", 10.0, 0)];
        let order = rank(&rows, Objective::Mean);
        assert_eq!(
            verdict(&rows, &order, Objective::Mean, &[]),
            Verdict::NoneHeld
        );
        let rows = [row("a", 40.0, 2), row("b", 10.0, 2)];
        let order = rank(&rows, Objective::Mean);
        let expect = vec!["a".to_string()];
        assert_eq!(
            verdict(&rows, &order, Objective::Mean, &expect),
            Verdict::Unexpected(1)
        );
        // TTFT of a load without streams cannot be computed.
        let order = rank(&rows, Objective::TtftP99);
        assert_eq!(
            verdict(&rows, &order, Objective::TtftP99, &[]),
            Verdict::NoFigure
        );
        assert!(Objective::parse("p95").is_err());
    }

    #[test]
    fn the_table_is_best_first_with_a_share_per_backend() {
        let rows = [row("round_robin", 40.0, 2), row("least_conn", 10.0, 2)];
        let order = rank(&rows, Objective::Mean);
        let t = table(&rows, &order, Objective::Mean);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("least_conn")
                && lines[0].find("least_conn") < lines[0].find("round_robin")
        );
        assert!(t.contains("share slow"), "{t}");
        assert!(t.contains("✓ 2/2"), "{t}");
        let v = verdict(&rows, &order, Objective::Mean, &[]);
        let l = line("s", &rows, &order, Objective::Mean, &v);
        assert_eq!(l, "✓ scenario s: the best method by mean latency is least_conn at 10.0 ms (next: round_robin at 40.0 ms)");
    }
}
