//! A verdict needs evidence. A CI gate that passes on an empty log, on
//! lines it could not read, or on a check it could not compute is worse
//! than no gate, so each of those is an error (exit 2) with one line that
//! says what was missing and how to fix it. Pure: the callers (analyzer,
//! loadgen, scenarios) decide what to print.

use crate::check::Check;
use crate::formats::{self, Chosen};
use crate::summary::Summary;
use crate::threshold::Threshold;

/// What a verdict lacked, in the words the user should read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Missing(pub String);

impl Missing {
    fn new(why: impl Into<String>) -> Missing {
        Missing(why.into())
    }
}

/// Some line was read, and some line was in the format. `inputs` names
/// what was read; `first_lines` are the first lines of the first input,
/// to show and to guess the right format from.
pub fn lines_read(
    summary: &Summary,
    format: Option<&Chosen>,
    first_lines: &[String],
    inputs: &str,
) -> Result<(), Missing> {
    if summary.lines == 0 {
        return Err(Missing(format!(
            "{inputs}: no lines to read (empty); point the analyzer at the access log the balancer wrote"
        )));
    }
    if summary.malformed < summary.lines {
        return Ok(());
    }
    let name = format.map_or("the format", |c| c.name.as_str());
    let first = first_lines
        .first()
        .map_or(String::new(), |l| formats::clip(l, 100));
    let sample: Vec<&str> = first_lines.iter().map(String::as_str).collect();
    let hint = match formats::detect(&sample) {
        Ok(c) if format.is_none_or(|f| f.name != c.name) => format!("try --format {}", c.name),
        _ => "name the format with --format, or give nginx's log_format with --log-format '...'"
            .to_string(),
    };
    Err(Missing(format!(
        "no line of {inputs} is in format {name} (the first: {first:?}); {hint}"
    )))
}

/// The node `name` means among those `seen`: itself, or the one node it is
/// the port (`18001`) or the host (`backend-1`) of. `Ok(None)`: no such
/// node; an error when it could be several.
pub fn resolve_node(name: &str, seen: &[&str]) -> Result<Option<String>, Missing> {
    if seen.contains(&name) {
        return Ok(Some(name.to_string()));
    }
    let mut candidates: Vec<&str> = Vec::new();
    for n in seen.iter().copied() {
        // `tcp://10.0.0.1:80`, `http://...`: the address after a scheme.
        let addr = n.rsplit_once("://").map_or(n, |(_, a)| a);
        let fits = addr == name
            || addr.rsplit_once(':').is_some_and(|(host, port)| {
                port == name || host == name || host.trim_matches(['[', ']']) == name
            });
        // The same node may be listed twice (seen and expected).
        if fits && !candidates.contains(&n) {
            candidates.push(n);
        }
    }
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(Missing::new(format!(
            "{name} could be any of {}: name the node as the log does",
            many.join(", ")
        ))),
    }
}

/// `expected` with each name resolved to a node seen; names no node
/// matches stay as given (they served nothing: a breach, not a typo),
/// unless none matches, which is a usage error naming the nodes seen.
pub fn resolve_expected(
    flag: &str,
    expected: &[(String, f64)],
    seen: &[&str],
) -> Result<Vec<(String, f64)>, Missing> {
    let mut out = Vec::with_capacity(expected.len());
    let mut matched = 0;
    for (name, w) in expected {
        let node = resolve_node(name, seen).map_err(|m| Missing(format!("{flag}: {m}")))?;
        matched += usize::from(node.is_some());
        out.push((node.unwrap_or_else(|| name.clone()), *w));
    }
    if matched == 0 && !seen.is_empty() {
        let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Missing(format!(
            "{flag}: none of {} is a node that answered; the nodes seen: {}",
            names.join(", "),
            seen.join(", ")
        )));
    }
    Ok(out)
}

