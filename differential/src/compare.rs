//! nginx's outcome against the reference's: request by request where the
//! config decides every pick, as distributions (the chi-square of
//! homogeneity) where `random` or the kernel's spread over workers does.

use std::collections::BTreeMap;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::case::Case;
use crate::client::Answer;
use crate::run::{Outcome, Seen};

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Agree,
    /// They differ; the text says where.
    Differ(String),
    /// nginx refuses the config and so does the reference.
    BothRefused(String),
    /// The reference refuses a config nginx runs (allowed: it says what it
    /// does not model), with its line.
    ReferenceRefused(String),
}

/// Below this, two distributions are called different.
pub const SIGNIFICANCE: f64 = 1e-3;

pub fn compare(case: &Case, nginx: &Outcome, reference: &Outcome) -> Verdict {
    match (nginx, reference) {
        (Outcome::Refused(n), Outcome::Refused(_)) => Verdict::BothRefused(n.clone()),
        (Outcome::Refused(n), Outcome::Ran(_)) => Verdict::Differ(format!(
            "nginx refuses the config ({n}); the reference runs it"
        )),
        (Outcome::Ran(_), Outcome::Refused(r)) => Verdict::ReferenceRefused(r.clone()),
        (Outcome::Ran(n), Outcome::Ran(r)) if case.is_random() => distributions(case, n, r),
        (Outcome::Ran(n), Outcome::Ran(r)) => request_by_request(case, n, r),
    }
}

/// One request's outcome as one line: the log's view, then the client's.
pub fn view(seen: &Seen) -> String {
    view_with(seen, true)
}

/// The outcome, with or without the request head a backend echoed.
fn view_with(seen: &Seen, echo: bool) -> String {
    let log = seen.log.as_deref().unwrap_or("(not logged)");
    format!("{log} => {}", answer(&seen.answer, echo))
}

/// The client's view: the status, and whose body (a backend's, with the
/// request head it received, or the proxy's own page).
fn answer(a: &Answer, echo: bool) -> String {
    match a {
        Answer::Nothing => "no answer".to_string(),
        Answer::Hung => "no end to the answer".to_string(),
        Answer::Got {
            status,
            body,
            whole,
        } => {
            let cut = if *whole { "" } else { " (cut short)" };
            let mut from = source(body);
            if !echo {
                from.truncate(from.find(' ').unwrap_or(from.len()));
            }
            format!("{status} {from}{cut}")
        }
    }
}

/// The request head a backend echoed, when the answer came from one.
fn echo(seen: &Seen) -> Option<String> {
    match &seen.answer {
        Answer::Got { body, .. } => {
            let from = source(body);
            from.find(' ').map(|i| from[i..].to_string())
        }
        Answer::Nothing | Answer::Hung => None,
    }
}

/// `b1 [GET / HTTP/1.0; connection: close; host: pool]`, the headers as
/// the backend received them, names lowercased and sorted (their order and
/// case are not what a backend acts on); the proxy's own pages are `proxy`.
fn source(body: &str) -> String {
    let mut lines = body.split('\n');
    let first = lines.next().unwrap_or("");
    let is_backend =
        first.len() > 1 && first.starts_with('b') && first[1..].bytes().all(|b| b.is_ascii_digit());
    if !is_backend {
        return if body.is_empty() {
            "empty".into()
        } else {
            "proxy".into()
        };
    }
    let request_line = lines.next().unwrap_or("");
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let k = k.trim().to_ascii_lowercase();
        // The request's own number differs per request, not per proxy.
        if k != "x-fuzz-id" {
            headers.push(format!("{k}: {}", v.trim()));
        }
    }
    headers.sort();
    let body: Vec<&str> = lines.collect();
    let body = body.join("\n");
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("; body {body:?}")
    };
    format!("{first} [{request_line}; {}{body}]", headers.join("; "))
}

fn request_by_request(case: &Case, nginx: &[Seen], reference: &[Seen]) -> Verdict {
    let mut report = String::new();
    for ((id, _, request), (n, r)) in case.requests().zip(nginx.iter().zip(reference)) {
        let (n, r) = (view(n), view(r));
        if n != r {
            report.push_str(&format!(
                "  request {id} ({} {} from client {}):\n    nginx:     {n}\n    reference: {r}\n",
                request.method, request.path, request.client
            ));
        }
    }
    if report.is_empty() {
        Verdict::Agree
    } else {
        Verdict::Differ(report)
    }
}

