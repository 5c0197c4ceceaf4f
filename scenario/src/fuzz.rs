//! Random scenario files and haproxy.cfg texts against their readers: a
//! scenario or an error naming the line to fix, never a panic.

use proptest::prelude::*;

const SCENARIOS: &[&str] = &[
    include_str!("../../scenarios/quickstart.toml"),
    include_str!("../../scenarios/weighted.toml"),
    include_str!("../../scenarios/failover-recovery.toml"),
    include_str!("../../scenarios/sse-chat.toml"),
    include_str!("../../scenarios/seed000.toml"),
    include_str!("../../scenarios/haproxy-weighted.toml"),
];

const HAPROXY: &[&str] = &[include_str!("../../scenarios/haproxy/haproxy.cfg")];

proptest! {
    #![proptest_config(primitives::fuzz::config())]

    #[test]
    fn no_scenario_text_makes_the_reader_panic(text in primitives::fuzz::text(SCENARIOS)) {
        let _ = crate::spec::parse("fuzz.toml", &text);
    }

    #[test]
    fn no_haproxy_cfg_makes_the_reader_panic(text in primitives::fuzz::text(HAPROXY)) {
        if let Ok(sections) = crate::haproxy_conf::parse(&text) {
            let _ = crate::haproxy_conf::render(&sections);
        }
        let _ = crate::haproxy_conf::split_log(&text);
    }
}
