//! Latency distributions: `20ms`, `normal(200ms,50ms)`, `uniform(10ms,50ms)`,
//! `lognormal(100ms,800ms)` (median and 99th percentile, the two numbers people
//! actually know about their service).

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};

use primitives::{format_duration, parse_duration};

/// How long a port takes before it answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    /// Normal, truncated at zero (a request cannot finish before it starts).
    Normal {
        mean: Duration,
        sd: Duration,
    },
    Uniform {
        low: Duration,
        high: Duration,
    },
    /// Log-normal given by its median and 99th percentile.
    LogNormal {
        p50: Duration,
        p99: Duration,
    },
}

/// z such that P(Z <= z) = 0.99 for a standard normal.
const Z99: f64 = 2.326_347_874_040_841;

impl Latency {
    pub const NONE: Latency = Latency::Fixed(Duration::ZERO);

    pub fn parse(text: &str) -> Result<Latency, String> {
        let t = text.trim();
        let Some(open) = t.find('(') else {
            return parse_duration(t)
                .map(Latency::Fixed)
                .map_err(|e| e.to_string());
        };
        let name = t[..open].trim().to_ascii_lowercase();
        let args = t[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("'{t}' is missing its closing ')'"))?;
        let args: Vec<Duration> = args
            .split(',')
            .map(|arg| parse_duration(arg).map_err(|why| format!("'{}' {why}", arg.trim())))
            .collect::<Result<_, _>>()?;
        let two = |what: &str| -> Result<(Duration, Duration), String> {
            match args[..] {
                [a, b] => Ok((a, b)),
                _ => Err(format!("{name}(...) takes two durations: {what}")),
            }
        };
        match name.as_str() {
            "fixed" | "constant" => match args[..] {
                [d] => Ok(Latency::Fixed(d)),
                _ => Err("fixed(...) takes one duration".to_string()),
            },
            "normal" => {
                let (mean, sd) = two("mean and standard deviation, e.g. normal(200ms,50ms)")?;
                Ok(Latency::Normal { mean, sd })
            }
            "uniform" => {
                let (low, high) = two("low and high, e.g. uniform(10ms,50ms)")?;
                if low > high {
                    return Err("uniform(low,high): low is above high".to_string());
                }
                Ok(Latency::Uniform { low, high })
            }
            "lognormal" => {
                let (p50, p99) = two("median and p99, e.g. lognormal(100ms,800ms)")?;
                if p50.is_zero() || p99 < p50 {
                    return Err("lognormal(p50,p99) needs 0 < p50 <= p99".to_string());
                }
                Ok(Latency::LogNormal { p50, p99 })
            }
            other => Err(format!(
                "unknown distribution '{other}'; use a duration, normal(mean,sd), uniform(low,high) or lognormal(p50,p99)"
            )),
        }
    }

    /// Draws one latency. Fixed latencies never touch `rng`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let seconds = match *self {
            Latency::Fixed(d) => return d,
            Latency::Normal { mean, sd } => match Normal::new(mean.as_secs_f64(), sd.as_secs_f64())
            {
                Ok(n) => n.sample(rng),
                Err(_) => mean.as_secs_f64(),
            },
            Latency::Uniform { low, high } => {
                rng.random_range(low.as_secs_f64()..=high.as_secs_f64())
            }
            Latency::LogNormal { p50, p99 } => {
                let mu = p50.as_secs_f64().ln();
                let sigma = (p99.as_secs_f64().ln() - mu) / Z99;
                match LogNormal::new(mu, sigma) {
                    Ok(d) => d.sample(rng),
                    Err(_) => p50.as_secs_f64(),
                }
            }
        };
        // Cap at an hour so a wild draw cannot overflow a timer.
        Duration::from_secs_f64(seconds.clamp(0.0, 3600.0))
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Duration| format_duration(d);
        match *self {
            Latency::Fixed(x) => write!(f, "{}", d(x)),
            Latency::Normal { mean, sd } => write!(f, "normal({},{})", d(mean), d(sd)),
            Latency::Uniform { low, high } => write!(f, "uniform({},{})", d(low), d(high)),
            Latency::LogNormal { p50, p99 } => write!(f, "lognormal({},{})", d(p50), d(p99)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(Latency::parse("20ms"), Ok(Latency::Fixed(ms(20))));
        assert_eq!(Latency::parse("fixed(5ms)"), Ok(Latency::Fixed(ms(5))));
        assert_eq!(
            Latency::parse("normal(200ms, 50ms)"),
            Ok(Latency::Normal {
                mean: ms(200),
                sd: ms(50)
            })
        );
        assert_eq!(
            Latency::parse("uniform(10ms,50ms)"),
            Ok(Latency::Uniform {
                low: ms(10),
                high: ms(50)
            })
        );
        assert_eq!(
            Latency::parse("lognormal(100ms,800ms)"),
            Ok(Latency::LogNormal {
                p50: ms(100),
                p99: ms(800)
            })
        );
    }

    #[test]
    fn refuses_bad_shapes_with_a_reason() {
        assert!(Latency::parse("normal(200ms)")
            .unwrap_err()
            .contains("two durations"));
        assert!(Latency::parse("uniform(50ms,10ms)")
            .unwrap_err()
            .contains("above"));
        assert!(Latency::parse("lognormal(1s,10ms)")
            .unwrap_err()
            .contains("p50 <= p99"));
        assert!(Latency::parse("gamma(1s,2s)")
            .unwrap_err()
            .contains("unknown distribution"));
        assert!(Latency::parse("normal(200ms,50ms")
            .unwrap_err()
            .contains("closing"));
        assert!(Latency::parse("soon").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "20ms",
            "normal(200ms,50ms)",
            "uniform(10ms,50ms)",
            "lognormal(100ms,800ms)",
        ] {
            let l = Latency::parse(text).unwrap();
            assert_eq!(l.to_string(), text);
        }
    }

    fn quantile(mut xs: Vec<Duration>, q: f64) -> Duration {
        xs.sort();
        xs[((xs.len() as f64 - 1.0) * q) as usize]
    }

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let l = Latency::parse("lognormal(100ms,800ms)").unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let xs: Vec<_> = (0..20_000).map(|_| l.sample(&mut rng)).collect();
        let p50 = quantile(xs.clone(), 0.5).as_secs_f64();
        let p99 = quantile(xs, 0.99).as_secs_f64();
        assert!((p50 - 0.1).abs() < 0.01, "p50 {p50}");
        assert!((p99 - 0.8).abs() < 0.12, "p99 {p99}");
    }

    #[test]
    fn normal_and_uniform_stay_in_their_ranges() {
        let mut rng = SmallRng::seed_from_u64(1);
        let n = Latency::parse("normal(10ms,20ms)").unwrap();
        assert!((0..5000).all(|_| n.sample(&mut rng) < Duration::from_secs(1)));
        let u = Latency::parse("uniform(10ms,50ms)").unwrap();
        for _ in 0..5000 {
            let x = u.sample(&mut rng);
            assert!(x >= ms(10) && x <= ms(50), "{x:?}");
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let l = Latency::parse("normal(200ms,50ms)").unwrap();
        let a: Vec<_> = {
            let mut r = SmallRng::seed_from_u64(42);
            (0..10).map(|_| l.sample(&mut r)).collect()
        };
        let mut r = SmallRng::seed_from_u64(42);
        let b: Vec<_> = (0..10).map(|_| l.sample(&mut r)).collect();
        assert_eq!(a, b);
    }
}
