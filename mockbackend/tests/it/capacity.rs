use crate::common::*;

#[tokio::test]
async fn past_slots_and_queue_requests_get_503_busy() {
    // 2 slots, 1 queue place, each request holds its slot for 1s: of 6 sent
    // at once, 3 are served (2 at once, 1 after waiting) and 3 are refused.
    let server = start(
        1,
        &[("max_concurrency", "2"), ("queue", "1"), ("latency", "1s")],
    )
    .await;
    let addr = server.addrs()[0];
    let first: Vec<_> = (0..3).map(|_| tokio::spawn(get(addr, "/"))).collect();
    wait_state(addr, 0, |p| p["in_flight"] == 2 && p["queue_length"] == 1).await;
    let r = get(addr, "/ready").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "not ready: at capacity\n");
    for _ in 0..3 {
        let r = get(addr, "/").await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
        let v = json(r).await;
        assert_eq!(v["error"], "Server is busy. Please try again later.");
        assert_eq!(v["server"], addr.port());
    }
    assert_eq!(
        get(addr, "/health").await.status(),
        200,
        "health is not work: no slot needed"
    );
    for f in first {
        assert_eq!(f.await.unwrap().status(), 200);
    }
    let m = json(get(addr, "/metrics").await).await;
    assert_eq!(m["rejected_total"], 3);
    assert_eq!(m["active_requests"], 0);
    assert_eq!(m["queue_length"], 0);
    assert_eq!(get(addr, "/ready").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_holds_its_slot_until_it_ends() {
    let server = start(
        1,
        &[
            ("max_concurrency", "1"),
            ("ttft", "300ms"),
            ("tokens_per_sec", "10"),
        ],
    )
    .await;
    let addr = server.addrs()[0];
    let body = r#"{"messages":[],"stream":true,"max_tokens":3}"#;
    let stream = post(addr, "/v1/chat/completions", body).await;
    assert_eq!(stream.status(), 200);
    // Headers are back but tokens are still coming: the slot is taken.
    assert_eq!(get(addr, "/").await.status(), 503);
    let text = stream.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    wait_state(addr, 0, |p| p["in_flight"] == 0).await;
    assert_eq!(get(addr, "/").await.status(), 200);
    server.shutdown().await;
}
