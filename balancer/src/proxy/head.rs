//! An upstream's response head, read as nginx 1.22 reads it
//! (`ngx_http_parse_status_line`, `ngx_http_parse_header_line` with
//! underscores allowed, and the headers the upstream module acts on).
//! Pure: bytes in, a verdict out.
//!
//! Where nginx differs from a strict HTTP parser, this follows nginx:
//! - A first line that is not `HTTP/<digit>...` is HTTP/0.9: status 200,
//!   no headers, and every byte received (the first line too) is the body,
//!   up to the close.
//! - A header line without a colon is a header with an empty value; a
//!   name with a control character or a space in it, a line starting with
//!   whitespace (obs-fold), or a NUL in a value is an invalid header.
//! - A head that does not fit in `proxy_buffer_size` is "too big", which
//!   nginx treats as an invalid header.
//! - With both `Transfer-Encoding: chunked` and `Content-Length`, chunked
//!   wins; an unparsable `Content-Length` reads as none (to the close).

/// What the bytes so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole head, and how many bytes it took.
    Head(Head, usize),
    /// Not an HTTP head: an HTTP/0.9 answer (200, body to the close).
    Http09,
    /// nginx's `NGX_HTTP_UPSTREAM_INVALID_HEADER`, and why.
    Invalid(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    /// `major * 1000 + minor`, as nginx keeps it.
    pub version: u32,
    /// Every header line, name and value as sent (a name without a colon
    /// has an empty value).
    pub headers: Vec<(String, String)>,
    /// The last `Content-Length`, `None` when absent or not a number.
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// `Connection: close`, or an HTTP version below 1.1.
    pub connection_close: bool,
}

/// nginx's `proxy_buffer_size` default on a 4 KiB-page machine.
pub(crate) const DEFAULT_BUFFER: usize = 4096;

/// Reads a response head from the start of `buf`, which may hold at most
/// `limit` bytes of it (`proxy_buffer_size`).
pub(crate) fn parse(buf: &[u8], limit: usize) -> Parsed {
    let parsed = parse_unbounded(buf);
    match parsed {
        Parsed::Partial if buf.len() >= limit => Parsed::Invalid("upstream sent too big header"),
        Parsed::Head(_, used) if used > limit => Parsed::Invalid("upstream sent too big header"),
        other => other,
    }
}

fn parse_unbounded(buf: &[u8]) -> Parsed {
    let (status, version, mut at) = match status_line(buf) {
        Line::Partial => return Parsed::Partial,
        Line::NotHttp => return Parsed::Http09,
        Line::Done {
            status,
            version,
            next,
        } => (status, version, next),
    };
    let mut head = Head {
        status,
        version,
        headers: Vec::new(),
        content_length: None,
        chunked: false,
        connection_close: version < 1001,
    };
    loop {
        match header_line(&buf[at..]) {
            HeaderLine::Partial => return Parsed::Partial,
            HeaderLine::Invalid => return Parsed::Invalid("upstream sent invalid header"),
            HeaderLine::End(n) => {
                if head.chunked {
                    head.content_length = None;
                }
                return Parsed::Head(head, at + n);
            }
            HeaderLine::Ignored(n) => at += n,
            HeaderLine::Header { name, value, used } => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "content-length" => head.content_length = atoof(&value),
                    "transfer-encoding" => {
                        head.chunked |= value.to_ascii_lowercase().contains("chunked")
                    }
                    "connection" => {
                        head.connection_close |= value.to_ascii_lowercase().contains("close")
                    }
                    _ => {}
                }
                head.headers.push((name, value));
                at += used;
            }
        }
    }
}

/// nginx's `ngx_atoof`: digits only, no sign, no overflow.
fn atoof(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n <= i64::MAX as u64)
}

enum Line {
    Partial,
    NotHttp,
    Done {
        status: u16,
        version: u32,
        next: usize,
    },
}

