//! The cases: an nginx.conf's upstream and location, the backends behind
//! it, and the requests sent.

use std::net::SocketAddr;
use std::time::Duration;

use crate::backends::Behaviour::{self, *};

pub enum Compare {
    /// The same lines in the same order.
    InOrder,
    /// The same lines, in an order the scheduler decides.
    Counts,
}

/// Requests in rounds: a round's requests go at once, and the next round
/// starts when it ends and its pause is over.
pub struct Requests {
    pub rounds: Vec<Round>,
}

pub struct Round {
    /// Method and path.
    pub requests: Vec<(&'static str, String)>,
    pub then: Duration,
}

impl Round {
    fn one(method: &'static str, path: &str) -> Round {
        Round {
            requests: vec![(method, path.to_string())],
            then: Duration::ZERO,
        }
    }
}

/// Writes the `upstream pool {}` block for the backends' addresses.
pub type Upstream = Box<dyn Fn(&[SocketAddr]) -> String>;

pub struct Case {
    pub name: &'static str,
    pub about: &'static str,
    pub backends: Vec<Behaviour>,
    /// The `upstream pool {}` block, given the backends' addresses.
    pub upstream: Upstream,
    /// More directives for `location /`.
    pub location: String,
    pub send: Requests,
    pub compare: Compare,
    /// The variables both proxies log, per request.
    pub log: &'static str,
}

/// `n` requests of `method` to `/`, one at a time.
fn each(method: &'static str, n: usize) -> Requests {
    Requests {
        rounds: (0..n).map(|_| Round::one(method, "/")).collect(),
    }
}

/// GETs of `/k0` .. `/k{n-1}`, one at a time: keys for the hash methods.
fn keys(n: usize) -> Requests {
    Requests {
        rounds: (0..n)
            .map(|i| Round::one("GET", &format!("/k{i}")))
            .collect(),
    }
}

/// `upstream pool { METHOD; server ADDR PARAMS; ... }`, the params by
/// backend in order.
fn pool(method: &'static str, params: &'static [&'static str]) -> Upstream {
    Box::new(move |addrs| {
        let servers: String = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("server {a} {};", params.get(i).copied().unwrap_or("")))
            .collect();
        format!("upstream pool {{ {method} {servers} }}")
    })
}

fn case(
    name: &'static str,
    about: &'static str,
    backends: Vec<Behaviour>,
    upstream: Upstream,
    location: &str,
    send: Requests,
) -> Case {
    Case {
        name,
        about,
        backends,
        upstream,
        location: location.to_string(),
        send,
        compare: Compare::InOrder,
        log: LOG,
    }
}

/// What both proxies log by default: the answer and every attempt.
pub const LOG: &str = "$status $upstream_addr $upstream_status";

pub fn all() -> Vec<Case> {
    let rr = || pool("", &[]);
    let mut cases = vec![
        case(
            "error",
            "a refused server is retried on the next (proxy_next_upstream error)",
            vec![Ok, Refuse, Ok],
            rr(),
            "",
            each("GET", 6),
        ),
        case(
            "error-off",
            "proxy_next_upstream off: a refused server is the answer",
            vec![Refuse, Ok],
            rr(),
            "proxy_next_upstream off;",
            each("GET", 4),
        ),
        case(
            "close",
            "a server that closes after the request",
            vec![Close, Ok],
            rr(),
            "",
            each("GET", 4),
        ),
        case(
            "close-post",
            "the same for POST, which went out: not retried",
            vec![Close, Ok],
            rr(),
            "",
            each("POST", 4),
        ),
        case(
            "close-post-non-idempotent",
            "POST retried with non_idempotent",
            vec![Close, Ok],
            rr(),
            "proxy_next_upstream error timeout non_idempotent;",
            each("POST", 4),
        ),
        case(
            "timeout",
            "no answer within proxy_read_timeout",
            vec![Hang, Ok],
            rr(),
            "proxy_read_timeout 300ms;",
            each("GET", 4),
        ),
        case(
            "timeout-not-listed",
            "a timeout with only error listed",
            vec![Hang, Ok],
            rr(),
            "proxy_read_timeout 300ms; proxy_next_upstream error;",
            each("GET", 4),
        ),
        case(
            "read-timeout-apart",
            "a 300 ms read timeout under the default 60 s connect timeout",
            vec![Slow(1500)],
            rr(),
            "proxy_read_timeout 300ms;",
            each("GET", 2),
        ),
        case(
            "invalid-header",
            "a head that does not parse, invalid_header not listed",
            vec![BadHeader, Ok],
            rr(),
            "",
            each("GET", 4),
        ),
        case(
            "invalid-header-listed",
            "the same with invalid_header listed",
            vec![BadHeader, Ok],
            rr(),
            "proxy_next_upstream error invalid_header;",
            each("GET", 4),
        ),
        case(
            "http_502-last-try",
            "a listed 502 on the last try is relayed, not counted",
            vec![Status(502), Ok],
            rr(),
            "proxy_next_upstream error timeout http_502; proxy_next_upstream_tries 1;",
            each("GET", 4),
        ),
        case(
            "http_502-post",
            "a listed 502 to a POST is relayed",
            vec![Status(502), Ok],
            rr(),
            "proxy_next_upstream error timeout http_502;",
            each("POST", 4),
        ),
        case(
            "http_502-post-non-idempotent",
            "and retried with non_idempotent",
            vec![Status(502), Ok],
            rr(),
            "proxy_next_upstream error timeout http_502 non_idempotent;",
            each("POST", 4),
        ),
        case(
            "unlisted-500",
            "a 500 not listed is relayed",
            vec![Status(500), Ok],
            rr(),
            "",
            each("GET", 4),
        ),
        case(
            "tries",
            "proxy_next_upstream_tries 2 over three refusing servers",
            vec![Refuse, Refuse, Refuse, Ok],
            rr(),
            "proxy_next_upstream_tries 2;",
            each("GET", 4),
        ),
        case(
            "next-upstream-timeout",
            "proxy_next_upstream_timeout ends the retries",
            vec![Slow(200), Slow(200), Ok],
            pool("", &[]),
            "proxy_read_timeout 100ms; proxy_next_upstream_timeout 150ms;",
            each("GET", 3),
        ),
        case(
            "backup",
            "the backup serves while the primaries refuse",
            vec![Refuse, Refuse, Ok],
            pool("", &["", "", "backup"]),
            "",
            each("GET", 4),
        ),
        case(
            "down",
            "a server marked down is no try: the 404 is relayed",
            vec![Status(404), Ok],
            pool("", &["", "down"]),
            "proxy_next_upstream http_404;",
            each("GET", 2),
        ),
        case(
            "no-live-upstreams",
            "every server refuses, then none is left",
            vec![Refuse, Refuse],
            pool("", &["max_fails=2", ""]),
            "",
            each("GET", 3),
        ),
        case(
            "single-server",
            "one server is never taken out",
            vec![Refuse],
            rr(),
            "",
            each("GET", 3),
        ),
        case(
            "max_fails-0",
            "max_fails=0 never takes a server out",
            vec![Refuse, Ok],
            pool("", &["max_fails=0", ""]),
            "",
            each("GET", 4),
        ),
        case(
            "weighted-failover",
            "weights 3:1 with the heavy server refusing",
            vec![Refuse, Ok],
            pool("", &["weight=3", ""]),
            "",
            each("GET", 6),
        ),
        case(
            "hash-failover",
            "hash $request_uri with a refusing server",
            vec![Refuse, Ok, Ok],
            pool("hash $request_uri;", &[]),
            "",
            keys(20),
        ),
        case(
            "chash-failover",
            "hash $request_uri consistent with a refusing server",
            vec![Refuse, Ok, Ok],
            pool("hash $request_uri consistent;", &[]),
            "",
            keys(20),
        ),
        case(
            "ip_hash-failover",
            "ip_hash: the client's server refuses",
            vec![Ok, Refuse, Ok],
            pool("ip_hash;", &[]),
            "",
            each("GET", 4),
        ),
        case(
            "least_conn-failover",
            "least_conn with a refusing server",
            vec![Refuse, Ok, Ok],
            pool("least_conn;", &[]),
            "",
            each("GET", 6),
        ),
    ];
    for (name, status, about) in [
        ("http_500", 500, "a listed 500 is retried and counted"),
        ("http_503", 503, "a listed 503 is retried and counted"),
        ("http_504", 504, "a listed 504 is retried and counted"),
        ("http_429", 429, "a listed 429 is retried and counted"),
        ("http_403", 403, "a listed 403 is retried, not counted"),
        ("http_404", 404, "a listed 404 is retried, not counted"),
    ] {
        let location = format!("proxy_next_upstream error timeout {name};");
        cases.push(case(
            name,
            about,
            vec![Status(status), Ok],
            rr(),
            &location,
            each("GET", 4),
        ));
    }
    cases.push(Case {
        compare: Compare::Counts,
        ..case(
            "random-failover",
            "random with a refusing server: which server random draws differs, so counts",
            vec![Refuse, Ok],
            pool("random;", &[]),
            "",
            each("GET", 8),
        )
    });
    cases.push(Case {
        compare: Compare::Counts,
        ..case(
            "max_conns",
            "max_conns=1 on the heavy server under two at once: the second goes to the light one",
            vec![Slow(300), Slow(300)],
            pool("", &["weight=5 max_conns=1", ""]),
            "",
            Requests {
                rounds: (0..3)
                    .map(|_| Round {
                        requests: vec![("GET", "/".to_string()), ("GET", "/".to_string())],
                        then: Duration::from_millis(100),
                    })
                    .collect(),
            },
        )
    });
    cases.push(case(
        "fail_timeout",
        "max_fails=1 fail_timeout=1s: out, then back after the window",
        vec![Refuse, Ok],
        pool("", &["fail_timeout=1s", ""]),
        "",
        // The second finds the refusing server out; past the window, with
        // room (whole seconds, so up to 2 s), it is tried again once its
        // effective weight has climbed back.
        Requests {
            rounds: vec![
                Round::one("GET", "/"),
                Round {
                    then: Duration::from_millis(2600),
                    ..Round::one("GET", "/")
                },
                Round::one("GET", "/"),
                Round::one("GET", "/"),
                Round::one("GET", "/"),
            ],
        },
    ));
    cases.push(Case {
        log: "$status $body_bytes_sent $sent_http_content_length $upstream_status",
        ..case(
            "cut-body",
            "an answer cut mid-body keeps its status; the short body shows against its length",
            vec![Cut, Ok],
            rr(),
            "",
            each("GET", 4),
        )
    });
    cases.push(case(
        "refused-requests",
        "requests nginx answers 400 unproxied: a path above the root, no Host, two Hosts",
        vec![Ok],
        rr(),
        "",
        Requests {
            rounds: [
                "GET /../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
                "GET / HTTP/1.1\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                "GET /a/../b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                "GET /%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n",
            ]
            .into_iter()
            .map(|raw| Round::one(RAW, raw))
            .collect(),
        },
    ));
    cases
}

/// A round's method that sends its "path" as raw bytes on a connection of
/// its own: for requests no HTTP client would write.
pub const RAW: &str = "RAW";
