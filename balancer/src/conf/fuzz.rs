//! Random nginx.conf texts against the reader: a config or an error naming
//! a line, never a panic. Samples are the configs lbkit ships, mutated.

use proptest::prelude::*;

use super::{include, load, parse, read};

const CONFIGS: &[&str] = &[
    include_str!("../../../scenarios/seed003/nginx.conf"),
    include_str!("../../../scenarios/seed000/nginx.conf"),
    include_str!("../../../scenarios/seed000/conf.d/ai.conf"),
    include_str!("../../../scenarios/broken-weights.conf"),
    "events { worker_connections 64; }
     http { log_format t '$status \"$request\"'; access_log /tmp/x t; client_header_timeout 5s;
       upstream u { hash $request_uri consistent; server 127.0.0.1:1 weight=3 max_fails=2 fail_timeout=1s; server 127.0.0.1:2 backup; keepalive 8; }
       server { listen 127.0.0.1:8080; location = /x { return 200 \"ok\"; }
         location / { proxy_pass http://u; proxy_next_upstream error timeout http_502; proxy_read_timeout 1m; health_check interval=1s uri=/health; } } }",
];

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_config_text_makes_the_reader_panic(text in primitives::fuzz::text(CONFIGS)) {
        let _ = load("fuzz.conf", &text);
        let _ = read("fuzz.conf", &text);
        if let Ok(directives) = parse("fuzz.conf", &text) {
            let _ = include::Dump::of(&text);
            drop(directives);
        }
    }
}
