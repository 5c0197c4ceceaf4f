//! The bytes of each request: rendered once where they never change (ab's
//! one request, a scenario's fixed ones), templated per request where they
//! do, with the client identity between head and tail.

use hyper::header::{HeaderName, HeaderValue};

use crate::plan::{Clients, ClientsVia, Plan, Variant};
use crate::template::Text;

/// The requests of a run, rendered once to bytes where they never change:
/// one request for ab's flags, a weighted mix for a scenario. A request's
/// client identity goes between its head and tail.
pub(crate) struct Template {
    parts: Vec<Part>,
    /// Running totals of the parts' weights: request `i` takes the part
    /// its place in the cycle falls in.
    cumulative: Vec<u64>,
    clients: Option<Clients>,
}

struct Part {
    /// Fixed: the request line and headers. Templated: the headers only
    /// (the request line and Content-Length depend on the request).
    head: Vec<u8>,
    /// Fixed: the blank line and the body.
    tail: Vec<u8>,
    templated: Option<Templated>,
    head_request: bool,
}

struct Templated {
    method: String,
    path: Text,
    version: &'static str,
    body: Option<Text>,
}

/// `user-agent` -> `User-Agent`, as ab and browsers write header names.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

fn header_bytes<'h>(headers: impl Iterator<Item = &'h (HeaderName, HeaderValue)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (name, value) in headers {
        bytes.extend_from_slice(title_case(name.as_str()).as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

impl Template {
    pub(crate) fn new(plan: &Plan) -> Template {
        let one = [Variant {
            method: plan.method.clone(),
            path: Text::literal(&plan.target.path),
            headers: Vec::new(),
            body: plan
                .body
                .as_ref()
                .map(|b| Text::literal(&String::from_utf8_lossy(b))),
            weight: 1,
        }];
        let variants = if plan.mix.is_empty() {
            &one[..]
        } else {
            &plan.mix[..]
        };
        // ab: HTTP/1.0 and a new connection per request, unless -k.
        let version = if plan.keepalive {
            "HTTP/1.1"
        } else {
            "HTTP/1.0"
        };
        let parts = variants
            .iter()
            .map(|v| {
                // A variant's own headers replace the plan's of that name.
                let shared = plan
                    .headers
                    .iter()
                    .filter(|(n, _)| !v.headers.iter().any(|(m, _)| m == n));
                let headers = header_bytes(shared.chain(&v.headers));
                let head_request = v.method == hyper::Method::HEAD;
                let fixed_body = match &v.body {
                    // The bytes as given (a -p file need not be UTF-8).
                    Some(_) if plan.mix.is_empty() => plan.body.as_ref().map(|b| b.to_vec()),
                    Some(b) if b.is_fixed() => {
                        let mut out = Vec::new();
                        b.render(0, &mut out);
                        Some(out)
                    }
                    Some(_) => None,
                    None => Some(Vec::new()),
                };
                match fixed_body {
                    Some(body) if v.path.is_fixed() => {
                        let mut path = Vec::new();
                        v.path.render(0, &mut path);
                        let target = match &plan.proxy {
                            Some(_) => format!(
                                "http://{}{}",
                                plan.target.host_header(),
                                String::from_utf8_lossy(&path)
                            ),
                            None => String::from_utf8_lossy(&path).into_owned(),
                        };
                        let mut head = format!("{} {target} {version}\r\n", v.method).into_bytes();
                        head.extend_from_slice(&headers);
                        if v.body.is_some() {
                            head.extend_from_slice(
                                format!("Content-Length: {}\r\n", body.len()).as_bytes(),
                            );
                        }
                        let mut tail = b"\r\n".to_vec();
                        tail.extend_from_slice(&body);
                        Part {
                            head,
                            tail,
                            templated: None,
                            head_request,
                        }
                    }
                    _ => Part {
                        head: headers,
                        tail: Vec::new(),
                        templated: Some(Templated {
                            method: v.method.to_string(),
                            path: v.path.clone(),
                            version,
                            body: v.body.clone(),
                        }),
                        head_request,
                    },
                }
            })
            .collect();
        let cumulative = variants
            .iter()
            .scan(0, |sum, v| {
                *sum += u64::from(v.weight.max(1));
                Some(*sum)
            })
            .collect();
        Template {
            parts,
            cumulative,
            clients: plan.clients,
        }
    }

    fn part(&self, i: u64) -> &Part {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let at = i % total;
        let n = self.cumulative.partition_point(|c| *c <= at);
        &self.parts[n.min(self.parts.len() - 1)]
    }

    /// The bytes of request `i`, and whether it is a HEAD request.
    pub(crate) fn render(&self, i: u64, out: &mut Vec<u8>) -> bool {
        out.clear();
        let part = self.part(i);
        let forwarded = self.clients.filter(|c| c.via == ClientsVia::ForwardedFor);
        let forwarded_for = |out: &mut Vec<u8>| {
            if let Some(c) = forwarded {
                out.extend_from_slice(b"X-Forwarded-For: ");
                out.extend_from_slice(c.address(i).to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        };
        match &part.templated {
            None => {
                out.extend_from_slice(&part.head);
                forwarded_for(out);
                out.extend_from_slice(&part.tail);
            }
            Some(t) => {
                out.extend_from_slice(t.method.as_bytes());
                out.push(b' ');
                t.path.render(i, out);
                out.push(b' ');
                out.extend_from_slice(t.version.as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&part.head);
                forwarded_for(out);
                let mut body = Vec::new();
                if let Some(b) = &t.body {
                    b.render(i, &mut body);
                    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&body);
            }
        }
        part.head_request
    }

    /// The source address for a connection opened by request `i`.
    pub(crate) fn source(&self, i: u64) -> Option<std::net::Ipv4Addr> {
        self.clients
            .filter(|c| c.via == ClientsVia::Source)
            .map(|c| c.address(i))
    }
}
