//! What the proxy refuses or strips so that it passes on only what HTTP
//! allows: requests nginx answers with 400, headers that belong to one
//! connection, and upstream answers whose length cannot be trusted. Pure.

use std::borrow::Cow;

use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, Version};

/// Why nginx would answer this request 400 without proxying it, if it would.
pub(crate) fn refusal<B>(req: &Request<B>) -> Option<&'static str> {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Some("client sent duplicate host header");
    }
    if hosts == 0 && req.version() == Version::HTTP_11 && req.uri().authority().is_none() {
        return Some("client sent HTTP/1.1 request without \"Host\" header");
    }
    if normalized_path(req.uri().path()).is_none() {
        return Some("client sent invalid request: the path goes above the root");
    }
    None
}

/// The path as nginx matches locations against it: `.` and `..` segments
/// resolved (also when written `%2e`), `None` when `..` would climb above
/// the root. The request is still forwarded as the client wrote it, as
/// nginx does for a `proxy_pass` without a URI.
pub(crate) fn normalized_path(path: &str) -> Option<Cow<'_, str>> {
    // Nearly every path has no dot segment: nothing to resolve or allocate.
    let dotted = path.contains("/.") || path.contains("%2e") || path.contains("%2E");
    if !dotted {
        return Some(Cow::Borrowed(path));
    }
    let dots = |segment: &str| segment.replace("%2e", ".").replace("%2E", ".");
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match dots(segment).as_str() {
            "." if last => kept.push(""),
            "." => {}
            ".." => {
                kept.pop()?;
                if last {
                    kept.push("");
                }
            }
            _ => kept.push(segment),
        }
    }
    Some(Cow::Owned(format!("/{}", kept.join("/"))))
}

/// Headers that belong to one connection and are never forwarded.
pub(crate) fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The headers `Connection:` names (`Connection: keep-alive, X-Foo` makes
/// X-Foo hop-by-hop, RFC 9110 §7.6.1), besides the fixed ones.
pub(crate) fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

/// Whether `name` is not to be forwarded, given what `Connection:` named.
pub(crate) fn not_forwarded(name: &HeaderName, named: &[HeaderName]) -> bool {
    hop_by_hop(name) || named.contains(name)
}

/// Drops every hop-by-hop header, named or fixed, from `headers`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|n| not_forwarded(n, &named))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
}

/// An upstream answer whose length cannot be trusted: Content-Length with
/// Transfer-Encoding, or Content-Length twice. nginx (since 1.23) takes it
/// as an invalid header and answers 502; passing it on would hand the
/// client a length the body does not have.
pub(crate) fn bad_framing(headers: &HeaderMap) -> bool {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    lengths > 1 || (lengths == 1 && headers.contains_key(header::TRANSFER_ENCODING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_nginx_matches_them() {
        let n = |p: &str| normalized_path(p).map(Cow::into_owned);
        assert_eq!(n("/").as_deref(), Some("/"));
        assert_eq!(n("/v1/chat").as_deref(), Some("/v1/chat"));
        assert_eq!(n("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(n("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(n("/a/%2e%2E/b").as_deref(), Some("/b"));
        assert_eq!(n("/.."), None);
        assert_eq!(n("/../../etc/passwd"), None);
        assert_eq!(n("/a/../../b"), None);
        assert_eq!(n("/a/%2e%2e/%2E%2E/b"), None);
    }

    fn request(lines: &[(&str, &str)], version: Version, uri: &str) -> Request<()> {
        let mut r = Request::builder().version(version).uri(uri);
        for (k, v) in lines {
            r = r.header(*k, *v);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn requests_nginx_refuses_with_400() {
        let v11 = Version::HTTP_11;
        assert_eq!(refusal(&request(&[("host", "a")], v11, "/x")), None);
        assert_eq!(
            refusal(&request(&[], Version::HTTP_10, "/x")),
            None,
            "1.0 needs no Host"
        );
        assert_eq!(
            refusal(&request(&[], v11, "http://a.example/x")),
            None,
            "absolute form"
        );
        assert!(refusal(&request(&[], v11, "/x"))
            .unwrap()
            .contains("without \"Host\""));
        let two = request(&[("host", "a"), ("host", "b")], v11, "/x");
        assert!(refusal(&two).unwrap().contains("duplicate host"));
        let up = request(&[("host", "a")], v11, "/../../etc/passwd");
        assert!(refusal(&up).unwrap().contains("above the root"));
    }

    #[test]
    fn connection_named_headers_are_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.append("connection", "keep-alive, X-Foo".parse().unwrap());
        h.append("connection", "x-bar".parse().unwrap());
        for name in ["x-foo", "x-bar", "x-kept", "keep-alive", "te"] {
            h.insert(name, "1".parse().unwrap());
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn a_length_that_cannot_be_trusted() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            bad_framing(&m)
        };
        assert!(!h(&[("content-length", "5")]));
        assert!(!h(&[("transfer-encoding", "chunked")]));
        assert!(h(&[
            ("content-length", "100"),
            ("transfer-encoding", "chunked")
        ]));
        assert!(h(&[("content-length", "5"), ("content-length", "6")]));
    }
}
