//! What the proxy refuses or strips as nginx does: requests nginx answers
//! with 400, and an upstream's headers that belong to its connection.
//! Pure.

use std::borrow::Cow;

use hyper::header::{self, HeaderName};
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

/// An upstream's headers that belong to its connection, not passed to
/// the client.
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
}
