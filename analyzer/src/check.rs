//! The checks a run or a log is judged by: the fairness test and each
//! threshold, one result each, as printed and as written to JSON or JUnit.

use crate::fairness::{self, Fairness};
use crate::threshold::{Measurements, Threshold};

/// One check's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// The measured value in the threshold's units (seconds, fraction);
    /// for the fairness test, its p-value.
    pub measured: Option<f64>,
    /// The line to print, with its ✓ or ✗.
    pub line: String,
}

impl Check {
    /// The failed check that stands for a verdict without evidence, so
    /// JSON and JUnit readers see why there is none.
    pub fn no_evidence(why: &str) -> Check {
        Check {
            name: "evidence".into(),
            ok: false,
            measured: None,
            line: format!("✗ no verdict: {why}"),
        }
    }

    /// The failed check of a run in which no request got an answer.
    pub fn no_answer(line: &str) -> Check {
        Check {
            name: "answers".into(),
            ok: false,
            measured: Some(0.0),
            line: format!("✗ {line}"),
        }
    }
}

/// The fairness test's result first (when there is one), then each
/// threshold in the order given.
pub fn judge(
    fairness: Option<Fairness>,
    thresholds: &[Threshold],
    figures: &dyn Measurements,
) -> Vec<Check> {
    let shares = fairness.map(|f| Check {
        name: fairness::CHECK_NAME.into(),
        ok: f.ok(),
        measured: Some(f.p_value),
        line: f.to_string(),
    });
    let thresholds = thresholds.iter().map(|t| {
        let v = t.evaluate(figures);
        Check {
            name: t.source.clone(),
            ok: v.ok,
            measured: v.measured,
            line: v.to_string(),
        }
    });
    shares.into_iter().chain(thresholds).collect()
}
