//! The request engine's integration tests: real mockbackend ports (and the
//! reference balancer) on 127.0.0.1, real requests, assertions on the counts.

// The mock and balancer helpers loadgen's command-line suite uses too.
#[path = "../../../loadgen/tests/it/common.rs"]
mod common;
mod hostile;
mod run;
mod streams;
mod worker;
