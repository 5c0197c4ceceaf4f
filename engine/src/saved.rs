//! A run as `--json` keeps it for `loadgen merge`: every count and every
//! histogram (HdrHistogram's V2 encoding, so adding them is exact), what the
//! run was (target, request, pacing), its shard and its span by the wall
//! clock, and the checks it was asked for. Shards of one run read back and
//! added give the figures one process making the whole load would have.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Target};
use crate::schedule::{Arrival, Pacing};
use crate::shard::Shard;
use crate::stats::Stats;
use crate::streams::Slo;

/// Bumped when the block changes in a way an older loadgen would misread.
pub const FORMAT: u32 = 1;

/// What must be the same in every run merged: the load they are parts of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// https:// (files saved before TLS have none: http).
    #[serde(default)]
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub method: String,
    /// The body's length, when there is one.
    pub body_bytes: Option<u64>,
    pub keepalive: bool,
    /// The whole run's rate (each shard sends every Nth of its arrivals).
    pub rate: Option<f64>,
    pub arrival: Arrival,
    /// The whole run's requests, and its time limit.
    pub requests: u64,
    pub time_limit: Option<Duration>,
    pub slo: Option<Slo>,
    pub node_headers: Vec<String>,
    pub node_field: Option<String>,
    pub variable_length: bool,
    /// How many shards make the run (1 when it was not sharded).
    pub shards: u32,
}

impl Settings {
    pub fn of(plan: &Plan) -> Settings {
        Settings {
            tls: plan.target.tls,
            host: plan.target.host.clone(),
            port: plan.target.port,
            path: plan.target.path.clone(),
            method: plan.method.to_string(),
            body_bytes: plan.body.as_ref().map(|b| b.len() as u64),
            keepalive: plan.keepalive,
            rate: match plan.pacing {
                Pacing::Rate(r) => Some(r),
                Pacing::Closed => None,
            },
            arrival: plan.arrival,
            requests: plan.requests,
            time_limit: plan.time_limit,
            slo: plan.slo.clone(),
            node_headers: plan.node_headers.iter().map(|h| h.to_string()).collect(),
            node_field: plan.node_field.clone(),
            variable_length: plan.variable_length,
            shards: plan.shard.map_or(1, |s| s.count),
        }
    }

    /// The first setting in which `other` differs, in words.
    pub fn differs(&self, other: &Settings) -> Option<String> {
        let target = |s: &Settings| {
            let scheme = crate::plan::scheme(s.tls);
            format!("{scheme}://{}:{}{}", s.host, s.port, s.path)
        };
        let pairs: [(&str, String, String); 9] = [
            ("target", target(self), target(other)),
            ("method", self.method.clone(), other.method.clone()),
            (
                "body",
                format!("{:?}", self.body_bytes),
                format!("{:?}", other.body_bytes),
            ),
            (
                "-k",
                self.keepalive.to_string(),
                other.keepalive.to_string(),
            ),
            (
                "--rate",
                format!("{:?}", self.rate),
                format!("{:?}", other.rate),
            ),
            (
                "--arrival",
                format!("{:?}", self.arrival),
                format!("{:?}", other.arrival),
            ),
            ("-n", self.requests.to_string(), other.requests.to_string()),
            (
                "-t",
                format!("{:?}", self.time_limit),
                format!("{:?}", other.time_limit),
            ),
            ("shards", self.shards.to_string(), other.shards.to_string()),
        ];
        if let Some((what, a, b)) = pairs.into_iter().find(|(_, a, b)| a != b) {
            return Some(format!("{what} differs: {a} and {b}"));
        }
        let rest = (
            &self.slo,
            &self.node_headers,
            &self.node_field,
            self.variable_length,
        );
        let theirs = (
            &other.slo,
            &other.node_headers,
            &other.node_field,
            other.variable_length,
        );
        (rest != theirs).then(|| "--slo, --node-header, --node-field or -l differs".into())
    }

