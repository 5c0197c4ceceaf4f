//! Does each node get the share it should? A chi-square goodness-of-fit
//! test of observed counts against expected shares, the largest relative
//! deviation, and the coefficient of variation of observed/expected.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Below this p-value the split is judged unfair. Small on purpose: a CI
/// gate that fails one run in a thousand by chance is already noisy.
pub const ALPHA: f64 = 0.001;

#[derive(Debug, Clone, PartialEq)]
pub struct Fairness {
    pub chi_square: f64,
    pub degrees_of_freedom: usize,
    pub p_value: f64,
    /// max over nodes of |observed share - expected share| / expected share.
    pub max_relative_deviation: f64,
    /// Of observed/expected per node: 0 is perfectly proportional.
    pub coefficient_of_variation: f64,
    /// Some expected count is below 5: the chi-square approximation is weak.
    pub low_counts: bool,
    /// Nodes expected to get traffic that got none.
    pub starved: Vec<String>,
    /// Nodes that got traffic they should not have.
    pub unexpected: Vec<String>,
}

impl Fairness {
    /// Fair: the test does not reject, every expected node got traffic, and
    /// no unexpected one did.
    pub fn ok(&self) -> bool {
        self.p_value >= ALPHA && self.starved.is_empty() && self.unexpected.is_empty()
    }
}

/// The verdict line, as loadgen and analyzer print it.
impl std::fmt::Display for Fairness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok() { "✓" } else { "✗" };
        write!(
            f,
            "{mark} {CHECK_NAME}  (chi-square {:.2}, {} df, p={:.4}; largest deviation {:.1}%; CV {:.3}",
            self.chi_square,
            self.degrees_of_freedom,
            self.p_value,
            self.max_relative_deviation * 100.0,
            self.coefficient_of_variation,
        )?;
        if self.low_counts {
            f.write_str("; some expected counts below 5")?;
        }
        if !self.starved.is_empty() {
            write!(f, "; no traffic: {}", self.starved.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; unexpected: {}", self.unexpected.join(", "))?;
        }
        f.write_str(")")
    }
}

/// What the fairness check is called in reports, JSON and JUnit.
pub const CHECK_NAME: &str = "shares as expected";

/// `expected` shares (any scale; normalised here) against `observed` counts,
/// both by node name. A node missing from `observed` got nothing.
pub fn test(observed: &[(String, u64)], expected: &[(String, f64)]) -> Fairness {
    let total: u64 = observed.iter().map(|(_, n)| n).sum();
    let weight: f64 = expected.iter().map(|(_, w)| w.max(0.0)).sum();
    let count = |name: &str| {
        observed
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    };
    let mut chi = 0.0;
    let mut k = 0usize;
    let mut max_dev = 0.0f64;
    let mut ratios = Vec::new();
    let mut low = false;
    let mut starved = Vec::new();
    for (name, w) in expected {
        let share = if weight > 0.0 {
            w.max(0.0) / weight
        } else {
            0.0
        };
        if share <= 0.0 {
            continue;
        }
        let e = share * total as f64;
        let o = count(name) as f64;
        if o == 0.0 && total > 0 {
            starved.push(name.clone());
        }
        low |= e < 5.0;
        chi += (o - e).powi(2) / e;
        k += 1;
        if total > 0 {
            max_dev = max_dev.max((o / total as f64 - share).abs() / share);
            ratios.push(o / e);
        }
    }
    let unexpected: Vec<String> = observed
        .iter()
        .filter(|(n, c)| *c > 0 && !expected.iter().any(|(m, w)| m == n && *w > 0.0))
        .map(|(n, _)| n.clone())
        .collect();
    let dof = k.saturating_sub(1);
    let p_value = if dof == 0 {
        1.0
    } else {
        ChiSquared::new(dof as f64).map_or(0.0, |d| 1.0 - d.cdf(chi))
    };
    let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    let var = ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / ratios.len().max(1) as f64;
    Fairness {
        chi_square: chi,
        degrees_of_freedom: dof,
        p_value: if unexpected.is_empty() { p_value } else { 0.0 },
        max_relative_deviation: max_dev,
        coefficient_of_variation: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
        low_counts: low,
        starved,
        unexpected,
    }
}

