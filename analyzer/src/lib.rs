//! Reads upstream access logs and reports per-node distribution, latency
//! percentiles, fairness tests against expected shares, and alert-threshold
//! breaches. So far: the threshold language and the fairness test (which
//! loadgen uses too), reading a parsed line into an [`entry::Entry`], and the
//! [`summary::Summary`] that lines add up to; the command comes next.
//!
//! ```
//! use analyzer::fairness;
//! let observed = vec![("a".to_string(), 590), ("b".to_string(), 410)];
//! let expected = fairness::parse_weights("a=3,b=2").unwrap();
//! assert!(fairness::test(&observed, &expected).ok());
//! ```

pub mod check;
pub mod cli;
pub mod entry;
pub mod evidence;
pub mod expect;
pub mod export;
pub mod fairness;
pub mod formats;
pub mod haproxy;
pub mod jsonl;
pub mod judged;
pub mod metric;
pub mod plot;
pub mod read;
pub mod report;
pub mod scan;
pub mod summary;
pub mod threshold;
pub mod traefik;

pub use threshold::{Measurements, Metric, Threshold, ThresholdError, Timing, Tool, Verdict};
