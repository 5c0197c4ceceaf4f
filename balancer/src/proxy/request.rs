//! The request nginx's proxy module writes upstream
//! (`ngx_http_proxy_create_request`): the method and the URI as the client
//! sent it, `proxy_http_version`'s version, then each set header whose
//! value is not empty (the config's `proxy_set_header` lines in order,
//! then nginx's defaults for the names they leave), then the client's own
//! headers except those whose names the set list holds, then the body.
//! Pure: the caller gives the request and the variables.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::conf::UpstreamRequest;

/// A location's upstream request, ready to write many requests.
pub(crate) struct Writer {
    spec: UpstreamRequest,
    /// The set list's names, lowercased: the client's headers of these
    /// names are not passed, even when the set value is empty.
    replaced: HashSet<String>,
}

/// The parts of a client request the upstream request is made of.
pub(crate) struct Incoming<'a> {
    pub method: &'a str,
    /// The request target as the client wrote it (path and query).
    pub target: &'a str,
    /// The client's headers, in order, names as received.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

impl Writer {
    pub(crate) fn new(spec: &UpstreamRequest) -> Writer {
        Writer {
            replaced: spec
                .headers
                .iter()
                .map(|h| h.name.to_ascii_lowercase())
                .collect(),
            spec: spec.clone(),
        }
    }

    /// The request's bytes; `var` gives each variable's value (`None`:
    /// unset, which reads as empty).
    pub(crate) fn write<'v>(
        &self,
        request: &Incoming<'_>,
        var: impl Fn(&str) -> Option<Cow<'v, str>>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + request.body.len());
        out.extend_from_slice(request.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(request.target.as_bytes());
        out.extend_from_slice(if self.spec.http11 {
            b" HTTP/1.1\r\n"
        } else {
            b" HTTP/1.0\r\n"
        });
        for h in &self.spec.headers {
            let value = h.value.eval(|name| var(name).map(Cow::into_owned));
            if value.is_empty() {
                continue;
            }
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.spec.pass_request_headers {
            for (name, value) in request.headers {
                if self.replaced.contains(&name.to_ascii_lowercase()) {
                    continue;
                }
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        if self.spec.pass_request_body {
            out.extend_from_slice(request.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::{SetHeader, UpstreamRequest};
    use crate::key::KeyExpr;

    fn set(lines: &[(&str, &str)]) -> UpstreamRequest {
        UpstreamRequest::with_headers(
            lines
                .iter()
                .map(|(n, v)| SetHeader {
                    name: n.to_string(),
                    value: KeyExpr::parse(v).unwrap(),
                })
                .collect(),
        )
    }

    fn vars(name: &str) -> Option<Cow<'static, str>> {
        match name {
            "proxy_host" => Some("pool".into()),
            "host" => Some("ai.example".into()),
            "remote_addr" => Some("10.0.0.1".into()),
            _ => None,
        }
    }

    fn text(w: &Writer, method: &str, headers: &[(&str, &[u8])], body: &[u8]) -> String {
        let r = Incoming {
            method,
            target: "/v1/chat?x=1",
            headers,
            body,
        };
        String::from_utf8(w.write(&r, vars)).unwrap()
    }

    #[test]
    fn nginx_defaults_http_1_0_host_proxy_host_connection_close() {
        let w = Writer::new(&UpstreamRequest::default());
        let client: &[(&str, &[u8])] = &[
            ("Host", b"ai.example"),
            ("Connection", b"keep-alive"),
            ("X-Key", b"v1"),
            ("Keep-Alive", b"300"),
            ("X-Key", b"v2"),
        ];
        assert_eq!(
            text(&w, "GET", client, b""),
            "GET /v1/chat?x=1 HTTP/1.0\r\nHost: pool\r\nConnection: close\r\nX-Key: v1\r\nX-Key: v2\r\n\r\n"
        );
    }

    #[test]
    fn set_headers_come_first_replace_the_clients_and_empty_ones_drop_it() {
        let mut spec = set(&[
            ("Host", "$host"),
            ("X-Real-IP", "$remote_addr"),
            ("Connection", ""),
            ("X-Drop", ""),
        ]);
        spec.http11 = true;
        let w = Writer::new(&spec);
        let client: &[(&str, &[u8])] = &[
            ("Host", b"ai.example"),
            ("X-Drop", b"1"),
            ("Content-Length", b"2"),
            ("Accept", b"*/*"),
        ];
        assert_eq!(
            text(&w, "POST", client, b"{}"),
            "POST /v1/chat?x=1 HTTP/1.1\r\nHost: ai.example\r\nX-Real-IP: 10.0.0.1\r\nAccept: */*\r\n\r\n{}"
        );
    }
}
