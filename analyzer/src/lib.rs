//! Reads upstream access logs and reports per-node distribution, latency
//! percentiles (HDR histograms), fairness tests against expected shares, and
//! alert-threshold breaches, with exporters for tables, JSON, JUnit, Markdown
//! and SVG.
//!
//! Empty until the analyzer issue lands.
