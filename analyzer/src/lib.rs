//! Reads upstream access logs (nginx in any `log_format`, HAProxy, Envoy,
//! Traefik, JSON lines, loadgen's own) into a [`Summary`] in flat memory,
//! and judges it: per-node distribution, latency percentiles, the fairness
//! test against expected shares ([`fairness_test`]), and k6-style
//! [`Threshold`]s from one metric catalogue that loadgen and scenario files
//! share. The `analyzer` command is this library with flags around it.
//!
//! ```
//! use analyzer::{fairness_test, parse_weights};
//! let observed = vec![("a".to_string(), 590), ("b".to_string(), 410)];
//! let expected = parse_weights("a=3,b=2").unwrap();
//! assert!(fairness_test(&observed, &expected).ok());
//! ```

mod check;
mod clients;
mod entry;
pub mod evidence;
pub mod expect;
pub mod export;
mod fairness;
pub mod formats;
#[cfg(test)]
mod fuzz;
mod haproxy;
pub mod html;
pub mod jsonl;
mod judged;
mod metric;
pub mod plot;
mod read;
pub mod report;
pub mod saved;
mod scan;
pub mod significance;
mod summary;
mod threshold;
mod traefik;

pub use check::{judge, Check};
pub use entry::Entry;
pub use fairness::{
    parse_weights, test as fairness_test, test_or_equal, Fairness, WeightsError, ALPHA, CHECK_NAME,
};
pub use judged::{seed_alerts, Judged, SEED_ALERTS};
pub use metric::{Kind, Metric, Timing, Tool};
pub use read::{summarize, Input, ReadError, Summarized};
pub use summary::{percentile, Rate, Stickiness, Summary, Tally};
pub use threshold::{Measurements, Threshold, ThresholdError, Verdict};
