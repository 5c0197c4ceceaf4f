//! The request engine: `concurrency` workers running one loop. The pacing is
//! a value the loop asks for its next ticket, closed (go as soon as free) or
//! open (go when the schedule says), so there is one loop for both.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connect::Connector;
use crate::exchange::{body_field, describe, once, Conn, Miss, Send, Streaming};
use crate::files::{Row, Rows};
use crate::plan::Plan;
use crate::request::Template;
use crate::schedule::{PhaseLoad, Schedule};
use crate::stats::Stats;
use crate::streams::Finished;

/// A timeout past this is never (30 years, tokio's own "far future"): a
/// deadline from now must stay within what the clock holds.
const NEVER: Duration = Duration::from_secs(30 * 365 * 86_400);

/// What every worker of a run shares.
struct Shared {
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    addr: SocketAddr,
    rows: Arc<Rows>,
    template: Template,
    connector: Connector,
}

/// One worker: take a ticket, send, measure, repeat.
async fn worker(worker: usize, shared: Arc<Shared>, shard: Arc<Mutex<Stats>>) {
    let Shared {
        plan,
        schedule,
        addr,
        rows,
        template,
        connector,
    } = &*shared;
    let addr = *addr;
    let node_headers: Vec<&str> = plan.node_headers.iter().map(|h| h.as_str()).collect();
    let mut conn: Option<Conn> = None;
    let mut request = Vec::with_capacity(1024);
    let mut streaming = Streaming::default();
    // One timer per worker, not one per request: it is moved only when it
    // fires (or has fired) before the request in flight is due, and a
    // request's deadline is never earlier than the one before it (the same
    // -s from a later start), so it always fires by the deadline.
    let mut watchdog = Box::pin(tokio::time::sleep(plan.timeout));
    let count_in_flight = !peak_is_worker_count(plan);
    if plan.verbosity >= 4 {
        template.render(0, &mut request);
        eprintln!(
            "INFO: {} header == \n---\n{}\n---",
            plan.method,
            String::from_utf8_lossy(&request).trim_end()
        );
    }
    while let Some((i, due)) = schedule.ticket(worker).await {
        let head_request = template.render(i, &mut request);
        let wall = rows.wanted().then(std::time::SystemTime::now);
        let start = Instant::now();
        let send = Send {
            bytes: &request,
            head_request,
            source: template.source(i),
            via: connector,
            worker,
        };
        streaming.reset();
        if count_in_flight {
            let now = schedule.in_flight.fetch_add(1, Relaxed) + 1;
            schedule.peak_in_flight.fetch_max(now, Relaxed);
        }
        let deadline = start + plan.timeout.min(NEVER);
        if watchdog.is_elapsed() {
            watchdog.as_mut().reset(deadline.into());
        }
        // `None`: no whole answer by the deadline (-s).
        let outcome = {
            let exchange = once(&send, &node_headers, &mut conn, start, &mut streaming);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    r = &mut exchange => break Some(r),
                    () = watchdog.as_mut() => {
                        if Instant::now() >= deadline {
                            break None;
                        }
                        // It was set for an earlier request: now for this one.
                        watchdog.as_mut().reset(deadline.into());
                    }
                }
            }
        };
        if count_in_flight {
            schedule.in_flight.fetch_sub(1, Relaxed);
        }
        // Taken only to record, never across an await.
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let stats = &mut *guard;
        let answer = match outcome {
            Some(Ok(_)) if streaming.active && streaming.sse.error.is_some() => {
                Err(Miss::StreamError)
            }
            Some(Ok(_)) if streaming.active && !streaming.sse.done => Err(Miss::StreamCut),
            Some(Ok(mut a)) => {
                a.lag = due.map(|d| start.saturating_duration_since(d));
                a.since_due = a.lag.map(|lag| lag + a.total);
                Ok(a)
            }
            Some(Err(Miss::Receive)) if streaming.active => Err(Miss::StreamCut),
            Some(Err(miss)) => Err(miss),
            None if streaming.active => Err(Miss::StreamStalled),
            None => Err(Miss::Timeout),
        };
        match answer {
            Ok(a) => {
                let keep = a.keepalive && plan.keepalive;
                stats.bytes_out += request.len() as u64;
                // The node and server names are still in the connection's buffer.
                let buf = conn.as_ref().map_or(&[][..], |c| &c.buf[..]);
                let text = |r: Option<(usize, usize)>| {
                    r.and_then(|(a, b)| std::str::from_utf8(buf.get(a..b)?).ok())
                };
                // --node-field: the node names itself in its JSON answer.
                let field = plan
                    .node_field
                    .as_deref()
                    .and_then(|f| body_field(buf.get(a.head_bytes as usize..)?, f));
                let (node, server) = (field.as_deref().or(text(a.node)), text(a.server));
                let reference = (!plan.variable_length)
                    .then(|| *schedule.document_length.get_or_init(|| a.body_bytes));
                stats.record(&a, node, server, reference);
                if streaming.active {
                    for gap in &streaming.gaps {
                        stats.streams.gap(*gap);
                    }
                    let finished = Finished {
                        sse: &streaming.sse,
                        worst_gap: streaming.gaps.iter().max().copied(),
                        total: a.total,
                        node,
                    };
                    stats.streams.record(&finished, plan.slo.as_ref());
                }
                if plan.verbosity >= 4 {
                    let head = conn.as_ref().map_or(&[][..], |c| {
                        &c.buf[..c.buf.len().min(a.head_bytes as usize)]
                    });
                    eprintln!(
                        "LOG: header received:\n{}",
                        String::from_utf8_lossy(head).trim_end()
                    );
                }
                if plan.verbosity >= 2 && !(200..300).contains(&a.status) {
                    eprintln!("WARNING: Response code not 2xx ({})", a.status);
                }
                if let Some(started) = wall {
                    rows.write(&Row {
                        started,
                        connect: a.connect,
                        total: a.total,
                        waiting: a.waiting,
                        status: a.status,
                        body_bytes: a.body_bytes,
                        node,
                    });
                }
                if let Some(c) = conn.as_mut() {
                    c.buf.clear();
                }
                if !keep {
                    conn = None;
                }
            }
            Err(miss) => {
                conn = None;
                if let Some(started) = wall {
                    let total = start.elapsed();
                    let none = Duration::ZERO;
                    let row = Row {
                        started,
                        connect: none,
                        total,
                        waiting: none,
                        status: 0,
                        body_bytes: 0,
                        node: None,
                    };
                    rows.write(&row);
                }
                let kind = match miss {
                    Miss::Connect(_) => "connect",
                    Miss::Tls(_) => "tls handshake",
                    Miss::Receive | Miss::Refused => "receive",
                    Miss::Timeout => "timeout",
                    Miss::StreamCut => "stream cut",
                    Miss::StreamStalled => "stream stalled",
                    Miss::StreamError => "stream error",
                    Miss::Malformed(_) => "malformed answer",
                };
                match miss {
                    Miss::Connect(_) | Miss::Tls(_) => stats.failed_connect += 1,
                    Miss::Malformed(_) => stats.failed_exceptions += 1,
                    _ => stats.failed_receive += 1,
                }
                if streaming.active {
                    let cut = Finished {
                        sse: &streaming.sse,
                        worst_gap: None,
                        total: start.elapsed(),
                        node: None,
                    };
                    stats.streams.record(&cut, None);
                }
                stats.error(kind, || describe(&miss, addr, plan.timeout, &streaming));
                schedule.failed.fetch_add(1, Relaxed);
                // ab stops at a receive error unless told -r.
                if !matches!(miss, Miss::Connect(_) | Miss::Tls(_)) && !plan.keep_going {
                    schedule.stop.store(true, Relaxed);
                }
            }
        }
        drop(guard);
        schedule.completed.fetch_add(1, Relaxed);
    }
}

