//! Whether two runs differ by more than noise: the Mann-Whitney U test on
//! two latency histograms (each bucket a group of tied values, so no sample
//! list is needed), the chi-square test of homogeneity on per-node counts,
//! and the two-proportion z-test on error rates. Pure.

use hdrhistogram::Histogram;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Below this p-value a difference is called significant (the shares
/// test's: 1 in 1000 that noise alone made it).
pub use crate::fairness::ALPHA;

/// A test's outcome: its statistic and the two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tested {
    pub statistic: f64,
    pub p: f64,
}

impl Tested {
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }
}

fn two_sided(z: f64) -> f64 {
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    (2.0 * (1.0 - normal.cdf(z.abs()))).clamp(0.0, 1.0)
}

/// Mann-Whitney U of `new` against `base`, as a z-score (positive: `new`
/// tends to be larger) with the tie correction. Histograms of the same
/// precision share their buckets, so equal values meet in one bucket;
/// `None` when either is empty.
pub fn mann_whitney(base: &Histogram<u64>, new: &Histogram<u64>) -> Option<Tested> {
    let (na, nb) = (base.len() as f64, new.len() as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    let mut buckets: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
    for v in base.iter_recorded() {
        buckets
            .entry(base.highest_equivalent(v.value_iterated_to()))
            .or_default()
            .0 += v.count_at_value();
    }
    for v in new.iter_recorded() {
        buckets
            .entry(new.highest_equivalent(v.value_iterated_to()))
            .or_default()
            .1 += v.count_at_value();
    }
    // Ranks of `new`'s values, ties sharing the mean of their ranks.
    let (mut below, mut rank_sum, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in buckets.values() {
        let t = (*a + *b) as f64;
        let mean_rank = below + (t + 1.0) / 2.0;
        rank_sum += *b as f64 * mean_rank;
        ties += t * t * t - t;
        below += t;
    }
    let n = na + nb;
    let u = rank_sum - nb * (nb + 1.0) / 2.0;
    let mean = na * nb / 2.0;
    let variance = na * nb / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    if variance <= 0.0 {
        // Every value in one bucket: no difference to find.
        return Some(Tested {
            statistic: 0.0,
            p: 1.0,
        });
    }
    let z = (u - mean) / variance.sqrt();
    Some(Tested {
        statistic: z,
        p: two_sided(z),
    })
}

/// The chi-square test of homogeneity of `rows` (one per engine) over the
/// nodes any of them served: statistic, degrees of freedom, p-value.
pub fn homogeneity(rows: &[Vec<u64>]) -> (f64, usize, f64) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let at = |r: &Vec<u64>, c: usize| r.get(c).copied().unwrap_or(0) as f64;
    let columns: Vec<usize> = (0..width)
        .filter(|c| rows.iter().any(|r| at(r, *c) > 0.0))
        .collect();
    let row_totals: Vec<f64> = rows
        .iter()
        .map(|r| columns.iter().map(|c| at(r, *c)).sum())
        .collect();
    let used: Vec<usize> = (0..rows.len()).filter(|i| row_totals[*i] > 0.0).collect();
    let grand: f64 = row_totals.iter().sum();
    if used.len() < 2 || columns.len() < 2 {
        return (0.0, 0, 1.0);
    }
    let mut chi = 0.0;
    for c in &columns {
        let column: f64 = used.iter().map(|r| at(&rows[*r], *c)).sum();
        for r in &used {
            let expected = row_totals[*r] * column / grand;
            let observed = at(&rows[*r], *c);
            chi += (observed - expected).powi(2) / expected;
        }
    }
    let df = (used.len() - 1) * (columns.len() - 1);
    let p = match ChiSquared::new(df as f64) {
        Ok(d) => 1.0 - d.cdf(chi),
        Err(_) => f64::NAN,
    };
    (chi, df, p)
}

/// [`homogeneity`] of two runs' per-node `(base, new)` counts; `None` when
/// there is nothing to compare (one node, or a run with no requests).
pub fn shares(counts: &[(u64, u64)]) -> Option<Tested> {
    let rows = [
        counts.iter().map(|c| c.0).collect(),
        counts.iter().map(|c| c.1).collect(),
    ];
    let (chi, df, p) = homogeneity(&rows);
    (df > 0).then_some(Tested { statistic: chi, p })
}

/// The two-proportion z-test: `x1` of `n1` against `x2` of `n2` (positive:
/// the second is larger).
pub fn two_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Tested> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se == 0.0 {
        return Some(Tested {
            statistic: 0.0,
            p: 1.0,
        });
    }
    let z = (p2 - p1) / se;
    Some(Tested {
        statistic: z,
        p: two_sided(z),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl Iterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new(3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn a_run_against_itself_is_no_change() {
        let h = histogram((0..5000).map(|i| 1000 + (i * 7919) % 20_000));
        let t = mann_whitney(&h, &h).unwrap();
        assert!(t.statistic.abs() < 1e-9, "{t:?}");
        assert!(!t.significant());
    }

    #[test]
    fn two_samples_of_one_distribution_are_mostly_not_significant() {
        // Halves of one pseudo-random sequence, 20 times over.
        let mut significant = 0;
        for seed in 0..20u64 {
            let v: Vec<u64> = (0..4000u64)
                .map(|i| 5000 + ((i + seed * 4000) * 2654435761 % 1_000_003) % 10_000)
                .collect();
            let (a, b) = v.split_at(2000);
            let t = mann_whitney(&histogram(a.iter().copied()), &histogram(b.iter().copied()));
            significant += usize::from(t.unwrap().significant());
        }
        assert!(
            significant <= 2,
            "{significant} of 20 halves called different"
        );
    }

    #[test]
    fn a_shift_of_a_fifth_is_found_and_its_direction_told() {
        let base = histogram((0..500).map(|i| 10_000 + (i * 37) % 5_000));
        let slower = histogram((0..500).map(|i| 12_000 + (i * 37) % 5_000));
        let t = mann_whitney(&base, &slower).unwrap();
        assert!(t.significant() && t.statistic > 0.0, "{t:?}");
        let t = mann_whitney(&slower, &base).unwrap();
        assert!(t.significant() && t.statistic < 0.0, "{t:?}");
        assert_eq!(mann_whitney(&base, &histogram(std::iter::empty())), None);
    }

    #[test]
    fn homogeneity_matches_a_worked_example() {
        // By hand: expected 30, 30, 40 in each row; chi-square
        // 2 * (100/30 + 100/40) = 11.667 on 2 df, whose p is e^(-x/2).
        let (chi, df, p) = homogeneity(&[vec![20, 30, 50], vec![40, 30, 30]]);
        assert!((chi - 35.0 / 3.0).abs() < 1e-9, "{chi}");
        assert_eq!(df, 2);
        assert!((p - (-35.0f64 / 6.0).exp()).abs() < 1e-6, "{p}");
        assert_eq!(homogeneity(&[vec![600, 400], vec![600, 400]]).2, 1.0);
        assert_eq!(homogeneity(&[vec![600, 400], vec![]]), (0.0, 0, 1.0));
    }

    #[test]
    fn shares_and_error_rates() {
        let same = shares(&[(500, 510), (300, 290), (200, 200)]).unwrap();
        assert!(!same.significant(), "{same:?}");
        let moved = shares(&[(500, 300), (300, 500), (200, 200)]).unwrap();
        assert!(moved.significant(), "{moved:?}");
        assert_eq!(shares(&[(5, 5)]), None);
        assert_eq!(shares(&[(5, 0), (5, 0)]), None, "one run is empty");
        assert!(!two_proportions(10, 1000, 12, 1000).unwrap().significant());
        let worse = two_proportions(10, 1000, 80, 1000).unwrap();
        assert!(worse.significant() && worse.statistic > 0.0);
    }
}
