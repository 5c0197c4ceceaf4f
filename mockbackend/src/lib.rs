//! Stand-in AI backends: one process serving many ports, each answering like
//! the seed's `server.py` (`GET` text, `POST /chat`, `POST /completions`) and
//! like an OpenAI-compatible model server (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/models`, with SSE streaming), plus `/health`,
//! `/ready`, `/metrics` and `/load`. Each port has a behaviour profile
//! (latency distribution, error rate, capacity, token pace) and runtime faults
//! switched through `/_mock/` or [`Server::control`].
//!
//! ```
//! use mockbackend::{Config, Profile, Server};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut profile = Profile::default();
//! profile.set("latency", "5ms").unwrap();
//! let server = Server::start(Config::ephemeral(2, profile)).await.unwrap();
//! let addr = server.addrs()[0];
//!
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
//! s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
//! let mut reply = String::new();
//! s.read_to_string(&mut reply).await.unwrap();
//! assert!(reply.starts_with("HTTP/1.0 200 OK"));
//! assert!(reply.ends_with(&format!("响应来自:{}", addr.port())));
//! server.shutdown().await;
//! # });
//! ```

pub mod body;
pub mod cli;
pub mod config;
pub mod faults;
#[cfg(test)]
mod fuzz;
pub mod latency;
pub mod metrics;
pub mod node;
pub mod openai;
mod pace;
pub mod prefix;
pub mod profile;
pub mod replies;
pub mod routes;
mod server;
mod service;
pub mod tokens;
pub mod units;

pub use config::{Config, ConfigError, PortConfig};
pub use faults::{Control, Fault, FaultKind, FaultState};
pub use latency::Latency;
pub use profile::Profile;
pub use server::{Server, StartError};
