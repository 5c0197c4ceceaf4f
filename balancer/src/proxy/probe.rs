//! Background work on the upstreams: active health checks (nginx Plus's
//! `health_check`) and dynamic weights from each peer's `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::body::{Framing, UpstreamBody};
use super::{pool, Group, Shared};
use crate::health::{Flip, HealthCheck};
use crate::upstream::PeerRef;

/// Memory use past which a peer's weight is halved (seed 001).
const MEMORY_LIMIT: f64 = 85.0;

pub(crate) fn start(shared: &Arc<Shared>, dynamic_weights: Option<Duration>) {
    for route in &shared.routes {
        let (Some(g), Some(spec)) = (route.group, &route.location.health) else {
            continue;
        };
        let group = shared.groups[g].clone();
        for (peer, _) in group.lock(0).peers().collect::<Vec<_>>() {
            let (shared2, group2, spec) = (shared.clone(), group.clone(), spec.clone());
            shared.tasks.spawn(async move {
                let mut check = HealthCheck::new(spec.passes, spec.fails);
                while let Some(ok) = probe(&shared2, &group2, peer, &spec.uri, spec.interval).await
                {
                    if let Some(flip) = check.observe(ok) {
                        group2.each_state(|u| u.set_healthy(peer, flip == Flip::Up));
                    }
                }
            });
        }
    }
    let Some(every) = dynamic_weights else { return };
    for group in &shared.groups {
        for (peer, p) in group
            .lock(0)
            .peers()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(r, p)| (r, p.server.weight))
        {
            let (shared2, group2) = (shared.clone(), group.clone());
            shared.tasks.spawn(async move {
                let base = p;
                while let Some(memory) = memory_use(&shared2, &group2, peer, every).await {
                    let weight = if memory.is_some_and(|m| m > MEMORY_LIMIT) {
                        (base / 2).max(1)
                    } else {
                        base
                    };
                    if group2.lock(0).peer(peer).server.weight != weight {
                        group2.each_state(|u| u.set_weight(peer, weight));
                    }
                }
            });
        }
    }
}

/// Waits `interval`, then GETs `uri` from the peer; `None` once shutting down.
async fn probe(
    shared: &Shared,
    group: &Group,
    peer: PeerRef,
    uri: &str,
    interval: Duration,
) -> Option<bool> {
    tokio::select! {
        () = shared.shutdown.cancelled() => return None,
        () = tokio::time::sleep(interval) => {}
    }
    Some(
        get(shared, group, peer, uri, interval)
            .await
            .is_some_and(|(status, _)| (200..400).contains(&status)),
    )
}

/// Waits `every`, then reads `memory_usage` from the peer's `/metrics` JSON.
async fn memory_use(
    shared: &Shared,
    group: &Group,
    peer: PeerRef,
    every: Duration,
) -> Option<Option<f64>> {
    tokio::select! {
        () = shared.shutdown.cancelled() => return None,
        () = tokio::time::sleep(every) => {}
    }
    let body = get(shared, group, peer, "/metrics", every)
        .await
        .map(|(_, b)| b);
    let json: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(&b).ok());
    Some(json.and_then(|v| v.get("memory_usage").and_then(serde_json::Value::as_f64)))
}

async fn get(
    shared: &Shared,
    group: &Group,
    peer: PeerRef,
    uri: &str,
    limit: Duration,
) -> Option<(u16, Bytes)> {
    let _ = shared;
    let target = group.target(peer);
    let request = format!("GET {uri} HTTP/1.0\r\nHost: {}\r\n\r\n", target.text);
    let answer = async {
        let conn = group.connector.connect(target.addr, limit).await.ok()?;
        let answer = pool::exchange(conn, request.as_bytes(), limit, limit, 64 << 10)
            .await
            .ok()?;
        let status = answer.head.status;
        let framing = Framing::of(&answer.head, false, answer.http09);
        let body = UpstreamBody::new(answer.conn, framing, false, None);
        Some((status, body.collect(1 << 20).await?))
    };
    tokio::time::timeout(limit, answer).await.ok().flatten()
}
