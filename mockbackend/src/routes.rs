//! Which endpoint a request is for, from its method and path alone. Pure, so the
//! whole routing table is tested without a socket.

use hyper::Method;

/// Every endpoint a port serves; also the `path` label of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Seed 003's `GET` reply naming the port, for any path not listed below.
    Text,
    Chat,
    Completions,
    ChatCompletions,
    TextCompletions,
    Models,
    Health,
    Ready,
    Metrics,
    Load,
    MockState,
    MockControl,
    /// `POST` to a path that is not an API.
    NotFound,
}

impl Route {
    pub const COUNT: usize = 13;
    pub const ALL: [Route; Route::COUNT] = [
        Route::Text,
        Route::Chat,
        Route::Completions,
        Route::ChatCompletions,
        Route::TextCompletions,
        Route::Models,
        Route::Health,
        Route::Ready,
        Route::Metrics,
        Route::Load,
        Route::MockState,
        Route::MockControl,
        Route::NotFound,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Route::Text => "other",
            Route::Chat => "/chat",
            Route::Completions => "/completions",
            Route::ChatCompletions => "/v1/chat/completions",
            Route::TextCompletions => "/v1/completions",
            Route::Models => "/v1/models",
            Route::Health => "/health",
            Route::Ready => "/ready",
            Route::Metrics => "/metrics",
            Route::Load => "/load",
            Route::MockState => "/_mock (read)",
            Route::MockControl => "/_mock (control)",
            Route::NotFound => "unknown",
        }
    }

    /// Requests that stand for real work: they take a capacity slot and get the
    /// profile's latency and injected errors. Health, metrics and control do not,
    /// so a probe can still see a busy or failing node.
    pub fn is_work(self) -> bool {
        matches!(
            self,
            Route::Text
                | Route::Chat
                | Route::Completions
                | Route::ChatCompletions
                | Route::TextCompletions
        )
    }

    pub fn is_control(self) -> bool {
        matches!(self, Route::MockState | Route::MockControl)
    }
}

/// A routed request: the endpoint, and `Some(allow)` when the method is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    pub route: Route,
    pub not_allowed: Option<&'static str>,
}

pub fn route(method: &Method, path: &str) -> Routed {
    let read = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let (route, ok, allow) = match path {
        "/chat" => (Route::Chat, post, "POST"),
        "/completions" => (Route::Completions, post, "POST"),
        "/v1/chat/completions" => (Route::ChatCompletions, post, "POST"),
        "/v1/completions" => (Route::TextCompletions, post, "POST"),
        "/v1/models" => (Route::Models, read, "GET, HEAD"),
        p if p.starts_with("/v1/models/") => (Route::Models, read, "GET, HEAD"),
        "/health" | "/healthz" => (Route::Health, read, "GET, HEAD"),
        "/ready" => (Route::Ready, read, "GET, HEAD"),
        "/metrics" => (Route::Metrics, read, "GET, HEAD"),
        "/load" => (Route::Load, read, "GET, HEAD"),
        p if p == "/_mock" || p.starts_with("/_mock/") => {
            let route = if post {
                Route::MockControl
            } else {
                Route::MockState
            };
            (route, read || post, "GET, HEAD, POST")
        }
        _ if post => (Route::NotFound, true, ""),
        _ => (Route::Text, read, "GET, HEAD, POST"),
    };
    Routed {
        route,
        not_allowed: (!ok).then_some(allow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Routed {
        route(&Method::from_bytes(method.as_bytes()).unwrap(), path)
    }

    #[test]
    fn the_routing_table() {
        let ok = |route| Routed {
            route,
            not_allowed: None,
        };
        assert_eq!(r("GET", "/"), ok(Route::Text));
        assert_eq!(r("GET", "/anything/at/all"), ok(Route::Text));
        assert_eq!(r("HEAD", "/"), ok(Route::Text));
        assert_eq!(r("POST", "/chat"), ok(Route::Chat));
        assert_eq!(r("POST", "/completions"), ok(Route::Completions));
        assert_eq!(
            r("POST", "/v1/chat/completions"),
            ok(Route::ChatCompletions)
        );
        assert_eq!(r("POST", "/v1/completions"), ok(Route::TextCompletions));
        assert_eq!(r("GET", "/v1/models"), ok(Route::Models));
        assert_eq!(r("GET", "/v1/models/mock-model"), ok(Route::Models));
        assert_eq!(r("GET", "/health"), ok(Route::Health));
        assert_eq!(r("GET", "/healthz"), ok(Route::Health));
        assert_eq!(r("GET", "/ready"), ok(Route::Ready));
        assert_eq!(r("GET", "/metrics"), ok(Route::Metrics));
        assert_eq!(r("GET", "/load"), ok(Route::Load));
        assert_eq!(r("GET", "/_mock/state"), ok(Route::MockState));
        assert_eq!(r("POST", "/_mock/down"), ok(Route::MockControl));
        assert_eq!(r("POST", "/nope"), ok(Route::NotFound));
    }

    #[test]
    fn wrong_methods_name_what_is_allowed() {
        assert_eq!(r("GET", "/chat").not_allowed, Some("POST"));
        assert_eq!(r("POST", "/health").not_allowed, Some("GET, HEAD"));
        assert_eq!(r("DELETE", "/").not_allowed, Some("GET, HEAD, POST"));
        assert_eq!(r("PUT", "/v1/models").route, Route::Models);
    }

    #[test]
    fn all_lists_every_route_once() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i);
        }
    }
}
