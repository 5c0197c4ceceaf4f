use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// Reads an SSE response incrementally; returns each event's data with the
/// time it arrived, measured from `sent`.
async fn events(mut r: reqwest::Response, sent: Instant) -> Vec<(Duration, String)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        let at = sent.elapsed();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event
                .trim_end()
                .strip_prefix("data: ")
                .expect("a data line")
                .to_string();
            out.push((at, data));
        }
    }
    assert!(buf.is_empty(), "trailing bytes: {buf:?}");
    out
}

#[tokio::test]
async fn stream_shape_chunks_then_usage_then_done() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let body = r#"{"model":"m","messages":[{"role":"user","content":"one two three"}],"stream":true,"max_tokens":5}"#;
    let sent = Instant::now();
    let r = post(addr, "/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
    let ev = events(r, sent).await;
    assert_eq!(ev.len(), 5 + 2, "5 token chunks, the usage chunk, [DONE]");
    assert_eq!(ev.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = ev[..ev.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks[..5]
        .iter()
        .map(|c| {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "m");
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "The balancer sent this request");
    let last = &chunks[5];
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(
        last["usage"]["completion_tokens"], 5,
        "usage agrees with the chunk count"
    );
    assert_eq!(last["usage"]["prompt_tokens"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn stream_is_paced_by_ttft_and_tokens_per_second() {
    let server = start(1, &[("ttft", "200ms"), ("tokens_per_sec", "20")]).await;
    let addr = server.addrs()[0];
    let body = r#"{"prompt":"x","stream":true,"max_tokens":6}"#;
    let sent = Instant::now();
    let r = post(addr, "/v1/completions", body).await;
    let ev = events(r, sent).await;
    assert_eq!(ev.len(), 6 + 2);
    let ttft = ev[0].0;
    // The first token cannot come before its time; the upper bounds only
    // catch a stream that is not paced at all or buffered whole.
    assert!(ttft >= Duration::from_millis(195), "ttft {ttft:?}");
    assert!(ttft < Duration::from_millis(200 + 150), "ttft {ttft:?}");
    let gaps: Vec<Duration> = ev[..6].windows(2).map(|w| w[1].0 - w[0].0).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= Duration::from_millis(45) && mean < Duration::from_millis(80),
        "gaps {gaps:?}"
    );
    let total = ev[5].0 - ttft;
    assert!(
        total >= Duration::from_millis(245),
        "5 gaps of 50ms, got {total:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn per_port_stream_profiles_differ() {
    let mut config = mockbackend::Config::ephemeral(2, profile(&[]));
    config.profile_mut(1).set("ttft", "300ms").unwrap();
    let server = mockbackend::Server::start(config).await.unwrap();
    let body = r#"{"messages":[],"stream":true,"max_tokens":1}"#;
    let mut firsts = Vec::new();
    for addr in server.addrs() {
        let sent = Instant::now();
        let ev = events(post(addr, "/v1/chat/completions", body).await, sent).await;
        firsts.push(ev[0].0);
    }
    assert!(firsts[0] < Duration::from_millis(150), "{firsts:?}");
    assert!(firsts[1] >= Duration::from_millis(295), "{firsts:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn whole_answers_take_as_long_as_the_stream_would() {
    let server = start(1, &[("ttft", "100ms"), ("tokens_per_sec", "50")]).await;
    let addr = server.addrs()[0];
    let sent = Instant::now();
    let r = post(
        addr,
        "/v1/chat/completions",
        r#"{"messages":[],"max_tokens":6}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["usage"]["completion_tokens"], 6);
    assert!(
        sent.elapsed() >= Duration::from_millis(100 + 5 * 20),
        "{:?}",
        sent.elapsed()
    );
    server.shutdown().await;
}
