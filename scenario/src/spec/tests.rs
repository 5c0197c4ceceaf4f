//! Reading scenario files: what reads, and each mistake's message.

use super::*;

const OK: &str = r#"
name = "t"
[[backend]]
weight = 3
[[backend]]
name = "slow"
profile = { latency = "50ms" }
[load]
requests = 100
concurrency = 10
[[event]]
at = "1s"
backend = "slow"
action = "kill"
[expect]
thresholds = ["p(99)<500ms", "client_errors == 0"]
"#;

#[test]
fn a_good_scenario_reads() {
    let (s, names, profiles, events, engines) = parse("t.toml", OK).unwrap();
    assert_eq!(engines, [Engine::Reference]);
    assert_eq!(names, ["b1", "slow"]);
    assert_eq!(s.load.requests, Some(100));
    assert_ne!(profiles[1], Profile::default());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, 1);
}

fn error(text: &str) -> String {
    parse("s.toml", text).unwrap_err().to_string()
}

#[test]
fn errors_name_the_file_line_and_key() {
    let e = error(&OK.replace("concurrency = 10", "concurency = 10"));
    assert!(
        e.starts_with("s.toml:10:1: unknown field `concurency`"),
        "{e}"
    );
    let e = error(&OK.replace("at = \"1s\"", "at = \"1 sec\""));
    assert!(e.starts_with("s.toml:12:6: \"1 sec\""), "{e}");
    let e = error(&OK.replace("backend = \"slow\"", "backend = 7"));
    assert!(
        e.starts_with("s.toml:11:1: [[event]] backend: no backend 7 (there are 2: b1, slow)"),
        "{e}"
    );
    let e = error(&OK.replace("client_errors == 0", "teapots < 3"));
    assert!(
        e.starts_with("s.toml:16:14: threshold 'teapots < 3': no metric 'teapots'"),
        "{e}"
    );
    let e = error(&OK.replace("latency = \"50ms\"", "latency = \"fast\""));
    assert!(
        e.starts_with("s.toml:5:1: [[backend]] profile.latency = \"fast\":"),
        "{e}"
    );
    let e = error(&OK.replace("action = \"kill\"", "action = \"explode\""));
    assert!(
        e.contains("[[event]] action: unknown action 'explode'"),
        "{e}"
    );
}

const TWO: &str = "[[backend]]\nname = \"a\"\n[[backend]]\nname = \"b\"\n[load]\nrequests = 10\n";

fn with_balancer(balancer: &str) -> String {
    format!("{TWO}[balancer]\n{balancer}\n")
}

#[test]
fn engines_read_and_are_checked() {
    let (.., engines) = parse(
        "s.toml",
        &with_balancer("engine = [\"reference\", \"nginx\"]"),
    )
    .unwrap();
    assert_eq!(engines, [Engine::Reference, Engine::Nginx]);
    let (.., engines) = parse("s.toml", &with_balancer("engine = \"nginx\"")).unwrap();
    assert_eq!(engines, [Engine::Nginx]);
    let (.., engines) = parse(
        "s.toml",
        &with_balancer("engine = \"haproxy\"\nconfig = \"haproxy.cfg\""),
    )
    .unwrap();
    assert_eq!(engines, [Engine::Haproxy]);
    // HAProxy runs a haproxy.cfg, alone.
    let e = error(&with_balancer("engine = \"haproxy\""));
    assert!(
        e.contains("it runs a haproxy.cfg given as [balancer] config, alone"),
        "{e}"
    );
    let e = error(&with_balancer(
        "engine = [\"reference\", \"haproxy\"]\nconfig = \"haproxy.cfg\"",
    ));
    assert!(
        e.contains("it runs a haproxy.cfg given as [balancer] config, alone"),
        "{e}"
    );
    let e = error(&with_balancer("engine = \"envoy\""));
    assert!(
        e.contains("engine \"envoy\": the engines are \"reference\", \"nginx\" and \"haproxy\""),
        "{e}"
    );
    let e = error(&with_balancer("engine = [\"nginx\", \"nginx\"]"));
    assert!(e.contains("\"nginx\" is listed twice"), "{e}");
    let e = error(&with_balancer("engine = []"));
    assert!(e.contains("the list is empty"), "{e}");
}

#[test]
fn keys_that_would_go_unused_are_refused() {
    // With a config, the config decides how to balance.
    let e = error(&with_balancer("config = \"n.conf\"\nmethod = \"ip_hash\""));
    assert!(
        e.contains("[balancer] method: with [balancer] config, the config decides this"),
        "{e}"
    );
    let e = error(
        &TWO.replace("name = \"b\"", "name = \"b\"\nweight = 3")
            .replace("[load]", "[balancer]\nconfig = \"n.conf\"\n[load]"),
    );
    assert!(
        e.contains("[[backend]] weight: with [balancer] config"),
        "{e}"
    );
    // Keys that only mean something with a config, or with nginx.
    let e = error(&TWO.replace("name = \"b\"", "name = \"b\"\nserver = \"10.0.0.2:80\""));
    assert!(
        e.contains(
            "[[backend]] server: it names a server line of [balancer] config; there is none"
        ),
        "{e}"
    );
    let e = error(&with_balancer("upstream = \"ai\""));
    assert!(
        e.contains("[balancer] upstream: it picks an upstream of [balancer] config"),
        "{e}"
    );
    let e = error(&with_balancer("binary = \"/usr/sbin/nginx\""));
    assert!(
        e.contains("[balancer] binary: it names the nginx or haproxy to run"),
        "{e}"
    );
    let e = error(&with_balancer(
        "target = \"http://127.0.0.1:8080\"\nengine = \"nginx\"",
    ));
    assert!(
        e.contains("[balancer] engine: with [balancer] target"),
        "{e}"
    );
    // What open-source nginx cannot do.
    let e = error(&with_balancer(
        "engine = \"nginx\"\nmethod = \"least_time\"",
    ));
    assert!(e.contains("open-source nginx has no least_time"), "{e}");
    let weight = "[[event]]\nat = \"1s\"\nbackend = \"a\"\naction = \"weight\"\nweight = 2\n";
    let e = error(&format!("{}{weight}", with_balancer("engine = \"nginx\"")));
    assert!(e.contains("nginx changes weights only on a reload"), "{e}");
    // The old name of config still reads.
    let (s, ..) = parse("s.toml", &with_balancer("nginx_conf = \"n.conf\"")).unwrap();
    assert_eq!(s.balancer.config.unwrap().into_inner(), "n.conf");
}

#[test]
fn conversations_and_datasets_are_checked() {
    let talk = "[[backend]]\n[load]\nconcurrency = 8\n[load.conversations]\ncount = 4\nturns = 3\n";
    let e = error(talk);
    assert!(
        e.contains("[load.conversations] count: 4 conversations for [load] concurrency 8"),
        "{e}"
    );
    assert!(parse("s.toml", &talk.replace("count = 4", "count = 8")).is_ok());
    let e = error(&talk.replace("count = 4", "count = 8\nheader = \"bad header\""));
    assert!(
        e.contains("header: \"bad header\" is not a header name"),
        "{e}"
    );
    let e = error(&talk.replace("count = 4", "count = 8\nturn = 2"));
    assert!(e.contains("unknown field `turn`"), "{e}");
    let both = "[[backend]]\n[load]\nrequests = 5\n[load.dataset]\nfile = \"random\"\n[[load.request]]\npath = \"/\"\n";
    let e = error(both);
    assert!(
        e.contains("give one of replay, [[load.request]], [load.conversations], [load.dataset]"),
        "{e}"
    );
}
