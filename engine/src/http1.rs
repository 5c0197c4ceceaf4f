//! The HTTP/1.x a load generator needs, and no more: the response head
//! (parsed by `httparse`) and where the body ends (Content-Length, chunked
//! framing, or the connection closing). Pure: bytes in, answers out.

/// What the response head says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, status line to the blank line.
    pub len: usize,
    pub framing: Framing,
    /// The server keeps the connection open after this answer.
    pub keep_alive: bool,
    /// Byte ranges (into the buffer the head was parsed from) of the first
    /// node header found, and of the Server header.
    pub node: Option<(usize, usize)>,
    pub server: Option<(usize, usize)>,
    /// `Content-Type: text/event-stream`: a token stream to read as it comes.
    pub event_stream: bool,
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection (HTTP/1.0 style).
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed response head: {0}")]
    Head(String),
    #[error("malformed chunked body")]
    Chunk,
}

const MAX_HEADERS: usize = 64;

/// `Content-Type: text/event-stream` (with any parameters): a token stream
/// to read as it comes.
pub(crate) fn is_event_stream(value: &[u8]) -> bool {
    value.len() >= 17 && value[..17].eq_ignore_ascii_case(b"text/event-stream")
}

/// Parses a response head from the start of `buf`; `None` if it is not all
/// there yet. `head_request`: the answer to a HEAD has no body.
/// `node_headers` are lowercase names, tried in order.
pub fn parse_head(
    buf: &[u8],
    head_request: bool,
    node_headers: &[&str],
) -> Result<Option<Head>, ParseError> {
    // Left uninitialised: httparse fills what it uses, so no 2 KiB is
    // zeroed per answer.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ParseError::Head(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let http11 = response.version == Some(1);
    let mut content_length = None;
    let mut chunked = false;
    let mut connection_close = !http11;
    let mut node: Option<(usize, (usize, usize))> = None;
    let mut server = None;
    let mut event_stream = false;
    let base = buf.as_ptr() as usize;
    let range = |v: &[u8]| {
        let start = v.as_ptr() as usize - base;
        (start, start + v.len())
    };
    for h in response.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n =
                decimal(h.value).ok_or_else(|| ParseError::Head("bad Content-Length".into()))?;
            // Two different lengths: which one ends the body is a guess.
            if content_length.is_some_and(|first| first != n) {
                return Err(ParseError::Head(
                    "two different Content-Length values".into(),
                ));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            let v = h.value;
            // The usual values first; a list (`keep-alive, Upgrade`) is searched.
            if v.eq_ignore_ascii_case(b"keep-alive") {
                connection_close = false;
            } else if v.eq_ignore_ascii_case(b"close")
                || v.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"))
            {
                connection_close = true;
            } else if v.windows(10).any(|w| w.eq_ignore_ascii_case(b"keep-alive")) {
                connection_close = false;
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            event_stream = is_event_stream(h.value);
        } else if name.eq_ignore_ascii_case("server") {
            server = Some(range(h.value));
        } else if let Some(rank) = node_headers
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n))
        {
            if node.is_none_or(|(r, _)| rank < r) {
                node = Some((rank, range(h.value)));
            }
        }
    }
    let no_body = head_request || status < 200 || status == 204 || status == 304;
    let framing = if no_body {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        // After 101 the connection speaks another protocol.
        keep_alive: !connection_close && framing != Framing::Close && status != 101,
        node: node.map(|(_, r)| r),
        server,
        event_stream,
    }))
}

