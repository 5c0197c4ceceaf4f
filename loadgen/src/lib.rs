//! An ab-compatible load generator: the same flags and report as ab, plus
//! per-node distribution (from `X-Upstream`/`X-Backend`), HDR percentiles
//! merged from per-worker histograms, and open-loop pacing (`--rate`) that
//! measures from each request's scheduled start, as wrk2 does.
//!
//! One request engine serves every mode: workers take tickets from a
//! [`engine::Schedule`] whose pacing is a value (closed or open loop).
//!
//! ```
//! let plan = loadgen::plan::Flags {
//!     url: "http://127.0.0.1:8080/".into(),
//!     requests: Some(1000),
//!     concurrency: Some(10),
//!     ..Default::default()
//! }
//! .plan()
//! .unwrap();
//! assert_eq!((plan.requests, plan.concurrency), (1000, 10));
//! ```

pub mod cli;
pub mod engine;
pub mod files;
pub mod http1;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod sse;
pub mod stats;
pub mod streams;
pub mod template;
pub mod verdict;
