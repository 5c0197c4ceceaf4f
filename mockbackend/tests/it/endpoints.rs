use mockbackend::metrics::BUCKETS;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn get_anywhere_answers_the_seed_text_naming_the_port() {
    let server = start(2, &[]).await;
    for addr in server.addrs() {
        for path in ["/", "/some/page?x=1"] {
            let r = get(addr, path).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
            assert_eq!(r.text().await.unwrap(), format!("响应来自:{}", addr.port()));
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn chat_and_completions_answer_the_seed_shapes() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let r = post(
        addr,
        "/chat",
        r#"{"message": "Hello, this is a test message"}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v = json(r).await;
    assert_eq!(v["original"], "Hello, this is a test message");
    assert_eq!(
        v["response"],
        "Processed by chat API: HELLO, THIS IS A TEST MESSAGE"
    );
    assert_eq!(v["server"], addr.port());
    assert!(v["timestamp"].is_string());

    let v = json(post(addr, "/completions", "你好,我是Michael阿明开发的智能助手!").await).await;
    assert_eq!(v["completions"][0]["text"], "Completion 1: 你好,我是...");
    assert_eq!(v["completions"][1]["text"], "Completion 2: 智能助手!...");
    assert_eq!(v["server"], addr.port());
    server.shutdown().await;
}

#[tokio::test]
async fn errors_are_json_with_server_and_timestamp() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    let r = post(addr, "/chat", "{not json").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
    let v = json(r).await;
    assert_eq!(v["error"], "Invalid JSON format");
    assert_eq!(v["server"], addr.port());
    assert!(v["timestamp"].is_string());

    let r = post(addr, "/no/such/api", "{}").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"], "API not found");

    let r = get(addr, "/chat").await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.headers()["x-backend"], addr.to_string().as_str());
    let r = client().delete(url(addr, "/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = post(addr, "/health", "").await;
    assert_eq!(r.status(), 405);
    server.shutdown().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    for path in ["/health", "/healthz"] {
        let r = get(addr, path).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "healthy\n");
    }
    assert_eq!(get(addr, "/ready").await.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn openai_models_and_whole_answers() {
    let server = start(1, &[("model", "llama-mock"), ("output_tokens", "8")]).await;
    let addr = server.addrs()[0];
    let v = json(get(addr, "/v1/models").await).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "llama-mock");
    // What the openai SDK's models.retrieve asks for.
    let r = get(addr, "/v1/models/llama-mock").await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    assert_eq!(
        (v["id"].as_str(), v["object"].as_str()),
        (Some("llama-mock"), Some("model"))
    );
    let r = get(addr, "/v1/models/gpt-4").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "model_not_found");

    let body = r#"{"messages":[{"role":"user","content":"say something"}],"max_tokens":3}"#;
    let v = json(post(addr, "/v1/chat/completions", body).await).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "llama-mock");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "The balancer sent");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(
        v["usage"]["prompt_tokens"], 4,
        "13 characters, 4 to a token"
    );

    let v = json(
        post(
            addr,
            "/v1/completions",
            r#"{"prompt":"once upon","max_tokens":100}"#,
        )
        .await,
    )
    .await;
    assert_eq!(v["object"], "text_completion");
    assert_eq!(
        v["choices"][0]["finish_reason"], "stop",
        "max_tokens above output_tokens stops naturally"
    );
    assert_eq!(v["usage"]["completion_tokens"], 8);

    let r = post(addr, "/v1/chat/completions", r#"{"model":"x"}"#).await;
    assert_eq!(r.status(), 400);
    let v = json(r).await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("messages"));
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_json_prometheus_and_openmetrics() {
    let server = start(1, &[]).await;
    let addr = server.addrs()[0];
    for _ in 0..3 {
        post(addr, "/chat", r#"{"message":"x"}"#).await;
    }
    post(addr, "/chat", "bad").await;

    let v = json(get(addr, "/metrics").await).await;
    for key in [
        "cpu_usage",
        "memory_usage",
        "active_requests",
        "queue_length",
        "timestamp",
    ] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    assert_eq!(v["requests_total"], 4);
    assert_eq!(v["errors_total"], 1);

    let metrics = |accept: &'static str| {
        client()
            .get(url(addr, "/metrics"))
            .header("accept", accept)
            .send()
    };
    let r = metrics("text/plain").await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let port = addr.port();
    assert!(
        text.contains(&format!(
            "mock_requests_total{{port=\"{port}\",path=\"/chat\",status=\"200\"}} 3\n"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "mock_requests_total{{port=\"{port}\",path=\"/chat\",status=\"400\"}} 1\n"
    )));
    assert!(text.contains(&format!("mock_in_flight{{port=\"{port}\"}} 0\n")));
    assert!(text.contains(&format!("mock_queue_length{{port=\"{port}\"}} 0\n")));
    let inf = format!(
        "mock_request_duration_seconds_bucket{{port=\"{port}\",path=\"/chat\",le=\"+Inf\"}} 4\n"
    );
    assert!(text.contains(&inf), "{text}");
    assert_eq!(
        text.matches("path=\"/chat\",le=").count(),
        BUCKETS.len() + 1
    );
    assert!(!text.contains("# EOF"));

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let r = metrics(accept).await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));

    let v = json(get(addr, "/load").await).await;
    assert!(
        v["cpu"].is_number() && v["memory"].is_number() && v["timestamp"].is_number(),
        "{v}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn simulated_cpu_and_memory_follow_the_load() {
    let server = start(1, &[("latency", "2s"), ("max_concurrency", "4")]).await;
    let addr = server.addrs()[0];
    let idle: Value = json(get(addr, "/metrics").await).await;
    assert_eq!(idle["cpu_usage"], 5.0);
    let busy: Vec<_> = (0..4).map(|_| tokio::spawn(get(addr, "/"))).collect();
    wait_state(addr, 0, |p| p["in_flight"] == 4).await;
    let loaded = json(get(addr, "/metrics").await).await;
    assert_eq!(loaded["cpu_usage"], 100.0);
    assert_eq!(loaded["active_requests"], 4);
    assert!(loaded["memory_usage"].as_f64().unwrap() > 85.0, "{loaded}");
    for b in busy {
        assert_eq!(b.await.unwrap().status(), 200);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn every_port_counts_only_its_own_requests() {
    let server = start(3, &[]).await;
    let addrs = server.addrs();
    for (i, addr) in addrs.iter().enumerate() {
        for _ in 0..=i {
            get(*addr, "/").await;
        }
    }
    for (i, node) in server.nodes().iter().enumerate() {
        assert_eq!(
            node.metrics.count(mockbackend::routes::Route::Text, 200),
            i as u64 + 1
        );
    }
    server.shutdown().await;
}
