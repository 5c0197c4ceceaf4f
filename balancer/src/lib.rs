//! The reference balancer: peers, nginx-faithful selection algorithms (smooth
//! weighted round robin, least_conn, ip_hash, hash, consistent hash, random,
//! least_time), passive and active health state machines, expected shares, and
//! the subset of nginx's `upstream {}` configuration that describes them.
//!
//! The library is pure (no I/O); the `balancer` binary will wrap it in a hyper
//! reverse proxy. Empty until the balancer issue lands.
