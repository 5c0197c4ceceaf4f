//! One served port's shared state: its profile, faults, capacity gate, random
//! draws and counters. Every connection on the port holds an `Arc<Node>`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;

use crate::tokens::TokenCount;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::faults::FaultState;
use crate::latency::Latency;
use crate::metrics::{LoadFigures, Metrics, NOMINAL_SLOTS};
use crate::prefix::{self, PrefixCache};
use crate::profile::Profile;

pub struct Node {
    pub index: usize,
    pub addr: SocketAddr,
    /// What `X-Backend` says: the profile's name, or `host:port`.
    pub label: String,
    pub profile: Profile,
    pub metrics: Metrics,
    log: bool,
    rng: Mutex<SmallRng>,
    faults: watch::Sender<FaultState>,
    /// Mirrors "any fault is set", so the hot path skips the fault lock.
    faulted: AtomicBool,
    gate: Option<Arc<Semaphore>>,
    seq: AtomicU64,
    prefix_cache: Option<Mutex<PrefixCache>>,
    /// The current accept loop, while the port is up.
    pub(crate) listening: Mutex<Option<Listening>>,
}

/// A port's accept loop: cancelling `down` stops it and drops its
/// connections; `task` ends once the listener is closed.
pub(crate) struct Listening {
    pub down: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// The queue was full: answer 503.
#[derive(Debug)]
pub struct Busy;

impl Node {
    pub(crate) fn new(
        index: usize,
        addr: SocketAddr,
        profile: Profile,
        seed: Option<u64>,
        log: bool,
    ) -> Node {
        let label = profile.name.clone().unwrap_or_else(|| addr.to_string());
        let cache_size = profile.prefix_cache_size;
        let rng = match seed {
            Some(s) => SmallRng::seed_from_u64(s.wrapping_add(index as u64)),
            None => SmallRng::from_os_rng(),
        };
        Node {
            index,
            addr,
            label,
            gate: profile.max_concurrency.map(|n| Arc::new(Semaphore::new(n))),
            profile,
            metrics: Metrics::default(),
            log,
            rng: Mutex::new(rng),
            faults: watch::Sender::new(FaultState::default()),
            faulted: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            prefix_cache: (cache_size > 0).then(|| Mutex::new(PrefixCache::new(cache_size))),
            listening: Mutex::new(None),
        }
    }

    /// Whether `--log` asked for a line per request.
    pub fn logs(&self) -> bool {
        self.log
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The faults in force, or `None` on the fast path when there are none.
    pub fn faults(&self) -> Option<FaultState> {
        if self.faulted.load(Relaxed) {
            Some(self.faults.borrow().clone())
        } else {
            None
        }
    }

    pub fn fault_state(&self) -> FaultState {
        self.faults.borrow().clone()
    }

    pub fn subscribe_faults(&self) -> watch::Receiver<FaultState> {
        self.faults.subscribe()
    }

    pub(crate) fn modify_faults<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut out = None;
        self.faults.send_modify(|state| {
            out = Some(f(state));
            self.faulted.store(!state.is_clear(), Relaxed);
        });
        out.expect("send_modify runs its closure")
    }

    /// Draws this request's latency and whether it fails, from the port's
    /// seeded generator (in that order, so a seeded run repeats exactly).
    pub fn draw(&self, error_rate: f64) -> (Duration, bool) {
        let latency = &self.profile.latency;
        if let (Latency::Fixed(d), true) = (latency, error_rate <= 0.0) {
            return (*d, false);
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let delay = latency.sample(&mut *rng);
        let fail = error_rate > 0.0 && rng.random_bool(error_rate.min(1.0));
        (delay, fail)
    }

    /// This answer's length, from the port's seeded generator.
    pub fn draw_tokens(&self) -> u32 {
        match self.profile.output_tokens {
            TokenCount::Fixed(n) => n,
            count => count.sample(&mut *self.rng.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    /// Whether the port keeps a prefix cache.
    pub fn caches_prefixes(&self) -> bool {
        self.prefix_cache.is_some()
    }

    /// A prompt's time to first token, and the prompt tokens the prefix
    /// cache held (`None` without a cache); the prompt is remembered.
    pub fn first_token_after(
        &self,
        prompt: u32,
        prefixes: &[(u64, u32)],
    ) -> (Duration, Option<u32>) {
        let Some(cache) = &self.prefix_cache else {
            return (self.profile.ttft, None);
        };
        let cached = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(prefixes)
            .min(prompt);
        self.metrics.prefix_cache(prompt, cached);
        let p = &self.profile;
        (
            prefix::ttft(p.ttft, p.prefix_cache_ttft, prompt, cached),
            Some(cached),
        )
    }

    pub fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Relaxed) + 1
    }

    /// Takes a capacity slot for a work request, waiting in the queue if there
    /// is room in it, or refuses at once when the queue is full. The caller
    /// must call `metrics.leave()` when the request is done.
    pub async fn admit(&self) -> Result<Option<OwnedSemaphorePermit>, Busy> {
        let permit = match &self.gate {
            None => None,
            Some(gate) => match gate.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let waiting = self.metrics.queued.fetch_add(1, Relaxed);
                    let _queued = Decrement(&self.metrics.queued);
                    if waiting >= self.profile.queue as u64 {
                        self.metrics.rejected_busy.fetch_add(1, Relaxed);
                        return Err(Busy);
                    }
                    Some(gate.clone().acquire_owned().await.map_err(|_| Busy)?)
                }
            },
        };
        self.metrics.enter();
        Ok(permit)
    }

    /// No free capacity slot right now.
    pub fn saturated(&self) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.available_permits() == 0)
    }

    pub fn load(&self) -> LoadFigures {
        let slots = self.profile.max_concurrency.unwrap_or(NOMINAL_SLOTS);
        let pin = self.faults().and_then(|f| f.load);
        self.metrics.load(slots, self.profile.queue, pin)
    }
}

struct Decrement<'a>(&'a AtomicU64);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