/// Where the scheduler or the kernel chose: the chi-square test of
/// homogeneity over the outcomes' counts, and request by request the
/// head a backend received whenever both got one.
fn distributions(case: &Case, nginx: &[Seen], reference: &[Seen]) -> Verdict {
    for ((id, _, request), (n, r)) in case.requests().zip(nginx.iter().zip(reference)) {
        if let (Some(a), Some(b)) = (echo(n), echo(r)) {
            if a != b {
                return Verdict::Differ(format!(
                    "  request {id} ({} {}): the backend received\n    from nginx:     {a}\n    from reference: {b}\n",
                    request.method, request.path
                ));
            }
        }
    }
    let count = |seen: &[Seen]| {
        let mut c: BTreeMap<String, u64> = BTreeMap::new();
        for s in seen {
            *c.entry(view_with(s, false)).or_default() += 1;
        }
        c
    };
    let (n, r) = (count(nginx), count(reference));
    let p = homogeneity(&n, &r);
    if p >= SIGNIFICANCE {
        return Verdict::Agree;
    }
    let mut report =
        format!("  the outcomes' counts differ (chi-square of homogeneity, p = {p:.2e}):\n");
    let keys: std::collections::BTreeSet<&String> = n.keys().chain(r.keys()).collect();
    for k in keys {
        report.push_str(&format!(
            "    nginx {:>4}  reference {:>4}  {k}\n",
            n.get(k).copied().unwrap_or(0),
            r.get(k).copied().unwrap_or(0)
        ));
    }
    Verdict::Differ(report)
}

/// p of the chi-square test of homogeneity of two count tables;
/// categories with fewer than 5 in all are pooled, so the test holds.
pub fn homogeneity(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> f64 {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut rows: Vec<(f64, f64)> = Vec::new();
    let mut rare = (0.0, 0.0);
    for k in keys {
        let (x, y) = (
            a.get(k).copied().unwrap_or(0) as f64,
            b.get(k).copied().unwrap_or(0) as f64,
        );
        if x + y < 5.0 {
            rare.0 += x;
            rare.1 += y;
        } else {
            rows.push((x, y));
        }
    }
    if rare.0 + rare.1 > 0.0 {
        rows.push(rare);
    }
    let (ta, tb) = rows
        .iter()
        .fold((0.0, 0.0), |(p, q), (x, y)| (p + x, q + y));
    if rows.len() < 2 || ta == 0.0 || tb == 0.0 {
        return if ta == tb { 1.0 } else { 0.0 };
    }
    let total = ta + tb;
    let mut chi = 0.0;
    for (x, y) in &rows {
        let row = x + y;
        for (observed, column) in [(x, ta), (y, tb)] {
            let expected = row * column / total;
            chi += (observed - expected).powi(2) / expected;
        }
    }
    let df = (rows.len() - 1) as f64;
    ChiSquared::new(df).map_or(0.0, |d| 1.0 - d.cdf(chi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_same_counts_are_homogeneous_and_swapped_ones_are_not() {
        let a = table(&[("x", 60), ("y", 40)]);
        assert!(homogeneity(&a, &a) > 0.99);
        let b = table(&[("x", 40), ("y", 60)]);
        assert!(homogeneity(&a, &b) < 0.01);
        let c = table(&[("x", 100)]);
        assert!(homogeneity(&a, &c) < SIGNIFICANCE);
    }

    #[test]
    fn an_echo_is_read_as_its_backend_and_sorted_head() {
        let body = "b2\nGET /k HTTP/1.0\nX-Fuzz-Id: 4\nHost: pool\nConnection: close\n\n";
        assert_eq!(
            source(body),
            "b2 [GET /k HTTP/1.0; connection: close; host: pool]"
        );
        assert_eq!(source("<html>502</html>"), "proxy");
        assert_eq!(source("bad gateway\n"), "proxy");
    }
}
