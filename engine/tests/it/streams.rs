//! Token streams end to end: mockbackend's OpenAI-style SSE, read by
//! loadgen as it arrives, directly and through the reference balancer.

use engine::Flags;
use engine::Stats;
use mockbackend::Server;

use crate::common;

async fn mock(settings: &[(&str, &str)]) -> Server {
    common::mock(1, settings).await
}

async fn proxy_to(m: &Server) -> balancer::proxy::Proxy {
    common::balancer(&common::servers(m), false).await.0
}

async fn streams(url: String, n: u64, c: usize, timeout: Option<f64>) -> Stats {
    let flags = Flags {
        url,
        requests: Some(n),
        concurrency: Some(c),
        stream: true,
        keep_going: true,
        keepalive: true,
        timeout,
        ..Flags::default()
    };
    crate::run::run(flags).await.0
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_and_itl_match_the_mocks_pace_directly_and_through_the_balancer() {
    let m = mock(&[
        ("ttft", "200ms"),
        ("tokens_per_sec", "20"),
        ("output_tokens", "10"),
    ])
    .await;
    let p = proxy_to(&m).await;
    let url = |addr| format!("http://{addr}/v1/chat/completions");
    for (how, addr) in [("direct", m.addrs()[0]), ("through the balancer", p.addr())] {
        let s = streams(url(addr), 10, 5, None).await;
        let st = &s.streams;
        assert_eq!((st.streams, st.complete), (10, 10), "{how}");
        assert_eq!(s.failed(), 0, "{how}: {:?}", s.errors);
        let (ttft, itl) = (ms(&st.ttft, 0.5), ms(&st.itl, 0.5));
        assert!(
            (195.0..240.0).contains(&ttft),
            "{how}: TTFT p50 {ttft} ms, configured 200"
        );
        assert!(
            (45.0..60.0).contains(&itl),
            "{how}: ITL p50 {itl} ms, configured 50"
        );
        // Usage says 10 tokens; so do the chunks that carried text.
        assert_eq!(st.output_tokens, 100, "{how}");
        assert_eq!((st.from_usage, st.usage_disagrees), (10, 0), "{how}");
    }
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_passes_tokens_through_as_they_come() {
    // First token at 300 ms, then 10 more over 2 s: a balancer that
    // buffered would show a TTFT of 2.3 s; one that served one stream per
    // upstream connection at a time would show TTFTs in steps of 2.3 s.
    let m = mock(&[
        ("ttft", "300ms"),
        ("tokens_per_sec", "5"),
        ("output_tokens", "11"),
    ])
    .await;
    let p = proxy_to(&m).await;
    let url = |addr| format!("http://{addr}/v1/chat/completions");
    let direct = streams(url(m.addrs()[0]), 8, 8, None).await;
    let through = streams(url(p.addr()), 8, 8, None).await;
    for (how, s) in [("direct", &direct), ("through", &through)] {
        assert_eq!(s.streams.complete, 8, "{how}: {:?}", s.errors);
        assert!(
            ms(&s.streams.e2e, 0.5) > 2000.0,
            "{how}: the streams last seconds"
        );
    }
    let worst = |s: &Stats| ms(&s.streams.ttft, 1.0);
    let gap = (worst(&through) - worst(&direct)).abs();
    assert!(
        gap < 25.0,
        "slowest TTFT of 8 concurrent streams: {} ms direct, {} ms through the balancer",
        worst(&direct),
        worst(&through)
    );
    p.shutdown().await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_counted_as_an_error_of_its_kind() {
    let m = mock(&[
        ("tokens_per_sec", "50"),
        ("output_tokens", "8"),
        ("stall_after", "3"),
    ])
    .await;
    let s = streams(
        format!("http://{}/v1/chat/completions", m.addrs()[0]),
        4,
        2,
        Some(0.5),
    )
    .await;
    assert_eq!(s.errors.get("stream stalled"), Some(&4), "{:?}", s.errors);
    assert_eq!((s.streams.streams, s.streams.complete), (4, 0));
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_way_is_counted_as_cut() {
    let m = mock(&[("tokens_per_sec", "100"), ("output_tokens", "20")]).await;
    let (_, reset) = mockbackend::faults::parse_control("reset-connections", "after=400").unwrap();
    m.control(0, reset).await.unwrap();
    let s = streams(
        format!("http://{}/v1/chat/completions", m.addrs()[0]),
        3,
        1,
        Some(5.0),
    )
    .await;
    assert_eq!(s.errors.get("stream cut"), Some(&3), "{:?}", s.errors);
    assert_eq!(s.streams.complete, 0);
    m.shutdown().await;
}

/// A server that answers every request with an event stream whose second
/// event is an error, then `[DONE]`, as OpenAI-compatible servers report a
/// failure that happens mid-stream.
async fn erroring_stream_server() -> std::net::SocketAddr {
    // The body has no Content-Length: it ends when the server closes.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
    let body = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n",
        "data: [DONE]\n\n"
    );
    crate::run::canned(head, body.as_bytes(), Some(1)).await
}

#[tokio::test]
async fn an_error_event_is_a_stream_error_not_a_whole_stream() {
    let addr = erroring_stream_server().await;
    let s = streams(
        format!("http://{addr}/v1/chat/completions"),
        3,
        1,
        Some(5.0),
    )
    .await;
    assert_eq!(s.streams.streams, 3);
    assert_eq!(s.streams.complete, 0, "none was whole");
    assert_eq!(s.streams.errors(), 3);
    assert_eq!(s.errors.get("stream error"), Some(&3));
    assert_eq!(s.failed_receive, 3);
    assert!(
        s.first_error
            .as_deref()
            .is_some_and(|e| e.contains("model overloaded")),
        "{:?}",
        s.first_error
    );
}

/// Each request takes the next record, and its answer is as long as the
/// record asked: the mock would say 64 tokens, each record's max_tokens
/// cuts it to the record's length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_run_sends_each_record_and_its_output_length() {
    let m = mock(&[("output_tokens", "64")]).await;
    let lengths = [3u64, 5, 8, 13, 2, 21];
    let mut file = String::new();
    for (i, n) in lengths.iter().enumerate() {
        let record = if i % 2 == 0 {
            serde_json::json!({"prompt": format!("question {i}"), "output_tokens": n})
        } else {
            serde_json::json!({"messages": [{"role": "user", "content": "abcdefgh"}], "output_tokens": n})
        };
        file.push_str(&format!("{record}\n"));
    }
    let flags = Flags {
        url: format!("http://{}/v1/chat/completions", m.addrs()[0]),
        concurrency: Some(2),
        stream: true,
        keepalive: true,
        dataset: Some("prompts.jsonl".into()),
        dataset_bytes: Some(file.into()),
        ..Flags::default()
    };
    let (s, _) = crate::run::run(flags).await;
    let st = &s.streams;
    assert_eq!(
        (s.complete, st.complete),
        (6, 6),
        "without -n, each record once: {:?}",
        s.errors
    );
    assert_eq!(st.from_usage, 6, "the dataset's bodies ask for usage");
    assert_eq!(st.output_tokens, lengths.iter().sum::<u64>());
    let mut seen: Vec<u64> = st
        .output_lengths
        .iter_recorded()
        .flat_map(|v| std::iter::repeat_n(v.value_iterated_to(), v.count_at_value() as usize))
        .collect();
    seen.sort();
    let mut want = lengths.to_vec();
    want.sort();
    assert_eq!(seen, want, "one answer of each record's length");
    // "question 0" is 10 characters (3 tokens); "abcdefgh" 2.
    assert_eq!(st.input_tokens, 3 * 3 + 3 * 2);
    m.shutdown().await;
}

/// vLLM's synthetic prompts: lengths within the ratio, the answers' too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_dataset_has_the_lengths_asked_for() {
    let m = mock(&[("output_tokens", "1000")]).await;
    let flags = Flags {
        url: format!("http://{}/v1/completions", m.addrs()[0]),
        requests: Some(40),
        concurrency: Some(4),
        stream: true,
        keepalive: true,
        dataset: Some("random".into()),
        input_len: Some(200),
        output_len: Some(20),
        range_ratio: Some(0.5),
        prefix_len: Some(10),
        ..Flags::default()
    };
    let (s, _) = crate::run::run(flags).await;
    let st = &s.streams;
    assert_eq!(st.complete, 40, "{:?}", s.errors);
    assert!(
        (10..=30).contains(&st.output_lengths.min()),
        "{}",
        st.output_lengths.min()
    );
    assert!(st.output_lengths.max() <= 30);
    let mean_input = st.input_tokens as f64 / 40.0;
    assert!((150.0..=270.0).contains(&mean_input), "{mean_input}");
    m.shutdown().await;
}
