//! Sizes as people type them on a command line: `10MiB`, `512k`,
//! `1048576` (durations are `primitives::parse_duration`, one grammar for
//! every tool).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
    }
}
