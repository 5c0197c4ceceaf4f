//! mockbackend's integration tests: real servers on 127.0.0.1 ephemeral ports,
//! real requests, assertions on what came back. One test binary, one module
//! per concern.

mod capacity;
mod cli;
mod common;
mod endpoints;
mod faults;
mod robustness;
mod streaming;
