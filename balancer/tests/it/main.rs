//! balancer's integration tests: exact pick sequences through the public API,
//! the same cases run through every method, a golden trace from real nginx,
//! and expected shares checked against simulation.

mod cli;
mod common;
mod conf_files;
mod failures;
mod golden;
mod health;
mod hostile;
mod methods;
mod proxy;
mod sequences;
mod shares;
