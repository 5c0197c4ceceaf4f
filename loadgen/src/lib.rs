//! An ab-compatible load generator: one request engine (closed loop or paced
//! open loop without coordinated omission), ab's report plus per-node
//! distribution and HDR percentiles, and the scenario runner that starts mock
//! backends and the balancer in-process.
//!
//! Empty until the loadgen issue lands.
