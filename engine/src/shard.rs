//! One part of a run that several loadgen processes make together (pods of
//! a Kubernetes Indexed Job, say): shard `I` of `N` sends requests `I`,
//! `I+N`, `I+2N`, ... of the single-process run, at the times that run
//! would have sent them, with its share of the connections and its own
//! range of client identities. Summed, the shards are the whole run.
//! Pure: the caller reads the environment and the clock.

use std::time::{Duration, SystemTime};

use crate::plan::{Clients, Plan};
use crate::schedule::PhaseLoad;

/// Shard `index` of `count`, counted from 0 as Kubernetes'
/// `JOB_COMPLETION_INDEX` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The environment variable an Indexed Job sets in each pod.
pub const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

/// The furthest ahead `--start-at` may be: a wait is bounded like any other
/// part of a run, and an hour catches a date typed wrong.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);

impl Shard {
    /// `I/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}': write I/N, e.g. 0/3 (I counts from 0)"))?;
        let count = parse_count(n)?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' is not a shard index"))?;
        Shard::new(index, count)
    }

    /// The shard an Indexed Job's pod is: its `JOB_COMPLETION_INDEX` (the
    /// variable's value, `None` when unset) of `--shards N`.
    pub fn from_env(value: Option<&str>, count: u32) -> Result<Shard, String> {
        let value = value.ok_or_else(|| {
            format!("{INDEX_VARIABLE} is not set (a Kubernetes Indexed Job sets it in each pod)")
        })?;
        let index = value
            .trim()
            .parse()
            .map_err(|_| format!("{INDEX_VARIABLE}='{value}' is not a shard index"))?;
        Shard::new(index, count)
    }

    fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("there must be at least 1 shard".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count}: the index counts from 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's part of `total` things dealt out one at a time: the
    /// first `total % N` shards get one more, so 1000 over 3 is
    /// 334 + 333 + 333 and nothing is lost to rounding.
    pub fn part(&self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    /// The single-process run's request number of this shard's `j`th.
    pub fn global(&self, j: u64) -> u64 {
        u64::from(self.index) + j * u64::from(self.count)
    }

    /// `plan` cut down to this shard's part: its requests are every Nth of
    /// the whole (the schedule deals them, so the plan keeps the whole
    /// count), its connections its part of -c and of each phase's, its
    /// clients every Nth of the pool from the Ith, used in turn. Each
    /// request then acts as the client it would in one process whenever
    /// the pool holds at least the run's requests (request i is client i)
    /// or N divides the pool; otherwise the shards' clients are still
    /// disjoint, just met in another order.
    pub fn apply(&self, mut plan: Plan) -> Result<Plan, String> {
        let c = plan.concurrency as u64;
        if c < u64::from(self.count) {
            return Err(format!(
                "-c {c} cannot be shared by {} shards: each needs a connection",
                self.count
            ));
        }
        plan.concurrency = self.part(c) as usize;
        for phase in &mut plan.phases {
            if let PhaseLoad::Concurrency(c) = &mut phase.load {
                *c = (self.part(*c as u64) as usize).max(1);
            }
        }
        if let Some(clients) = &mut plan.clients {
            let size = u64::from(clients.size);
            if size < u64::from(self.count) {
                return Err(format!(
                    "a pool of {size} clients cannot be split over {} shards",
                    self.count
                ));
            }
            *clients = Clients {
                base: (clients.base).wrapping_add(self.index.wrapping_mul(clients.stride)),
                size: self.part(size) as u32,
                stride: clients.stride.wrapping_mul(self.count),
                every: self.count,
                via: clients.via,
            };
        }
        plan.shard = Some(*self);
        Ok(plan)
    }
}

fn parse_count(text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("'{text}' is not a number of shards"))
}

/// `--shards N`.
pub fn shards(text: &str) -> Result<u32, String> {
    parse_count(text)
}

