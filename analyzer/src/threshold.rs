//! k6-style threshold expressions: `p(95)<500ms`, `error_rate<1%`,
//! `imbalance<10%`, `p(95){node=127.0.0.1:8002}<800ms`. Parsed once,
//! evaluated against any source of measurements.

use std::fmt;

pub use crate::metric::{Kind, Metric, Timing, Tool};

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
    /// `{node=NAME}`: the metric of that node alone.
    pub node: Option<String>,
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
    /// The value of `metric` (of `node` alone, if given), or `None` if
    /// not measured.
    fn measure(&self, metric: &Metric, node: Option<&str>) -> Option<f64>;
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
        let (name, node) = match left.split_once('{') {
            Some((name, f)) => {
                let f = f
                    .strip_suffix('}')
                    .ok_or_else(|| fail("a filter must close with '}'"))?;
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| fail("a filter is {node=NAME}"))?;
                if k != "node" {
                    return Err(fail(&format!(
                        "{{{k}=...}}: the only filter is {{node=NAME}}"
                    )));
                }
                (name, Some(v.to_string()))
            }
            None => (left, None),
        };
        let metric = Metric::parse(name).map_err(|why| fail(&why))?;
        if node.is_some() && !metric.per_node() {
            return Err(fail(&format!(
                "{} is not measured per node; drop the {{node=...}}",
                metric.name()
            )));
        }
        let value = parse_value(value, &metric).map_err(|why| fail(&why))?;
        Ok(Threshold {
            source: text.trim().to_string(),
            metric,
            node,
            op,
            value,
        })
    }

    /// [`Threshold::parse`], refusing a metric `tool` cannot measure: the
    /// check every tool makes before it starts.
    pub fn parse_for(text: &str, tool: Tool) -> Result<Threshold, ThresholdError> {
        let t = Threshold::parse(text)?;
        t.measurable_by(tool)?;
        Ok(t)
    }

    /// Refuses, before any work, a metric `tool` cannot measure.
    pub fn measurable_by(&self, tool: Tool) -> Result<(), ThresholdError> {
        let by = self.metric.measured_by();
        if by.contains(&tool) {
            return Ok(());
        }
        let others: Vec<String> = by.iter().map(ToString::to_string).collect();
        Err(ThresholdError {
            expression: self.source.clone(),
            why: format!(
                "{tool} cannot measure {}; {} can",
                self.metric.name(),
                others.join(" and ")
            ),
        })
    }

    /// The verdict on `m`'s figures. A figure that is not a number (a
    /// rate of nothing) counts as not measured, never as a pass.
    pub fn evaluate(&self, m: &dyn Measurements) -> Verdict {
        let measured = m
            .measure(&self.metric, self.node.as_deref())
            .filter(|v| !v.is_nan());
        // Latencies come from histograms that know them to 3 significant
        // digits: compared at that precision, every request at exactly
        // 500 ms meets p(95)<=500ms whichever bucket edge reports it.
        let at_precision = |v: f64| match self.metric.kind() {
            Kind::Latency => significant(v, LATENCY_DIGITS),
            _ => v,
        };
        let ok = measured.is_some_and(|v| self.op.holds(at_precision(v), at_precision(self.value)));
        Verdict {
            threshold: self.clone(),
            measured,
            ok,
        }
    }

    /// A measured value in the threshold's own terms.
    pub fn show(&self, v: f64) -> String {
        if v.is_infinite() {
            return "never".to_string();
        }
        match self.metric.kind() {
            Kind::Latency => {
                // As many decimals as 3 significant digits need: 12.0ms,
                // 500ms, 10000ms (not 9998 from a bucket's middle).
                let ms = significant(v * 1000.0, LATENCY_DIGITS);
                let magnitude = if ms > 0.0 {
                    ms.abs().log10().floor() as i32
                } else {
                    0
                };
                let decimals = usize::try_from(LATENCY_DIGITS as i32 - 1 - magnitude).unwrap_or(0);
                format!("{ms:.decimals$}ms")
            }
            Kind::Rate => format!("{:.2}%", v * 100.0),
            Kind::Count => format!("{v}"),
        }
    }
}

/// Significant digits latency histograms keep (HdrHistogram's `3`).
const LATENCY_DIGITS: u32 = 3;