    /// A plan that reports the merged run as ab would have reported the
    /// whole: the target, the request, the pacing and all shards'
    /// connections.
    pub fn plan(&self, concurrency: usize) -> Plan {
        let mut plan = Plan::to(([127, 0, 0, 1], self.port).into());
        plan.target = Target {
            tls: self.tls,
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
        };
        plan.concurrency = concurrency;
        plan.method = self.method.parse().unwrap_or(hyper::Method::GET);
        plan.body = self.body_bytes.map(|_| bytes::Bytes::new());
        plan.keepalive = self.keepalive;
        plan.pacing = self.rate.map_or(Pacing::Closed, Pacing::Rate);
        plan.arrival = self.arrival;
        plan.requests = self.requests;
        plan.time_limit = self.time_limit;
        plan.slo = self.slo.clone();
        plan.node_headers = (self.node_headers.iter())
            .filter_map(|h| h.parse().ok())
            .collect();
        plan.node_field = self.node_field.clone();
        plan.variable_length = self.variable_length;
        plan
    }
}

/// The checks a run was asked for, as given: a merge judges the whole by
/// them unless its own flags say otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Asked {
    pub thresholds: Vec<String>,
    pub expect_weights: Option<String>,
}

/// One run, whole, as `--json` writes it under `run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub format: u32,
    pub version: String,
    /// This run's shard, `[index, count]`.
    pub shard: Option<(u32, u32)>,
    /// Its span by the wall clock, seconds since the epoch.
    pub started: f64,
    pub elapsed: f64,
    /// The connections it opened (its part of -c).
    pub concurrency: usize,
    pub settings: Settings,
    pub asked: Asked,
    pub stats: Stats,
}

impl Saved {
    pub fn new(
        plan: &Plan,
        stats: &Stats,
        started: SystemTime,
        elapsed: Duration,
        asked: Asked,
    ) -> Saved {
        let since_epoch = started.duration_since(SystemTime::UNIX_EPOCH);
        Saved {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").into(),
            shard: plan.shard.map(|s| (s.index, s.count)),
            started: since_epoch.map_or(0.0, |d| d.as_secs_f64()),
            elapsed: elapsed.as_secs_f64(),
            concurrency: plan.concurrency,
            settings: Settings::of(plan),
            asked,
            stats: stats.clone(),
        }
    }

    /// The run block of a loadgen --json report (`name` goes in each error).
    pub fn from_report(name: &str, report: &serde_json::Value) -> Result<Saved, String> {
        let run = report.get("run").ok_or_else(|| {
            format!("{name}: no run block; write it with loadgen --json (this loadgen's)")
        })?;
        Saved::deserialize(run).map_err(|e| format!("{name}: the run block does not read: {e}"))
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard.map(|(index, count)| Shard { index, count })
    }
}

/// Histograms in HdrHistogram's V2 encoding, as the analyzer's summaries
/// keep them.
pub use analyzer::saved::histogram;

/// Runs added into one: the shards of a run, or runs of the same load.
#[derive(Debug, Clone)]
pub struct Merged {
    pub settings: Settings,
    pub stats: Stats,
    /// From the first start to the last end.
    pub started: SystemTime,
    pub elapsed: Duration,
    /// Every run's connections.
    pub concurrency: usize,
    /// The checks the runs were asked for, when they agree.
    pub asked: Option<Asked>,
}

