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

pub struct Metrics {
    routes: [RouteCounters; Route::COUNT],
    pub in_flight: AtomicU64,
    pub queued: AtomicU64,
    /// Work-request time summed over requests, for the simulated CPU figure.
    busy_us: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub injected_errors: AtomicU64,
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
            routes: Default::default(),
            in_flight: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            busy_us: AtomicU64::new(0),
            rejected_busy: AtomicU64::new(0),
            injected_errors: AtomicU64::new(0),
            window: Mutex::new(Window {
                at: Instant::now(),
                busy_us: 0,
                average: 0.0,
            }),
        }
    }
}

impl Metrics {
    pub fn record(&self, route: Route, status: u16, elapsed: Duration) {
        let r = &self.routes[route as usize];
        let statuses = r
            .statuses
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        let slot = usize::from(status.clamp(100, 599) - 100);
        statuses[slot].fetch_add(1, Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| seconds <= *le) {
            r.buckets[b].fetch_add(1, Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        r.sum_us.fetch_add(us, Relaxed);
        r.count.fetch_add(1, Relaxed);
        if route.is_work() {
            self.busy_us.fetch_add(us, Relaxed);
        }
    }

    /// Requests answered with `status` on `route` so far.
    pub fn count(&self, route: Route, status: u16) -> u64 {
        self.routes[route as usize].statuses.get().map_or(0, |s| {
            s[usize::from(status.clamp(100, 599) - 100)].load(Relaxed)
        })
    }

    pub fn total(&self) -> u64 {
        self.routes.iter().map(|r| r.count.load(Relaxed)).sum()
    }

    fn errors(&self) -> u64 {
        let mut n = 0;
        for r in &self.routes {
            if let Some(s) = r.statuses.get() {
                n += s[400 - 100..].iter().map(|c| c.load(Relaxed)).sum::<u64>();
            }
        }
        n
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
        let in_flight = self.in_flight.load(Relaxed) as f64;
        let queued = self.queued.load(Relaxed) as f64;
        let busy = self.busy_us.load(Relaxed);
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
            let Some(statuses) = self.routes[route as usize].statuses.get() else {
                continue;
            };
            for (i, c) in statuses.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "mock_requests_total{{port=\"{port}\",path=\"{}\",status=\"{}\"}} {n}",
                        route.label(),
                        i + 100
                    );
                }
            }
        }
        family(
            &mut out,
            "mock_in_flight",
            "gauge",
            "Work requests being served now.",
        );
        let _ = writeln!(
            out,
            "mock_in_flight{{port=\"{port}\"}} {}",
            self.in_flight.load(Relaxed)
        );
        family(
            &mut out,
            "mock_queue_length",
            "gauge",
            "Work requests waiting for a capacity slot.",
        );
        let _ = writeln!(
            out,
            "mock_queue_length{{port=\"{port}\"}} {}",
            self.queued.load(Relaxed)
        );
        family(
            &mut out,
            "mock_rejected_total",
            "counter",
            "Requests refused with 503 because the queue was full.",
        );
        let _ = writeln!(
            out,
            "mock_rejected_total{{port=\"{port}\"}} {}",
            self.rejected_busy.load(Relaxed)
        );
        family(
            &mut out,
            "mock_injected_errors_total",
            "counter",
            "Errors answered on purpose (error_rate or the errors fault).",
        );
        let _ = writeln!(
            out,
            "mock_injected_errors_total{{port=\"{port}\"}} {}",
            self.injected_errors.load(Relaxed)
        );
        family(
            &mut out,
            "mock_cpu_usage_percent",
            "gauge",
            "Simulated CPU use, from the port's load.",
        );
        let _ = writeln!(
            out,
            "mock_cpu_usage_percent{{port=\"{port}\"}} {}",
            load.cpu
        );
        family(
            &mut out,
            "mock_memory_usage_percent",
            "gauge",
            "Simulated memory use, from the port's load.",
        );
        let _ = writeln!(
            out,
            "mock_memory_usage_percent{{port=\"{port}\"}} {}",
            load.memory
        );
        family(
            &mut out,
            "mock_request_duration_seconds",
            "histogram",
            "Time from request to last response byte, by path.",
        );
        for route in Route::ALL {
            let r = &self.routes[route as usize];
            let count = r.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("port=\"{port}\",path=\"{}\"", route.label());
            let mut cumulative = 0;
            for (le, b) in BUCKETS.iter().zip(&r.buckets) {
                cumulative += b.load(Relaxed);
                let _ = writeln!(
                    out,
                    "mock_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mock_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = r.sum_us.load(Relaxed) as f64 / 1e6;
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
            "active_requests": self.in_flight.load(Relaxed),
            "queue_length": self.queued.load(Relaxed),
            "max_concurrency": max_concurrency,
            "requests_total": self.total(),
            "errors_total": self.errors(),
            "rejected_total": self.rejected_busy.load(Relaxed),
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
        m.in_flight.store(4, Relaxed);
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
