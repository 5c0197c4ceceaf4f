//! A scenario's verdict: the shares it should show (by hand, what the
//! in-process balancer's config promises, or the weights an external one
//! was given), its thresholds on the balancer's log and what clients saw,
//! and what evidence was missing.

use analyzer::evidence::Missing;
use analyzer::expect::{self, Expectation};
use analyzer::Check;
use analyzer::Judged;
use analyzer::Summary;
use engine::Pacing;
use engine::{Checks, Ran};
use engine::{Judgement, RunFigures};

use crate::expectations;
use crate::figures::Figures;
use crate::spec::Loaded;
use crate::stage::{OwnRead, Stage};

/// The checks, and what the report says about where their figures came from.
pub struct Verdict {
    pub judgement: Judgement,
    pub notes: Vec<String>,
    pub expected: Option<Vec<(String, f64)>>,
}

/// What a run left to judge.
pub struct Evidence<'a> {
    /// What clients saw, under the plan's pacing.
    pub ran: &'a Ran,
    pub pacing: Pacing,
    /// The balancer's log; none for an external balancer.
    pub log: Option<&'a Summary>,
    /// When revived backends came back: index, Unix seconds.
    pub revived: &'a [(usize, f64)],
}

/// Judges a run of `loaded` on `stage` by the file's expectations and the
/// command line's extra thresholds.
pub fn judge(loaded: &Loaded, stage: &Stage, run: &Evidence<'_>, extra: &Checks) -> Verdict {
    let s = &loaded.scenario;
    let summary = run.log;
    // What the shares should be: by hand, or what the in-process
    // balancer's config promises, or what the backends' weights say an
    // external balancer was configured with.
    let by_name = |weights: Vec<(&String, f64)>| {
        weights
            .into_iter()
            .map(|(name, weight)| {
                let i = loaded
                    .names
                    .iter()
                    .position(|n| n == name)
                    .expect("checked");
                (stage.addrs[i].clone(), weight)
            })
            .collect::<Vec<_>>()
    };
    let by_hand = match (&s.expect.weights, &s.balancer.target) {
        (Some(w), _) => Some(by_name(w.iter().map(|(n, w)| (n, *w)).collect())),
        (None, Some(_)) if s.expect.shares == Some(true) || expectations::weighted(s) => {
            Some(by_name(
                loaded
                    .names
                    .iter()
                    .zip(&s.backends)
                    .map(|(n, b)| (n, f64::from(b.get_ref().weight.unwrap_or(1))))
                    .collect(),
            ))
        }
        (None, _) => None,
    };
    let want_shares = match &s.balancer.target {
        Some(_) => s.expect.shares.unwrap_or(by_hand.is_some()),
        None => s.expect.shares.unwrap_or(s.events.is_empty()),
    };
    let mut notes = stage.notes.clone();
    // The upstream under test: the one the config's `location /` proxies
    // to (or [balancer] upstream), else the scenario's only pool.
    let under_test = stage.config.as_ref().and_then(|c| match &stage.upstream {
        Some(name) => c.upstreams.iter().find(|u| &u.name == name),
        None if c.upstreams.len() == 1 => c.upstreams.first(),
        None => None,
    });
    let from = match &s.balancer.config {
        Some(file) => format!("[balancer] config {}", file.get_ref()),
        None => "the scenario's [balancer]".to_string(),
    };
    let promised: Option<Expectation> = match (&by_hand, under_test, summary) {
        (None, Some(upstream), Some(sum)) if want_shares => {
            let e = expect::from_upstream(upstream, &from, sum);
            notes.push(e.describe());
            Some(e)
        }
        _ => None,
    };
    match (&by_hand, &s.expect.weights) {
        (Some(_), Some(_)) => notes.push("Expected shares from the scenario's [expect] weights.".into()),
        (Some(_), None) => notes.push(
            "Expected shares from the [[backend]] weights the external balancer is configured with, judged from the X-Upstream (or X-Backend) header of each answer.".into(),
        ),
        _ => {}
    }
    let expected = by_hand
        .as_deref()
        .or(promised.as_ref().and_then(|e| e.shares()));
    let figures = Figures {
        client: RunFigures {
            stats: &run.ran.stats,
            elapsed: run.ran.elapsed,
            pacing: run.pacing,
            expected,
        },
        log: summary.map(|summary| Judged { summary, expected }),
        names: &loaded.names,
        addrs: &stage.addrs,
        revived: run.revived,
    };
    let fairness = if want_shares && expected.is_some() {
        match summary {
            Some(sum) => sum.fairness(expected),
            None => figures.client.fairness(),
        }
    } else {
        None
    };
    let thresholds: Vec<_> = s
        .expect
        .thresholds
        .iter()
        .map(|t| t.get_ref().0.clone())
        .chain(extra.thresholds.iter().cloned())
        .collect();
    let shares_found_no_node = want_shares && expected.is_some() && fairness.is_none();
    let mut checks = analyzer::judge(fairness, &thresholds, &figures);
    if let Some(ours) = summary {
        for own in &stage.own_read {
            match own_log(own, ours) {
                Ok(check) => checks.push(check),
                Err(note) => notes.push(note),
            }
        }
    }
    let no_answer = engine::no_answer(&run.ran.stats);
    let missing = if no_answer.is_some() {
        None
    } else if checks.is_empty() {
        Some(
            "this scenario checks nothing: add [expect] thresholds, or shares = true with weights"
                .to_string(),
        )
    } else if shares_found_no_node {
        Some(
            "the shares check found no node: no answer or log line named the node that served it"
                .to_string(),
        )
    } else {
        thresholds
            .iter()
            .find(|t| t.evaluate(&figures).measured.is_none())
            .map(|t| {
                format!(
                    "threshold '{}' cannot be computed: {}",
                    t.source,
                    figures.why_unmeasured(t)
                )
            })
            .or_else(|| {
                checks
                    .iter()
                    .find(|c| c.measured.is_some_and(f64::is_nan))
                    .map(|c| format!("{}: cannot be computed from these counts", c.name))
            })
    };
    if let Some(line) = &no_answer {
        checks.push(Check::no_answer(line));
    }
    if let Some(why) = &missing {
        checks.push(Check::no_evidence(why));
    }

    Verdict {
        judgement: Judgement {
            checks,
            no_answer,
            missing: missing.map(Missing),
        },
        notes,
        expected: expected.map(<[_]>::to_vec),
    }
}

