//! The figures vLLM's `bench serve` reports, under its names, so dashboards
//! and scripts that read its result JSON read lbkit's runs too. Pure: from
//! the merged figures of a run.
//!
//! vLLM's definitions: a request is *completed* when its answer came whole
//! (for streams: to `data: [DONE]`, with no error event); TPOT is the time
//! after the first token per later token, of streams with more than one;
//! ITL is every gap between tokens; E2EL is the request's whole time;
//! goodput is requests per second that met every SLO.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

use crate::plan::Plan;
use crate::schedule::Pacing;
use crate::stats::Stats;

/// The percentiles given for each latency, as `pNN_*_ms` (vLLM's
/// `--metric-percentiles 50,90,95,99`).
const PERCENTILES: [u32; 4] = [50, 90, 95, 99];

/// The `vllm` block of loadgen's JSON report.
pub fn block(plan: &Plan, stats: &Stats, elapsed: Duration) -> Value {
    let st = &stats.streams;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let completed = if st.streams > 0 {
        st.complete
    } else {
        stats.complete.saturating_sub(stats.non_2xx)
    };
    let (input, output) = (st.input_tokens, st.output_tokens);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("duration", secs.into());
    put("completed", completed.into());
    put("failed", stats.sent().saturating_sub(completed).into());
    put("total_input_tokens", input.into());
    put("total_output_tokens", output.into());
    put("request_throughput", (completed as f64 / secs).into());
    put("output_throughput", (output as f64 / secs).into());
    put(
        "total_token_throughput",
        ((input + output) as f64 / secs).into(),
    );
    put(
        "request_goodput",
        plan.slo
            .as_ref()
            .map_or(Value::Null, |_| (st.good as f64 / secs).into()),
    );
    put(
        "request_rate",
        match plan.pacing {
            Pacing::Rate(r) => r.into(),
            Pacing::Closed => "inf".into(),
        },
    );
    put("max_concurrency", plan.concurrency.into());
    put("max_concurrent_requests", stats.peak_in_flight.into());
    for (name, h) in [
        ("ttft", &st.ttft),
        ("tpot", &st.tpot),
        ("itl", &st.itl),
        ("e2el", &st.e2e),
    ] {
        latencies(&mut m, name, h);
    }
    Value::Object(m)
}

/// `mean_X_ms`, `median_X_ms`, `std_X_ms` and `pNN_X_ms` of a histogram in
/// microseconds; 0 when it is empty, as vLLM gives for no samples.
fn latencies(m: &mut Map<String, Value>, name: &str, h: &Histogram<u64>) {
    let ms = |us: f64| if h.is_empty() { 0.0 } else { us / 1000.0 };
    m.insert(format!("mean_{name}_ms"), ms(h.mean()).into());
    m.insert(
        format!("median_{name}_ms"),
        ms(h.value_at_quantile(0.5) as f64).into(),
    );
    m.insert(format!("std_{name}_ms"), ms(h.stdev()).into());
    for p in PERCENTILES {
        let q = f64::from(p) / 100.0;
        m.insert(
            format!("p{p}_{name}_ms"),
            ms(h.value_at_quantile(q) as f64).into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Stream;
    use crate::streams::Finished;

    #[test]
    fn names_and_figures_as_vllm_reports_them() {
        let plan = crate::Flags {
            url: "http://127.0.0.1:1/v1/chat/completions".into(),
            requests: Some(3),
            stream: true,
            slo: Some("ttft<150ms".into()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let mut stats = Stats::default();
        for ttft in [100, 200] {
            let mut sse = Stream::default();
            let body = concat!(
                "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\n\n",
                "data: [DONE]\n\n",
            );
            sse.feed(body.as_bytes(), Duration::from_millis(ttft), &mut |_| {});
            stats.complete += 1;
            stats.streams.record(
                &Finished {
                    sse: &sse,
                    worst_gap: None,
                    total: Duration::from_millis(ttft + 400),
                    node: None,
                },
                plan.slo.as_ref(),
            );
        }
        stats.failed_receive = 1;
        stats.peak_in_flight = 2;
        let v = block(&plan, &stats, Duration::from_secs(2));
        assert_eq!(
            (v["completed"].as_u64(), v["failed"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(v["total_input_tokens"], 20);
        assert_eq!(v["total_output_tokens"], 10);
        assert_eq!(v["request_throughput"], 1.0);
        assert_eq!(v["output_throughput"], 5.0);
        assert_eq!(v["total_token_throughput"], 15.0);
        assert_eq!(v["request_goodput"], 0.5, "one of two met ttft<150ms");
        assert_eq!(v["request_rate"], "inf");
        assert_eq!(v["max_concurrent_requests"], 2);
        assert_eq!(v["mean_ttft_ms"], 150.0);
        assert_eq!(v["p99_ttft_ms"].as_f64().map(f64::round), Some(200.0));
        // TPOT: 400 ms after the first token over 4 more tokens.
        assert_eq!(v["median_tpot_ms"].as_f64().map(f64::round), Some(100.0));
        assert_eq!(v["mean_itl_ms"], 0.0, "no gaps recorded: 0, as vLLM");
        assert!(v["median_e2el_ms"].as_f64().unwrap() >= 500.0);
    }
}
