//! loadgen's integration tests: real mockbackend ports (and the reference
//! balancer) on 127.0.0.1, real requests, assertions on the counts.

mod binary;
mod cli;
mod common;
mod compare;
mod fail_closed;
mod golden;
mod html;
mod methods;
mod real;
mod scenario;
mod shards;
mod sweep;
mod tls;
