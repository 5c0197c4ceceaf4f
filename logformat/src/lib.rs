//! The nginx `log_format` language, compiled once into a renderer (the balancer
//! writes access logs with it) and a parser (the analyzer reads them back), plus
//! parsers for the other formats the analyzer accepts: combined, JSON lines,
//! HAProxy httplog and Envoy.
//!
//! Pure: no I/O, no async runtime. Empty until the analyzer issue lands.
