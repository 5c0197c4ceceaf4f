//! loadgen's request engine: ab's flags checked into a [`Plan`], one worker
//! loop that takes tickets from a [`Schedule`] whose pacing is a value
//! (closed or open loop), per-node distribution (from `X-Upstream` or
//! `X-Backend`), HDR percentiles merged from shared shards, ab's report
//! line for line ([`report`]), token-stream figures, and the verdict on a
//! run.
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

pub mod compare;
mod connect;
pub mod dataset;
mod drive;
mod exchange;
mod files;
mod flags;
#[cfg(test)]
mod fuzz;
mod h2;
pub mod html;
mod http1;
mod plan;
pub mod report;
mod request;
pub mod saved;
mod schedule;
mod shard;
mod sse;
mod stats;
mod streams;
pub mod sweep;
mod template;
mod transport;
mod verdict;
pub mod vllm;
mod worker;

pub use drive::{drive, Ran};
pub use files::{write_csv, write_file, Rows, WriteError};
pub use flags::{Flags, PlanError};
pub use plan::{Clients, ClientsVia, Plan, Target, TargetError, Variant, DEFAULT_MODEL};
pub use schedule::{Arrival, Pacing, Phase, PhaseLoad, Schedule};
pub use shard::{Shard, INDEX_VARIABLE};
pub use stats::{NodeStats, Stats};
pub use streams::{Slo, SloError, StreamStats};
pub use template::Text;
pub use transport::{Transport, TransportFlags};
pub use verdict::{judge, no_answer, outcome, Checks, Judgement, Outcome, RunFigures};
pub use worker::{resolve, run};
