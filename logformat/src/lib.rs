//! The nginx `log_format` language, compiled once into a renderer (lbkit's
//! balancer writes its access log with it) and a parser (the analyzer reads
//! nginx's and the balancer's logs back with it).
//!
//! ```
//! use logformat::{Escape, LogFormat};
//!
//! let format = LogFormat::compile(
//!     r#"$remote_addr [$time_local] "$request" $status "$http_user_agent" to: $upstream_addr"#,
//!     Escape::Default,
//! )?;
//!
//! // Render: values come from any `Vars` source (closure, map, pairs);
//! // an unset variable is written `-`, a `"` inside a value `\x22`.
//! let request = [
//!     ("remote_addr", "127.0.0.1"),
//!     ("time_local", "02/Mar/2025:21:10:11 +0800"),
//!     ("request", "GET / HTTP/1.0"),
//!     ("status", "200"),
//!     ("upstream_addr", "127.0.0.1:8001, 127.0.0.1:8002"),
//! ];
//! let mut line = String::new();
//! format.render(&request, &mut line);
//! assert_eq!(
//!     line,
//!     r#"127.0.0.1 [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 "-" to: 127.0.0.1:8001, 127.0.0.1:8002"#
//! );
//!
//! // Parse it back: borrowed values, `-` kept as written.
//! let record = format.parse(&line)?;
//! assert_eq!(record.get("request"), Some("GET / HTTP/1.0"));
//! assert_eq!(record.get("http_user_agent"), Some("-"));
//! let attempts = logformat::upstream_attempts(record.get("upstream_addr").unwrap());
//! assert_eq!(attempts.last(), Some(&"127.0.0.1:8002"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What follows nginx exactly (`ngx_http_log_module.c`): variable names
//! (`$name`, `${name}`, `[A-Za-z0-9_]+`), the three `escape=` modes and what
//! an unset variable becomes in each. Presets in [`presets`] cover
//! `combined`, seed 003's `upstream_log` and lbkit's default.
//!
//! Pure: no I/O, no async runtime.

mod compile;
mod escape;
#[cfg(test)]
mod fuzz;
mod parse;
pub mod presets;
mod render;
mod upstream;

pub(crate) use compile::Shape;
pub use compile::{FormatError, LogFormat, Segment};
pub use escape::Escape;
pub use parse::{ParseError, Record};
pub use render::Vars;
pub use upstream::upstream_attempts;