/// `--start-at`: RFC 3339 (`2026-12-02T10:00:00Z`) or seconds since the
/// epoch, no more than [`LONGEST_WAIT`] after `now`. A time already past
/// is kept (the shard starts at once, with its schedule still counted from
/// that time, so late pods catch up rather than drift).
pub fn start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let at = match text.trim().parse::<f64>() {
        Ok(s) if (0.0..1e11).contains(&s) => {
            SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s)
        }
        Ok(_) => return Err(format!("'{text}' is not a time")),
        Err(_) => humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
            format!("'{text}': write an RFC 3339 time (2026-12-02T10:00:00Z) or seconds since the epoch")
        })?,
    };
    if at.duration_since(now).is_ok_and(|wait| wait > LONGEST_WAIT) {
        return Err(format!(
            "'{text}' is more than {} minutes from now",
            LONGEST_WAIT.as_secs() / 60
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClientsVia;

    #[test]
    fn parts_add_up_to_the_whole_without_rounding_loss() {
        let parts: Vec<u64> = (0..3)
            .map(|i| Shard::new(i, 3).unwrap().part(1000))
            .collect();
        assert_eq!(parts, [334, 333, 333]);
        for (total, n) in [(0, 4), (1, 4), (7, 7), (1001, 4), (u64::MAX, 3)] {
            let shards: Vec<Shard> = (0..n).map(|i| Shard::new(i, n).unwrap()).collect();
            let sum: u128 = shards.iter().map(|s| u128::from(s.part(total))).sum();
            assert_eq!(sum, u128::from(total), "{total} over {n}");
        }
    }

    #[test]
    fn each_request_of_the_whole_goes_to_exactly_one_shard() {
        let n = 4;
        let total = 1003u64;
        let mut seen = vec![0u32; total as usize];
        for i in 0..n {
            let s = Shard::new(i, n).unwrap();
            for j in 0..s.part(total) {
                seen[s.global(j) as usize] += 1;
            }
        }
        assert!(seen.iter().all(|c| *c == 1));
    }

    #[test]
    fn reads_the_flag_and_the_environment() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("3/3").unwrap_err().contains("from 0 to 2"));
        assert!(Shard::parse("1/0").is_err());
        assert!(Shard::parse("1").unwrap_err().contains("I/N"));
        assert_eq!(
            Shard::from_env(Some("1"), 4),
            Ok(Shard { index: 1, count: 4 })
        );
        assert!(Shard::from_env(None, 4)
            .unwrap_err()
            .contains("JOB_COMPLETION_INDEX"));
        assert!(Shard::from_env(Some("x"), 4).is_err());
    }

    fn pool(size: u32) -> Plan {
        let mut plan = Plan::to(([127, 0, 0, 1], 80).into());
        plan.concurrency = 10;
        plan.clients = Some(Clients {
            via: ClientsVia::ForwardedFor,
            base: u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0)),
            size,
            stride: 256,
            every: 1,
        });
        plan
    }

    /// Each shard's clients for its part of `requests`, with the whole
    /// run's number of each request.
    fn clients(plan: &Plan, n: u32, requests: u64) -> Vec<Vec<(u64, std::net::Ipv4Addr)>> {
        (0..n)
            .map(|i| {
                let s = Shard::new(i, n).unwrap();
                let c = s.apply(plan.clone()).unwrap().clients.unwrap();
                let count = s.part(requests);
                (0..count)
                    .map(|j| (s.global(j), c.address(s.global(j))))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn clients_are_disjoint_and_cover_the_pool() {
        let plan = pool(10);
        let whole = plan.clients.unwrap();
        for n in [1, 3, 4] {
            let mut all = Vec::new();
            for mine in clients(&plan, n, 200) {
                let set: std::collections::BTreeSet<_> = mine.iter().map(|(_, a)| *a).collect();
                all.extend(set);
            }
            let distinct: std::collections::BTreeSet<_> = all.iter().collect();
            assert_eq!(all.len(), 10, "{n} shards: no client in two shards");
            assert_eq!(distinct.len(), 10, "{n} shards: every client of the pool");
            let shard = |i| Shard::new(i, n).unwrap().apply(plan.clone()).unwrap();
            let connections: usize = (0..n).map(|i| shard(i).concurrency).sum();
            assert_eq!(connections, 10);
        }
        // A pool as big as the run: each request is the client it is in
        // one process.
        for n in [1, 3, 4] {
            for (i, address) in clients(&plan, n, 10).concat() {
                assert_eq!(address, whole.address(i), "{n} shards, request {i}");
            }
        }
        // A pool N divides: the same, however many requests.
        let even = pool(12);
        for (i, address) in clients(&even, 4, 500).concat() {
            assert_eq!(address, even.clients.unwrap().address(i), "request {i}");
        }
        assert!(Shard::new(0, 11).unwrap().apply(plan.clone()).is_err());
    }

    #[test]
    fn start_at_reads_both_forms_and_refuses_far_ahead() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let at = start_at("1790000060", now).unwrap();
        assert_eq!(at.duration_since(now).unwrap(), Duration::from_secs(60));
        let rfc = start_at("2026-09-21T14:14:20Z", now).unwrap();
        assert_eq!(
            rfc.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_790_000_060
        );
        assert!(start_at("1790009000", now)
            .unwrap_err()
            .contains("60 minutes"));
        assert!(start_at("tomorrow", now).unwrap_err().contains("RFC 3339"));
        assert!(
            start_at("1789999000", now).is_ok(),
            "a past time starts at once"
        );
    }
}
