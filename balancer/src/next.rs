//! After an attempt on a peer: relay the answer, try the next server, or
//! give up, exactly as nginx's `ngx_http_upstream_test_next` (an answer
//! whose status `proxy_next_upstream` names) and `ngx_http_upstream_next`
//! (an error, a timeout, an invalid header) decide. Pure: the caller says
//! what happened, how many tries the request has left and how long it has
//! been going.
//!
//! The two differ in when the peer is freed, and so in what counts:
//! - An answer with a listed status is retried only if more than one try
//!   is left before the peer is freed. Otherwise nginx passes the answer
//!   through and frees the peer as a success: a 502 on the last try is
//!   not a failure. When it is retried, the peer is freed as failed (403
//!   and 404 as "next", which is no failure).
//! - An error, a timeout or an invalid header frees the peer as failed
//!   first, and then retries if any try is left.

use std::time::Duration;

use crate::conf::NextUpstream;
use crate::upstream::{Attempt, Outcome, Upstream};

/// What went wrong on an attempt, as nginx classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection, or it broke; `sent`: the request may have gone out.
    Error { sent: bool },
    /// Connecting, sending, or waiting for the answer took too long.
    Timeout { sent: bool },
    /// The answer's head did not parse.
    InvalidHeader,
}

impl Failure {
    /// The status the client gets when no retry follows.
    pub fn status(self) -> u16 {
        match self {
            Failure::Timeout { .. } => 504,
            Failure::Error { .. } | Failure::InvalidHeader => 502,
        }
    }

    fn sent(self) -> bool {
        match self {
            Failure::Error { sent } | Failure::Timeout { sent } => sent,
            Failure::InvalidHeader => true,
        }
    }
}

/// The request as the retry rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retrying {
    /// Not POST, LOCK or PATCH: safe to send twice.
    pub idempotent: bool,
    /// Since the first attempt started (`proxy_next_upstream_timeout`).
    pub elapsed: Duration,
}

impl NextUpstream {
    fn in_time(&self, r: &Retrying) -> bool {
        self.timeout.is_none_or(|t| r.elapsed < t)
    }

    /// A request that went out may go again only if it is idempotent or
    /// `non_idempotent` says so.
    fn may_resend(&self, sent: bool, r: &Retrying) -> bool {
        !sent || r.idempotent || self.non_idempotent
    }

    /// nginx's `test_next`: whether an answer with `status` moves on to the
    /// next server, with `tries` left before the peer is freed. `None`:
    /// relay it (the peer is freed as a success when it ends); `Some`:
    /// free the peer, as failed when `true`, and try the next.
    pub fn retry_answer(&self, status: u16, tries: u32, r: &Retrying) -> Option<bool> {
        let listed = self.statuses.contains(&status);
        (listed && tries > 1 && self.may_resend(true, r) && self.in_time(r))
            .then_some(!matches!(status, 403 | 404))
    }

    /// nginx's `next` after a failure, the peer already freed as failed:
    /// whether to try the next server with `tries` left.
    pub fn retry_failure(&self, failure: Failure, tries: u32, r: &Retrying) -> bool {
        let listed = match failure {
            Failure::Error { .. } => self.on_error,
            Failure::Timeout { .. } => self.on_timeout,
            Failure::InvalidHeader => self.on_invalid_header,
        };
        listed && tries > 0 && self.may_resend(failure.sent(), r) && self.in_time(r)
    }
}

/// How an attempt went: an answer's head, or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    Answer { status: u16, rtt: Duration },
    Failed(Failure),
}

/// What the proxy does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Relay the answer; the peer stays held until it ends, then is freed
    /// as a success.
    Relay,
    /// The peer is freed; pick the next one.
    Next,
    /// The peer is freed as failed; answer the client with this status.
    GiveUp(u16),
}

