//! k6-style threshold expressions: `p(95)<500ms`, `error_rate<1%`,
//! `imbalance<10%`, `p(95){node=127.0.0.1:8002}<800ms`. Parsed once,
//! evaluated against any source of measurements.

use std::fmt;

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A latency percentile (0..=100), in seconds; `of` names a latency
    /// other than the request's total, e.g. `ttft` in `p(95)_ttft`.
    Percentile {
        p: f64,
        of: Option<String>,
    },
    Avg,
    Min,
    Med,
    Max,
    ErrorRate,
    SuccessRate,
    /// Largest relative deviation of a node's share from its expected share.
    Imbalance,
    Rps,
    Requests,
    /// Any other named figure a source knows (`goodput`, `client_errors`...).
    Named(String),
}

impl Metric {
    /// Latencies compare in seconds and print in milliseconds.
    fn is_latency(&self) -> bool {
        match self {
            Metric::Percentile { .. } | Metric::Avg | Metric::Min | Metric::Med | Metric::Max => {
                true
            }
            Metric::Named(n) => n == "recovered_within",
            _ => false,
        }
    }

    fn is_rate(&self) -> bool {
        match self {
            Metric::ErrorRate | Metric::SuccessRate | Metric::Imbalance => true,
            Metric::Named(n) => matches!(n.as_str(), "share" | "split_share" | "goodput"),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub source: String,
    pub metric: Metric,
    /// `{key=value}`: restricts the metric, e.g. to one node.
    pub filter: Option<(String, String)>,
    pub op: Op,
    /// In seconds for latencies, a fraction for rates.
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold '{expression}': {why}")]
pub struct ThresholdError {
    pub expression: String,
    pub why: String,
}

/// Where thresholds get their figures.
pub trait Measurements {
    /// The value of `metric` (under `filter`), or `None` if not measured.
    fn measure(&self, metric: &Metric, filter: Option<(&str, &str)>) -> Option<f64>;
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub threshold: Threshold,
    pub measured: Option<f64>,
    pub ok: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "✓" } else { "✗" };
        match self.measured {
            None => write!(f, "{mark} {}  (not measured)", self.threshold.source),
            Some(v) => {
                let v = self.threshold.show(v);
                write!(f, "{mark} {}  (measured {v})", self.threshold.source)
            }
        }
    }
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
        let fail = |why: &str| ThresholdError {
            expression: text.to_string(),
            why: why.to_string(),
        };
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        // The comparison comes after any {filter}, which has an '=' of its own.
        let after_filter = t.find('}').map_or(0, |i| i + 1);
        let op_at = t[after_filter..]
            .find(['<', '>', '=', '!'])
            .map(|i| i + after_filter)
            .ok_or_else(|| fail("needs a comparison: <, <=, >, >=, == or !="))?;
        let (left, rest) = t.split_at(op_at);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v)))
        .ok_or_else(|| fail("needs a comparison: <, <=, >, >=, == or !="))?;
        let (name, filter) = match left.split_once('{') {
            Some((name, f)) => {
                let f = f
                    .strip_suffix('}')
                    .ok_or_else(|| fail("a filter must close with '}'"))?;
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| fail("a filter is {key=value}"))?;
                (name, Some((k.to_string(), v.to_string())))
            }
            None => (left, None),
        };
        let metric = parse_metric(name).map_err(|why| fail(&why))?;
        let value = parse_value(value, &metric).map_err(|why| fail(&why))?;
        Ok(Threshold {
            source: text.trim().to_string(),
            metric,
            filter,
            op,
            value,
        })
    }

    pub fn evaluate(&self, m: &dyn Measurements) -> Verdict {
        let filter = self.filter.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
        let measured = m.measure(&self.metric, filter);
        let ok = measured.is_some_and(|v| self.op.holds(v, self.value));
        Verdict {
            threshold: self.clone(),
            measured,
            ok,
        }
    }

    /// A measured value in the threshold's own terms.
    pub fn show(&self, v: f64) -> String {
        if self.metric.is_latency() {
            format!("{:.3}ms", v * 1000.0)
        } else if self.metric.is_rate() {
            format!("{:.2}%", v * 100.0)
        } else {
            format!("{v}")
        }
    }
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    if let Some(rest) = name.strip_prefix("p(") {
        let (p, after) = rest.split_once(')').ok_or("p( needs its ')'")?;
        let p: f64 = p
            .parse()
            .map_err(|_| format!("'{p}' is not a percentile"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("percentile {p} is not between 0 and 100"));
        }
        let of = match after {
            "" => None,
            s => Some(
                s.strip_prefix('_')
                    .ok_or(format!("unexpected '{s}' after p(...)"))?
                    .to_string(),
            ),
        };
        return Ok(Metric::Percentile { p, of });
    }
    Ok(match name {
        "avg" => Metric::Avg,
        "min" => Metric::Min,
        "med" => Metric::Med,
        "max" => Metric::Max,
        "error_rate" => Metric::ErrorRate,
        "success_rate" => Metric::SuccessRate,
        "imbalance" => Metric::Imbalance,
        "rps" => Metric::Rps,
        "requests" => Metric::Requests,
        "" => return Err("needs a metric, e.g. p(95), error_rate, imbalance".to_string()),
        other if other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Metric::Named(other.to_string())
        }
        other => return Err(format!("'{other}' is not a metric")),
    })
}

