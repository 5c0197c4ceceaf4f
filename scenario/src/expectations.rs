//! What a scenario may check and ask for: thresholds on its own backends,
//! and, against an external balancer (`target`), only what lbkit can see
//! from outside: the answers, and the weights the user says it was given.

use std::ops::Range;

use analyzer::Threshold;

use super::spec::{Backend, Balancer, Engine, Loaded, Scenario, SpecError};

/// What is wrong with a threshold on this scenario: a node that is not
/// one of its backends, or a figure only a log holds when the scenario
/// tests an external balancer (whose log lbkit does not read).
pub(super) fn threshold_problem(s: &Scenario, names: &[String], t: &Threshold) -> Option<String> {
    if let Some(node) = &t.node {
        if !names.contains(node) {
            return Some(format!(
                "'{}': {{node={node}}}: no backend {node:?} ({})",
                t.source,
                names.join(", ")
            ));
        }
    }
    if s.balancer.target.is_some() && t.metric.needs_log() {
        return Some(format!(
            "'{}': {} is read from the balancer's access log, and a target run has none (lbkit sees only the answers)",
            t.source,
            t.metric.name()
        ));
    }
    None
}

/// `--threshold` given with `--scenario`: the same rules as the file's own.
pub fn check_extra(loaded: &Loaded, thresholds: &[Threshold]) -> Result<(), SpecError> {
    for t in thresholds {
        if let Some(why) = threshold_problem(&loaded.scenario, &loaded.names, t) {
            return Err(loaded.error_at(None, format!("--threshold {why}")));
        }
    }
    Ok(())
}

/// Some backend says what weight the balancer gives it.
pub fn weighted(s: &Scenario) -> bool {
    s.backends.iter().any(|b| b.get_ref().weight.is_some())
}

/// With `target`, an external balancer's own config decides how it
/// balances: keys that would configure lbkit's balancer are refused rather
/// than silently unused. `weight` stays: it is the share to expect.
pub(super) fn target_problems(s: &Scenario) -> Result<(), (Option<Range<usize>>, String)> {
    let why = "with [balancer] target, the external balancer's own config decides this";
    let b = &s.balancer;
    let set = [
        ("config", b.config.is_some()),
        ("engine", b.engine.is_some()),
        ("binary", b.binary.is_some()),
        ("upstream", b.upstream.is_some()),
    ];
    if let Some(key) = first_set(balancing_keys(b).iter().chain(&set)) {
        return Err((None, format!("[balancer] {key}: {why}")));
    }
    for backend in &s.backends {
        let k = backend.get_ref();
        let server = [("server", k.server.is_some())];
        if let Some(key) = first_set(server_keys(k).iter().chain(&server)) {
            return Err((
                Some(backend.span()),
                format!("[[backend]] {key}: {why}; only weight is used, as the share to expect"),
            ));
        }
    }
    for e in &s.events {
        if e.get_ref().action == "weight" {
            return Err((
                Some(e.span()),
                format!("[[event]] action = \"weight\": {why}; lbkit cannot change its weights"),
            ));
        }
    }
    Ok(())
}

/// With `[balancer] config`, the user's file decides how the balancer
/// balances, so keys that would configure it are refused rather than
/// silently unused; the keys that only make sense with a config, or with
/// nginx, are refused without one.
pub(super) fn config_problems(
    s: &Scenario,
    engines: &[Engine],
) -> Result<(), (Option<Range<usize>>, String)> {
    let b = &s.balancer;
    let nginx = engines.contains(&Engine::Nginx);
    let haproxy = engines.contains(&Engine::Haproxy);
    if b.binary.is_some() && !nginx && !haproxy {
        return Err((
            None,
            "[balancer] binary: it names the nginx or haproxy to run; add engine = \"nginx\" (or \"haproxy\")".into(),
        ));
    }
    if haproxy && (engines.len() > 1 || b.config.is_none()) {
        return Err((
            None,
            "[balancer] engine \"haproxy\": it runs a haproxy.cfg given as [balancer] config, alone (the reference and nginx read nginx.conf)".into(),
        ));
    }
    if haproxy {
        if let Some(e) = s.events.iter().find(|e| e.get_ref().action == "weight") {
            return Err((
                Some(e.span()),
                "[[event]] action = \"weight\": lbkit changes HAProxy's weights only in its config; run this scenario on engine = \"reference\"".into(),
            ));
        }
    }
    if b.config.is_none() {
        if b.upstream.is_some() {
            return Err((
                None,
                "[balancer] upstream: it picks an upstream of [balancer] config; there is none"
                    .into(),
            ));
        }
        if let Some(k) = s.backends.iter().find(|k| k.get_ref().server.is_some()) {
            return Err((
                Some(k.span()),
                "[[backend]] server: it names a server line of [balancer] config; there is none"
                    .into(),
            ));
        }
    } else {
        let why = "with [balancer] config, the config decides this";
        if let Some(key) = first_set(&balancing_keys(b)) {
            return Err((None, format!("[balancer] {key}: {why}")));
        }
        for backend in &s.backends {
            let k = backend.get_ref();
            let weight = [("weight", k.weight.is_some())];
            if let Some(key) = first_set(weight.iter().chain(&server_keys(k))) {
                return Err((
                    Some(backend.span()),
                    format!("[[backend]] {key}: {why} (its server line's parameters)"),
                ));
            }
        }
    }
    if !nginx {
        return Ok(());
    }
    if let Some(m) = b.method.as_deref().filter(|m| m.starts_with("least_time")) {
        return Err((
            None,
            format!("[balancer] method {m:?}: open-source nginx has no least_time (it is NGINX Plus's); run this scenario on engine = \"reference\""),
        ));
    }
    for e in &s.events {
        if e.get_ref().action == "weight" {
            return Err((
                Some(e.span()),
                "[[event]] action = \"weight\": nginx changes weights only on a reload; run this scenario on engine = \"reference\"".into(),
            ));
        }
    }
    Ok(())
}

/// The `[balancer]` keys that say how lbkit's balancer balances, and
/// whether each is set.
fn balancing_keys(b: &Balancer) -> [(&'static str, bool); 6] {
    [
        ("method", b.method.is_some()),
        ("next_upstream", b.next_upstream.is_some()),
        ("tries", b.tries.is_some()),
        ("timeout", b.timeout.is_some()),
        ("connect_timeout", b.connect_timeout.is_some()),
        ("route", !b.routes.is_empty()),
    ]
}

/// A backend's `server` line parameters but its weight, and whether each
/// is set.
fn server_keys(k: &Backend) -> [(&'static str, bool); 6] {
    [
        ("backup", k.backup),
        ("down", k.down),
        ("max_fails", k.max_fails.is_some()),
        ("fail_timeout", k.fail_timeout.is_some()),
        ("max_conns", k.max_conns.is_some()),
        ("pool", k.pool.is_some()),
    ]
}

/// The first key that is set.
fn first_set<'a>(keys: impl IntoIterator<Item = &'a (&'static str, bool)>) -> Option<&'static str> {
    keys.into_iter().find(|(_, on)| *on).map(|(key, _)| *key)
}
