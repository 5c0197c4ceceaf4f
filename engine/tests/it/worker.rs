use std::time::Duration;

use engine::Flags;
use engine::Stats;
use mockbackend::{Control, Fault, Server};

use crate::common::{balancer, mock, servers};
use crate::run::run;

fn flags(url: String, n: u64, c: usize) -> Flags {
    Flags {
        url,
        requests: Some(n),
        concurrency: Some(c),
        ..Flags::default()
    }
}

#[tokio::test]
async fn counts_every_request_and_attributes_the_node() {
    let m = mock(1, &[]).await;
    let addr = m.addrs()[0];
    for keepalive in [false, true] {
        let (s, _) = run(Flags {
            keepalive,
            ..flags(format!("http://{addr}/"), 500, 8)
        })
        .await;
        assert_eq!(s.complete, 500);
        assert_eq!(s.failed(), 0);
        assert_eq!(s.statuses[&200], 500);
        assert_eq!(
            s.document_length,
            Some(mockbackend::replies::text_reply(addr.port()).len() as u64)
        );
        assert_eq!(
            s.nodes[&addr.to_string()].requests,
            500,
            "X-Backend names the port"
        );
        assert_eq!(s.total.len(), 500);
        assert_eq!(s.keepalive_responses, if keepalive { 500 } else { 0 });
    }
    m.shutdown().await;
}