/// `v` rounded to `digits` significant digits.
fn significant(v: f64, digits: u32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits as i32 - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// `500ms`, `1.5s`, `250us` for latencies; `5%` or `0.05` for rates.
fn parse_value(v: &str, metric: &Metric) -> Result<f64, String> {
    if metric.kind() == Kind::Latency {
        // lbkit's one duration grammar: a bare `500` (ms to k6, seconds
        // to nginx) is refused with the fix.
        if v.ends_with('%') {
            return Err("a latency takes a duration such as 500ms, not %".to_string());
        }
        return primitives::parse_duration(v)
            .map(|d| d.as_secs_f64())
            .map_err(|e| format!("'{v}' {e}"));
    }
    let (number, scale) = match v.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (v, 1.0),
    };
    let n: f64 = number.parse().map_err(|_| {
        if primitives::parse_duration(v).is_ok() {
            format!(
                "'{v}': {} is not a latency; give a number or a percentage",
                metric.name()
            )
        } else {
            format!("'{v}' is not a number")
        }
    })?;
    Ok(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Measurements for Fixed {
        fn measure(&self, metric: &Metric, node: Option<&str>) -> Option<f64> {
            let total = Timing::Total;
            match (metric, node) {
                (Metric::Percentile { p, of }, None) if *p == 95.0 && *of == total => Some(0.450),
                (Metric::Percentile { p, of }, Some("b")) if *p == 95.0 && *of == total => {
                    Some(0.900)
                }
                (Metric::ErrorRate, None) => Some(0.02),
                (Metric::Imbalance, None) => Some(0.04),
                (Metric::Share, None) => Some(f64::NAN),
                _ => None,
            }
        }
    }

    #[test]
    fn parses_k6_style_expressions() {
        let t = Threshold::parse("p(95) < 500ms").unwrap();
        assert_eq!(
            (t.metric, t.op, t.value),
            (
                Metric::Percentile {
                    p: 95.0,
                    of: Timing::Total
                },
                Op::Lt,
                0.5
            )
        );
        let t = Threshold::parse("error_rate<=1%").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::ErrorRate, Op::Le, 0.01));
        let t = Threshold::parse("p(95){node=127.0.0.1:8002}<800ms").unwrap();
        assert_eq!(t.node.as_deref(), Some("127.0.0.1:8002"));
        let t = Threshold::parse("p(99.9)_ttft<2s").unwrap();
        assert_eq!(
            t.metric,
            Metric::Percentile {
                p: 99.9,
                of: Timing::Ttft
            }
        );
        assert!(
            Threshold::parse("avg<200")
                .unwrap_err()
                .to_string()
                .contains("'200' has no unit; write e.g. 20ms"),
            "a bare latency is refused, not read as k6's ms or nginx's s"
        );
        assert_eq!(
            Threshold::parse("goodput>95%").unwrap().metric,
            Metric::Goodput
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = |t: &str| Threshold::parse(t).unwrap_err().to_string();
        assert!(e("p(95)").contains("needs a comparison"));
        assert!(e("p(150)<1s").contains("not between 0 and 100"));
        assert!(e("p(95)<fast").contains("is not a duration"));
        assert!(e("p(95)<5%").contains("not %"));
        assert!(e("p(95)<5parsecs").contains("unknown unit"));
        assert!(e("error_rate<5ms").contains("error_rate is not a latency"));
        assert!(e("requests<lots").contains("is not a number"));
        assert!(e("<5").contains("needs a metric"));
        assert!(e("p(95){node<1s").contains("filter"));
        assert!(e("p95<5ms").contains("did you mean p(95)?"));
        assert!(e("p(95){pool=a}<1s").contains("the only filter is {node=NAME}"));
        assert!(e("retries{node=a}<1").contains("not measured per node"));
    }

    #[test]
    fn each_tool_refuses_what_it_cannot_measure() {
        let t = Threshold::parse("goodput>95%").unwrap();
        let e = t.measurable_by(Tool::Analyzer).unwrap_err().to_string();
        assert!(
            e.contains("analyzer (from a log) cannot measure goodput"),
            "{e}"
        );
        assert!(t.measurable_by(Tool::Loadgen).is_ok());
        let t = Threshold::parse("split_clients==0").unwrap();
        assert!(t.measurable_by(Tool::Analyzer).is_ok());
        assert!(t.measurable_by(Tool::Loadgen).is_err());
    }

    /// What a histogram reports for values logged as exactly 0.500 s and
    /// 10 s: the middle or top of their buckets.
    struct Bucketed(f64);

    impl Measurements for Bucketed {
        fn measure(&self, _: &Metric, _: Option<&str>) -> Option<f64> {
            Some(self.0)
        }
    }

    #[test]
    fn latencies_are_compared_and_shown_at_the_histograms_precision() {
        let judge = |t: &str, v: f64| Threshold::parse(t).unwrap().evaluate(&Bucketed(v));
        let v = judge("p(95)<=500ms", 0.500_096);
        assert!(v.ok, "{v}");
        assert_eq!(v.to_string(), "✓ p(95)<=500ms  (measured 500ms)");
        assert!(!judge("p(95)<500ms", 0.500_096).ok, "500 is not below 500");
        assert!(!judge("p(95)<=500ms", 0.5012).ok, "501 is over");
        let v = judge("max<=10s", 9.998_335);
        assert!(v.ok);
        assert_eq!(v.to_string(), "✓ max<=10s  (measured 10000ms)");
        assert_eq!(
            judge("p(50)<1s", 0.012_004).to_string(),
            "✓ p(50)<1s  (measured 12.0ms)"
        );
        assert_eq!(
            judge("p(50)<1s", 0.000_123_4).to_string(),
            "✓ p(50)<1s  (measured 0.123ms)"
        );
        // Rates and counts are exact.
        assert!(!judge("error_rate<=1%", 0.010_004).ok);
        assert_eq!(significant(0.0, 3), 0.0);
    }

    #[test]
    fn verdicts_and_their_lines() {
        let v = Threshold::parse("p(95)<500ms").unwrap().evaluate(&Fixed);
        assert!(v.ok);
        assert_eq!(v.to_string(), "✓ p(95)<500ms  (measured 450ms)");
        let v = Threshold::parse("p(95){node=b}<800ms")
            .unwrap()
            .evaluate(&Fixed);
        assert!(!v.ok);
        let v = Threshold::parse("error_rate<1%").unwrap().evaluate(&Fixed);
        assert_eq!(v.to_string(), "✗ error_rate<1%  (measured 2.00%)");
        let v = Threshold::parse("rps>100").unwrap().evaluate(&Fixed);
        assert!(!v.ok, "not measured is a breach");
        assert!(v.to_string().contains("not measured"));
        let v = Threshold::parse("share<50%").unwrap().evaluate(&Fixed);
        assert_eq!((v.ok, v.measured), (false, None), "NaN is not a measure");
    }
}
