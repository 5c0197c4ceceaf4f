//! Traefik's common log format (CLF), every version of it:
//!
//! ```text
//! 192.168.1.10 - - [21/Nov/2026:08:00:00 +0000] "GET /v1/models HTTP/1.1" 200 512 "-" "curl/8.0" 42 "ai@docker" "http://172.18.0.3:8000" 3ms
//! ```
//!
//! client, user, time, request, status, size, referer, user agent, the
//! request count, the router (frontend in Traefik 1), the server URL
//! (backend URL) and the duration in milliseconds. Traefik up to 1.7
//! writes an empty referer, agent, frontend or backend as a bare `-` and
//! quotes only values it has; later versions quote `"-"` too. Both are read
//! here, which one `log_format` template could not say. With no backend
//! (Traefik 1's `"backend not found" "/"`) the request has no node.

use crate::entry::{node_name, time_local, Entry};

/// The name `--format` takes.
pub const NAME: &str = "traefik";

/// The entry of one Traefik CLF line, or why it is not one.
pub fn entry(line: &str) -> Result<Entry<'_>, String> {
    let mut rest = line;
    let client = word(&mut rest, "client address")?;
    expect(&mut rest, "- ")?;
    let _user = word(&mut rest, "user")?;
    expect(&mut rest, "[")?;
    let (time, after) = rest.split_once("] ").ok_or("no `] ` after the [time]")?;
    rest = after;
    expect(&mut rest, "\"")?;
    // The request is quoted and may hold quotes of its own; it ends at the
    // last `" ` before the status.
    let (_request, after) = split_request(rest)?;
    rest = after;
    let status = word(&mut rest, "status")?;
    let _size = word(&mut rest, "size")?;
    let _referer = quoted_or_dash(&mut rest, "referer")?;
    let _agent = quoted_or_dash(&mut rest, "user agent")?;
    let _count = word(&mut rest, "request count")?;
    let _router = quoted_or_dash(&mut rest, "router name")?;
    let backend = quoted_or_dash(&mut rest, "server URL")?;
    let duration = word(&mut rest, "duration")?;
    if !rest.is_empty() {
        return Err(format!("the line goes on after the duration: `{rest}`"));
    }
    let status: u16 = status
        .parse()
        .map_err(|_| format!("status `{status}` is not a number"))?;
    let ms: f64 = duration
        .strip_suffix("ms")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("duration `{duration}` is not N ms"))?;
    let node = backend.and_then(node_name);
    Ok(Entry {
        cut: false,
        node,
        attempts: usize::from(node.is_some()),
        status: Some(status).filter(|s| *s > 0),
        request_time: Some(ms / 1e3),
        upstream_time: None,
        client: Some(client).filter(|c| *c != "-"),
        at: time_local(time),
    })
}

/// The text up to the next space (or the end), and the rest after it.
fn word<'a>(rest: &mut &'a str, what: &str) -> Result<&'a str, String> {
    if rest.is_empty() {
        return Err(format!("the line ends before the {what}"));
    }
    let (w, after) = rest.split_once(' ').unwrap_or((rest, ""));
    *rest = after;
    Ok(w)
}

fn expect(rest: &mut &str, literal: &str) -> Result<(), String> {
    match rest.strip_prefix(literal) {
        Some(after) => {
            *rest = after;
            Ok(())
        }
        None => Err(format!(
            "expected `{literal}`, found `{}`",
            rest.chars().take(12).collect::<String>()
        )),
    }
}

/// `"value"` (its contents) or a bare `-` (`None`), then a space or the end.
fn quoted_or_dash<'a>(rest: &mut &'a str, what: &str) -> Result<Option<&'a str>, String> {
    if let Some(after) = rest.strip_prefix("- ") {
        *rest = after;
        return Ok(None);
    }
    let body = rest
        .strip_prefix('"')
        .ok_or_else(|| format!("the {what} should be \"...\" or -"))?;
    // The closing quote is the one a space or the line's end follows.
    let end = memchr::memchr_iter(b'"', body.as_bytes())
        .find(|i| matches!(body.as_bytes().get(i + 1), None | Some(b' ')))
        .ok_or_else(|| format!("the {what} has no closing quote"))?;
    *rest = body.get(end + 2..).unwrap_or("");
    let value = &body[..end];
    Ok((value != "-" && !value.is_empty()).then_some(value))
}

/// The request line (after its opening quote) and what follows it: the
/// `" ` that is followed by a three-digit status.
fn split_request(rest: &str) -> Result<(&str, &str), String> {
    let mut from = 0;
    while let Some(i) = rest[from..].find("\" ").map(|i| from + i) {
        let after = &rest[i + 2..];
        let status = after.split(' ').next().unwrap_or("");
        if status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((&rest[..i], after));
        }
        from = i + 1;
    }
    Err("no `\" STATUS` after the request".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_of_the_line() {
        // Traefik 2 and 3: everything quoted.
        let v2 = r#"192.168.1.10 - - [21/Nov/2026:08:00:00 +0000] "GET /v1/models HTTP/1.1" 200 512 "-" "curl/8.0" 42 "ai@docker" "http://172.18.0.3:8000" 3ms"#;
        let e = entry(v2).unwrap();
        assert_eq!(e.node, Some("172.18.0.3:8000"));
        assert_eq!((e.status, e.request_time), (Some(200), Some(0.003)));
        assert_eq!(e.client, Some("192.168.1.10"));
        // Traefik 1.5: an empty referer is a bare dash.
        let v15 = r#"10.0.0.9 - - [21/Nov/2026:08:00:01 +0000] "POST /chat HTTP/1.1" 200 2814 - "python-requests/2.31" 7 "frontend-ai" "http://10.0.0.21:8000" 12ms"#;
        let e = entry(v15).unwrap();
        assert_eq!(e.node, Some("10.0.0.21:8000"));
        assert_eq!(e.request_time, Some(0.012));
        // Traefik 1.6/1.7: no frontend and backend matched.
        let none = r#"10.0.0.9 - - [21/Nov/2026:08:00:02 +0000] "GET /missing HTTP/1.1" 404 19 "-" "curl/7.88" 8 - - 0ms"#;
        let e = entry(none).unwrap();
        assert_eq!((e.node, e.status), (None, Some(404)));
        // Traefik 1's answer when no backend was found is not a node `/`.
        let not_found = r#"10.0.0.9 - - [21/Nov/2026:08:00:03 +0000] "GET / HTTP/1.1" 404 19 "-" "curl/7.88" 9 "backend not found" "/" 0ms"#;
        assert_eq!(entry(not_found).unwrap().node, None);
        // A request with a quote in it.
        let q = r#"10.0.0.9 - - [21/Nov/2026:08:00:04 +0000] "GET /?q="x" HTTP/1.1" 200 5 "-" "curl" 10 "r" "http://10.0.0.2:80/" 1ms"#;
        assert_eq!(entry(q).unwrap().node, Some("10.0.0.2:80"));
    }

    #[test]
    fn other_lines_say_where_they_differ() {
        let combined =
            r#"10.0.0.1 - - [21/Nov/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.0""#;
        assert!(entry(combined)
            .unwrap_err()
            .contains("before the request count"));
        assert!(entry("garbage").is_err());
    }
}
