//! Durations and sizes as people type them on a command line: `20ms`, `1.5s`,
//! `250us`, `2m`; `10MiB`, `512k`, `1048576`.

use std::time::Duration;

/// Parses a duration with a unit: `us`, `ms`, `s`, `m` or `h`; decimals allowed.
/// A bare number is refused rather than guessed at, except `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "has no unit; write e.g. 20ms, 1.5s or 2m".to_string())?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| "is not a duration; write e.g. 20ms, 1.5s or 2m".to_string())?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "has an unknown unit '{other}'; use us, ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| "is out of range".to_string())
}

/// Parses a byte size: a plain number of bytes, or with `k`/`KiB`, `m`/`MiB`,
/// `g`/`GiB` (all binary, as nginx's `client_max_body_size 10M` is).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| "is not a size; write e.g. 10MiB, 512k or 1048576".to_string())?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("has an unknown unit '{other}'; use k, MiB or GiB")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| "is too large".to_string())
}

/// Formats a duration the way it is parsed back, for reports and `/_mock/state`.
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
        assert!(parse_duration("20").unwrap_err().contains("no unit"));
        assert!(parse_duration("20 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1.2.3ms").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
    }

    #[test]
    fn durations_format_back_to_what_parses() {
        for text in ["0", "20ms", "2s", "250us", "1.5ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
    }
}
