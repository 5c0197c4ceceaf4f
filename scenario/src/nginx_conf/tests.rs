//! The rewrite and the rendering, on seed-like configs.

use super::*;

/// The text alone.
fn render(directives: &[Directive]) -> String {
    render_traced(directives).0
}
use balancer::conf::parse;

fn stands(addrs: &[(Option<&'static str>, &'static str, u16)]) -> Vec<Stand<'static>> {
    addrs
        .iter()
        .map(|(server, name, port)| Stand {
            server: *server,
            name,
            addr: ([127, 0, 0, 1], *port).into(),
        })
        .collect()
}

const SEED: &str = "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\nevents { worker_connections 768; }\nhttp {\n    access_log /var/log/nginx/access.log;\n    upstream backend {\n        least_conn;\n        server ai-1.internal:8000 weight=3 max_fails=3 fail_timeout=30s;\n        server ai-2.internal:8000 weight=2;\n        server ai-3.internal:8000 backup;\n    }\n    server {\n        listen 80;\n        location / { proxy_pass http://backend; }\n        location /health { access_log off; return 200 \"healthy\\n\"; }\n    }\n}\n";

fn rewritten(text: &str, st: &[Stand<'_>], upstream: Option<&str>) -> Result<Rewritten, String> {
    let mut next = 20000;
    let mut port = || {
        next += 1;
        next
    };
    let setup = Setup {
        stands: st,
        upstream,
        prefix: Path::new("/tmp/p"),
        forwarded: false,
    };
    rewrite(parse("nginx.conf", text).unwrap(), &setup, &mut port)
}

#[test]
fn servers_point_at_the_backends_and_everything_stays_in_the_prefix() {
    let st = stands(&[
        (Some("ai-1.internal:8000"), "a", 9001),
        (Some("ai-2.internal:8000"), "b", 9002),
        (Some("ai-3.internal:8000"), "c", 9003),
    ]);
    let r = rewritten(SEED, &st, None).unwrap();
    assert_eq!((r.upstream.as_str(), r.port), ("backend", 20001));
    let text = render(&r.directives);
    assert!(
        text.contains("server 127.0.0.1:9001 weight=3 max_fails=3 fail_timeout=30s;"),
        "{text}"
    );
    assert!(text.contains("server 127.0.0.1:9003 backup;"), "{text}");
    assert!(
        text.contains("listen 127.0.0.1:20001;") && !text.contains("listen 80"),
        "{text}"
    );
    assert!(
        text.contains("pid /tmp/p/nginx.pid;") && !text.contains("/run/"),
        "{text}"
    );
    assert!(
        text.contains("access_log /tmp/p/logs/access.log;"),
        "{text}"
    );
    assert!(
        text.contains("access_log /tmp/p/lbkit.log lbkit_scenario;"),
        "{text}"
    );
    assert!(!text.contains("user www-data"), "{text}");
    assert!(text.contains("return 200 'healthy\n';"), "{text}");
    // What it renders reads back the same.
    let again = parse("again", &text).unwrap();
    assert_eq!(render(&again), text);
}

#[test]
fn backends_stand_in_by_name_or_by_order() {
    let snippet = "upstream ai { server a; server b weight=2; }\nserver { location / { proxy_pass http://ai; } }\n";
    let by_name = stands(&[(None, "b", 9002), (None, "a", 9001)]);
    let text = render(&rewritten(snippet, &by_name, None).unwrap().directives);
    assert!(
        text.contains("server 127.0.0.1:9001;") && text.contains("server 127.0.0.1:9002 weight=2;"),
        "{text}"
    );
    assert!(
        text.starts_with("events {\n}\nhttp {"),
        "a snippet is wrapped: {text}"
    );
    let by_order = stands(&[(None, "x", 9005), (None, "y", 9006)]);
    let text = render(&rewritten(snippet, &by_order, None).unwrap().directives);
    assert!(
        text.contains("server 127.0.0.1:9005;") && text.contains("server 127.0.0.1:9006 weight=2;"),
        "{text}"
    );
}

#[test]
fn mistakes_name_what_to_fix() {
    let st = stands(&[(Some("ai-9.internal:8000"), "a", 9001)]);
    let e = rewritten(SEED, &st, None).err().unwrap();
    assert!(
        e.starts_with("[[backend]] a server = \"ai-9.internal:8000\": no server line has it"),
        "{e}"
    );
    let e = rewritten(SEED, &st, Some("pool")).err().unwrap();
    assert_eq!(
        e,
        "[balancer] upstream \"pool\": the config has no such upstream (it has backend)"
    );
    let two = stands(&[(None, "a", 9001), (None, "b", 9002)]);
    let e = rewritten(SEED, &two, None).err().unwrap();
    assert!(
        e.starts_with("upstream backend has 3 server lines and the scenario 2"),
        "{e}"
    );
}

#[test]
fn lines_no_backend_stands_for_go_nowhere_and_are_listed() {
    let text = "upstream ai { server a; }\nupstream old { server 10.0.0.9:80; }\nserver { location / { proxy_pass http://ai; } location /legacy { proxy_pass http://10.0.0.8:8080/v1; } location /direct { proxy_pass http://a/x; } }\n";
    let st = stands(&[(None, "a", 9001)]);
    let r = rewritten(text, &st, None).unwrap();
    let out = render(&r.directives);
    assert!(
        out.contains("server 127.0.0.1:9001;") && out.contains("server 127.0.0.1:1;"),
        "{out}"
    );
    assert!(out.contains("proxy_pass http://127.0.0.1:1/v1;"), "{out}");
    assert!(out.contains("proxy_pass http://127.0.0.1:9001/x;"), "{out}");
    assert_eq!(
        r.unmapped,
        [
            "upstream old: server 10.0.0.9:80",
            "proxy_pass http://10.0.0.8:8080/v1"
        ]
    );
}

#[test]
fn forwarded_clients_are_told_apart_unless_the_config_says_how() {
    let text =
        "upstream ai { ip_hash; server a; }\nserver { location / { proxy_pass http://ai; } }\n";
    let st = stands(&[(None, "a", 9001)]);
    let mut next = 30000;
    let mut port = || {
        next += 1;
        next
    };
    let setup = Setup {
        stands: &st,
        upstream: None,
        prefix: Path::new("/tmp/p"),
        forwarded: true,
    };
    let r = rewrite(parse("n.conf", text).unwrap(), &setup, &mut port).unwrap();
    let out = render(&r.directives);
    assert!(
        out.contains("set_real_ip_from 127.0.0.0/8;\n    real_ip_header X-Forwarded-For;"),
        "{out}"
    );
    let own = text.replace(
        "server { location",
        "server { real_ip_header X-Real-IP; location",
    );
    let r = rewrite(parse("n.conf", &own).unwrap(), &setup, &mut port).unwrap();
    let out = render(&r.directives);
    assert!(
        !out.contains("X-Forwarded-For") && out.contains("real_ip_header X-Real-IP;"),
        "{out}"
    );
}

#[test]
fn each_rendered_line_knows_the_users_line_it_came_from() {
    let st = stands(&[
        (Some("ai-1.internal:8000"), "a", 9001),
        (Some("ai-2.internal:8000"), "b", 9002),
        (Some("ai-3.internal:8000"), "c", 9003),
    ]);
    let r = rewritten(SEED, &st, None).unwrap();
    let (text, origins) = render_traced(&r.directives);
    assert_eq!(origins.len(), text.lines().count());
    let n = text.lines().position(|l| l.contains("least_conn")).unwrap();
    assert_eq!((&*origins[n].0, origins[n].1), ("nginx.conf", 8));
    let n = text
        .lines()
        .position(|l| l.contains("lbkit_scenario"))
        .unwrap();
    assert_eq!(&*origins[n].0, "lbkit");
    // The health location's return spans two lines (its newline).
    let n = text
        .lines()
        .position(|l| l.contains("location /health"))
        .unwrap();
    assert_eq!(origins[n + 2].1, 16);
}

#[test]
fn relative_modules_are_under_nginxs_own_prefix() {
    let mut top = parse(
        "n.conf",
        "load_module modules/ngx_stream_module.so;\nload_module /opt/m.so;\n",
    )
    .unwrap();
    absolute_modules(&mut top, Path::new("/usr/share/nginx"));
    assert_eq!(
        top[0].args[0],
        "/usr/share/nginx/modules/ngx_stream_module.so"
    );
    assert_eq!(top[1].args[0], "/opt/m.so");
}
