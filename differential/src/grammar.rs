//! Random cases from a grammar of what nginx 1.22's upstream and proxy
//! modules are configured with, what backends do over time, and what
//! clients send. The same seed and index give the same case.
//!
//! Timing is kept far from every edge, so each case has one outcome on a
//! quiet machine: a slow answer is 50 ms or 600 ms against a 250 ms
//! `proxy_read_timeout`, requests of a round leave 15 ms apart, and a
//! pause that outlasts a `fail_timeout` outlasts it by more than a whole
//! second of nginx's clock.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::case::*;

/// The case `index` of the run seeded `seed`.
pub fn generate(seed: u64, index: u64) -> Case {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
    let mut g = Gen {
        rng: &mut rng,
        case: Case {
            name: format!("seed {seed} case {index}"),
            workers: 1,
            reuseport: false,
            upstreams: Vec::new(),
            http: Vec::new(),
            server: Vec::new(),
            location: Vec::new(),
            fallback: None,
            backends: Vec::new(),
            rounds: Vec::new(),
            client_keepalive: false,
        },
    };
    g.workers();
    g.pool();
    g.fallback();
    g.location();
    g.headers();
    g.rounds();
    g.timeouts();
    g.mistake();
    g.case
}

struct Gen<'a> {
    rng: &'a mut StdRng,
    case: Case,
}

/// The methods of nginx 1.22 (open source), with how often each is drawn.
const METHODS: &[(Option<&str>, u32)] = &[
    (None, 30),
    (Some("least_conn"), 15),
    (Some("ip_hash"), 8),
    (Some("hash $request_uri"), 8),
    (Some("hash $request_uri consistent"), 8),
    (Some("hash $remote_addr"), 4),
    (Some("hash $http_x_key consistent"), 5),
    (Some("hash $host"), 3),
    (Some("random"), 4),
    (Some("random two"), 4),
    (Some("random two least_conn"), 4),
];