/// `HTTP/1.1 200 OK\r\n`, by nginx's state machine.
fn status_line(buf: &[u8]) -> Line {
    const PREFIX: &[u8] = b"HTTP/";
    for (i, &b) in buf.iter().take(PREFIX.len()).enumerate() {
        if b != PREFIX[i] {
            return Line::NotHttp;
        }
    }
    if buf.len() <= PREFIX.len() {
        return Line::Partial;
    }
    let mut p = PREFIX.len();
    let next = |p: usize| buf.get(p).copied();
    // The major version: a first digit 1-9, more digits, a dot.
    let Some(c) = next(p) else {
        return Line::Partial;
    };
    if !(b'1'..=b'9').contains(&c) {
        return Line::NotHttp;
    }
    let mut major = u32::from(c - b'0');
    p += 1;
    loop {
        match next(p) {
            None => return Line::Partial,
            Some(b'.') => break,
            Some(d @ b'0'..=b'9') if major <= 99 => major = major * 10 + u32::from(d - b'0'),
            Some(_) => return Line::NotHttp,
        }
        p += 1;
    }
    p += 1;
    let mut minor = match next(p) {
        None => return Line::Partial,
        Some(d @ b'0'..=b'9') => u32::from(d - b'0'),
        Some(_) => return Line::NotHttp,
    };
    p += 1;
    loop {
        match next(p) {
            None => return Line::Partial,
            Some(b' ') => break,
            Some(d @ b'0'..=b'9') if minor <= 99 => minor = minor * 10 + u32::from(d - b'0'),
            Some(_) => return Line::NotHttp,
        }
        p += 1;
    }
    p += 1;
    // Three digits, with any spaces before and between them (nginx skips
    // a space wherever it waits for a digit).
    let mut code = 0u16;
    let mut digits = 0;
    while digits < 3 {
        match next(p) {
            None => return Line::Partial,
            Some(b' ') => {}
            Some(d @ b'0'..=b'9') => {
                code = code * 10 + u16::from(d - b'0');
                digits += 1;
            }
            Some(_) => return Line::NotHttp,
        }
        p += 1;
    }
    // Then a space or a dot and any text, or the line's end.
    match next(p) {
        None => return Line::Partial,
        Some(b' ' | b'.') => {}
        Some(b'\r' | b'\n') => {}
        Some(_) => return Line::NotHttp,
    }
    loop {
        match next(p) {
            None => return Line::Partial,
            Some(b'\n') => break,
            Some(b'\r') => {
                return match next(p + 1) {
                    None => Line::Partial,
                    Some(b'\n') => Line::Done {
                        status: code,
                        version: major * 1000 + minor,
                        next: p + 2,
                    },
                    Some(_) => Line::NotHttp,
                }
            }
            Some(_) => p += 1,
        }
    }
    Line::Done {
        status: code,
        version: major * 1000 + minor,
        next: p + 1,
    }
}

enum HeaderLine {
    Partial,
    Invalid,
    /// The empty line: the head ends after these bytes.
    End(usize),
    /// IIS's repeated `HTTP/1.1 ...` line, skipped.
    Ignored(usize),
    Header {
        name: String,
        value: String,
        used: usize,
    },
}

/// One header line, by nginx's state machine (underscores allowed).
fn header_line(buf: &[u8]) -> HeaderLine {
    let Some(&first) = buf.first() else {
        return HeaderLine::Partial;
    };
    match first {
        b'\n' => return HeaderLine::End(1),
        b'\r' => {
            return match buf.get(1) {
                None => HeaderLine::Partial,
                Some(b'\n') => HeaderLine::End(2),
                Some(_) => HeaderLine::Invalid,
            }
        }
        c if c <= 0x20 || c == 0x7f || c == b':' => return HeaderLine::Invalid,
        _ => {}
    }
    // The name, up to a colon or the line's end.
    let mut p = 1;
    let name_end = loop {
        let Some(&c) = buf.get(p) else {
            return HeaderLine::Partial;
        };
        match c {
            b':' => break p,
            b'\r' | b'\n' => {
                // A name alone: a header with an empty value.
                return match end_of_line(buf, p) {
                    None => HeaderLine::Partial,
                    Some(Err(())) => HeaderLine::Invalid,
                    Some(Ok(used)) => HeaderLine::Header {
                        name: text(&buf[..p]),
                        value: String::new(),
                        used,
                    },
                };
            }
            b'/' if p == 4 && &buf[..4] == b"HTTP" => {
                return match buf[p..].iter().position(|&b| b == b'\n') {
                    None => HeaderLine::Partial,
                    Some(i) => HeaderLine::Ignored(p + i + 1),
                };
            }
            c if c <= 0x20 || c == 0x7f => return HeaderLine::Invalid,
            _ => p += 1,
        }
    };
    p += 1;
    // Spaces, the value (its trailing spaces dropped), the line's end.
    while buf.get(p) == Some(&b' ') {
        p += 1;
    }
    let start = p;
    let mut end = p;
    loop {
        let Some(&c) = buf.get(p) else {
            return HeaderLine::Partial;
        };
        match c {
            b'\r' | b'\n' => break,
            0 => return HeaderLine::Invalid,
            b' ' => {}
            _ => end = p + 1,
        }
        p += 1;
    }
    match end_of_line(buf, p) {
        None => HeaderLine::Partial,
        Some(Err(())) => HeaderLine::Invalid,
        Some(Ok(used)) => HeaderLine::Header {
            name: text(&buf[..name_end]),
            value: text(&buf[start..end]),
            used,
        },
    }
}

