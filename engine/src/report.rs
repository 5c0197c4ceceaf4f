//! The report: ab's sections, labels and number formats line for line, so a
//! parser of ab's output reads it; then what ab never had (percentiles from
//! the merged HDR histograms, per-node distribution, statuses).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::plan::Plan;
use crate::schedule::{Arrival, Pacing};
use crate::stats::Stats;

/// ab's `ap_round_ms`: microseconds to whole milliseconds, rounded.
fn round_ms(us: u64) -> u64 {
    (us + 500) / 1000
}

/// One row of ab's Connection Times table.
fn times_row(out: &mut String, label: &str, h: &Histogram<u64>) {
    let _ = writeln!(
        out,
        "{label:<12}{:5} {:4} {:5.1} {:6} {:7}",
        round_ms(h.min()),
        (h.mean() / 1000.0 + 0.5) as u64,
        h.stdev() / 1000.0,
        round_ms(h.value_at_quantile(0.5)),
        round_ms(h.max()),
    );
}

/// ab's report for `stats` gathered over `elapsed`.
pub fn ab(plan: &Plan, stats: &Stats, elapsed: Duration) -> String {
    let mut out = String::new();
    let t = &plan.target;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let done = stats.complete;
    let _ = writeln!(out, "\n");
    let _ = writeln!(
        out,
        "Server Software:        {}",
        stats.server.as_deref().unwrap_or("")
    );
    let _ = writeln!(out, "Server Hostname:        {}", t.host);
    let _ = writeln!(out, "Server Port:            {}", t.port);
    if t.tls {
        let _ = writeln!(out, "TLS Server Name:        {}", t.host);
    }
    if plan.transport.tls.is_some() || plan.transport.http2.is_some() {
        let _ = writeln!(
            out,
            "Protocol:               {}",
            plan.transport.name(plan.keepalive)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Document Path:          {}", t.path);
    if plan.variable_length {
        let _ = writeln!(out, "Document Length:        Variable");
    } else {
        let _ = writeln!(
            out,
            "Document Length:        {} bytes",
            stats.document_length.unwrap_or(0)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Concurrency Level:      {}", plan.concurrency);
    let _ = writeln!(out, "Time taken for tests:   {:.3} seconds", secs);
    let _ = writeln!(out, "Complete requests:      {done}");
    let _ = writeln!(out, "Failed requests:        {}", stats.failed());
    if stats.failed() > 0 {
        let _ = writeln!(
            out,
            "   (Connect: {}, Receive: {}, Length: {}, Exceptions: {})",
            stats.failed_connect,
            stats.failed_receive,
            stats.failed_length,
            stats.failed_exceptions
        );
    }
    if stats.non_2xx > 0 {
        let _ = writeln!(out, "Non-2xx responses:      {}", stats.non_2xx);
    }
    if plan.keepalive {
        let _ = writeln!(out, "Keep-Alive requests:    {}", stats.keepalive_responses);
    }
    let _ = writeln!(out, "Total transferred:      {} bytes", stats.bytes_in);
    if plan.body.is_some() {
        let _ = writeln!(out, "Total body sent:        {}", stats.bytes_out);
    }
    let _ = writeln!(out, "HTML transferred:       {} bytes", stats.body_bytes_in);
    let per_request = if done > 0 {
        secs * 1000.0 / done as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "Requests per second:    {:.2} [#/sec] (mean)",
        done as f64 / secs
    );
    let _ = writeln!(
        out,
        "Time per request:       {:.3} [ms] (mean)",
        per_request * plan.concurrency as f64
    );
    let _ = writeln!(
        out,
        "Time per request:       {:.3} [ms] (mean, across all concurrent requests)",
        per_request
    );
    let _ = writeln!(
        out,
        "Transfer rate:          {:.2} [Kbytes/sec] received",
        stats.bytes_in as f64 / 1024.0 / secs
    );
    if plan.body.is_some() {
        let sent = stats.bytes_out as f64 / 1024.0 / secs;
        let _ = writeln!(out, "                        {sent:.2} kb/s sent");
        let _ = writeln!(
            out,
            "                        {:.2} kb/s total",
            sent + stats.bytes_in as f64 / 1024.0 / secs
        );
    }
    if done == 0 {
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Connection Times (ms)");
    let _ = writeln!(out, "              min  mean[+/-sd] median   max");
    times_row(&mut out, "Connect:", &stats.connect);
    times_row(&mut out, "Processing:", &stats.processing);
    times_row(&mut out, "Waiting:", &stats.waiting);
    times_row(&mut out, "Total:", &stats.total);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Percentage of the requests served within a certain time (ms)"
    );
    for p in [50, 66, 75, 80, 90, 95, 98, 99] {
        let _ = writeln!(
            out,
            "  {p}%  {:5}",
            round_ms(stats.total.value_at_quantile(f64::from(p) / 100.0))
        );
    }
    let _ = writeln!(
        out,
        " 100%  {:5} (longest request)",
        round_ms(stats.total.max())
    );
    out
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// What comes after ab's sections: HDR percentiles, the open-loop view,
/// statuses and errors, and the per-node distribution.
pub fn beyond(plan: &Plan, stats: &Stats) -> String {
    let mut out = String::new();
    if stats.complete == 0 {
        return out;
    }
    let quantiles = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999];
    let line = |out: &mut String, label: &str, h: &Histogram<u64>| {
        let _ = write!(out, "{label:<24}");
        percentiles(out, h, &quantiles);
    };
    let _ = writeln!(
        out,
        "\nLatency percentiles (HDR histogram, all workers merged)"
    );
    if let Pacing::Rate(r) = plan.pacing {
        line(&mut out, "  from schedule:", &stats.corrected);
        line(&mut out, "  uncorrected:", &stats.total);
        let _ = writeln!(
            out,
            "  schedule {r}/s{}; requests started late by p50={} p99={} max={} ms",
            match plan.arrival {
                Arrival::Even => String::new(),
                Arrival::Gamma { shape: 1.0, .. } => " (Poisson arrivals)".into(),
                Arrival::Gamma { shape, .. } => format!(" (gamma arrivals, burstiness {shape})"),
            },
            ms(stats.lag.value_at_quantile(0.5)),
            ms(stats.lag.value_at_quantile(0.99)),
            ms(stats.lag.max())
        );
    } else {
        line(&mut out, "  total:", &stats.total);
    }
    let statuses: Vec<String> = stats
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect();
    let _ = writeln!(out, "\nStatus codes: {}", statuses.join(" "));
    if !stats.errors.is_empty() {
        let errors: Vec<String> = stats
            .errors
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let _ = writeln!(out, "Errors: {}", errors.join(" "));
    }
    if !stats.nodes.is_empty() {
        let source = match &plan.node_field {
            Some(field) => format!("the JSON field {field}"),
            None => plan
                .node_headers
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", then "),
        };
        let _ = writeln!(out, "\nPer node (from {source})");
        let _ = writeln!(
            out,
            "  {:<24} {:>9} {:>7} {:>9} {:>9} {:>9} {:>7}",
            "node", "requests", "share", "p50 ms", "p95 ms", "p99 ms", "errors"
        );
        let answered: u64 = stats.nodes.values().map(|n| n.requests).sum();
        for (name, n) in &stats.nodes {
            let _ = writeln!(
                out,
                "  {:<24} {:>9} {:>6.1}% {:>9} {:>9} {:>9} {:>7}",
                plan.node_label(name),
                n.requests,
                100.0 * n.requests as f64 / answered.max(1) as f64,
                ms(n.total.value_at_quantile(0.5)),
                ms(n.total.value_at_quantile(0.95)),
                ms(n.total.value_at_quantile(0.99)),
                n.errors
            );
        }
    }
    out
}

/// ` p50=1.234 p90=... max=... (ms)` and the line's end.
fn percentiles(out: &mut String, h: &Histogram<u64>, quantiles: &[f64]) {
    for q in quantiles {
        let _ = write!(out, " p{}={}", q * 100.0, ms(h.value_at_quantile(*q)));
    }
    let _ = writeln!(out, " max={} (ms)", ms(h.max()));
}

/// Token streams: TTFT, ITL, TPOT and end-to-end latency, overall and per
/// node, output tokens per second, goodput; empty when no answer was an
/// event stream.
pub fn streams(plan: &Plan, stats: &Stats, elapsed: Duration) -> String {
    let st = &stats.streams;
    let mut out = String::new();
    if st.streams == 0 {
        return out;
    }
    let line = |out: &mut String, label: &str, h: &Histogram<u64>| {
        if h.is_empty() {
            let _ = writeln!(out, "  {label:<22} (none)");
            return;
        }
        let _ = write!(out, "  {label:<22}");
        percentiles(out, h, &[0.5, 0.9, 0.95, 0.99]);
    };
    let _ = writeln!(
        out,
        "\nToken streams: {} answered, {} whole, {} cut, stalled or failed",
        st.streams,
        st.complete,
        st.errors()
    );
    line(&mut out, "time to first token:", &st.ttft);
    if st.reasoning > 0 {
        // A reasoning model's first token is its thinking; users wait for content.
        line(&mut out, "time to first content:", &st.ttfc);
    }
    line(&mut out, "inter-token latency:", &st.itl);
    line(&mut out, "time per output token:", &st.tpot);
    line(&mut out, "end to end:", &st.e2e);
    let _ = writeln!(
        out,
        "  output tokens: {} ({:.1}/s), from {}{}",
        st.output_tokens,
        st.tokens_per_sec(elapsed),
        st.token_source(),
        if st.usage_disagrees > 0 {
            format!(
                "; {} streams' usage differs from their chunk count",
                st.usage_disagrees
            )
        } else {
            String::new()
        }
    );
    if st.input_from_usage > 0 {
        let _ = writeln!(
            out,
            "  input tokens: {}, from the usage of {} streams",
            st.input_tokens, st.input_from_usage
        );
    }
    if st.reasoning > 0 {
        let _ = writeln!(
            out,
            "  {} streams reasoned or called tools (counted as output)",
            st.reasoning
        );
    }
    if plan.slo.is_some() {
        let _ = writeln!(
            out,
            "  goodput: {} of {} requests met the SLO ({:.1}%)",
            st.good,
            stats.sent(),
            100.0 * stats.goodput()
        );
    }
    if !st.nodes.is_empty() {
        let _ = writeln!(
            out,
            "  {:<24} {:>8} {:>12} {:>12} {:>12} {:>12}",
            "node", "streams", "ttft p50", "ttft p95", "tpot p50", "tpot p95"
        );
        for (name, n) in &st.nodes {
            let _ = writeln!(
                out,
                "  {:<24} {:>8} {:>12} {:>12} {:>12} {:>12}",
                plan.node_label(name),
                n.streams,
                ms(n.ttft.value_at_quantile(0.5)),
                ms(n.ttft.value_at_quantile(0.95)),
                ms(n.tpot.value_at_quantile(0.5)),
                ms(n.tpot.value_at_quantile(0.95)),
            );
        }
    }
    out
}

/// HdrHistogram's standard compressed V2 encoding, base64: what other HDR
/// tools read, so runs from several machines can be merged.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    crate::saved::histogram::encode(h)
}

fn latency_json(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut m = serde_json::Map::new();
    m.insert("min".into(), ms(h.min()).into());
    m.insert("mean".into(), (h.mean() / 1000.0).into());
    m.insert("stdev".into(), (h.stdev() / 1000.0).into());
    for (name, q) in [
        ("p50", 0.5),
        ("p75", 0.75),
        ("p90", 0.9),
        ("p95", 0.95),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("p99.99", 0.9999),
    ] {
        m.insert(name.into(), ms(h.value_at_quantile(q)).into());
    }
    m.insert("max".into(), ms(h.max()).into());
    serde_json::Value::Object(m)
}

/// The whole report as JSON, with the merged histogram and every check.
pub fn json(
    plan: &Plan,
    stats: &Stats,
    elapsed: Duration,
    checks: &[crate::verdict::Check],
) -> serde_json::Value {
    let t = &plan.target;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let answered: u64 = stats.nodes.values().map(|n| n.requests).sum();
    let nodes: serde_json::Map<String, serde_json::Value> = stats
        .nodes
        .iter()
        .map(|(name, n)| {
            let v = serde_json::json!({
                "requests": n.requests,
                "share": n.requests as f64 / answered.max(1) as f64,
                "errors": n.errors,
                "latency_ms": latency_json(&n.total),
            });
            (name.clone(), v)
        })
        .collect();
    let pacing = match plan.pacing {
        Pacing::Closed => serde_json::json!({"mode": "closed"}),
        Pacing::Rate(r) => serde_json::json!({
            "mode": "rate",
            "per_second": r,
            "latency_from_schedule_ms": latency_json(&stats.corrected),
            "start_lag_ms": latency_json(&stats.lag),
            "histogram_from_schedule": encode_histogram(&stats.corrected),
        }),
    };
    let st = &stats.streams;
    let streams = (st.streams > 0).then(|| {
        serde_json::json!({
            "answered": st.streams,
            "whole": st.complete,
            "ttft_ms": latency_json(&st.ttft),
            "ttfc_ms": latency_json(&st.ttfc),
            "itl_ms": latency_json(&st.itl),
            "tpot_ms": latency_json(&st.tpot),
            "e2e_ms": latency_json(&st.e2e),
            "output_tokens": st.output_tokens,
            "input_tokens": st.input_tokens,
            "reasoning_streams": st.reasoning,
            "output_tokens_per_second": st.tokens_per_sec(elapsed),
            "tokens_counted_from": st.token_source(),
            "goodput": plan.slo.as_ref().map(|_| stats.goodput()),
            "nodes": st.nodes.iter().map(|(name, n)| (name.clone(), serde_json::json!({
                "streams": n.streams,
                "ttft_ms": latency_json(&n.ttft),
                "tpot_ms": latency_json(&n.tpot),
            }))).collect::<serde_json::Map<_, _>>(),
        })
    });
    serde_json::json!({
        "tool": "loadgen",
        "streams": streams,
        "vllm": crate::vllm::block(plan, stats, elapsed),
        "version": env!("CARGO_PKG_VERSION"),
        "target": {"scheme": t.scheme(), "host": t.host, "port": t.port, "path": t.path},
        "protocol": plan.transport.name(plan.keepalive),
        "connections": {"opened": stats.connections, "tls_resumed": stats.tls_resumed},
        "concurrency": plan.concurrency,
        "keepalive": plan.keepalive,
        "pacing": pacing,
        "time_taken_s": secs,
        "complete": stats.complete,
        // The body length every answer is held to for ab's Length failures.
        "document_length": stats.document_length,
        "failed": {
            "total": stats.failed(),
            "connect": stats.failed_connect,
            "receive": stats.failed_receive,
            "length": stats.failed_length,
            "exceptions": stats.failed_exceptions,
        },
        "non_2xx": stats.non_2xx,
        // Non-2xx answers and requests with no answer, of all requests;
        // ab's length failures are not errors of the service.
        "error_rate": stats.errors_seen() as f64 / stats.sent().max(1) as f64,
        "keepalive_responses": stats.keepalive_responses,
        "bytes": {"received": stats.bytes_in, "body_received": stats.body_bytes_in, "sent": stats.bytes_out},
        "requests_per_second": stats.complete as f64 / secs,
        "latency_ms": latency_json(&stats.total),
        "histogram": encode_histogram(&stats.total),
        "histogram_unit": "microseconds",
        "statuses": stats.statuses.iter().map(|(s, n)| (s.to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "errors": stats.errors.iter().map(|(k, n)| (k.to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "nodes": nodes,
        "checks": checks.iter().map(|c| serde_json::json!({"check": c.name, "ok": c.ok, "measured": c.measured})).collect::<Vec<_>>(),
        "ok": checks.iter().all(|c| c.ok),
    })
}
