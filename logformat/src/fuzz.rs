//! Random log_format texts against the compiler, and random lines against
//! every preset and escape: a format or an error, a record or an error,
//! never a panic.

use proptest::prelude::*;

use crate::{presets, upstream_attempts, Escape, LogFormat};

const FORMATS: &[&str] = &[
    presets::COMBINED,
    presets::UPSTREAM_LOG,
    presets::LBKIT,
    presets::UPSTREAMINFO,
    r#"{"t":"$time_iso8601","u":"$upstream_addr","s":$status}"#,
    "$remote_addr:$remote_port ${request_uri}x $msec",
];

const LINES: &[&str] = &[
    r#"127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET / HTTP/1.1" 200 18 "-" "curl/7.88.1" "-" to: 127.0.0.1:45023 rt=0.002 urt=0.001 us=200 cl=18"#,
    r#"127.0.0.1 - - [21/Nov/2026:09:11:23 +0000] "GET /a\x22b HTTP/1.1" 502 18 "-" "a \"b\"" "-" to: 127.0.0.1:1, 127.0.0.1:2 : u rt=1.2 urt=1.0, 0.2 : - us=502, 200 : -"#,
    r#"{"t":"2026-11-21T09:11:23+00:00","u":"127.0.0.1:1","s":200}"#,
];

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_format_text_makes_the_compiler_panic(text in primitives::fuzz::text(FORMATS)) {
        for escape in [Escape::Default, Escape::Json, Escape::None] {
            if let Ok(f) = LogFormat::compile(&text, escape) {
                let _ = f.check_parseable();
                let _ = f.parse(LINES[0]);
            }
        }
    }

    #[test]
    fn no_line_makes_a_preset_panic(line in primitives::fuzz::text(LINES)) {
        for (_, text) in presets::PRESETS {
            for escape in [Escape::Default, Escape::Json] {
                let f = LogFormat::compile(text, escape).expect("presets compile");
                let _ = f.parse(&line);
            }
        }
        let _ = upstream_attempts(&line);
    }

    /// The straight first-occurrence split is a shortcut, never a different
    /// answer: what it reads, the full search reads too.
    #[test]
    fn the_fast_path_and_the_search_agree(line in primitives::fuzz::text(LINES)) {
        for (_, text) in presets::PRESETS {
            let f = LogFormat::compile(text, Escape::Default).expect("presets compile");
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let (mut fast, mut searched) = (Vec::new(), Vec::new());
            let a = f.parse_into(line, &mut fast).map(|()| fast);
            let b = f.search(line, &mut searched).map(|()| searched);
            prop_assert_eq!(a, b);
        }
    }
}
