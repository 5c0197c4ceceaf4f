//! What every lbkit tool shares, in one place: the duration grammar of
//! lbkit's own flags and files; and, each behind its feature, catching
//! Ctrl-C and SIGTERM (`signal`), binding a listener (`net`), and flag
//! errors in one line (`flags`), TLS set-up (`tls`); and, for tests, hostile inputs (`fuzz`).
//!
//! ```
//! use std::time::Duration;
//! assert_eq!(primitives::parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
//! assert!(primitives::parse_duration("500").is_err(), "a duration has a unit");
//! ```

mod duration;
#[cfg(feature = "flags")]
mod flags;
#[cfg(feature = "fuzz")]
pub mod fuzz;
#[cfg(feature = "net")]
mod net;
#[cfg(feature = "signal")]
mod signal;
#[cfg(feature = "tls")]
pub mod tls;
mod tokens;

pub use duration::{format_duration, parse_duration, DurationError};
#[cfg(feature = "flags")]
pub use flags::{parse_flags, parse_flags_from};
#[cfg(feature = "net")]
pub use net::{listen, Hooked, Hooks};
#[cfg(feature = "signal")]
pub use signal::{stop_signal, Signals};
pub use tokens::{tokens_for_chars, CHARS_PER_TOKEN};
