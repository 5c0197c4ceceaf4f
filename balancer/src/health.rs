//! Active health checks as a pure state machine: feed it each probe's result,
//! it says when the peer flips (after `fall` failures in a row it is down,
//! after `rise` successes in a row it is up again), as HAProxy's and nginx
//! Plus's checks count.

/// A peer's health changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    rise: u32,
    fall: u32,
    up: bool,
    /// Results in a row that point the other way.
    streak: u32,
}

impl HealthCheck {
    /// Starts healthy: a peer is in rotation until probes say otherwise.
    pub fn new(rise: u32, fall: u32) -> HealthCheck {
        HealthCheck {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn observe(&mut self, ok: bool) -> Option<Flip> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.up = ok;
        self.streak = 0;
        Some(if ok { Flip::Up } else { Flip::Down })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(check: &mut HealthCheck, results: &str) -> Vec<Option<Flip>> {
        results.chars().map(|c| check.observe(c == '+')).collect()
    }

    #[test]
    fn falls_after_fall_failures_in_a_row_and_rises_after_rise_successes() {
        let mut c = HealthCheck::new(2, 3);
        // - - + : the success breaks the streak; - - - : down on the third.
        let flips = run(&mut c, "--+---");
        assert_eq!(flips, [None, None, None, None, None, Some(Flip::Down)]);
        assert!(!c.is_up());
        // + - + + : the failure breaks the rise streak; up on the second in a row.
        let flips = run(&mut c, "+-++");
        assert_eq!(flips, [None, None, None, Some(Flip::Up)]);
        assert!(c.is_up());
    }

    #[test]
    fn thresholds_of_one_flip_at_once() {
        let mut c = HealthCheck::new(1, 1);
        assert_eq!(c.observe(false), Some(Flip::Down));
        assert_eq!(c.observe(false), None);
        assert_eq!(c.observe(true), Some(Flip::Up));
    }
}
