//! Random lines against every reader and random thresholds against their
//! parser: each gives an entry or an error, never a panic (issue: hostile
//! logs). Samples are real lines of each format, mutated.

use proptest::prelude::*;

use crate::formats::{self, Reader};
use crate::threshold::Threshold;

const LINES: &[&str] = &[
    r#"127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET / HTTP/1.1" 200 18 "-" "curl/7.88.1" "-" to: 127.0.0.1:45023 rt=0.002 urt=0.001 us=200 cl=18"#,
    r#"127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET / HTTP/1.1" 502 18 "-" "ab" "-" to: 127.0.0.1:1, 127.0.0.1:2 : u rt=1.2 urt=1.0, 0.2 : - us=502, 200 : -"#,
    r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#,
    r#"127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET / HTTP/1.1" 200 18 "-" "curl/7.88.1" 79 0.002 [default-ai-80] [] 127.0.0.1:45023 18 0.001 200 b699cfd74acda89e25b27292e017ebb4"#,
    "1763712000.123 200 0.012 18 127.0.0.1:8001",
    r#"{"time_iso8601":"2026-11-21T09:11:23+00:00","remote_addr":"127.0.0.1","request":"GET / HTTP/1.1","status":"200","request_time":"0.002","upstream_addr":"127.0.0.1:45023","upstream_status":"200","upstream_response_time":"0.001"}"#,
    r#"{"ClientHost":"10.1.2.3","DownstreamStatus":503,"Duration":41000000,"ServiceAddr":"10.0.3.7:8000","ServiceURL":{"Host":"10.0.3.7:8000"},"StartUTC":"2026-11-21T08:00:01.25Z"}"#,
    r#"127.0.0.1:50422 [21/Nov/2026:09:11:23.498] http-in ai/s1 0/0/0/0/0 200 191 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
    r#"<134>Nov 21 09:11:26 localhost haproxy[13364]: 127.0.0.1:50502 [21/Nov/2026:09:11:26.665] http-in http-in/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>""#,
    r#"192.168.1.10 - - [21/Nov/2026:08:00:00 +0000] "GET /v1/models HTTP/1.1" 200 512 "-" "curl/8.0" 42 "ai@docker" "http://172.18.0.3:8000" 3ms"#,
    r#"[2026-11-21T08:00:00.000Z] "GET / HTTP/1.1" 200 - 0 18 2 1 "-" "curl" "id" "host" "127.0.0.1:8001""#,
];

const THRESHOLDS: &[&str] = &[
    "p(95)<500ms",
    "p(99.9){node=127.0.0.1:8002}<=1.5s",
    "error_rate<1%",
    "imbalance<10%",
    "avg<250us",
    "requests{node=a}>=10",
    "split_share==0",
];

/// Every reader the analyzer has: each preset and template, and the rest.
fn readers() -> Vec<Reader> {
    let mut names: Vec<&str> = logformat::presets::PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    names.extend(formats::TEMPLATES.iter().map(|(n, _)| *n));
    names.extend(["haproxy", "traefik", "json"]);
    names
        .into_iter()
        .map(|n| {
            formats::named(n)
                .expect("a known format")
                .expect("no config needed")
                .reader
        })
        .collect()
}

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_line_makes_a_reader_panic(line in primitives::fuzz::text(LINES)) {
        for reader in readers() {
            let _ = reader.entry(&line);
        }
        let _ = formats::detect(&[line.as_str()]);
    }

    #[test]
    fn no_threshold_makes_the_parser_panic(text in primitives::fuzz::text(THRESHOLDS)) {
        let _ = Threshold::parse(&text);
    }
}
