//! Per-port counters, kept in atomics so the hot path never takes a lock, and
//! their two renderings: Prometheus/OpenMetrics text and the JSON that seed 000's
//! dynamic-weight script and seed 001's `/load` read.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::faults::LoadPin;
use crate::routes::Route;

/// Upper bounds of the latency histogram, in seconds (Prometheus' defaults plus
/// the long tail an AI backend has).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const STATUSES: usize = 500; // 100..=599

/// When a port sets no `max_concurrency`, the simulated CPU counts this many
/// requests in flight as fully busy.
pub const NOMINAL_SLOTS: usize = 32;
const CPU_IDLE: f64 = 5.0;
const MEMORY_IDLE: f64 = 30.0;
/// Memory at full load: above seed 001's 85% line, so a dynamic-weight
/// balancer sees a saturated node cross it.
const MEMORY_FULL: f64 = 92.0;

#[derive(Default)]
struct RouteCounters {
    /// Allocated on first use: most ports only ever see a few routes.
    statuses: OnceLock<Box<[AtomicU64; STATUSES]>>,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// Counters one group of threads writes. Every request updates several
/// counters; with one shared copy the cores would pass its cache lines back
/// and forth on every request, so each thread writes its own shard and a read
/// sums them.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    routes: [RouteCounters; Route::COUNT],
    /// Wrapping: a request may enter on one thread and leave on another, so a
    /// shard alone can go "negative"; the sum over shards is right.
    in_flight: AtomicU64,
    busy_us: AtomicU64,
}

const SHARDS: usize = 8;

fn shard_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

pub struct Metrics {
    shards: Box<[Shard; SHARDS]>,
    /// Waiting for a capacity slot. Not sharded: admission reads it to decide.
    pub queued: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub injected_errors: AtomicU64,
    /// Prompt tokens looked up in the prefix cache and found there, and the
    /// requests that found any (vLLM counts the first two in tokens too).
    pub prefix_queries: AtomicU64,
    pub prefix_hits: AtomicU64,
    pub prefix_hit_requests: AtomicU64,
    window: Mutex<Window>,
}

struct Window {
    at: Instant,
    busy_us: u64,
    average: f64,
}

/// Simulated resource figures, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadFigures {
    pub cpu: f64,
    pub memory: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: Box::default(),
            queued: AtomicU64::new(0),
            rejected_busy: AtomicU64::new(0),
            injected_errors: AtomicU64::new(0),
            prefix_queries: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            prefix_hit_requests: AtomicU64::new(0),
            window: Mutex::new(Window {
                at: Instant::now(),
                busy_us: 0,
                average: 0.0,
            }),
        }
    }
}

fn status_slot(status: u16) -> usize {
    usize::from(status.clamp(100, 599) - 100)
}

