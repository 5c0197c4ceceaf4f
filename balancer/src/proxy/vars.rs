//! nginx's request variables, read from a request as the proxy saw it: one
//! table for hash keys (`hash $request_uri`) and the access log's lines.

use std::borrow::Cow;
use std::net::SocketAddr;

use hyper::header::{self, HeaderMap};

/// A request, as variables see it.
pub(crate) struct RequestView<'a> {
    pub method: &'a str,
    /// Path and query, as on the request line.
    pub request_uri: &'a str,
    pub protocol: &'a str,
    /// The client: the peer, or the address a trusted X-Forwarded-For names.
    pub remote: SocketAddr,
    pub headers: &'a HeaderMap,
    /// The server's first `server_name` ("" when none), nginx's `$host`
    /// when the request names no host.
    pub server_name: &'a str,
}

impl<'a> RequestView<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of `$name`, or `None` when the request has none (nginx
    /// then writes `-` in a log and hashes an empty key).
    pub fn variable(&self, name: &str) -> Option<Cow<'a, str>> {
        let borrowed = |s: &'a str| Some(Cow::Borrowed(s));
        match name {
            "request_uri" => borrowed(self.request_uri),
            "uri" => borrowed(self.request_uri.split('?').next().unwrap_or("/")),
            "args" | "query_string" => {
                let (_, q) = self.request_uri.split_once('?')?;
                (!q.is_empty()).then_some(Cow::Borrowed(q))
            }
            "remote_addr" => Some(self.remote.ip().to_string().into()),
            "remote_port" => Some(self.remote.port().to_string().into()),
            "request_method" => borrowed(self.method),
            // A request refused before its line was read has none ("-").
            "request" if self.method.is_empty() => None,
            "request" => {
                Some(format!("{} {} {}", self.method, self.request_uri, self.protocol).into())
            }
            "server_protocol" => borrowed(self.protocol),
            // The Host header as nginx validates it: lowercased, without
            // its port or a trailing dot; the server's name without one.
            "host" => Some(match self.header(header::HOST.as_str()) {
                Some(h) => Cow::Owned(host_of(h)),
                None => Cow::Borrowed(self.server_name),
            }),
            _ => {
                if let Some(h) = name.strip_prefix("http_") {
                    return self.header(&h.replace('_', "-")).map(Cow::Borrowed);
                }
                if let Some(c) = name.strip_prefix("cookie_") {
                    return self
                        .headers
                        .get_all(header::COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(|v| {
                            v.split(';').map(str::trim).find_map(|kv| {
                                kv.strip_prefix(c)?.strip_prefix('=').map(Cow::Borrowed)
                            })
                        });
                }
                if let Some(a) = name.strip_prefix("arg_") {
                    let (_, q) = self.request_uri.split_once('?')?;
                    return q
                        .split('&')
                        .find_map(|kv| kv.strip_prefix(a)?.strip_prefix('=').map(Cow::Borrowed));
                }
                None
            }
        }
    }
}

/// `Example.COM:8080` as nginx's `$host` has it: `example.com`.
fn host_of(header: &str) -> String {
    let host = if header.starts_with('[') {
        header.find(']').map_or(header, |i| &header[..=i])
    } else {
        header.split(':').next().unwrap_or(header)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_hash_keys_and_logs_use() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "ai.example".parse().unwrap());
        headers.insert("x-user-id", "u7".parse().unwrap());
        headers.insert("cookie", "a=1; session=s9".parse().unwrap());
        let v = RequestView {
            method: "POST",
            request_uri: "/chat?model=m1&x=2",
            protocol: "HTTP/1.1",
            remote: "10.0.0.9:4711".parse().unwrap(),
            headers: &headers,
            server_name: "",
        };
        let get = |n: &str| v.variable(n).map(|c| c.into_owned());
        assert_eq!(get("uri").as_deref(), Some("/chat"));
        assert_eq!(get("args").as_deref(), Some("model=m1&x=2"));
        assert_eq!(get("arg_model").as_deref(), Some("m1"));
        assert_eq!(get("http_x_user_id").as_deref(), Some("u7"));
        assert_eq!(get("cookie_session").as_deref(), Some("s9"));
        assert_eq!(get("remote_addr").as_deref(), Some("10.0.0.9"));
        assert_eq!(
            get("request").as_deref(),
            Some("POST /chat?model=m1&x=2 HTTP/1.1")
        );
        assert_eq!(get("host").as_deref(), Some("ai.example"));
        assert_eq!(host_of("AI.Example.:8080"), "ai.example");
        assert_eq!(host_of("[::1]:80"), "[::1]");
        assert_eq!(get("http_missing"), None);
    }
}
