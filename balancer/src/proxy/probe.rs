//! Background work on the upstreams: active health checks (nginx Plus's
//! `health_check`) and dynamic weights from each peer's `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use super::{Group, Shared};
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
        for (peer, _) in group.lock().peers().collect::<Vec<_>>() {
            let (shared2, group2, spec) = (shared.clone(), group.clone(), spec.clone());
            shared.tasks.spawn(async move {
                let mut check = HealthCheck::new(spec.passes, spec.fails);
                while let Some(ok) = probe(&shared2, &group2, peer, &spec.uri, spec.interval).await
                {
                    if let Some(flip) = check.observe(ok) {
                        group2.lock().set_healthy(peer, flip == Flip::Up);
                    }
                }
            });
        }
    }
    let Some(every) = dynamic_weights else { return };
    for group in &shared.groups {
        for (peer, p) in group
            .lock()
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
                    if group2.lock().peer(peer).server.weight != weight {
                        group2.lock().set_weight(peer, weight);
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
    let path: hyper::Uri = uri.parse().ok()?;
    let target = group.target(peer);
    let make = || {
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = path.clone();
        if let Ok(host) = hyper::header::HeaderValue::from_str(&target.text) {
            req.headers_mut().insert(hyper::header::HOST, host);
        }
        req
    };
    let answer = async {
        let (response, _lease) = target.pool.send(make, limit).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    };
    tokio::time::timeout(limit, answer).await.ok().flatten()
}