impl Gen<'_> {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        *from.choose(self.rng).expect("a non-empty list")
    }

    fn workers(&mut self) {
        if self.chance(0.12) {
            self.case.workers = 2;
            self.case.reuseport = self.chance(0.5);
        }
    }

    fn pool(&mut self) {
        let total: u32 = METHODS.iter().map(|(_, w)| w).sum();
        let mut at = self.rng.random_range(0..total);
        let mut method = None;
        for (m, w) in METHODS {
            if at < *w {
                method = *m;
                break;
            }
            at -= w;
        }
        let hashed = method.is_some_and(|m| m.starts_with("hash") || m == "ip_hash");
        let random = method.is_some_and(|m| m.starts_with("random"));
        let n = if self.chance(0.15) {
            1
        } else {
            self.rng.random_range(2..=4)
        };
        let mut servers = Vec::new();
        for i in 0..n {
            let mut params = Vec::new();
            if self.chance(0.3) {
                params.push(format!("weight={}", self.rng.random_range(1..=5)));
            }
            if self.chance(0.3) {
                params.push(format!("max_fails={}", self.rng.random_range(0..=3)));
            }
            if self.chance(0.2) {
                let t = self.pick(&["1s", "2s", "30s"]);
                params.push(format!("fail_timeout={t}"));
            }
            if self.chance(0.1) {
                params.push(format!("max_conns={}", self.rng.random_range(1..=2)));
            }
            // backup is for round robin and least_conn, and not the first.
            if i > 0 && !hashed && !random && self.chance(0.15) {
                params.push("backup".into());
            }
            if self.chance(0.06) {
                params.push("down".into());
            }
            servers.push(ServerDef {
                backend: self.case.backends.len(),
                params: params.join(" "),
            });
            self.case.backends.push(BackendDef {
                script: vec![Behaviour::Ok],
            });
        }
        let mut extra = Vec::new();
        if self.case.workers > 1 && self.chance(0.5) || self.chance(0.08) {
            extra.push("zone pool 64k".to_string());
        }
        if self.chance(0.35) {
            extra.push(format!("keepalive {}", self.rng.random_range(1..=4)));
            if self.chance(0.25) {
                extra.push(format!(
                    "keepalive_requests {}",
                    self.rng.random_range(1..=3)
                ));
            }
            if self.chance(0.1) {
                extra.push("keepalive_timeout 1s".into());
            }
        }
        self.case.upstreams.push(UpstreamDef {
            name: "pool".into(),
            method: method.map(str::to_string),
            servers,
            extra,
        });
    }

    /// Sometimes a second upstream, `spare`, behind `error_page ... @fallback`.
    fn fallback(&mut self) {
        if !self.chance(0.15) {
            return;
        }
        let n = self.rng.random_range(1..=2);
        let mut servers = Vec::new();
        for _ in 0..n {
            servers.push(ServerDef {
                backend: self.case.backends.len(),
                params: String::new(),
            });
            self.case.backends.push(BackendDef {
                script: vec![Behaviour::Ok],
            });
        }
        self.case.upstreams.push(UpstreamDef {
            name: "spare".into(),
            method: None,
            servers,
            extra: Vec::new(),
        });
        let page = self.pick(&[
            "error_page 502 @fallback",
            "error_page 502 504 = @fallback",
            "error_page 502 503 504 =200 @fallback",
            "error_page 500 502 = @fallback",
            "error_page 404 = @fallback",
        ]);
        self.case.location.push(page.into());
        if self.chance(0.4) {
            self.case.location.push("proxy_intercept_errors on".into());
        }
        let mut fallback = Vec::new();
        if self.chance(0.2) {
            fallback.push("proxy_next_upstream off".into());
        }
        self.case.fallback = Some(fallback);
    }

    fn location(&mut self) {
        let keepalive = self.case.upstreams[0]
            .extra
            .iter()
            .any(|e| e.starts_with("keepalive "));
        if self.chance(if keepalive { 0.7 } else { 0.2 }) {
            self.case.location.push("proxy_http_version 1.1".into());
            if keepalive && self.chance(0.8) {
                self.case
                    .location
                    .push("proxy_set_header Connection \"\"".into());
            }
        }
        if self.chance(0.4) {
            let words = [
                "error",
                "timeout",
                "invalid_header",
                "http_500",
                "http_502",
                "http_503",
                "http_504",
                "http_403",
                "http_404",
                "http_429",
                "non_idempotent",
            ];
            let line = if self.chance(0.1) {
                "off".to_string()
            } else {
                let mut chosen: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|_| self.rng.random_bool(0.3))
                    .collect();
                if chosen.is_empty() {
                    chosen.push("error");
                }
                chosen.join(" ")
            };
            self.case
                .location
                .push(format!("proxy_next_upstream {line}"));
        }
        if self.chance(0.2) {
            let tries = self.rng.random_range(1..=3);
            self.case
                .location
                .push(format!("proxy_next_upstream_tries {tries}"));
        }
        if self.chance(0.03) {
            self.case
                .location
                .push("proxy_pass_request_headers off".into());
        }
    }

    /// `proxy_set_header` lines at one level or several: nginx inherits a
    /// level's set only into levels that set none of their own.
    fn headers(&mut self) {
        const SETS: &[&str] = &[
            "Host $host",
            "Host $proxy_host",
            "Host $http_host",
            "Host vhost.test",
            "Host $host:$server_port",
            "X-Real-IP $remote_addr",
            "X-Forwarded-For $proxy_add_x_forwarded_for",
            "X-Forwarded-Proto $scheme",
            "X-Custom one",
            "X-Drop \"\"",
            "Connection \"\"",
            "Connection keep-alive",
            "Accept-Encoding \"\"",
            "X-Uri $request_uri",
        ];
        for level in 0..3 {
            if !self.chance(0.25) {
                continue;
            }
            let n = self.rng.random_range(1..=3);
            for _ in 0..n {
                let line = format!("proxy_set_header {}", self.pick(SETS));
                match level {
                    0 => self.case.http.push(line),
                    1 => self.case.server.push(line),
                    _ => self.case.location.push(line),
                }
            }
        }
    }

    fn behaviour(&mut self, keepalive: bool) -> Behaviour {
        use Behaviour::*;
        let mut choices = vec![
            Refuse,
            Status(500),
            Status(502),
            Status(503),
            Status(504),
            Status(404),
            Status(403),
            Status(429),
            Close,
            Reset,
            Hang,
            Slow(50),
            Slow(600),
            Cut,
            Vhost,
            BadHeader(BadHead::SpaceInName),
            BadHeader(BadHead::NoColon),
            BadHeader(BadHead::BadStatus),
            BadHeader(BadHead::NotHttp),
            BadHeader(BadHead::TooBig),
            BadHeader(BadHead::LengthAndChunked),
            IdleClose(100),
        ];
        if keepalive {
            choices.extend([
                StaleClose,
                StaleReset,
                StaleClose,
                StaleReset,
                IdleClose(100),
            ]);
        }
        self.pick(&choices)
    }

    fn rounds(&mut self) {
        let random = self.case.is_random();
        let keepalive = self.case.upstreams[0]
            .extra
            .iter()
            .any(|e| e.starts_with("keepalive "));
        self.case.client_keepalive = !random && self.chance(0.3);
        let rounds = if random {
            self.rng.random_range(50..=80)
        } else {
            self.rng.random_range(2..=12)
        };
        // Backends' scripts: most answer; some misbehave for a stretch.
        for b in 0..self.case.backends.len() {
            if !self.chance(0.4) {
                continue;
            }
            let bad = self.behaviour(keepalive);
            let from = if self.chance(0.5) {
                0
            } else {
                self.rng.random_range(0..rounds)
            };
            let until = if self.chance(0.6) {
                rounds
            } else {
                self.rng.random_range(from..=rounds)
            };
            let script = (0..rounds)
                .map(|r| {
                    if (from..until).contains(&r) {
                        bad
                    } else {
                        Behaviour::Ok
                    }
                })
                .collect();
            self.case.backends[b].script = script;
        }
        let mut paused = 0;
        for _ in 0..rounds {
            let n = if !random && self.chance(0.25) {
                self.rng.random_range(2..=4)
            } else {
                1
            };
            let requests = (0..n).map(|_| self.request()).collect();
            // nginx counts fail_timeout in whole seconds: 3.2 s is past a
            // 2 s window whatever the phase of the clock.
            let pause_ms = if paused < 3500 && self.chance(0.05) {
                3200
            } else if self.chance(0.1) {
                150
            } else {
                0
            };
            paused += pause_ms;
            self.case.rounds.push(Round { requests, pause_ms });
        }
    }

    fn request(&mut self) -> Request {
        let method = self.pick(&[
            "GET", "GET", "GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE",
        ]);
        let k = self.rng.random_range(0..10);
        let path = match self.rng.random_range(0..4) {
            0 => "/".to_string(),
            1 => format!("/k{k}?a={}", self.rng.random_range(0..3)),
            _ => format!("/k{k}"),
        };
        let host = match self.rng.random_range(0..20) {
            0 => None,
            1..=3 => Some("vhost.test".to_string()),
            4..=5 => Some("Fuzz.Test:8080".to_string()),
            _ => Some("fuzz.test".to_string()),
        };
        let mut headers = Vec::new();
        if self.chance(0.5) {
            headers.push(("X-Key".into(), format!("v{}", self.rng.random_range(0..6))));
        }
        if self.chance(0.1) {
            headers.push(("X-Drop".into(), "1".into()));
        }
        if self.chance(0.1) {
            let n = self.rng.random_range(1..=9);
            headers.push(("X-Forwarded-For".into(), format!("10.0.0.{n}")));
        }
        if self.chance(0.1) {
            headers.push(("Accept-Encoding".into(), "gzip".into()));
        }
        let body = matches!(method, "POST" | "PUT").then(|| "{\"m\":1}".to_string());
        Request {
            method: method.into(),
            path,
            client: self.rng.random_range(0..6),
            host,
            headers,
            body,
        }
    }

    /// A read timeout when an answer can be slow or never come, so a case
    /// takes well under a second per request.
    fn timeouts(&mut self) {
        let slow = self.case.backends.iter().any(|b| {
            b.script
                .iter()
                .any(|s| matches!(s, Behaviour::Hang | Behaviour::Slow(_)))
        });
        if slow {
            self.case.location.push("proxy_read_timeout 250ms".into());
        }
        if self.chance(0.05) {
            self.case
                .location
                .push("proxy_next_upstream_timeout 400ms".into());
        }
        if self.chance(0.1) {
            self.case.location.push("proxy_connect_timeout 1s".into());
        }
    }

    /// Sometimes a line nginx refuses, for the reference must refuse it too.
    fn mistake(&mut self) {
        if !self.chance(0.05) {
            return;
        }
        let wrong = self.pick(&[
            "proxy_set_header Host",
            "gzip maybe",
            "proxy_http_version 2.0",
            "proxy_next_upstream bogus",
            "proxy_next_upstream_tries many",
            "proxy_read_timeout soon",
            "proxy_set_header",
            "proxy_intercept_errors maybe",
            "error_page 502",
        ]);
        self.case.location.push(wrong.into());
    }
}