#[tokio::test]
async fn posts_a_file_to_chat() {
    let m = mock(1, &[]).await;
    let body = bytes::Bytes::from_static(br#"{"message": "Hello, this is a test message"}"#);
    let f = Flags {
        post: Some(body.clone()),
        content_type: Some("application/json".into()),
        ..flags(format!("http://{}/chat", m.addrs()[0]), 100, 4)
    };
    let (s, _) = run(f).await;
    assert_eq!(
        (s.complete, s.non_2xx),
        (100, 0),
        "the mock parsed every JSON body"
    );
    assert!(s.bytes_out >= 100 * body.len() as u64);
    assert_eq!(s.failed_length, 0, "every answer has the same length");
    m.shutdown().await;
}

#[tokio::test]
async fn distribution_through_the_balancer_is_read_from_x_upstream() {
    let m = mock(2, &[]).await;
    let (proxy, _) = balancer(&servers(&m), false).await;
    let (s, _) = run(Flags {
        keepalive: true,
        ..flags(format!("http://{}/", proxy.addr()), 400, 4)
    })
    .await;
    assert_eq!(s.nodes.len(), 2);
    for node in s.nodes.values() {
        assert_eq!(node.requests, 200, "round robin splits evenly");
    }
    proxy.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn a_node_killed_mid_run_is_counted_as_connect_failures_with_r() {
    let m = mock(1, &[("latency", "2ms")]).await;
    let url = format!("http://{}/", m.addrs()[0]);
    let running = tokio::spawn(run(Flags {
        keep_going: true,
        ..flags(url, 400, 2)
    }));
    tokio::time::sleep(Duration::from_millis(150)).await;
    m.control(
        0,
        Control::Set {
            fault: Fault::Down,
            revert_after: None,
        },
    )
    .await
    .unwrap();
    let (s, schedule) = running.await.unwrap();
    assert!(
        s.failed_connect > 0,
        "requests after the kill fail to connect"
    );
    assert_eq!(
        s.complete + s.failed(),
        400,
        "every request is accounted for"
    );
    assert!(s.complete > 0);
    assert!(
        !schedule.stop.load(std::sync::atomic::Ordering::Relaxed),
        "connect failures never stop a run"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn a_hanging_node_times_out_and_stops_the_run_without_r() {
    let m = mock(1, &[]).await;
    m.control(
        0,
        Control::Set {
            fault: Fault::Hang,
            revert_after: None,
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}/", m.addrs()[0]);
    let (s, schedule) = run(Flags {
        timeout: Some(0.3),
        ..flags(url.clone(), 50, 2)
    })
    .await;
    assert!(s.failed_receive >= 1 && s.errors["timeout"] >= 1);
    assert!(
        s.failed_receive <= 2,
        "ab stops at the first receive error: {}",
        s.failed_receive
    );
    assert!(schedule.stop.load(std::sync::atomic::Ordering::Relaxed));
    // With -r it keeps going: every request times out.
    let (s, _) = run(Flags {
        timeout: Some(0.2),
        keep_going: true,
        ..flags(url, 6, 3)
    })
    .await;
    assert_eq!(s.failed_receive, 6);
    m.shutdown().await;
}

#[tokio::test]
async fn open_loop_measures_from_the_schedule() {
    let m = mock(1, &[("latency", "20ms")]).await;
    let url = format!("http://{}/", m.addrs()[0]);
    // 200/s with one worker and 20 ms answers: the worker can only do 50/s,
    // so requests start later and later; the corrected view shows it.
    let (s, _) = run(Flags {
        rate: Some(200.0),
        ..flags(url, 40, 1)
    })
    .await;
    assert_eq!(s.complete, 40);
    assert_eq!(s.lag.len(), 40);
    assert!(
        s.lag.max() > 100_000,
        "the schedule fell behind by over 100 ms: {}",
        s.lag.max()
    );
    assert!(s.corrected.value_at_quantile(0.99) > s.total.value_at_quantile(0.99) * 2);
    m.shutdown().await;
}

/// vLLM's `--max-concurrency` with `--rate`: arrivals keep the rate, but
/// no more than N are in flight; the rest wait for a slot.
#[tokio::test]
async fn max_concurrency_caps_what_a_rate_puts_in_flight() {
    let m = mock(1, &[("latency", "50ms")]).await;
    let url = format!("http://{}/", m.addrs()[0]);
    let (s, _) = run(Flags {
        rate: Some(400.0),
        concurrency: None,
        max_concurrency: Some(3),
        keepalive: true,
        ..flags(url, 30, 1)
    })
    .await;
    assert_eq!(s.complete, 30);
    // 400/s of 50 ms answers would be 20 at once; the cap holds it to 3.
    assert_eq!(s.peak_in_flight, 3);
    assert!(s.lag.max() > 100_000, "arrivals waited for a slot");
    m.shutdown().await;
}

/// The in-process balancer with `method` over `n` mock ports.
async fn balanced(
    n: usize,
    method: &str,
    trust_forwarded_for: bool,
) -> (Server, balancer::proxy::Proxy, balancer::UpstreamSpec) {
    let m = mock(n, &[]).await;
    let (proxy, spec) = balancer(&format!("{method} {}", servers(&m)), trust_forwarded_for).await;
    (m, proxy, spec)
}

/// Per-node counts a run saw, against what the balancer library predicts
/// for exactly these clients.
fn assert_matches_prediction(
    s: &Stats,
    spec: &balancer::UpstreamSpec,
    clients: &[std::net::IpAddr],
    per_client: f64,
) {
    let balancer::Expected::Shares(shares) =
        balancer::expected_shares(spec, balancer::Population::Clients(clients))
    else {
        panic!("ip_hash has shares")
    };
    for (addr, share) in shares {
        let seen = s.nodes.get(&addr).map_or(0, |n| n.requests);
        assert_eq!(
            seen as f64,
            (share * clients.len() as f64 * per_client).round(),
            "{addr}"
        );
    }
}

#[tokio::test]
async fn forwarded_for_identities_drive_ip_hash_as_predicted() {
    let (m, proxy, spec) = balanced(3, "ip_hash;", true).await;
    let f = Flags {
        keepalive: true,
        forwarded_for_pool: Some("10.0.0.0/14".into()),
        ..flags(format!("http://{}/", proxy.addr()), 4096, 4)
    };
    let (s, _) = run(f).await;
    assert_eq!(s.complete, 4096);
    // 10.0.0.0/14 holds 2^18 addresses; request i is the i-th: 4096 clients
    // in 16 different /24s, one request each.
    let clients: Vec<std::net::IpAddr> = (0..4096u32)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).into())
        .collect();
    assert_matches_prediction(&s, &spec, &clients, 1.0);
    proxy.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn source_addresses_drive_ip_hash_as_predicted() {
    let (m, proxy, spec) = balanced(3, "ip_hash;", false).await;
    // A new connection per request (no -k): request i binds 127.0.(i/256).(i%256).
    let f = Flags {
        source_ips: Some("127.0.0.0/21".into()),
        ..flags(format!("http://{}/", proxy.addr()), 2048, 4)
    };
    let (s, _) = run(f).await;
    assert_eq!((s.complete, s.failed()), (2048, 0));
    let clients: Vec<std::net::IpAddr> = (0..2048u32)
        .map(|i| std::net::Ipv4Addr::from(0x7f00_0000 + i).into())
        .collect();
    assert_matches_prediction(&s, &spec, &clients, 1.0);
    assert!(
        s.nodes.len() >= 2,
        "8 distinct /24s reach more than one node: {:?}",
        s.nodes.keys()
    );
    proxy.shutdown().await;
    m.shutdown().await;
}

#[tokio::test]
async fn the_node_can_come_from_a_json_field() {
    let (m, proxy, _) = balanced(2, "", false).await;
    let body = bytes::Bytes::from_static(br#"{"message": "hi"}"#);
    let f = Flags {
        post: Some(body),
        node_field: Some("server".into()),
        ..flags(format!("http://{}/chat", proxy.addr()), 40, 2)
    };
    let (s, _) = run(f).await;
    let mut ports: Vec<String> = m.addrs().iter().map(|a| a.port().to_string()).collect();
    ports.sort();
    let seen: Vec<String> = s.nodes.keys().cloned().collect();
    assert_eq!(seen, ports, "the seed's /chat names its port in \"server\"");
    assert!(s.nodes.values().all(|n| n.requests == 20));
    proxy.shutdown().await;
    m.shutdown().await;
}
