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