/// Runs the plan to the end (or until `schedule.stop`), merging every
/// worker's figures.
pub async fn run(
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    addr: SocketAddr,
    rows: Arc<Rows>,
) -> Stats {
    // Enough workers for the busiest phase.
    let most = plan.phases.iter().filter_map(|p| match p.load {
        PhaseLoad::Concurrency(c) => Some(c),
        PhaseLoad::Rate { .. } => None,
    });
    let count = most.fold(plan.concurrency, usize::max);
    // Workers record into a few shared shards, not a set of histograms
    // each: 10,000 open streams would otherwise hold 10,000 sets.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let shards: Vec<Arc<Mutex<Stats>>> = (0..count.clamp(1, 4 * cores))
        .map(|_| Arc::new(Mutex::new(Stats::default())))
        .collect();
    let shared = Arc::new(Shared {
        template: Template::new(&plan),
        connector: Connector::new(&plan, addr, count),
        plan: plan.clone(),
        schedule: schedule.clone(),
        addr,
        rows,
    });
    let mut workers: Vec<_> = (0..count)
        .map(|w| tokio::spawn(worker(w, shared.clone(), shards[w % shards.len()].clone())))
        .collect();
    let all_done = async {
        for w in workers.iter_mut() {
            let _ = w.await;
        }
    };
    tokio::select! {
        () = all_done => {}
        // What was in flight is dropped unrecorded; every request already
        // answered is in the shards.
        () = schedule.abandon.notified() => {
            for w in &workers {
                w.abort();
            }
        }
    }
    let mut stats = Stats::default();
    for shard in shards {
        let part = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
        stats.merge(part);
    }
    if let Some(len) = schedule.document_length.get() {
        stats.document_length = Some(*len);
    }
    stats.connections = shared.connector.opened.load(Relaxed);
    stats.tls_resumed = shared.connector.resumed.load(Relaxed);
    stats.peak_in_flight = if peak_is_worker_count(&plan) {
        (count as u64).min(stats.sent())
    } else {
        schedule.peak_in_flight.load(Relaxed)
    };
    stats
}

/// A closed loop with no phases: every worker holds a request from its
/// first ticket to the last, so the most in flight is the workers' count
/// and the workers need not count it (two contended atomics a request).
fn peak_is_worker_count(plan: &Plan) -> bool {
    plan.pacing == crate::schedule::Pacing::Closed && plan.phases.is_empty()
}

/// Where to connect: the target, or the `-X` proxy.
pub async fn resolve(plan: &Plan) -> std::io::Result<SocketAddr> {
    let (host, port) = match &plan.proxy {
        Some((h, p)) => (h.clone(), *p),
        None => (plan.target.host.clone(), plan.target.port),
    };
    let found = tokio::net::lookup_host((host.as_str(), port)).await?.next();
    found.ok_or_else(|| std::io::Error::other(format!("{host} resolves to no address")))
}
