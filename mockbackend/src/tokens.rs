//! How many tokens an answer has: `64`, `uniform(8,128)` or
//! `normal(64,16)` (truncated to at least 1), drawn per request so a node's
//! answers can vary in length as real models' do.

use std::fmt;

use rand::Rng;
use rand_distr::{Distribution, Normal};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenCount {
    Fixed(u32),
    Uniform(u32, u32),
    Normal { mean: f64, sd: f64 },
}

impl TokenCount {
    pub fn parse(text: &str) -> Result<TokenCount, String> {
        let t = text.trim();
        let count = |s: &str| -> Result<u32, String> {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!(
                        "'{}' is not a token count between 1 and 4294967295",
                        s.trim()
                    )
                })
        };
        let args = |name: &str| {
            t.strip_prefix(name)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|r| r.split_once(','))
        };
        if let Some((a, b)) = args("uniform") {
            let (a, b) = (count(a)?, count(b)?);
            if a > b {
                return Err(format!(
                    "uniform({a},{b}): the low end is above the high end"
                ));
            }
            return Ok(TokenCount::Uniform(a, b));
        }
        if let Some((m, s)) = args("normal") {
            let mean = f64::from(count(m)?);
            let sd: f64 = s
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("'{}' is not a standard deviation", s.trim()))?;
            return Ok(TokenCount::Normal { mean, sd });
        }
        count(t)
            .map(TokenCount::Fixed)
            .map_err(|e| format!("{e}; or write uniform(MIN,MAX) or normal(MEAN,SD)"))
    }

    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        match *self {
            TokenCount::Fixed(n) => n,
            TokenCount::Uniform(a, b) => rng.random_range(a..=b),
            TokenCount::Normal { mean, sd } => {
                let v = Normal::new(mean, sd).map_or(mean, |d| d.sample(rng));
                v.round().clamp(1.0, f64::from(u32::MAX)) as u32
            }
        }
    }
}

impl fmt::Display for TokenCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenCount::Fixed(n) => write!(f, "{n}"),
            TokenCount::Uniform(a, b) => write!(f, "uniform({a},{b})"),
            TokenCount::Normal { mean, sd } => write!(f, "normal({mean},{sd})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn every_form_parses_and_draws_within_bounds() {
        assert_eq!(TokenCount::parse("32"), Ok(TokenCount::Fixed(32)));
        let u = TokenCount::parse("uniform(8, 12)").unwrap();
        assert_eq!(u.to_string(), "uniform(8,12)");
        let mut rng = SmallRng::seed_from_u64(1);
        let draws: Vec<u32> = (0..500).map(|_| u.sample(&mut rng)).collect();
        assert!(draws.iter().all(|n| (8..=12).contains(n)));
        assert!(draws.contains(&8) && draws.contains(&12));
        let n = TokenCount::parse("normal(3,10)").unwrap();
        assert!(
            (0..500).all(|_| n.sample(&mut rng) >= 1),
            "never below one token"
        );
    }

    #[test]
    fn mistakes_say_how_to_write_it() {
        assert!(TokenCount::parse("0").unwrap_err().contains("between 1"));
        assert!(TokenCount::parse("lots")
            .unwrap_err()
            .contains("uniform(MIN,MAX)"));
        assert!(TokenCount::parse("uniform(9,3)")
            .unwrap_err()
            .contains("above"));
    }
}