/// At `p` is CR or LF: the bytes the line took through its LF (nginx lets
/// CRs repeat before it), or `Err` for anything else after a CR.
fn end_of_line(buf: &[u8], mut p: usize) -> Option<Result<usize, ()>> {
    if buf[p] == b'\n' {
        return Some(Ok(p + 1));
    }
    loop {
        p += 1;
        match buf.get(p)? {
            b'\n' => return Some(Ok(p + 1)),
            b'\r' => {}
            _ => return Some(Err(())),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse(text.as_bytes(), DEFAULT_BUFFER) {
            Parsed::Head(h, used) => {
                assert_eq!(used, text.find("\r\n\r\n").map_or(text.len(), |i| i + 4));
                h
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_head_and_the_headers_nginx_acts_on() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b  \r\n\r\nbody");
        assert_eq!((h.status, h.version), (200, 1001));
        assert_eq!(h.content_length, Some(12));
        assert!(!h.connection_close && !h.chunked);
        assert_eq!(h.headers[1], ("X-A".to_string(), "b".to_string()));
        let h = head("HTTP/1.0 404 Not Found\r\n\r\n");
        assert!(h.connection_close, "below 1.1 closes");
        let h = head("HTTP/1.1 200 OK\r\nConnection: Close\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
        assert!(h.connection_close && h.chunked);
        assert_eq!(h.content_length, None, "chunked wins");
        assert_eq!(
            head("HTTP/1.1 200\r\nContent-Length: x1\r\n\r\n").content_length,
            None
        );
        assert_eq!(head("HTTP/1.1 403.1 Forbidden\r\n\r\n").status, 403);
    }

    #[test]
    fn what_nginx_takes_for_http_0_9() {
        for not_http in [
            "hello\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/0.9 200 OK\r\n",
            "HTTP/1.1 2000\r\n",
            "http/1.1 200 OK\r\n",
        ] {
            assert_eq!(
                parse(not_http.as_bytes(), DEFAULT_BUFFER),
                Parsed::Http09,
                "{not_http:?}"
            );
        }
        assert_eq!(parse(b"HTT", DEFAULT_BUFFER), Parsed::Partial);
        assert_eq!(parse(b"HTTP/1.1 20", DEFAULT_BUFFER), Parsed::Partial);
    }

    #[test]
    fn invalid_headers_as_nginx_draws_the_line() {
        for bad in [
            "HTTP/1.1 200 OK\r\nX Bad: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\n:x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad.as_bytes(), DEFAULT_BUFFER), Parsed::Invalid(_)),
                "{bad:?}"
            );
        }
        // Accepted by nginx though no strict parser would.
        let h = head("HTTP/1.1 200 OK\r\nXBad\r\nX_Under: 1\r\nX@y: 2\r\n\r\n");
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers[0].1, "");
        let h = head("HTTP/1.1 200 OK\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\n");
        assert_eq!(h.headers, [("A".to_string(), "b".to_string())]);
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\nA: b\n\n", DEFAULT_BUFFER),
            Parsed::Head(_, 22)
        ));
    }

    #[test]
    fn a_head_larger_than_the_buffer_is_too_big() {
        let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "x".repeat(5000));
        assert_eq!(
            parse(big.as_bytes(), DEFAULT_BUFFER),
            Parsed::Invalid("upstream sent too big header")
        );
        assert!(matches!(parse(big.as_bytes(), 8192), Parsed::Head(..)));
        assert_eq!(
            parse(&big.as_bytes()[..4096], DEFAULT_BUFFER),
            Parsed::Invalid("upstream sent too big header")
        );
    }
}