/// nginx's own access log against lbkit's, written by the same nginx for
/// the same requests: the same per-node counts, every line read. A log
/// whose format names no upstream is a note, not a check.
fn own_log(own: &OwnRead, ours: &Summary) -> Result<Check, String> {
    let name = format!("own access_log {}", own.log.written);
    let fail = |why: String| Check {
        name: name.clone(),
        ok: false,
        measured: None,
        line: format!("✗ nginx's own access_log {}: {why}", own.log.written),
    };
    let (format, sum) = match &own.read {
        Ok(read) => read,
        Err(why) => return Ok(fail(format!("cannot be read: {why}"))),
    };
    if sum.malformed > 0 {
        return Ok(fail(format!(
            "{} of {} lines do not read as {format}",
            sum.malformed, sum.lines
        )));
    }
    if sum.nodes.is_empty() {
        return Err(format!(
            "nginx's own access_log {} ({format}): {} lines; its format logs no $upstream_addr, so its nodes are not compared.",
            own.log.written, sum.lines
        ));
    }
    let counts = |s: &Summary| -> Vec<(String, u64)> {
        s.nodes
            .iter()
            .map(|(n, t)| (n.clone(), t.requests))
            .collect()
    };
    let (theirs, lbkit) = (counts(sum), counts(ours));
    if theirs != lbkit {
        let show = |c: &[(String, u64)]| {
            c.iter()
                .map(|(n, k)| format!("{n}={k}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Ok(fail(format!(
            "per-node counts {} differ from lbkit's log ({})",
            show(&theirs),
            show(&lbkit)
        )));
    }
    Ok(Check {
        name,
        ok: true,
        measured: Some(sum.lines as f64),
        line: format!(
            "✓ nginx's own access_log {} ({format}): {} lines, the same per-node counts as lbkit's log",
            own.log.written, sum.lines
        ),
    })
}
