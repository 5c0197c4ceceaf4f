//! A port's behaviour profile: how slow it is, how often it fails, how much it
//! can hold at once, and how it streams tokens. Every setting has a `key=value`
//! spelling shared by the command line (`--profile 8002:latency=300ms`), the TOML
//! config file and `/_mock/state`, so there is one parser and one set of errors.

use std::time::Duration;

use crate::latency::Latency;
use crate::tokens::TokenCount;
use primitives::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// What `X-Backend` says instead of `host:port`.
    pub name: Option<String>,
    pub latency: Latency,
    /// Share of work requests answered with `error_status` instead (0..=1).
    pub error_rate: f64,
    pub error_status: u16,
    /// Requests served at once; `None` is unlimited.
    pub max_concurrency: Option<usize>,
    /// Requests allowed to wait for a slot when all are busy; past it, 503.
    pub queue: usize,
    /// Time to first token of an OpenAI-style answer.
    pub ttft: Duration,
    /// Token pace after the first; 0 streams as fast as the socket takes it.
    pub tokens_per_sec: f64,
    /// Tokens in an answer when the request sets no smaller `max_tokens`,
    /// drawn per request.
    pub output_tokens: TokenCount,
    /// Streams stop sending after this many tokens and hold the
    /// connection open (a node that stalls mid-stream); `None`: never.
    pub stall_after: Option<u32>,
    /// The model `/v1/models` lists and answers name.
    pub model: String,
    /// Prompt prefixes the port remembers (its KV cache); 0: no cache.
    pub prefix_cache_size: usize,
    /// Time to first token when the whole prompt is cached; a partly
    /// cached prompt gets a share between it and `ttft`.
    pub prefix_cache_ttft: Duration,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            name: None,
            latency: Latency::NONE,
            error_rate: 0.0,
            error_status: 500,
            max_concurrency: None,
            queue: 0,
            ttft: Duration::ZERO,
            tokens_per_sec: 0.0,
            output_tokens: TokenCount::Fixed(16),
            stall_after: None,
            model: "mock-model".to_string(),
            prefix_cache_size: 0,
            prefix_cache_ttft: Duration::ZERO,
        }
    }
}

/// A profile setting's value that does not read: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

/// The keys `set` accepts, for error messages and docs.
pub const KEYS: &str = "name, latency, error_rate, error_status, max_concurrency, queue, ttft, tokens_per_sec, output_tokens, stall_after, model, prefix_cache_size, prefix_cache_ttft";

impl Profile {
    /// Applies one `key=value` setting. The error says what is wrong with the
    /// value (the caller names where it came from).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ProfileError> {
        self.apply(key, value).map_err(ProfileError)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match key.trim().replace('-', "_").as_str() {
            "name" => {
                // It goes out as the X-Backend header.
                if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                    return Err(
                        "must be printable ASCII (it is sent as the X-Backend header)".to_string(),
                    );
                }
                self.name = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            "latency" => self.latency = Latency::parse(value)?,
            "error_rate" => {
                self.error_rate = parse_rate(value)?;
            }
            "error_status" => self.error_status = parse_status(value)?,
            "max_concurrency" => {
                let n: usize = parse_count(value)?;
                self.max_concurrency = (n > 0).then_some(n);
            }
            "queue" => self.queue = parse_count(value)?,
            "ttft" => self.ttft = parse_duration(value).map_err(|e| e.to_string())?,
            "tokens_per_sec" => {
                let v: f64 = value
                    .parse()
                    .map_err(|_| "is not a number of tokens per second".to_string())?;
                if !(v.is_finite() && v >= 0.0) {
                    return Err("must be 0 (unpaced) or a positive number".to_string());
                }
                self.tokens_per_sec = v;
            }
            "output_tokens" => self.output_tokens = TokenCount::parse(value)?,
            "stall_after" => {
                let n = parse_count(value)?;
                let n = u32::try_from(n).map_err(|_| "is too large".to_string())?;
                self.stall_after = (n > 0).then_some(n);
            }
            "model" => {
                if value.is_empty() {
                    return Err("must not be empty".to_string());
                }
                self.model = value.to_string();
            }
            "prefix_cache_size" => self.prefix_cache_size = parse_count(value)?,
            "prefix_cache_ttft" => {
                self.prefix_cache_ttft = parse_duration(value).map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unknown setting '{other}'; known: {KEYS}")),
        }
        Ok(())
    }

    /// The delay before the first token, then between tokens.
    pub fn token_gap(&self) -> Duration {
        if self.tokens_per_sec > 0.0 {
            Duration::from_secs_f64(1.0 / self.tokens_per_sec)
        } else {
            Duration::ZERO
        }
    }
}

/// A share written as `0.05` or `5%`.
pub fn parse_rate(value: &str) -> Result<f64, String> {
    let (number, scale) = match value.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (value, 1.0),
    };
    let rate = number
        .trim()
        .parse::<f64>()
        .map(|r| r / scale)
        .map_err(|_| "is not a rate; write 0.05 or 5%".to_string())?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be between 0 and 1 (or 0% and 100%)".to_string())
    }
}

pub fn parse_status(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        // Below 200 is not an answer but an interim (100) or a protocol
        // switch (101): a client sent one for a plain GET would misread it.
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| "is not an HTTP status between 200 and 599".to_string())
}

fn parse_count(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| "is not a whole number".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_sets_its_field() {
        let mut p = Profile::default();
        for (k, v) in [
            ("name", "gpu-a"),
            ("latency", "normal(200ms,50ms)"),
            ("error_rate", "5%"),
            ("error-status", "503"),
            ("max_concurrency", "4"),
            ("queue", "8"),
            ("ttft", "200ms"),
            ("tokens_per_sec", "20"),
            ("output_tokens", "32"),
            ("model", "llama"),
            ("prefix_cache_size", "64"),
            ("prefix_cache_ttft", "20ms"),
        ] {
            p.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
        }
        assert_eq!(p.name.as_deref(), Some("gpu-a"));
        assert_eq!(p.latency.to_string(), "normal(200ms,50ms)");
        assert!((p.error_rate - 0.05).abs() < 1e-12);
        assert_eq!(p.error_status, 503);
        assert_eq!(p.max_concurrency, Some(4));
        assert_eq!(p.queue, 8);
        assert_eq!(p.ttft, Duration::from_millis(200));
        assert_eq!(p.token_gap(), Duration::from_millis(50));
        assert_eq!(p.output_tokens, TokenCount::Fixed(32));
        assert_eq!(p.model, "llama");
        assert_eq!(p.prefix_cache_size, 64);
        assert_eq!(p.prefix_cache_ttft, Duration::from_millis(20));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let mut p = Profile::default();
        assert!(p
            .set("error_rate", "1.5")
            .unwrap_err()
            .0
            .contains("between 0 and 1"));
        assert!(p
            .set("error_status", "99")
            .unwrap_err()
            .0
            .contains("HTTP status"));
        assert!(p.set("queue", "-1").unwrap_err().0.contains("whole number"));
        assert!(p
            .set("output_tokens", "0")
            .unwrap_err()
            .0
            .contains("between 1"));
        assert!(p
            .set("tokens_per_sec", "-3")
            .unwrap_err()
            .0
            .contains("positive"));
        assert!(p
            .set("colour", "red")
            .unwrap_err()
            .0
            .contains("unknown setting 'colour'"));
        assert_eq!(p, Profile::default(), "a refused setting changes nothing");
    }

    #[test]
    fn zero_concurrency_means_unlimited() {
        let mut p = Profile::default();
        p.set("max_concurrency", "0").unwrap();
        assert_eq!(p.max_concurrency, None);
    }
}
