//! Random answers against the HTTP/1 response reader, chunked framing and
//! the event-stream reader, fed whole and in random pieces: a value or an
//! error, never a panic, and never more body than was sent. And random
//! dataset files against the dataset reader.

use std::time::Duration;

use proptest::prelude::*;

use crate::dataset;
use crate::http1::{parse_head, Chunked};
use crate::sse::Stream;

const HEADS: &[&str] = &[
    "HTTP/1.1 200 OK\r\nServer: mock\r\nX-Backend: 127.0.0.1:8001\r\nContent-Length: 18\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n\r\n",
    "HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Upstream: a, b\r\n\r\n",
];

const CHUNKED: &[&str] = &[
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
];

const EVENTS: &[&str] = &[
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" there\"}}],\"usage\":{\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
    ": keep-alive\r\n\r\nevent: error\ndata: {\"error\":{\"message\":\"overloaded\"}}\n\n",
];

const DATASETS: &[&str] = &[
    "{\"prompt\": \"Tell me a story\", \"output_tokens\": 12}\n{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}], \"max_tokens\": 3}\n",
    "[{\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"What is nginx?\"}, {\"from\": \"gpt\", \"value\": \"A proxy.\"}]}]",
];

/// `data` in pieces cut at `cuts` (taken modulo its length).
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for end in at.into_iter().chain([data.len()]) {
        out.push(&data[start..end]);
        start = end;
    }
    out
}

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_head_makes_the_reader_panic(head in primitives::fuzz::bytes(HEADS), is_head in any::<bool>()) {
        if let Ok(Some(h)) = parse_head(&head, is_head, &["x-upstream", "x-backend"]) {
            prop_assert!(h.len <= head.len());
            for (a, b) in [h.node, h.server].into_iter().flatten() {
                prop_assert!(a <= b && b <= head.len());
            }
        }
    }

    #[test]
    fn no_chunked_body_makes_the_framing_panic(
        body in primitives::fuzz::bytes(CHUNKED),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut chunks = Chunked::default();
        let mut decoded = 0usize;
        for piece in pieces(&body, &cuts) {
            match chunks.feed(piece, &mut |d| decoded += d.len()) {
                Ok(Some(end)) => {
                    prop_assert!(end <= piece.len());
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
        }
        prop_assert!(decoded <= body.len());
    }

    #[test]
    fn no_event_stream_makes_the_reader_panic(
        stream in primitives::fuzz::bytes(EVENTS),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut sse = Stream::default();
        for (i, piece) in pieces(&stream, &cuts).into_iter().enumerate() {
            sse.feed(piece, Duration::from_millis(i as u64), &mut |_| {});
        }
        let _ = sse.tokens();
    }

    #[test]
    fn no_dataset_file_makes_the_reader_panic(file in primitives::fuzz::bytes(DATASETS)) {
        if let Ok(records) = dataset::parse(&file) {
            prop_assert!(!records.is_empty());
            for r in &records {
                prop_assert!(r.output_tokens != Some(0));
                let body = r.body(dataset::Endpoint::Chat, "m", true);
                prop_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
            }
        }
    }
}
