//! nginx's per-attempt upstream variables.

/// Splits an nginx `$upstream_addr`, `$upstream_status`,
/// `$upstream_response_time` (or any `$upstream_*` list) value into one entry
/// per attempt, in order; the last entry is the attempt that produced the
/// response.
///
/// nginx separates attempts within one upstream group with `, ` (a retry
/// after `proxy_next_upstream`: `10.0.0.1:80, 10.0.0.2:80`) and groups with
/// ` : ` (an internal redirect — `error_page`, `X-Accel-Redirect` — sent the
/// request to an upstream again: `10.0.0.1:80 : 10.0.0.3:80`). Both count
/// as attempts here. The three variables list the same attempts in the same
/// order, so their entries line up by index.
///
/// Entries are kept as written: `-` (a request answered without an
/// upstream, or an attempt with no status or time), and a group name such as
/// `backend` in `$upstream_addr` when nginx found no live peer in it. An
/// empty value gives no attempts.
///
/// ```
/// use logformat::upstream_attempts;
///
/// let addr = "10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80";
/// assert_eq!(upstream_attempts(addr), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
/// assert_eq!(upstream_attempts("502, 200").last(), Some(&"200"));
/// assert_eq!(upstream_attempts("-"), ["-"]);
/// ```
pub fn upstream_attempts(value: &str) -> Vec<&str> {
    if value.is_empty() {
        return Vec::new();
    }
    value
        .split(" : ")
        .flat_map(|group| group.split(", "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_retries_and_redirect_groups() {
        assert_eq!(upstream_attempts("127.0.0.1:8001"), ["127.0.0.1:8001"]);
        assert_eq!(upstream_attempts("a:1, b:2, c:3"), ["a:1", "b:2", "c:3"]);
        assert_eq!(upstream_attempts("a:1, b:2 : c:3"), ["a:1", "b:2", "c:3"]);
        assert_eq!(upstream_attempts("502, - : 200"), ["502", "-", "200"]);
        assert_eq!(upstream_attempts("backend"), ["backend"]);
        assert_eq!(
            upstream_attempts("unix:/run/app.sock"),
            ["unix:/run/app.sock"]
        );
        assert_eq!(
            upstream_attempts("[::1]:8001, [::1]:8002"),
            ["[::1]:8001", "[::1]:8002"]
        );
        assert!(upstream_attempts("").is_empty());
    }
}
