//! When each request goes: the pacing (closed loop, or an open-loop rate
//! with even or random arrivals), a scenario's phases and a replay's
//! timestamps, as the tickets workers take one at a time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};

use crate::plan::Plan;
use crate::shard::Shard;

/// How requests are started: as soon as a worker is free (ab's closed
/// loop), or on a fixed schedule whatever the server does (open loop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    Closed,
    /// Requests per second, all workers together.
    Rate(f64),
}

/// A stretch of a scenario's load: an arrival rate ramping linearly from
/// one value to another (open loop), or a number of busy clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub duration: Duration,
    pub load: PhaseLoad,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseLoad {
    Rate { from: f64, to: f64 },
    Concurrency(usize),
}

impl Phase {
    /// Requests a rate phase starts (its mean rate times its length).
    pub fn arrivals(&self) -> Option<f64> {
        match self.load {
            PhaseLoad::Rate { from, to } => Some((from + to) / 2.0 * self.duration.as_secs_f64()),
            PhaseLoad::Concurrency(_) => None,
        }
    }
}

/// When request `i` is due, counted from the start, under rate phases;
/// `None` once the phases are over. Within a phase the rate is
/// `from + (to - from) t / T`, so arrivals by time t are
/// `from t + (to - from) t^2 / 2T`, solved for t.
pub fn due_in_phases(phases: &[Phase], i: u64) -> Option<Duration> {
    let mut before = 0.0; // arrivals in earlier phases
    let mut offset = 0.0; // their seconds
    let n = i as f64;
    for phase in phases {
        let (PhaseLoad::Rate { from, to }, Some(count)) = (phase.load, phase.arrivals()) else {
            return None;
        };
        let t_len = phase.duration.as_secs_f64();
        if n < before + count {
            let local = n - before;
            let k = (to - from) / (2.0 * t_len);
            let t = if k.abs() < 1e-12 {
                local / from
            } else {
                (-from + (from * from + 4.0 * k * local).sqrt()) / (2.0 * k)
            };
            return Some(Duration::from_secs_f64(offset + t.clamp(0.0, t_len)));
        }
        before += count;
        offset += t_len;
    }
    None
}

/// How open-loop arrivals are spaced: evenly, or at random with gamma
/// distributed gaps (shape 1 is a Poisson process; below 1 burstier, above
/// 1 steadier), as vLLM's serving benchmark does.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Arrival {
    Even,
    Gamma { shape: f64, seed: u64 },
}

/// Why an arrival process does not read; the caller names its flag or key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArrivalError {
    #[error("'{0}': use even, poisson or gamma")]
    Unknown(String),
    #[error("burstiness {0} is not above 0")]
    Shape(f64),
    #[error("burstiness goes with the gamma arrival process")]
    ShapeWithoutGamma,
}

impl Arrival {
    /// `even` (the default), `poisson`, or `gamma` with its burstiness
    /// (its shape; 1 when not given).
    pub fn parse(
        process: Option<&str>,
        burstiness: Option<f64>,
        seed: u64,
    ) -> Result<Arrival, ArrivalError> {
        Ok(match (process, burstiness) {
            (None | Some("even"), None) => Arrival::Even,
            (Some("poisson"), None) => Arrival::Gamma { shape: 1.0, seed },
            (Some("gamma"), b) => {
                let shape = b.unwrap_or(1.0);
                if !(shape > 0.0 && shape.is_finite()) {
                    return Err(ArrivalError::Shape(shape));
                }
                Arrival::Gamma { shape, seed }
            }
            (_, Some(_)) => return Err(ArrivalError::ShapeWithoutGamma),
            (Some(other), None) => return Err(ArrivalError::Unknown(other.to_string())),
        })
    }
}

/// Hands out request tickets until the count or the time runs out, or the
/// run is stopped.
pub struct Schedule {
    next: AtomicU64,
    /// The whole run's requests; a shard sends every Nth of them.
    requests: u64,
    shard: Option<Shard>,
    start: Instant,
    deadline: Option<Instant>,
    pacing: Pacing,
    phases: Vec<Phase>,
    due: Vec<Duration>,
    /// Random arrivals: the next one's time, in seconds from the start.
    arrivals: Option<std::sync::Mutex<Arrivals>>,
    pub stop: AtomicBool,
    /// After Ctrl-C's grace: requests still in flight are given up, not
    /// waited for (a silent server would hold the report for `-s`).
    pub abandon: tokio::sync::Notify,
    /// Every worker is done (progress displays end on it).
    pub finished: AtomicBool,
    /// Requests finished so far, and how many of them failed: for progress.
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    /// Requests in flight now, and the most there were at once (vLLM's
    /// max_concurrent_requests).
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    /// The first answer's body length: ab holds every answer of the run to
    /// it, whichever worker got it.
    pub document_length: std::sync::OnceLock<u64>,
}

