//! loadgen's request engine: ab's flags checked into a [`Plan`], one worker
//! loop that takes tickets from a [`Schedule`] whose pacing is a value
//! (closed or open loop), per-node distribution (from `X-Upstream` or
//! `X-Backend`), HDR percentiles merged from shared shards, ab's report
//! line for line, token-stream figures, and the verdict on a run.
//!
//! ```
//! let plan = engine::Flags {
//!     url: "http://127.0.0.1:8080/".into(),
//!     requests: Some(1000),
//!     concurrency: Some(10),
//!     ..Default::default()
//! }
//! .plan()
//! .unwrap();
//! assert_eq!((plan.requests, plan.concurrency), (1000, 10));
//! ```

pub mod drive;
mod exchange;
pub mod files;
pub mod http1;
pub mod plan;
pub mod report;
mod request;
pub mod schedule;
pub mod sse;
pub mod stats;
pub mod streams;
pub mod template;
pub mod verdict;
pub mod worker;

pub use drive::{drive, Ran};
pub use plan::{Flags, Plan, PlanError};
pub use schedule::Schedule;
pub use verdict::{Checks, Outcome};
