//! A capacity sweep: the highest rate (or concurrency) at which every
//! check still holds, found in a bounded number of steps. The load grows
//! by doubling from the low end until a step fails (or the high end
//! holds), then the gap between the last step that held and the first
//! that failed is halved until it is within 3% (or the steps run out).
//! Pure: the caller runs each step and says whether it held.

mod run;
pub use run::{run, Settings};

/// What is swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swept {
    /// Open loop, requests per second.
    Rate,
    /// Closed loop, connections.
    Concurrency,
}

impl Swept {
    pub fn name(self) -> &'static str {
        match self {
            Swept::Rate => "rate",
            Swept::Concurrency => "concurrency",
        }
    }
}

/// `--sweep rate=50..5000` or `concurrency=1..256`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    pub swept: Swept,
    pub low: f64,
    pub high: f64,
}

/// Steps a sweep makes at most, whatever the range.
pub const MAX_STEPS: usize = 16;

/// The search stops once the gap between held and failed is this close.
pub const PRECISION: f64 = 0.03;

impl Sweep {
    pub fn parse(text: &str) -> Result<Sweep, String> {
        let (what, range) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}': write rate=LOW..HIGH or concurrency=LOW..HIGH"))?;
        let swept = match what.trim() {
            "rate" => Swept::Rate,
            "concurrency" | "c" => Swept::Concurrency,
            other => return Err(format!("'{other}': sweep rate or concurrency")),
        };
        let (low, high) = range
            .split_once("..")
            .ok_or_else(|| format!("'{range}': write LOW..HIGH, e.g. 50..5000"))?;
        let number = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("'{t}' is not a number above 0"))
        };
        let (low, high) = (number(low)?, number(high)?);
        if low >= high {
            return Err(format!(
                "{low}..{high}: the low end must be below the high end"
            ));
        }
        if swept == Swept::Concurrency && (low.fract() != 0.0 || high.fract() != 0.0) {
            return Err(format!("{low}..{high}: connections are whole numbers"));
        }
        Ok(Sweep { swept, low, high })
    }

    /// A load as the step runs it: whole connections.
    fn round(&self, v: f64) -> f64 {
        match self.swept {
            Swept::Rate => (v * 10.0).round() / 10.0,
            Swept::Concurrency => v.round(),
        }
    }

    /// The next load to try after `done` (each load and whether it held),
    /// or `None` when the sweep is over.
    pub fn next(&self, done: &[(f64, bool)]) -> Option<f64> {
        if done.len() >= MAX_STEPS {
            return None;
        }
        let held = done
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(v, _)| *v)
            .fold(None, max);
        let failed = done
            .iter()
            .filter(|(_, ok)| !*ok)
            .map(|(v, _)| *v)
            .fold(None, min);
        let next = match (held, failed) {
            (None, None) => self.low,
            // Even the low end failed: nothing below it is tried.
            (None, Some(_)) => return None,
            (Some(h), None) if h >= self.high => return None,
            (Some(h), None) => (h * 2.0).min(self.high),
            (Some(h), Some(f)) if (f - h) / h <= PRECISION => return None,
            (Some(h), Some(f)) => (h + f) / 2.0,
        };
        let next = self.round(next);
        // Whole connections cannot be halved past one apart.
        (!done.iter().any(|(v, _)| *v == next)).then_some(next)
    }
}

fn max(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

fn min(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// The highest load that held, when one did.
pub fn capacity(done: &[(f64, bool)]) -> Option<f64> {
    done.iter()
        .filter(|(_, ok)| *ok)
        .map(|(v, _)| *v)
        .fold(None, max)
}

/// Where latency starts to climb faster than load: the first step, in
/// load order, whose median grew by a larger factor than its load did over
/// the step before (an elasticity above 1). `steps`: load and median.
pub fn knee(steps: &[(f64, f64)]) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = steps.iter().copied().filter(|(_, p)| *p > 0.0).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted.windows(2).find_map(|w| {
        let ((l0, p0), (l1, p1)) = (w[0], w[1]);
        let elasticity = (p1 / p0).ln() / (l1 / l0).ln();
        (elasticity > 1.0).then_some(l1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sweeps against a server whose capacity is `cap`.
    fn run(sweep: &Sweep, cap: f64) -> Vec<(f64, bool)> {
        let mut done = Vec::new();
        while let Some(v) = sweep.next(&done) {
            done.push((v, v <= cap));
        }
        done
    }

    #[test]
    fn finds_the_capacity_within_three_percent_in_few_steps() {
        let sweep = Sweep::parse("rate=50..5000").unwrap();
        for cap in [61.0, 160.0, 999.0, 4321.0] {
            let done = run(&sweep, cap);
            let found = capacity(&done).unwrap();
            assert!(
                found <= cap && found >= cap * 0.97 - 0.1,
                "{cap}: {found} after {done:?}"
            );
            assert!(done.len() <= 14, "{cap}: {} steps", done.len());
        }
        // The whole range holds: the high end is the answer.
        let done = run(&sweep, 1e9);
        assert_eq!(capacity(&done), Some(5000.0));
        // Nothing holds: no capacity, one step.
        assert_eq!(capacity(&run(&sweep, 1.0)), None);
        assert_eq!(run(&sweep, 1.0).len(), 1);
    }

    #[test]
    fn connections_stay_whole() {
        let sweep = Sweep::parse("concurrency=1..256").unwrap();
        let done = run(&sweep, 37.0);
        assert!(done.iter().all(|(v, _)| v.fract() == 0.0), "{done:?}");
        assert_eq!(capacity(&done), Some(37.0));
        assert!(done.len() <= MAX_STEPS);
    }

    #[test]
    fn bad_sweeps_say_what_to_write() {
        assert!(Sweep::parse("rate").unwrap_err().contains("rate=LOW..HIGH"));
        assert!(Sweep::parse("speed=1..2").unwrap_err().contains("'speed'"));
        assert!(Sweep::parse("rate=10..5").unwrap_err().contains("below"));
        assert!(Sweep::parse("rate=0..5").is_err());
        assert!(Sweep::parse("concurrency=1.5..8").is_err());
    }

    #[test]
    fn the_knee_is_where_latency_outgrows_load() {
        // Flat until 400/s, then the queue builds.
        let steps = [
            (100.0, 50.0),
            (200.0, 51.0),
            (400.0, 55.0),
            (600.0, 140.0),
            (800.0, 900.0),
        ];
        assert_eq!(knee(&steps), Some(600.0));
        assert_eq!(knee(&steps[..3]), None);
    }
}
