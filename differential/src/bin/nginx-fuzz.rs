//! nginx-fuzz CASES SEED: generated cases through real nginx and the
//! reference balancer, side by side; a disagreement is shrunk and saved.
//!
//!     nginx-fuzz 200 1                      # cases 0..200 of seed 1
//!     nginx-fuzz 2000 7 --save target/fuzz  # keep each shrunk disagreement
//!     nginx-fuzz --replay differential/tests/cases/*.json
//!
//! Prints `N cases, D disagreements`; exit 1 on any disagreement, 2 when
//! it could not run (no nginx, a case that hung the harness).

use std::path::PathBuf;
use std::process::ExitCode;

use differential::case::Case;
use differential::{grammar, run, Checked, Harness};

struct Args {
    cases: u64,
    seed: u64,
    from: u64,
    shrink: bool,
    save: Option<PathBuf>,
    replay: Vec<PathBuf>,
    show: bool,
    /// Print each case (as JSON) instead of running it.
    print: bool,
}

fn usage(why: &str) -> ExitCode {
    eprintln!("nginx-fuzz: error: {why}");
    eprintln!(
        "usage: nginx-fuzz CASES SEED [--from N] [--no-shrink] [--save DIR] [--show] [--print]"
    );
    eprintln!("       nginx-fuzz --replay CASE.json ...");
    ExitCode::from(2)
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        cases: 0,
        seed: 0,
        from: 0,
        shrink: true,
        save: None,
        replay: Vec::new(),
        show: false,
        print: false,
    };
    let mut numbers = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--from" => {
                let v = value("--from")?;
                args.from = v
                    .parse()
                    .map_err(|_| format!("--from: \"{v}\" is not a number"))?;
            }
            "--no-shrink" => args.shrink = false,
            "--print" => args.print = true,
            "--show" => args.show = true,
            "--save" => args.save = Some(PathBuf::from(value("--save")?)),
            "--replay" => {
                args.replay.extend(it.by_ref().map(PathBuf::from));
            }
            n => numbers.push(
                n.parse::<u64>()
                    .map_err(|_| format!("\"{n}\" is not a number of cases or a seed"))?,
            ),
        }
    }
    match (numbers.as_slice(), args.replay.is_empty()) {
        ([cases, seed], true) => {
            args.cases = *cases;
            args.seed = *seed;
        }
        ([], false) => {}
        _ => return Err("give CASES and SEED, or --replay and files".into()),
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let Some(nginx) = run::find_nginx() else {
        eprintln!("nginx-fuzz: error: nginx not found on PATH; install it (apt-get install -y nginx-light)");
        return ExitCode::from(2);
    };
    let work = std::env::temp_dir().join(format!("nginx-fuzz-{}", std::process::id()));
    let harness = Harness::new(nginx, work.clone());
    let cases: Vec<Case> = if args.replay.is_empty() {
        (args.from..args.from + args.cases)
            .map(|i| grammar::generate(args.seed, i))
            .collect()
    } else {
        let mut cases = Vec::new();
        for path in &args.replay {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return usage(&format!("{}: {e}", path.display())),
            };
            match serde_json::from_str::<Case>(&text) {
                Ok(c) => cases.push(c),
                Err(e) => return usage(&format!("{}: {e}", path.display())),
            }
        }
        cases
    };
    if args.print {
        for case in &cases {
            println!("{}", pretty(case));
        }
        return ExitCode::SUCCESS;
    }
    let mut tally = Tally::default();
    for case in &cases {
        let checked = match harness.check(case).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("nginx-fuzz: error: {}: {e}", case.name);
                let _ = std::fs::remove_dir_all(&work);
                return ExitCode::from(2);
            }
        };
        match &checked {
            Checked::Agree => {
                tally.agree += 1;
                if args.show {
                    println!("✓ {}", case.name);
                }
            }
            Checked::BothRefused(why) => {
                tally.both_refused += 1;
                if args.show {
                    println!("✓ {}: both refuse: {why}", case.name);
                }
            }
            Checked::ReferenceRefused(why) => {
                tally.reference_refused += 1;
                println!(
                    "- {}: the reference refuses what nginx runs: {why}",
                    case.name
                );
            }
            Checked::Unstable(report) => {
                tally.unstable += 1;
                println!("? {}: differed once, then agreed:\n{report}", case.name);
            }
            Checked::Differ(report) => {
                tally.differ += 1;
                println!("✗ {}:\n{report}", case.name);
                let mut kept = (case.clone(), report.clone());
                if args.shrink {
                    match harness.shrink(case, 300).await {
                        Ok((small, report)) => {
                            println!("  shrunk to:\n{}", indent(&pretty(&small)));
                            println!("  which differs as:\n{report}");
                            kept = (small, report);
                        }
                        Err(e) => println!("  (shrinking stopped: {e})"),
                    }
                }
                if let Some(dir) = &args.save {
                    save(dir, &kept.0, &kept.1);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "{} cases, {} disagreements ({} agreed, {} refused by both, {} refused by the reference, {} unstable)",
        cases.len(),
        tally.differ,
        tally.agree,
        tally.both_refused,
        tally.reference_refused,
        tally.unstable
    );
    if tally.differ > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Default)]
struct Tally {
    agree: usize,
    differ: usize,
    unstable: usize,
    both_refused: usize,
    reference_refused: usize,
}

fn pretty(case: &Case) -> String {
    serde_json::to_string_pretty(case).unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn save(dir: &std::path::Path, case: &Case, report: &str) {
    let _ = std::fs::create_dir_all(dir);
    let name = case.name.replace(' ', "-");
    let path = dir.join(format!("{name}.json"));
    match std::fs::write(&path, pretty(case) + "\n") {
        Ok(()) => println!("  saved {}", path.display()),
        Err(e) => println!("  cannot save {}: {e}", path.display()),
    }
    let _ = std::fs::write(dir.join(format!("{name}.txt")), report);
}