impl Schedule {
    pub fn new(plan: &Plan) -> Schedule {
        // A shard that begins late (--start-at already past) counts its
        // schedule from the shared time, so it catches up with the others.
        let late = plan
            .start_at
            .and_then(|at| std::time::SystemTime::now().duration_since(at).ok());
        let now = Instant::now();
        let start = late.and_then(|l| now.checked_sub(l)).unwrap_or(now);
        let phased = (!plan.phases.is_empty())
            .then(|| start + plan.phases.iter().map(|p| p.duration).sum::<Duration>());
        let limit = plan.time_limit.map(|t| start + t);
        Schedule {
            next: AtomicU64::new(0),
            requests: plan.requests,
            shard: plan.shard,
            start,
            deadline: match (limit, phased) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            pacing: plan.pacing,
            phases: plan.phases.clone(),
            due: plan.due.clone(),
            arrivals: match (plan.arrival, plan.pacing) {
                (Arrival::Gamma { shape, seed }, Pacing::Rate(rate)) => {
                    let mut arrivals = Arrivals {
                        next: 0.0,
                        rng: SmallRng::seed_from_u64(seed),
                        // Mean gap 1/rate whatever the shape.
                        gaps: Gamma::new(shape, 1.0 / (rate * shape)).ok(),
                        rate,
                    };
                    // Shard I's first arrival is the whole run's Ith.
                    arrivals.skip(plan.shard.map_or(0, |s| s.index));
                    Some(std::sync::Mutex::new(arrivals))
                }
                _ => None,
            },
            stop: AtomicBool::new(false),
            abandon: tokio::sync::Notify::new(),
            finished: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            document_length: std::sync::OnceLock::new(),
        }
    }

    pub fn started(&self) -> Instant {
        self.start
    }

    /// How many requests the run (this shard) will send at most, and for
    /// how long.
    pub fn bounds(&self) -> (u64, Option<Instant>) {
        let own = self.shard.map_or(self.requests, |s| s.part(self.requests));
        (own, self.deadline)
    }

    /// How many workers may be busy now, under concurrency phases.
    fn concurrency_now(&self) -> Option<usize> {
        if self.phases.is_empty() {
            return None; // no clock read on the hot path
        }
        let mut end = Duration::ZERO;
        let elapsed = self.start.elapsed();
        for phase in &self.phases {
            end += phase.duration;
            match phase.load {
                PhaseLoad::Concurrency(c) if elapsed < end => return Some(c),
                PhaseLoad::Concurrency(_) => {}
                PhaseLoad::Rate { .. } => return None,
            }
        }
        None
    }

    /// Worker `worker`'s next request, with the time it is due (open
    /// loop); waits until then. `None` when the run is over.
    pub(crate) async fn ticket(&self, worker: usize) -> Option<(u64, Option<Instant>)> {
        loop {
            if self.stop.load(Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            // A phase with fewer clients than workers idles the rest.
            match self.concurrency_now() {
                Some(c) if worker >= c => tokio::time::sleep(Duration::from_millis(10)).await,
                _ => break,
            }
        }
        let j = self.next.fetch_add(1, Relaxed);
        // The whole run's number for it: what its schedule, body and
        // client identity follow.
        let i = self.shard.map_or(j, |s| s.global(j));
        if i >= self.requests {
            return None;
        }
        let due = match self.pacing {
            Pacing::Closed => return Some((i, None)),
            Pacing::Rate(_) if !self.due.is_empty() => self.start + *self.due.get(i as usize)?,
            Pacing::Rate(_) if self.arrivals.is_some() => {
                let mut guard = self
                    .arrivals
                    .as_ref()?
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let a = &mut *guard;
                let at = a.next;
                // A shard's next arrival is N of the whole run's later.
                a.skip(self.shard.map_or(1, |s| s.count));
                self.start + Duration::from_secs_f64(at)
            }
            Pacing::Rate(_) if !self.phases.is_empty() => {
                self.start + due_in_phases(&self.phases, i)?
            }
            Pacing::Rate(r) => self.start + Duration::from_secs_f64(i as f64 / r),
        };
        if self.deadline.is_some_and(|d| due >= d) {
            return None;
        }
        tokio::time::sleep_until(due.into()).await;
        Some((i, Some(due)))
    }
}

/// Where a random arrival process is: its next arrival and its draws.
struct Arrivals {
    next: f64,
    rng: SmallRng,
    gaps: Option<Gamma<f64>>,
    rate: f64,
}

impl Arrivals {
    /// Moves on `n` arrivals.
    fn skip(&mut self, n: u32) {
        for _ in 0..n {
            self.next += match &self.gaps {
                Some(g) => g.sample(&mut self.rng),
                None => 1.0 / self.rate,
            };
        }
    }
}