/// Applies how an attempt went to the upstream (freeing the peer as nginx
/// does) and says what comes next. `cached`: the attempt went on a kept
/// connection, whose error nginx does not count as a try of the request
/// (the peer is still counted failed).
pub fn after_attempt(
    upstream: &mut Upstream,
    attempt: &mut Attempt,
    next: &NextUpstream,
    attempted: Attempted,
    cached: bool,
    request: &Retrying,
    now: Duration,
) -> Step {
    match attempted {
        Attempted::Answer { status, rtt } => {
            match next.retry_answer(status, attempt.tries, request) {
                None => Step::Relay,
                Some(failed) => {
                    let rtt = Some(rtt);
                    upstream.finish(attempt, Outcome { failed, rtt }, now);
                    Step::Next
                }
            }
        }
        Attempted::Failed(failure) => {
            upstream.finish(attempt, Outcome::FAILED, now);
            if cached && matches!(failure, Failure::Error { .. }) {
                attempt.tries += 1;
            }
            if next.retry_failure(failure, attempt.tries, request) {
                Step::Next
            } else {
                Step::GiveUp(failure.status())
            }
        }
    }
}

/// Whether nginx counts a method as safe to send twice.
pub fn idempotent(method: &str) -> bool {
    !matches!(method, "POST" | "LOCK" | "PATCH")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Client, Method, UpstreamSpec};
    use crate::Server;

    fn next(words: &[&str]) -> NextUpstream {
        NextUpstream::default().with_conditions(words).unwrap()
    }

    const GET: Retrying = Retrying {
        idempotent: true,
        elapsed: Duration::ZERO,
    };
    const POST: Retrying = Retrying {
        idempotent: false,
        elapsed: Duration::ZERO,
    };

    #[test]
    fn a_listed_answer_on_the_last_try_is_relayed_and_no_failure() {
        let n = next(&["error", "timeout", "http_502"]);
        assert_eq!(n.retry_answer(502, 2, &GET), Some(true), "retried, counted");
        assert_eq!(
            n.retry_answer(502, 1, &GET),
            None,
            "the last try: passed through"
        );
        assert_eq!(n.retry_answer(500, 2, &GET), None, "not listed");
        assert_eq!(n.retry_answer(502, 2, &POST), None, "a POST went out");
        let n = next(&["http_502", "non_idempotent"]);
        assert_eq!(n.retry_answer(502, 2, &POST), Some(true));
        let n = next(&["http_404", "http_403"]);
        assert_eq!(
            n.retry_answer(404, 2, &GET),
            Some(false),
            "next, not failed"
        );
    }

    #[test]
    fn failures_retry_on_their_own_condition_while_tries_are_left() {
        let n = NextUpstream::default();
        let refused = Failure::Error { sent: false };
        assert!(n.retry_failure(refused, 1, &GET));
        assert!(!n.retry_failure(refused, 0, &GET), "none left");
        assert!(n.retry_failure(refused, 1, &POST), "never sent: any method");
        assert!(!n.retry_failure(Failure::Error { sent: true }, 1, &POST));
        assert!(n.retry_failure(Failure::Timeout { sent: true }, 1, &GET));
        assert!(
            !n.retry_failure(Failure::InvalidHeader, 1, &GET),
            "not listed by default"
        );
        let n = next(&["invalid_header"]);
        assert!(n.retry_failure(Failure::InvalidHeader, 1, &GET));
        assert!(
            !n.retry_failure(refused, 1, &GET),
            "the line replaced error"
        );
        assert_eq!(Failure::InvalidHeader.status(), 502);
        assert_eq!(Failure::Timeout { sent: false }.status(), 504);
    }

    #[test]
    fn the_retry_window_closes() {
        let n = NextUpstream {
            timeout: Some(Duration::from_secs(1)),
            ..NextUpstream::default()
        };
        let late = Retrying {
            idempotent: true,
            elapsed: Duration::from_secs(1),
        };
        assert!(!n.retry_failure(Failure::Error { sent: false }, 3, &late));
        assert!(n.retry_failure(Failure::Error { sent: false }, 3, &GET));
    }

    /// One request served as the proxy serves it: pick, get `answer` from
    /// the server picked, decide. The status the client got, and the
    /// servers tried, the upstream's name last when none was left.
    fn serve(
        up: &mut Upstream,
        next: &NextUpstream,
        answer: impl Fn(&str) -> Attempted,
    ) -> (u16, Vec<String>) {
        let now = Duration::from_secs(100);
        let mut a = up.start(&Client::default());
        a.limit_tries(next.tries);
        let mut tried = Vec::new();
        loop {
            let Some(p) = up.pick(&mut a, now) else {
                tried.push(up.name.clone());
                return (502, tried);
            };
            let addr = up.peer(p).server.addr.clone();
            tried.push(addr.clone());
            let attempted = answer(&addr);
            match after_attempt(up, &mut a, next, attempted, false, &GET, now) {
                Step::Next => {}
                Step::GiveUp(status) => return (status, tried),
                Step::Relay => {
                    up.finish(&mut a, Outcome::OK, now);
                    let Attempted::Answer { status, .. } = attempted else {
                        unreachable!("only answers are relayed")
                    };
                    return (status, tried);
                }
            }
        }
    }

    fn answer(status: u16) -> Attempted {
        Attempted::Answer {
            status,
            rtt: Duration::from_millis(1),
        }
    }

    fn upstream(servers: Vec<Server>) -> Upstream {
        Upstream::new(UpstreamSpec::new("pool", Method::RoundRobin, servers), 0).unwrap()
    }

    #[test]
    fn a_502_passed_through_on_the_last_try_does_not_take_the_server_out() {
        // X answers 502, A 200; one try per request. nginx relays X's 502
        // and counts no failure, so X keeps its turn:
        //   502[X] 200[A] 502[X] 200[A]
        let mut up = upstream(vec![Server::new("X"), Server::new("A")]);
        let mut next = next(&["error", "timeout", "http_502"]);
        next.tries = 1;
        let seq: Vec<(u16, Vec<String>)> = (0..4)
            .map(|_| {
                serve(&mut up, &next, |addr| {
                    answer(if addr == "X" { 502 } else { 200 })
                })
            })
            .collect();
        let want = |s: u16, a: &str| (s, vec![a.to_string()]);
        assert_eq!(
            seq,
            [
                want(502, "X"),
                want(200, "A"),
                want(502, "X"),
                want(200, "A")
            ]
        );
    }

    #[test]
    fn down_servers_are_no_tries() {
        // N1 answers 404, N2 is down: one try, so nginx relays the 404
        // rather than moving on to find nothing.
        let mut up = upstream(vec![Server::new("N1"), Server::new("N2").down()]);
        let next = next(&["http_404"]);
        assert_eq!(
            serve(&mut up, &next, |_| answer(404)),
            (404, vec!["N1".to_string()])
        );
    }

    #[test]
    fn a_retry_that_finds_no_server_names_the_upstream() {
        // Both refuse; X takes two failures to go out, Y one. The second
        // request fails on X, has a try left, and finds nothing:
        //   502[X, Y] 502[X, pool]
        let mut up = upstream(vec![Server::new("X").max_fails(2), Server::new("Y")]);
        let next = NextUpstream::default();
        let refused = |_: &str| Attempted::Failed(Failure::Error { sent: false });
        assert_eq!(
            serve(&mut up, &next, refused),
            (502, vec!["X".into(), "Y".into()])
        );
        assert_eq!(
            serve(&mut up, &next, refused),
            (502, vec!["X".into(), "pool".into()])
        );
    }

    #[test]
    fn an_invalid_header_is_a_failure_retried_only_when_listed() {
        let bad = |addr: &str| {
            if addr == "X" {
                Attempted::Failed(Failure::InvalidHeader)
            } else {
                answer(200)
            }
        };
        let mut up = upstream(vec![Server::new("X"), Server::new("A")]);
        assert_eq!(
            serve(&mut up, &NextUpstream::default(), bad),
            (502, vec!["X".to_string()])
        );
        // X was counted failed: the next request goes to A.
        assert_eq!(
            serve(&mut up, &NextUpstream::default(), bad),
            (200, vec!["A".to_string()])
        );
        let mut up = upstream(vec![Server::new("X"), Server::new("A")]);
        let listed = next(&["error", "invalid_header"]);
        assert_eq!(
            serve(&mut up, &listed, bad),
            (200, vec!["X".into(), "A".into()])
        );
    }
}
