//! The reference balancer: peers, nginx-faithful selection (smooth weighted
//! round robin, least_conn, ip_hash, hash, consistent hash, random, random two,
//! and least_time), passive health exactly as nginx keeps it, expected shares,
//! and the subset of nginx's `upstream {}` configuration that describes them.
//!
//! The library is pure: no I/O, time passed in. Weights {5,1,1} pick as
//! nginx does, `a a b a c a a`:
//!
//! ```
//! use std::time::Duration;
//! use balancer::{Client, Method, Server, Upstream, UpstreamSpec};
//!
//! let spec = UpstreamSpec::new(
//!     "backend",
//!     Method::RoundRobin,
//!     vec![Server::new("a:80").weight(5), Server::new("b:80"), Server::new("c:80")],
//! );
//! let mut upstream = Upstream::new(spec, 0).unwrap();
//! let mut picks = Vec::new();
//! for _ in 0..7 {
//!     let mut attempt = upstream.start(&Client::default());
//!     let peer = upstream.pick(&mut attempt, Duration::ZERO).unwrap();
//!     picks.push(upstream.peer(peer).server.addr.clone());
//!     upstream.finish(&mut attempt, balancer::Outcome::OK, Duration::ZERO);
//! }
//! assert_eq!(picks, ["a:80", "a:80", "b:80", "a:80", "c:80", "a:80", "a:80"]);
//! ```

pub mod conf;
pub mod hash;
pub mod health;
pub mod key;
pub mod next;
pub mod peer;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod shares;
pub mod upstream;

pub use health::{Flip, HealthCheck};
pub use key::KeyExpr;
pub use peer::{Peer, Server};
pub use shares::{expected_shares, Expected, Population};
pub use upstream::{Attempt, Client, Method, Outcome, PeerRef, SpecError, Upstream, UpstreamSpec};