/// [`test`] against `expected`, or, without it, against equal shares among
/// the nodes observed (what both tools assume when given no weights).
pub fn test_or_equal(observed: &[(String, u64)], expected: Option<&[(String, f64)]>) -> Fairness {
    match expected {
        Some(expected) => test(observed, expected),
        None => {
            let equal: Vec<(String, f64)> =
                observed.iter().map(|(n, _)| (n.clone(), 1.0)).collect();
            test(observed, &equal)
        }
    }
}

/// A weight list that does not read, with the fix in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeightsError(pub String);

/// `a=3,b=2` as (name, weight) pairs.
pub fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, WeightsError> {
    let fail = |why: String| WeightsError(why);
    let v = text
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (name, w) = pair.rsplit_once('=').ok_or_else(|| {
                fail(format!(
                    "'{pair}' is not name=weight (e.g. 127.0.0.1:8001=3)"
                ))
            })?;
            let w: f64 = w
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| fail(format!("'{w}' in '{pair}' is not a weight")))?;
            Ok((name.trim().to_string(), w))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if v.is_empty() {
        return Err(fail("no weights given".to_string()));
    }
    let twice = (1..v.len()).find(|i| v[..*i].iter().any(|(m, _)| *m == v[*i].0));
    if let Some(i) = twice {
        return Err(fail(format!("{} is given twice", v[i].0)));
    }
    if v.iter().all(|(_, w)| *w == 0.0) {
        return Err(fail(
            "every weight is 0, so no node should get traffic: nothing to test".into(),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    fn exp(v: &[(&str, f64)]) -> Vec<(String, f64)> {
        v.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    #[test]
    fn a_proportional_split_passes() {
        let f = test(
            &obs(&[("a", 600), ("b", 400)]),
            &exp(&[("a", 3.0), ("b", 2.0)]),
        );
        assert_eq!(f.chi_square, 0.0);
        assert_eq!(f.p_value, 1.0);
        assert!(f.ok());
        assert_eq!(f.max_relative_deviation, 0.0);
        let f = test(
            &obs(&[("a", 506), ("b", 494)]),
            &exp(&[("a", 1.0), ("b", 1.0)]),
        );
        assert!(f.ok(), "seed 003's 506/494 is fair: p={}", f.p_value);
        assert!((f.max_relative_deviation - 0.012).abs() < 1e-9);
    }

    #[test]
    fn a_skewed_split_fails() {
        // Weights ignored: 500/500 where 3:2 was promised.
        let f = test(
            &obs(&[("a", 500), ("b", 500)]),
            &exp(&[("a", 3.0), ("b", 2.0)]),
        );
        assert!(!f.ok());
        assert!(f.p_value < 1e-6, "{}", f.p_value);
        // chi2 = (500-600)^2/600 + (500-400)^2/400 = 16.67 + 25 = 41.67
        assert!((f.chi_square - 41.666_666).abs() < 1e-3);
        assert!((f.max_relative_deviation - 0.25).abs() < 1e-9);
    }

    #[test]
    fn starved_and_unexpected_nodes_fail() {
        let f = test(&obs(&[("a", 100)]), &exp(&[("a", 1.0), ("b", 1.0)]));
        assert_eq!(f.starved, ["b"]);
        assert!(!f.ok());
        let f = test(&obs(&[("a", 50), ("z", 50)]), &exp(&[("a", 1.0)]));
        assert_eq!(f.unexpected, ["z"]);
        assert!(!f.ok());
    }

    #[test]
    fn weight_lists() {
        assert_eq!(
            parse_weights("127.0.0.1:8001=3, 127.0.0.1:8002=2").unwrap(),
            exp(&[("127.0.0.1:8001", 3.0), ("127.0.0.1:8002", 2.0)])
        );
        assert!(parse_weights("a=3,b")
            .unwrap_err()
            .0
            .contains("'b' is not name=weight"));
        assert!(parse_weights("a=x").unwrap_err().0.contains("not a weight"));
        assert!(parse_weights("").is_err());
        assert!(parse_weights("a=0,b=0")
            .unwrap_err()
            .0
            .contains("every weight is 0"));
        assert!(parse_weights("a=1,a=2")
            .unwrap_err()
            .0
            .contains("a is given twice"));
    }
}