/// Adds `runs` (each with the name it is known by, for errors) into one.
/// Refuses runs of different loads, a shard given twice or one missing.
pub fn merge(runs: &[(String, Saved)]) -> Result<Merged, String> {
    let Some((first_name, first)) = runs.first() else {
        return Err("no run to merge".into());
    };
    for (name, run) in runs {
        if run.format != FORMAT {
            return Err(format!(
                "{name}: a run block of format {} (this loadgen reads {FORMAT}); merge with the loadgen that wrote it",
                run.format
            ));
        }
        if let Some(why) = first.settings.differs(&run.settings) {
            return Err(format!(
                "{first_name} and {name} are not parts of one run: {why}"
            ));
        }
    }
    let count = first.settings.shards;
    if count > 1 {
        let mut seen: Vec<Option<&str>> = vec![None; count as usize];
        for (name, run) in runs {
            let Some(shard) = run.shard() else {
                return Err(format!(
                    "{name}: not a shard of a {count}-shard run (a merge already?)"
                ));
            };
            let slot = &mut seen[shard.index.min(count - 1) as usize];
            if let Some(other) = slot {
                return Err(format!(
                    "{other} and {name} are both shard {} of {count}",
                    shard.index
                ));
            }
            *slot = Some(name);
        }
        if let Some(missing) = seen.iter().position(Option::is_none) {
            return Err(format!(
                "shard {missing} of {count} is missing: the merge would judge part of the run as the whole"
            ));
        }
    }
    let mut stats = Stats::default();
    let mut peak = 0;
    for (_, run) in runs {
        // The runs went on at once: their peaks in flight add up.
        peak += run.stats.peak_in_flight;
        stats.merge(run.stats.clone());
    }
    stats.peak_in_flight = peak;
    let start = runs
        .iter()
        .map(|(_, r)| r.started)
        .fold(f64::INFINITY, f64::min);
    let end = (runs.iter())
        .map(|(_, r)| r.started + r.elapsed)
        .fold(f64::NEG_INFINITY, f64::max);
    let asked = runs.iter().all(|(_, r)| r.asked == first.asked);
    Ok(Merged {
        settings: first.settings.clone(),
        stats,
        started: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(start.max(0.0)),
        elapsed: Duration::from_secs_f64((end - start).max(0.0)),
        concurrency: runs.iter().map(|(_, r)| r.concurrency).sum(),
        asked: asked.then(|| first.asked.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;

    fn saved(shard: Option<(u32, u32)>, values: &[u64], started: f64) -> Saved {
        let mut plan = Plan::to(([127, 0, 0, 1], 8080).into());
        plan.requests = 9;
        plan.shard = shard.map(|(index, count)| Shard { index, count });
        let mut stats = Stats::default();
        for v in values {
            let _ = stats.total.record(*v);
        }
        stats.complete = values.len() as u64;
        let mut s = Saved::new(
            &plan,
            &stats,
            SystemTime::UNIX_EPOCH,
            Duration::from_secs(2),
            Asked::default(),
        );
        s.started = started;
        s
    }

    /// Read back from its JSON, as `loadgen merge` reads a file.
    fn reread(s: &Saved) -> Saved {
        let text = serde_json::to_string(s).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn merged_quantiles_equal_one_histogram_fed_every_value() {
        // Values over six decades, cut into three uneven parts.
        let values: Vec<u64> = (0..30_000u64)
            .map(|i| 1 + (i * i * 7919) % 5_000_000)
            .collect();
        let parts = [&values[..1_000], &values[1_000..21_000], &values[21_000..]];
        let runs: Vec<(String, Saved)> = (0..3)
            .map(|i| {
                (
                    format!("s{i}"),
                    reread(&saved(Some((i, 3)), parts[i as usize], f64::from(i))),
                )
            })
            .collect();
        let merged = merge(&runs).unwrap();
        let mut whole = histogram();
        for v in &values {
            whole.record(*v).unwrap();
        }
        let h = &merged.stats.total;
        assert_eq!(h.len(), whole.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(h.value_at_quantile(q), whole.value_at_quantile(q), "q={q}");
        }
        assert_eq!(
            (h.min(), h.max(), h.mean()),
            (whole.min(), whole.max(), whole.mean())
        );
        assert_eq!(merged.stats.complete, 30_000);
        // The span is from the first start to the last end: 0 s to 2 + 2 s.
        assert_eq!(merged.elapsed, Duration::from_secs(4));
    }

    #[test]
    fn refuses_what_is_not_one_run() {
        let a = saved(Some((0, 2)), &[10], 0.0);
        let b = saved(Some((1, 2)), &[10], 0.0);
        assert!(merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).is_ok());
        let twice = merge(&[("a".into(), a.clone()), ("a2".into(), a.clone())]).unwrap_err();
        assert!(twice.contains("both shard 0 of 2"), "{twice}");
        let missing = merge(&[("a".into(), a.clone())]).unwrap_err();
        assert!(missing.contains("shard 1 of 2 is missing"), "{missing}");
        let mut other = b.clone();
        other.settings.port = 9090;
        let differs = merge(&[("a".into(), a), ("b".into(), other)]).unwrap_err();
        assert!(differs.contains("target differs"), "{differs}");
        assert!(merge(&[]).is_err());
    }
}
