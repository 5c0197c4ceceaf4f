//! The rewrite of a haproxy.cfg, on seed-like configs.

use super::*;
use balancer::Method;

const CFG: &str = r#"global
    log /dev/log local0
    user haproxy
    daemon
    stats socket /run/haproxy/admin.sock mode 660 level admin

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend ai_front
    bind *:80
    bind :::443 ssl crt /etc/ssl/ai.pem
    default_backend ai_back

backend ai_back
    balance roundrobin
    server gpu1 10.0.0.1:8000 check weight 3
    server gpu2 10.0.0.2:8000 check weight 2
    server spare 10.0.0.3:8000 check backup

backend old
    server legacy 10.0.0.9:80
"#;

fn stands(list: &[(Option<&'static str>, &'static str, u16)]) -> Vec<Stand<'static>> {
    list.iter()
        .map(|(server, name, port)| Stand {
            server: *server,
            name,
            addr: ([127, 0, 0, 1], *port).into(),
        })
        .collect()
}

fn rewritten(
    text: &str,
    st: &[Stand<'_>],
    backend: Option<&str>,
    forwarded: bool,
) -> Result<Rewritten, String> {
    let mut next = 40000;
    let mut port = || {
        next += 1;
        next
    };
    rewrite(parse(text)?, st, backend, forwarded, &mut port)
}

#[test]
fn quotes_comments_and_escapes_read_as_haproxy_reads_them() {
    assert_eq!(
        words("  http-request set-header X-A 'a b' # why").unwrap(),
        ["http-request", "set-header", "X-A", "a b"]
    );
    assert_eq!(
        words(r#"errorfile 503 "/a \"b\".http""#).unwrap(),
        ["errorfile", "503", r#"/a "b".http"#]
    );
    assert!(words("acl x 'open").is_err());
    let e = parse("    bind *:80\n").unwrap_err();
    assert!(
        e.starts_with("line 1: `bind` is outside any section"),
        "{e}"
    );
}

#[test]
fn servers_point_at_the_mocks_and_the_process_runs_here() {
    let st = stands(&[
        (Some("10.0.0.1:8000"), "a", 9001),
        (Some("gpu2"), "b", 9002),
        (Some("10.0.0.3:8000"), "c", 9003),
    ]);
    let r = rewritten(CFG, &st, None, false).unwrap();
    assert_eq!((r.backend.as_str(), r.port), ("ai_back", 40001));
    let (text, origins) = render(&r.sections);
    assert!(
        text.contains("server 127.0.0.1:9001 127.0.0.1:9001 check weight 3\n"),
        "{text}"
    );
    assert!(
        text.contains("server 127.0.0.1:9003 127.0.0.1:9003 check backup\n"),
        "{text}"
    );
    assert!(text.contains("server 127.0.0.1:1 127.0.0.1:1\n"), "{text}");
    assert_eq!(r.unmapped, ["backend old: server legacy 10.0.0.9:80"]);
    assert!(
        text.contains("bind 127.0.0.1:40001\n")
            && !text.contains("*:80")
            && !text.contains("ssl crt"),
        "{text}"
    );
    assert!(
        text.contains("log stdout format raw local0 info info") && !text.contains("/dev/log"),
        "{text}"
    );
    for gone in ["daemon", "user haproxy", "stats socket"] {
        assert!(!text.contains(gone), "{gone}: {text}");
    }
    assert_eq!(text.matches("option httplog").count(), 1, "{text}");
    assert_eq!(r.logged_as[0].as_deref(), Some("ai_back/127.0.0.1:9001"));
    // Lines keep their place in the user's file, for haproxy -c's messages.
    let n = text
        .lines()
        .position(|l| l.contains("check weight 3"))
        .unwrap();
    assert_eq!(origins[n], 22);
    // What it renders reads back the same.
    assert_eq!(render(&parse(&text).unwrap()).0, text);
}

#[test]
fn the_promise_is_the_backends_balance_and_weights() {
    let st = stands(&[
        (None, "gpu1", 9001),
        (None, "gpu2", 9002),
        (None, "spare", 9003),
    ]);
    let p = rewritten(CFG, &st, None, false).unwrap().promise.unwrap();
    assert_eq!(p.method, Method::RoundRobin);
    let w: Vec<(String, u32, bool)> = p
        .servers
        .iter()
        .map(|s| (s.addr.clone(), s.weight, s.backup))
        .collect();
    assert_eq!(
        w,
        [
            ("ai_back/127.0.0.1:9001".to_string(), 3, false),
            ("ai_back/127.0.0.1:9002".into(), 2, false),
            ("ai_back/127.0.0.1:9003".into(), 1, true)
        ]
    );
    let hashed = CFG.replace("balance roundrobin", "balance source");
    assert!(rewritten(&hashed, &st, None, false)
        .unwrap()
        .promise
        .is_none());
}

#[test]
fn forwarded_clients_become_the_source() {
    let st = stands(&[
        (None, "gpu1", 9001),
        (None, "gpu2", 9002),
        (None, "spare", 9003),
    ]);
    let (text, _) = render(&rewritten(CFG, &st, None, true).unwrap().sections);
    assert!(
        text.contains("http-request set-src hdr(x-forwarded-for)"),
        "{text}"
    );
}

#[test]
fn mistakes_name_what_to_fix() {
    let st = stands(&[(Some("10.0.0.7:8000"), "a", 9001)]);
    let e = rewritten(CFG, &st, None, false).err().unwrap();
    assert!(e.starts_with("[[backend]] a server = \"10.0.0.7:8000\": no server line has it (the config's: 10.0.0.1:8000, 10.0.0.2:8000, 10.0.0.3:8000, 10.0.0.9:80)"), "{e}");
    let e = rewritten(CFG, &st, Some("pool"), false).err().unwrap();
    assert_eq!(
        e,
        "[balancer] upstream \"pool\": the config has no such backend (it has ai_back, old)"
    );
    let two = stands(&[(None, "x", 9001), (None, "y", 9002)]);
    let e = rewritten(CFG, &two, None, false).err().unwrap();
    assert!(
        e.starts_with("backend ai_back has 3 server lines and the scenario 2"),
        "{e}"
    );
    let tcp = CFG.replace("frontend ai_front\n", "frontend ai_front\n    mode tcp\n");
    let e = rewritten(
        &tcp,
        &stands(&[(None, "gpu1", 1), (None, "gpu2", 2), (None, "spare", 3)]),
        None,
        false,
    )
    .err()
    .unwrap();
    assert!(e.starts_with("frontend ai_front is mode tcp"), "{e}");
}

#[test]
fn haproxys_own_messages_are_not_request_lines() {
    let log = "127.0.0.1:58914 [02/Dec/2026:01:17:05.774] f b/s 0/0/0/1/1 200 17 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"\nServer b/s is DOWN, reason: Layer4 connection problem.\nProxy f stopped (cumulated conns: FE: 1, BE: 0).\n";
    let (requests, events) = split_log(log);
    assert_eq!(requests.lines().count(), 1);
    assert!(requests.starts_with("127.0.0.1:58914"));
    assert_eq!(
        events,
        ["Server b/s is DOWN, reason: Layer4 connection problem."]
    );
}
