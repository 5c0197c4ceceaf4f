//! The subset of nginx.conf that describes balancing: `upstream {}` blocks,
//! `server { listen; location { proxy_pass; proxy_next_upstream*; ... } }`,
//! `log_format` and `access_log`. Pure: the caller reads the file. Directives
//! nginx has but that do not change balancing are listed as ignored; anything
//! else is an error naming the file, line and directive.

mod ignored;
mod interpret;
mod location;
mod model;
mod syntax;
mod upstream;

pub use interpret::interpret;
pub use model::{
    parse_time, AccessLog, Action, HealthSpec, Location, LogFormatDef, NextUpstream, ProxyConfig,
    Timeouts,
};
pub use syntax::{parse, Directive};

/// A value in nginx's configuration language that does not read (a
/// method line, a `proxy_next_upstream` condition, a hash key): what is
/// wrong, for the caller to say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// A configuration error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", if directive.is_empty() { String::new() } else { format!("{directive}: ") })]
pub struct ConfError {
    pub file: String,
    pub line: usize,
    pub directive: String,
    pub message: String,
}

impl ConfError {
    pub fn new(file: &str, line: usize, directive: &str, message: impl Into<String>) -> ConfError {
        ConfError {
            file: file.to_string(),
            line,
            directive: directive.to_string(),
            message: message.into(),
        }
    }
}

/// Reads a configuration to run it: parse, then interpret; a directive this
/// does not know is an error, since it could not be honoured.
pub fn load(file: &str, text: &str) -> Result<ProxyConfig, ConfError> {
    interpret(file, &parse(file, text)?, false)
}

/// Reads a configuration for what it says about upstreams and logs (the
/// analyzer's `--nginx-conf`): directives this does not know are listed in
/// [`ProxyConfig::ignored`] instead of refused, as a real nginx.conf has
/// many.
pub fn read(file: &str, text: &str) -> Result<ProxyConfig, ConfError> {
    interpret(file, &parse(file, text)?, true)
}