/// A Content-Length value: decimal digits, with optional spaces or tabs
/// around them; `None` for anything else or a value past u64.
fn decimal(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Finds the end of a chunked body as its bytes arrive.
#[derive(Debug, Clone, Default)]
pub struct Chunked {
    /// Data bytes left in the current chunk, then its trailing CRLF.
    left: u64,
    state: ChunkState,
    /// Decoded body bytes so far.
    pub body: u64,
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data,
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    /// Consumes `data`; returns how many bytes belonged to the body (the
    /// rest, if any, follows it), or `None` while the body goes on. `body`
    /// gets the decoded body bytes, piece by piece.
    pub fn feed(
        &mut self,
        data: &[u8],
        body: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<usize>, ParseError> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                ChunkState::Done => return Ok(Some(i)),
                // After a chunk's data: exactly CRLF.
                ChunkState::DataEnd => {
                    match data[i] {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err(ParseError::Chunk),
                    }
                    i += 1;
                }
                ChunkState::Size | ChunkState::Trailers => {
                    // Read a line.
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        if self.line.len() > 4096 {
                            return Err(ParseError::Chunk);
                        }
                        self.line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = match self.state {
                        ChunkState::Size => {
                            let digits = line.split(|c| *c == b';').next().unwrap_or(b"");
                            let text =
                                std::str::from_utf8(digits).map_err(|_| ParseError::Chunk)?;
                            let size = u64::from_str_radix(text.trim(), 16)
                                .map_err(|_| ParseError::Chunk)?;
                            self.left = size;
                            if size == 0 {
                                ChunkState::Trailers
                            } else {
                                ChunkState::Data
                            }
                        }
                        // Trailers end with an empty line.
                        _ if line.is_empty() => ChunkState::Done,
                        _ => ChunkState::Trailers,
                    };
                }
                ChunkState::Data => {
                    let take =
                        (data.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    body(&data[i..i + take]);
                    i += take;
                    self.left -= take as u64;
                    self.body += take as u64;
                    if self.left == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
            }
        }
        Ok((self.state == ChunkState::Done).then_some(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lengths_are_digits_alone() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b" 1234\t"), Some(1234));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b" ",
            b"-1",
            b"1 2",
            b"0x10",
            b"18446744073709551616",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

    const NODES: &[&str] = &["x-upstream", "x-backend"];

    #[test]
    fn a_head_with_length_node_and_server() {
        let buf = b"HTTP/1.1 200 OK\r\nServer: test/1\r\nX-Backend: 127.0.0.1:8001\r\nX-Upstream: 127.0.0.1:8002\r\nContent-Length: 18\r\n\r\nbody...";
        let h = parse_head(buf, false, NODES).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(18));
        assert!(h.keep_alive);
        let (a, b) = h.node.unwrap();
        assert_eq!(
            &buf[a..b],
            b"127.0.0.1:8002",
            "X-Upstream wins over X-Backend"
        );
        let (a, b) = h.server.unwrap();
        assert_eq!(&buf[a..b], b"test/1");
        assert_eq!(&buf[h.len..], b"body...");
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_fail() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, NODES),
            Ok(None)
        );
        assert!(parse_head(b"NOT HTTP\r\n\r\n", false, NODES).is_err());
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            false,
            NODES
        )
        .is_err());
    }

    #[test]
    fn framing_and_keep_alive_rules() {
        let f = |raw: &[u8], head: bool| parse_head(raw, head, NODES).unwrap().unwrap();
        let h = f(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false);
        assert!(!h.keep_alive, "HTTP/1.0 closes unless it says keep-alive");
        let h = f(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert!(h.keep_alive);
        let h = f(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert!(!h.keep_alive);
        assert_eq!(
            f(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .framing,
            Framing::Chunked
        );
        let h = f(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        assert_eq!(
            f(b"HTTP/1.1 204 No Content\r\n\r\n", false).framing,
            Framing::None
        );
        assert_eq!(
            f(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).framing,
            Framing::None
        );
    }

    #[test]
    fn two_different_lengths_are_malformed_and_101_ends_http() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 500\r\n\r\n";
        let e = parse_head(two, false, NODES).unwrap_err();
        assert!(
            e.to_string().contains("two different Content-Length"),
            "{e}"
        );
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            parse_head(same, false, NODES).unwrap().unwrap().framing,
            Framing::Length(5)
        );
        let up = parse_head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            false,
            NODES,
        );
        let up = up.unwrap().unwrap();
        assert_eq!((up.framing, up.keep_alive), (Framing::None, false));
    }

    #[test]
    fn chunked_bodies_end_where_they_say_in_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 1..body.len() {
            let mut c = Chunked::default();
            let mut got = Vec::new();
            let mut keep = |d: &[u8]| got.extend_from_slice(d);
            let first = c.feed(&body[..split], &mut keep).unwrap();
            let end = match first {
                Some(n) => n,
                None => split + c.feed(&body[split..], &mut keep).unwrap().expect("ends"),
            };
            assert_eq!(&body[end..], b"NEXT", "split at {split}");
            assert_eq!(got, b"hello world", "split at {split}");
            assert_eq!(c.body, 11);
        }
        assert!(Chunked::default().feed(b"zz\r\n", &mut |_| {}).is_err());
        assert!(Chunked::default().feed(b"2\r\nabXY", &mut |_| {}).is_err());
    }
}