/// `500ms`, `1.5s`, `250us` for latencies; `5%` or `0.05` for rates.
fn parse_value(v: &str, metric: &Metric) -> Result<f64, String> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{v}' is not a number"))?;
    let scaled = match unit {
        "ms" => n / 1e3,
        "s" => n,
        "us" | "µs" => n / 1e6,
        "%" => n / 100.0,
        // k6 reads a bare latency in milliseconds.
        "" if metric.is_latency() => n / 1e3,
        "" => n,
        other => return Err(format!("unknown unit '{other}'; use ms, s, us or %")),
    };
    if metric.is_latency() && unit == "%" {
        return Err("a latency takes ms, s or us, not %".to_string());
    }
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Measurements for Fixed {
        fn measure(&self, metric: &Metric, filter: Option<(&str, &str)>) -> Option<f64> {
            match (metric, filter) {
                (Metric::Percentile { p, of: None }, None) if *p == 95.0 => Some(0.450),
                (Metric::Percentile { p, of: None }, Some(("node", "b"))) if *p == 95.0 => {
                    Some(0.900)
                }
                (Metric::ErrorRate, None) => Some(0.02),
                (Metric::Imbalance, None) => Some(0.04),
                _ => None,
            }
        }
    }

    #[test]
    fn parses_k6_style_expressions() {
        let t = Threshold::parse("p(95) < 500ms").unwrap();
        assert_eq!(
            (t.metric.clone(), t.op, t.value),
            (Metric::Percentile { p: 95.0, of: None }, Op::Lt, 0.5)
        );
        let t = Threshold::parse("error_rate<=1%").unwrap();
        assert_eq!(
            (t.metric.clone(), t.op, t.value),
            (Metric::ErrorRate, Op::Le, 0.01)
        );
        let t = Threshold::parse("p(95){node=127.0.0.1:8002}<800ms").unwrap();
        assert_eq!(t.filter, Some(("node".into(), "127.0.0.1:8002".into())));
        let t = Threshold::parse("p(99.9)_ttft<2s").unwrap();
        assert_eq!(
            t.metric,
            Metric::Percentile {
                p: 99.9,
                of: Some("ttft".into())
            }
        );
        assert_eq!(
            Threshold::parse("avg<200").unwrap().value,
            0.2,
            "bare latency is ms, as k6"
        );
        assert_eq!(
            Threshold::parse("goodput>95%").unwrap().metric,
            Metric::Named("goodput".into())
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = |t: &str| Threshold::parse(t).unwrap_err().to_string();
        assert!(e("p(95)").contains("needs a comparison"));
        assert!(e("p(150)<1s").contains("not between 0 and 100"));
        assert!(e("p(95)<fast").contains("not a number"));
        assert!(e("p(95)<5%").contains("not %"));
        assert!(e("p(95)<5parsecs").contains("unknown unit"));
        assert!(e("<5").contains("needs a metric"));
        assert!(e("p(95){node<1s").contains("filter"));
    }

    #[test]
    fn verdicts_and_their_lines() {
        let v = Threshold::parse("p(95)<500ms").unwrap().evaluate(&Fixed);
        assert!(v.ok);
        assert_eq!(v.to_string(), "✓ p(95)<500ms  (measured 450.000ms)");
        let v = Threshold::parse("p(95){node=b}<800ms")
            .unwrap()
            .evaluate(&Fixed);
        assert!(!v.ok);
        let v = Threshold::parse("error_rate<1%").unwrap().evaluate(&Fixed);
        assert_eq!(v.to_string(), "✗ error_rate<1%  (measured 2.00%)");
        let v = Threshold::parse("rps>100").unwrap().evaluate(&Fixed);
        assert!(!v.ok, "not measured is a breach");
        assert!(v.to_string().contains("not measured"));
    }
}
