//! The reference balancer against real nginx, on cases nobody wrote down:
//! a grammar of upstream configs, backend behaviours over time and client
//! requests ([`grammar`]); each case run through real nginx and through
//! the reference on the same loopback backends ([`run`]); compared request
//! by request, or as distributions where nginx's own choice is random
//! ([`compare`]); a disagreement shrunk to a minimal case ([`shrink`]) and
//! kept as a regression test (`tests/cases/`).
//!
//! ```no_run
//! # async fn f() -> Result<(), differential::run::RunError> {
//! let nginx = differential::run::find_nginx().expect("nginx installed");
//! let harness = differential::Harness::new(nginx, std::env::temp_dir().join("fuzz"));
//! let case = differential::grammar::generate(1, 0);
//! let verdict = harness.check(&case).await?;
//! println!("{verdict:?}");
//! # Ok(()) }
//! ```

pub mod backend;
pub mod case;
pub mod client;
pub mod compare;
pub mod grammar;
pub mod run;
pub mod shrink;

use std::path::PathBuf;

use case::Case;
use compare::Verdict;
use run::{Proxy, RunError};

/// Runs cases through both proxies in a scratch directory of its own.
pub struct Harness {
    nginx: Proxy,
    work: PathBuf,
}

/// A verdict, confirmed: a difference is run a second time on both sides.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    Agree,
    /// Differed twice; the report of the first time.
    Differ(String),
    /// Differed once, then agreed: timing, not the config, decided it.
    Unstable(String),
    BothRefused(String),
    ReferenceRefused(String),
}

impl Harness {
    pub fn new(nginx: PathBuf, work: PathBuf) -> Harness {
        Harness {
            nginx: Proxy::Nginx(nginx),
            work,
        }
    }

    /// One run on each side, compared.
    pub async fn once(&self, case: &Case) -> Result<Verdict, RunError> {
        let (nginx, ports) = run::run(&self.nginx, case, &self.work.join("nginx"), None).await?;
        let dir = self.work.join("reference");
        let (reference, _) = run::run(&Proxy::Reference, case, &dir, Some(&ports)).await?;
        Ok(compare::compare(case, &nginx, &reference))
    }

    /// A verdict, with a difference confirmed by a second pair of runs.
    pub async fn check(&self, case: &Case) -> Result<Checked, RunError> {
        Ok(match self.once(case).await? {
            Verdict::Agree => Checked::Agree,
            Verdict::BothRefused(why) => Checked::BothRefused(why),
            Verdict::ReferenceRefused(why) => Checked::ReferenceRefused(why),
            // A difference must come back the same: one that moves
            // between runs was timing's, not the config's.
            Verdict::Differ(report) => match self.once(case).await? {
                Verdict::Differ(again) if again == report || case.is_random() => {
                    Checked::Differ(report)
                }
                _ => Checked::Unstable(report),
            },
        })
    }

    /// The smallest case found that still differs, trying at most `budget`
    /// candidates; each kept one is confirmed.
    pub async fn shrink(&self, case: &Case, budget: usize) -> Result<(Case, String), RunError> {
        let mut best = case.clone();
        let mut report = match self.check(case).await? {
            Checked::Differ(r) => r,
            _ => return Ok((best, String::new())),
        };
        let mut tried = 0;
        'smaller: loop {
            for candidate in shrink::candidates(&best) {
                if tried >= budget {
                    break 'smaller;
                }
                tried += 1;
                if let Verdict::Differ(_) = self.once(&candidate).await? {
                    if let Checked::Differ(r) = self.check(&candidate).await? {
                        best = candidate;
                        report = r;
                        continue 'smaller;
                    }
                }
            }
            break;
        }
        Ok((best, report))
    }
}