impl Metrics {
    fn mine(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    fn sum(&self, f: impl Fn(&Shard) -> u64) -> u64 {
        self.shards.iter().map(f).fold(0, u64::wrapping_add)
    }

    pub fn record(&self, route: Route, status: u16, elapsed: Duration) {
        let shard = self.mine();
        let r = &shard.routes[route as usize];
        let statuses = r
            .statuses
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        statuses[status_slot(status)].fetch_add(1, Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| seconds <= *le) {
            r.buckets[b].fetch_add(1, Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        r.sum_us.fetch_add(us, Relaxed);
        r.count.fetch_add(1, Relaxed);
        if route.is_work() {
            shard.busy_us.fetch_add(us, Relaxed);
        }
    }

    /// A work request took a slot; `leave` when it is done.
    pub fn enter(&self) {
        self.mine().in_flight.fetch_add(1, Relaxed);
    }

    pub fn leave(&self) {
        self.mine().in_flight.fetch_sub(1, Relaxed);
    }

    /// Work requests being served now.
    pub fn in_flight(&self) -> u64 {
        self.sum(|s| s.in_flight.load(Relaxed))
    }

    fn status_count(&self, route: Route, slots: std::ops::Range<usize>) -> u64 {
        self.sum(|s| {
            s.routes[route as usize].statuses.get().map_or(0, |st| {
                st[slots.clone()].iter().map(|c| c.load(Relaxed)).sum()
            })
        })
    }

    /// Requests answered with `status` on `route` so far.
    pub fn count(&self, route: Route, status: u16) -> u64 {
        let slot = status_slot(status);
        self.status_count(route, slot..slot + 1)
    }

    pub fn total(&self) -> u64 {
        self.sum(|s| s.routes.iter().map(|r| r.count.load(Relaxed)).sum())
    }

    fn errors(&self) -> u64 {
        Route::ALL
            .iter()
            .map(|r| self.status_count(*r, status_slot(400)..STATUSES))
            .sum()
    }

    /// CPU and memory as a function of load: the busier the port (in flight now,
    /// or busy time over the last quarter second or more), the higher both go.
    pub fn load(&self, slots: usize, queue: usize, pin: Option<LoadPin>) -> LoadFigures {
        if let Some(p) = pin {
            return LoadFigures {
                cpu: p.cpu,
                memory: p.memory,
            };
        }
        let slots = slots.max(1) as f64;
        let in_flight = self.in_flight() as f64;
        let queued = self.queued.load(Relaxed) as f64;
        let busy = self.sum(|s| s.busy_us.load(Relaxed));
        let average = {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            let elapsed = w.at.elapsed();
            if elapsed >= Duration::from_millis(250) {
                let busy_s = busy.saturating_sub(w.busy_us) as f64 / 1e6;
                w.average = busy_s / (elapsed.as_secs_f64() * slots);
                w.at = Instant::now();
                w.busy_us = busy;
            }
            w.average
        };
        let utilisation = (in_flight / slots).max(average).min(1.0);
        let pressure = ((in_flight + queued) / (slots + queue as f64))
            .max(average)
            .min(1.0);
        let round = |x: f64| (x * 10.0).round() / 10.0;
        LoadFigures {
            cpu: round(CPU_IDLE + (100.0 - CPU_IDLE) * utilisation),
            memory: round(MEMORY_IDLE + (MEMORY_FULL - MEMORY_IDLE) * pressure),
        }
    }

    /// Prometheus text exposition (0.0.4), or OpenMetrics 1.0 when `openmetrics`.
    pub fn render_text(&self, port: u16, load: LoadFigures, openmetrics: bool) -> String {
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            // OpenMetrics names a counter family without its `_total` suffix.
            let name = if openmetrics {
                name.trim_end_matches("_total")
            } else {
                name
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "mock_requests_total",
            "counter",
            "Requests answered, by port, path and status.",
        );
        for route in Route::ALL {
            for slot in 0..STATUSES {
                let n = self.status_count(route, slot..slot + 1);
                if n > 0 {
                    let (path, status) = (route.label(), slot + 100);
                    let _ = writeln!(
                        out,
                        "mock_requests_total{{port=\"{port}\",path=\"{path}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let singles: [(&str, &str, &str, f64); 9] = [
            (
                "mock_in_flight",
                "gauge",
                "Work requests being served now.",
                self.in_flight() as f64,
            ),
            (
                "mock_queue_length",
                "gauge",
                "Work requests waiting for a capacity slot.",
                self.queued.load(Relaxed) as f64,
            ),
            (
                "mock_rejected_total",
                "counter",
                "Requests refused with 503 because the queue was full.",
                self.rejected_busy.load(Relaxed) as f64,
            ),
            (
                "mock_injected_errors_total",
                "counter",
                "Errors answered on purpose (error_rate or the errors fault).",
                self.injected_errors.load(Relaxed) as f64,
            ),
            (
                "mock_prefix_cache_queries_total",
                "counter",
                "Prompt tokens looked up in the prefix cache.",
                self.prefix_queries.load(Relaxed) as f64,
            ),
            (
                "mock_prefix_cache_hits_total",
                "counter",
                "Prompt tokens found in the prefix cache.",
                self.prefix_hits.load(Relaxed) as f64,
            ),
            (
                "mock_prefix_cache_hit_requests_total",
                "counter",
                "Requests whose prompt began with a cached prefix.",
                self.prefix_hit_requests.load(Relaxed) as f64,
            ),
            (
                "mock_cpu_usage_percent",
                "gauge",
                "Simulated CPU use, from the port's load.",
                load.cpu,
            ),
            (
                "mock_memory_usage_percent",
                "gauge",
                "Simulated memory use, from the port's load.",
                load.memory,
            ),
        ];
        for (name, kind, help, value) in singles {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name}{{port=\"{port}\"}} {value}");
        }
        family(
            &mut out,
            "mock_request_duration_seconds",
            "histogram",
            "Time from request to last response byte, by path.",
        );
        for route in Route::ALL {
            let of_route =
                |f: &dyn Fn(&RouteCounters) -> u64| self.sum(|s| f(&s.routes[route as usize]));
            let count = of_route(&|r| r.count.load(Relaxed));
            if count == 0 {
                continue;
            }
            let labels = format!("port=\"{port}\",path=\"{}\"", route.label());
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += of_route(&|r| r.buckets[i].load(Relaxed));
                let _ = writeln!(
                    out,
                    "mock_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mock_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = of_route(&|r| r.sum_us.load(Relaxed)) as f64 / 1e6;
            let _ = writeln!(out, "mock_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                out,
                "mock_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        if openmetrics {
            out.push_str("# EOF\n");
        }
        out
    }

    /// A prompt of `prompt` tokens went through the prefix cache and
    /// `cached` of them were there.
    pub fn prefix_cache(&self, prompt: u32, cached: u32) {
        self.prefix_queries.fetch_add(u64::from(prompt), Relaxed);
        self.prefix_hits.fetch_add(u64::from(cached), Relaxed);
        if cached > 0 {
            self.prefix_hit_requests.fetch_add(1, Relaxed);
        }
    }

    /// The JSON view: seed 000's `cpu_usage`/`memory_usage` and the queue state.
    pub fn render_json(
        &self,
        server: u16,
        name: &str,
        load: LoadFigures,
        max_concurrency: Option<usize>,
    ) -> String {
        serde_json::json!({
            "server": server,
            "name": name,
            "cpu_usage": load.cpu,
            "memory_usage": load.memory,
            "active_requests": self.in_flight(),
            "queue_length": self.queued.load(Relaxed),
            "max_concurrency": max_concurrency,
            "requests_total": self.total(),
            "errors_total": self.errors(),
            "rejected_total": self.rejected_busy.load(Relaxed),
            "prefix_cache": {
                "queried_tokens": self.prefix_queries.load(Relaxed),
                "hit_tokens": self.prefix_hits.load(Relaxed),
                "hit_requests": self.prefix_hit_requests.load(Relaxed),
            },
            "timestamp": unix_seconds(),
        })
        .to_string()
    }
}

pub fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status_and_renders_them() {
        let m = Metrics::default();
        m.record(Route::Chat, 200, Duration::from_millis(3));
        m.record(Route::Chat, 200, Duration::from_millis(30));
        m.record(Route::Chat, 503, Duration::from_millis(2));
        assert_eq!(m.count(Route::Chat, 200), 2);
        assert_eq!(m.count(Route::Chat, 503), 1);
        assert_eq!(m.total(), 3);
        let load = LoadFigures {
            cpu: 5.0,
            memory: 30.0,
        };
        let text = m.render_text(8001, load, false);
        assert!(
            text.contains("mock_requests_total{port=\"8001\",path=\"/chat\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "mock_request_duration_seconds_bucket{port=\"8001\",path=\"/chat\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "mock_request_duration_seconds_bucket{port=\"8001\",path=\"/chat\",le=\"0.05\"} 3\n"
        ));
        assert!(
            text.contains("mock_request_duration_seconds_count{port=\"8001\",path=\"/chat\"} 3\n")
        );
        assert!(!text.contains("# EOF"));
        let om = m.render_text(8001, load, true);
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE mock_requests counter\n"));
    }

    #[test]
    fn load_rises_with_requests_in_flight_and_can_be_pinned() {
        let m = Metrics::default();
        let idle = m.load(4, 0, None);
        assert_eq!(
            idle,
            LoadFigures {
                cpu: CPU_IDLE,
                memory: MEMORY_IDLE
            }
        );
        (0..4).for_each(|_| m.enter());
        let full = m.load(4, 0, None);
        assert_eq!(full.cpu, 100.0);
        assert!(full.memory > 85.0, "{full:?}");
        let pinned = m.load(
            4,
            0,
            Some(LoadPin {
                cpu: 12.0,
                memory: 95.0,
            }),
        );
        assert_eq!(
            pinned,
            LoadFigures {
                cpu: 12.0,
                memory: 95.0
            }
        );
    }

    #[test]
    fn json_has_the_fields_the_seed_scripts_read() {
        let m = Metrics::default();
        let v: serde_json::Value = serde_json::from_str(&m.render_json(
            8001,
            "127.0.0.1:8001",
            m.load(4, 0, None),
            Some(4),
        ))
        .unwrap();
        for key in [
            "cpu_usage",
            "memory_usage",
            "active_requests",
            "queue_length",
            "timestamp",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
}
