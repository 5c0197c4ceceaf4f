//! The one duration grammar of lbkit's own flags, scenario files,
//! thresholds and SLOs: a number with a unit (`250us`, `20ms`, `1.5s`,
//! `2m`, `1h`); `0` alone is allowed. A bare number is refused with the
//! fix, never guessed at: `500` is 500 ms to k6, 500 s to nginx. The
//! languages lbkit copies keep their own rules (ab's `-t` and `-s` are
//! seconds; nginx.conf times are nginx's).

use std::time::Duration;

/// Why a duration does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("has no unit; write e.g. 20ms, 1.5s or 2m")]
    NoUnit,
    #[error("is not a duration; write e.g. 20ms, 1.5s or 2m")]
    NotANumber,
    #[error("has an unknown unit '{0}'; use us, ms, s, m or h")]
    UnknownUnit(String),
    #[error("is out of range")]
    OutOfRange,
}

/// `20ms`, `1.5s`, `250us`, `2m`, `1h`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or(DurationError::NoUnit)?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| DurationError::NotANumber)?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(DurationError::UnknownUnit(other.to_string())),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::OutOfRange)
}

/// A duration the way it is parsed back, for reports and state dumps.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0".to_string()
    } else if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else if us < 1000 {
        format!("{us}us")
    } else {
        format!("{}ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units_and_decimals() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_without_unit_or_with_nonsense_are_refused() {
        let e = |t: &str| parse_duration(t).unwrap_err().to_string();
        assert!(e("20").contains("no unit"));
        assert!(e("20 parsecs").contains("unknown unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1.2.3ms").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_format_back_to_what_parses() {
        for text in ["0", "20ms", "2s", "250us", "1.5ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
    }
}
