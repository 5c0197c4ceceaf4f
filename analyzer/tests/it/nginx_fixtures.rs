//! Lines real nginx wrote (tests/data/nginx-*.log, made by make-fixtures.sh):
//! one request sequence logged at once in every format, against upstream
//! `ai` (two live mockbackend ports at 3:2 and a dead one at weight 1).
//! The sequence: 12 GETs (one retried past the dead server), a POST /chat,
//! a GET /gone (an upstream whose only server is dead: 502), and a GET
//! /local that nginx answered itself.

use analyzer::formats::detect;
use analyzer::Summary;

fn lines(file: &str) -> Vec<&'static str> {
    let text = match file {
        "combined" => include_str!("../data/nginx-combined.log"),
        "main" => include_str!("../data/nginx-main.log"),
        "upstream_log" => include_str!("../data/nginx-upstream_log.log"),
        "upstream_log_port" => include_str!("../data/nginx-upstream_log_port.log"),
        "lbkit" => include_str!("../data/nginx-lbkit.log"),
        // lbkit's format before cl= (kept from an earlier run of the script).
        "lbkit-1" => include_str!("../data/nginx-lbkit-1.log"),
        "upstreaminfo" => include_str!("../data/nginx-upstreaminfo.log"),
        "json" => include_str!("../data/nginx-json.log"),
        _ => unreachable!("no fixture {file}"),
    };
    text.lines().collect()
}

fn summary(format: &str) -> Summary {
    let lines = lines(format);
    let chosen = detect(&lines).unwrap();
    assert_eq!(chosen.name, format, "recognised as itself");
    let mut s = Summary::default();
    for line in &lines {
        s.add(
            &chosen
                .reader
                .entry(line)
                .unwrap_or_else(|e| panic!("{format}: {e}: {line}")),
        );
    }
    s
}

/// Every fixture; those from `upstream_log` on log `$upstream_addr`.
const FORMATS: [&str; 8] = [
    "combined",
    "main",
    "upstream_log",
    "upstream_log_port",
    "lbkit",
    "lbkit-1",
    "upstreaminfo",
    "json",
];

#[test]
fn every_format_nginx_wrote_is_recognised_and_read_whole() {
    for format in FORMATS {
        let s = summary(format);
        assert_eq!(s.all.requests, 15, "{format}");
        assert_eq!(s.all.classes[1], 14, "{format}: 2xx");
        assert_eq!(s.all.classes[4], 1, "{format}: the 502 from /gone");
    }
}

#[test]
fn upstream_lists_count_attempts_and_name_the_answering_node() {
    for format in &FORMATS[2..] {
        let s = summary(format);
        // /local never reached an upstream.
        assert_eq!(s.no_upstream, 1, "{format}");
        // One GET tried the dead server first, then a live one.
        assert_eq!((s.retried, s.extra_attempts), (1, 1), "{format}");
        // The dead server answered only /gone's 502 (nginx logs its
        // address); the 13 others went to the two live ports, 3:2 by
        // smooth weighted round robin over the weights nginx could use.
        let mut counts: Vec<u64> = s.nodes.values().map(|t| t.requests).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 5, 8], "{format}: {:?}", s.nodes.keys());
        let dead = s.nodes.values().find(|t| t.requests == 1).unwrap();
        assert_eq!(dead.errors, 1, "{format}");
    }
}

#[test]
fn timings_are_read_where_the_format_has_them() {
    for (format, has_timing) in [
        ("lbkit", true),
        ("upstreaminfo", true),
        ("json", true),
        ("combined", false),
    ] {
        let s = summary(format);
        assert_eq!(!s.all.request_time.is_empty(), has_timing, "{format}");
    }
    // A client address rides in $remote_addr; the upstream_log_port
    // variant glues the client port to it.
    assert!(summary("lbkit").clients.contains_key("127.0.0.1"));
}