/// `thresholds` with each `{node=...}` resolved against the nodes `known`
/// (seen, or expected); one naming no such node is a usage error.
pub fn resolve_thresholds(
    thresholds: &[Threshold],
    known: &[&str],
) -> Result<Vec<Threshold>, Missing> {
    thresholds
        .iter()
        .map(|t| {
            let Some(name) = &t.node else {
                return Ok(t.clone());
            };
            let what = |m: &str| Missing(format!("threshold '{}': {m}", t.source));
            match resolve_node(name, known).map_err(|m| what(&m.0))? {
                Some(node) => Ok(Threshold {
                    node: Some(node),
                    ..t.clone()
                }),
                None => Err(what(&format!(
                    "no node {name}; the nodes are {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))),
            }
        })
        .collect()
}

/// Nothing to check is not a pass.
pub fn something_checked(checks: &[Check], what: &str) -> Result<(), Missing> {
    if checks.is_empty() {
        Err(Missing(format!("{what} checks nothing")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: [&str; 3] = ["127.0.0.1:18001", "127.0.0.1:18002", "10.0.0.5:18001"];

    #[test]
    fn a_port_or_host_names_the_one_node_it_fits() {
        let seen = &SEEN[..2];
        assert_eq!(
            resolve_node("18002", seen).unwrap().unwrap(),
            "127.0.0.1:18002"
        );
        assert_eq!(
            resolve_node("127.0.0.1:18001", &SEEN).unwrap().unwrap(),
            "127.0.0.1:18001"
        );
        assert_eq!(
            resolve_node("10.0.0.5", &SEEN).unwrap().unwrap(),
            "10.0.0.5:18001"
        );
        let e = resolve_node("18001", &SEEN).unwrap_err().0;
        assert!(e.contains("127.0.0.1:18001, 10.0.0.5:18001"), "{e}");
        assert_eq!(resolve_node("9999", &SEEN).unwrap(), None);
        let envoy = ["tcp://10.0.2.1:80"];
        assert_eq!(
            resolve_node("10.0.2.1:80", &envoy).unwrap().unwrap(),
            "tcp://10.0.2.1:80"
        );
    }

    #[test]
    fn expected_names_must_meet_the_log_somewhere() {
        let w = |a: &str, b: &str| vec![(a.to_string(), 3.0), (b.to_string(), 2.0)];
        let seen = &SEEN[..2];
        let got = resolve_expected("--expect-weights", &w("18001", "18002"), seen).unwrap();
        assert_eq!(got, w("127.0.0.1:18001", "127.0.0.1:18002"));
        // One name unmatched: that node served nothing, which the shares
        // check reports as a breach.
        let got = resolve_expected("--expect-weights", &w("18001", "18009"), seen).unwrap();
        assert_eq!(got[1].0, "18009");
        let e = resolve_expected("--expect-weights", &w("a", "b"), seen)
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "--expect-weights: none of a, b is a node that answered; the nodes seen: 127.0.0.1:18001, 127.0.0.1:18002"
        );
    }

    #[test]
    fn thresholds_on_unknown_nodes_are_refused() {
        let t = [Threshold::parse("p(95){node=18002}<1s").unwrap()];
        let got = resolve_thresholds(&t, &SEEN[..2]).unwrap();
        assert_eq!(got[0].node.as_deref(), Some("127.0.0.1:18002"));
        let t = [Threshold::parse("requests{node=typo}==0").unwrap()];
        let e = resolve_thresholds(&t, &SEEN[..2]).unwrap_err().0;
        assert!(
            e.starts_with("threshold 'requests{node=typo}==0': no node typo"),
            "{e}"
        );
    }

    #[test]
    fn no_check_at_all_is_missing_evidence() {
        let check = |measured| Check {
            name: "p(95)<1s".into(),
            ok: false,
            measured,
            line: String::new(),
        };
        assert!(something_checked(&[check(Some(0.2))], "this run").is_ok());
        let e = something_checked(&[], "this scenario").unwrap_err();
        assert_eq!(e.0, "this scenario checks nothing");
    }
}
