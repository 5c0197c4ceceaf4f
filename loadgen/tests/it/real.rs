//! A scenario on the user's own nginx.conf or haproxy.cfg: read with its
//! includes and host names, its `server` lines pointed at the mocks, run
//! on the reference, real nginx and real HAProxy; every mistake is exit 2
//! before any load, and nothing is left running afterwards.
//!
//! The cases that start real nginx or HAProxy need it installed: without
//! it they say so and return, unless LBKIT_NEED_REAL_BALANCERS is set (as
//! `.ci/run` sets it, after installing both), when its absence fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// A scratch directory holding a scenario and its config files.
struct Dir(PathBuf);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbkit-nginx-test-{}-{n}", std::process::id()));
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Dir(dir)
    }

    fn run(&self, extra: &[&str]) -> Output {
        run(&self.0.join("s.toml"), extra)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(scenario: &Path, extra: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(["--scenario", scenario.to_str().unwrap(), "-q"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    // Nothing outlives the run: no process started in its scratch prefix,
    // and no scratch directory.
    let prefix = format!("lbkit-scenario-{pid}-");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&prefix))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    let dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(dirs.is_empty(), "left behind: {dirs:?}");
    out
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether real `tool` (nginx, haproxy) is here to run; its absence is a
/// failure when LBKIT_NEED_REAL_BALANCERS is set.
fn have(tool: &str, test: &str) -> bool {
    let found = ["/usr/sbin", "/usr/local/sbin", "/usr/bin"]
        .iter()
        .any(|dir| Path::new(dir).join(tool).is_file());
    if !found {
        assert!(
            std::env::var_os("LBKIT_NEED_REAL_BALANCERS").is_none(),
            "{test}: LBKIT_NEED_REAL_BALANCERS is set and {tool} is not installed"
        );
        eprintln!("{test}: skipped, {tool} is not installed (apt-get install -y {tool})");
    }
    found
}

/// Debian's layout in miniature: nginx.conf includes conf.d/*.conf, whose
/// upstream names its servers by host name.
const MAIN: &str = "worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n    access_log /var/log/nginx/access.log;\n    include conf.d/*.conf;\n}\n";
const SITE: &str = "upstream ai {\n    server ai-1.internal:8000 weight=3;\n    server ai-2.internal:8000;\n}\nserver {\n    listen 80;\n    location / { proxy_pass http://ai; }\n    location /health { access_log off; return 200 \"healthy\\n\"; }\n}\n";

fn scenario(balancer: &str, backends: &str) -> String {
    format!(
        "[[backend]]\nname = \"one\"\n{backends}[[backend]]\nname = \"two\"\nserver = \"ai-2.internal:8000\"\n\n[balancer]\nconfig = \"nginx.conf\"\n{balancer}\n\n[load]\nrequests = 400\nconcurrency = 4\n\n[expect]\nthresholds = [\"client_errors == 0\"]\n"
    )
}

fn layout(balancer: &str, site: &str) -> Dir {
    Dir::new(&[
        ("nginx.conf", MAIN),
        ("conf.d/ai.conf", site),
        (
            "s.toml",
            &scenario(balancer, "server = \"ai-1.internal:8000\"\n"),
        ),
    ])
}

#[test]
fn the_users_config_runs_on_the_reference_with_its_includes_and_host_names() {
    let dir = layout("", SITE);
    let o = dir.run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    // The shares come from the config's weights, through its include.
    assert!(
        out.contains("✓ shares as expected") && out.contains("upstream ai (round_robin)"),
        "{out}"
    );
    assert!(out.contains("┆      300 ┆  75.0%"), "{out}");
    assert!(
        out.contains("400 lines from the balancer's access log"),
        "{out}"
    );
}

#[test]
fn mistakes_are_exit_2_before_any_load() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "an upstream that is not in the config",
            "upstream = \"pool\"",
            SITE,
            "[balancer] upstream \"pool\": the config has no such upstream (it has ai)",
        ),
        (
            "a missing include",
            "",
            "include missing/*.conf;\ninclude snippets/proxy.conf;\n",
            "snippets/proxy.conf",
        ),
        (
            "no nginx binary",
            "engine = \"nginx\"\nbinary = \"/nonexistent/sbin/nginx\"",
            SITE,
            "no nginx binary (\"/nonexistent/sbin/nginx\" ([balancer] binary)); install it (apt-get install -y nginx)",
        ),
    ];
    for (name, balancer, site, says) in cases {
        let dir = layout(balancer, site);
        let o = dir.run(&[]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(
            !out.contains("Complete requests"),
            "{name}: a load ran: {out}"
        );
    }
    // A backend standing for a server line the config does not have.
    let dir = Dir::new(&[
        ("nginx.conf", MAIN),
        ("conf.d/ai.conf", SITE),
        ("s.toml", &scenario("", "server = \"ai-9.internal:8000\"\n")),
    ]);
    let o = dir.run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("[[backend]] one server = \"ai-9.internal:8000\": no server line has it (the config's: ai-1.internal:8000, ai-2.internal:8000)"),
        "{err}"
    );
}

#[test]
fn nginx_refusing_the_config_is_exit_2_with_its_message_at_the_users_line() {
    if !have("nginx", "nginx -t") {
        return;
    }
    let site = SITE.replace("listen 80;", "listen 80;\n    proxy_bufering off;");
    let dir = layout("engine = [\"reference\", \"nginx\"]", &site);
    let o = dir.run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    let file = dir.0.join("conf.d/ai.conf");
    assert!(
        err.contains(&format!(
            "nginx -t: [emerg] unknown directive \"proxy_bufering\" in {}:7",
            file.display()
        )),
        "{err}"
    );
    // Not even the reference ran: every engine is set up before any load.
    assert!(!out.contains("Complete requests"), "{out}");
}

#[test]
fn the_same_config_on_nginx_and_the_reference_agrees() {
    if !have("nginx", "agreement") {
        return;
    }
    let dir = layout("engine = [\"reference\", \"nginx\"]", SITE);
    let o = dir.run(&["--json", dir.0.join("r.json").to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("Scenario: "), "{out}");
    assert!(out.contains("balancer: nginx/"), "{out}");
    // Round robin at 3:1, one worker: the same counts on both.
    let row = |node: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("requests {node} ")))
            .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>())
    };
    assert_eq!(row("one"), Some(vec!["300", "300"]), "{out}");
    assert_eq!(row("two"), Some(vec!["100", "100"]), "{out}");
    assert!(out.contains("✓ reference and nginx agree"), "{out}");
    assert!(
        out.trim_end()
            .ends_with("every check held on reference and nginx, and they agree"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("r.json")).unwrap()).unwrap();
    assert_eq!(json["engines"].as_array().unwrap().len(), 2);
    assert_eq!(json["agreement"]["ok"], true);
    assert_eq!(json["ok"], true);
}

#[test]
fn a_config_that_lost_its_weights_is_caught_on_nginx_too() {
    if !have("nginx", "broken weights") {
        return;
    }
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let o = run(
        &scenarios.join("broken-weights.toml"),
        &["--engine", "reference,nginx"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("broken-weights on nginx: the verification caught it"),
        "{out}"
    );
    assert!(
        out.contains("the verification caught it on reference and nginx"),
        "{out}"
    );
}

const HAPROXY: &str = "global\n    daemon\n    log /dev/log local0\ndefaults\n    mode http\n    log global\n    option httplog\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\nfrontend web\n    bind *:80\n    default_backend ai\nbackend ai\n    balance roundrobin\n    server one ai-1.internal:8000 weight 3\n    server two ai-2.internal:8000\n";

fn haproxy_dir(cfg: &str) -> Dir {
    let toml = scenario("", "server = \"ai-1.internal:8000\"\n").replace(
        "config = \"nginx.conf\"",
        "engine = \"haproxy\"\nconfig = \"haproxy.cfg\"",
    );
    Dir::new(&[("haproxy.cfg", cfg), ("s.toml", &toml)])
}

#[test]
fn the_users_haproxy_cfg_runs_on_real_haproxy_judged_from_its_httplog() {
    if !have("haproxy", "haproxy weighted") {
        return;
    }
    let dir = haproxy_dir(HAPROXY);
    let o = dir.run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("balancer: HAProxy 2."), "{out}");
    assert!(
        out.contains("400 lines from the balancer's access log; format haproxy"),
        "{out}"
    );
    assert!(
        out.contains("Expected shares from upstream ai (round_robin)"),
        "{out}"
    );
    assert!(out.contains("✓ shares as expected"), "{out}");
    assert!(out.contains("┆      300 ┆  75.0%"), "{out}");
    assert!(
        out.contains("backend one = ai/127.0.0.1:"),
        "the log names servers by backend: {out}"
    );
}

#[test]
fn haproxy_refusing_the_config_is_exit_2_with_its_message_at_the_users_line() {
    if !have("haproxy", "haproxy -c") {
        return;
    }
    let dir = haproxy_dir(&HAPROXY.replace("    balance roundrobin", "    balance roundrobinn"));
    let o = dir.run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    let file = dir.0.join("haproxy.cfg");
    assert!(
        err.contains(&format!("haproxy -c: parsing [{}:15]", file.display()))
            && err.contains("balance only supports"),
        "{err}"
    );
    assert!(!out.contains("Complete requests"), "{out}");
}

#[test]
fn haproxy_mistakes_are_exit_2_before_any_load() {
    let cases: &[(&str, String, &str)] = &[
        (
            "no haproxy binary",
            HAPROXY.to_string(),
            "no haproxy binary (\"/nonexistent/haproxy\" ([balancer] binary))",
        ),
        (
            "a backend that is not in the config",
            HAPROXY.replace("default_backend ai", "default_backend gone"),
            "no frontend has default_backend ai",
        ),
        (
            "a tcp frontend",
            HAPROXY.replace("    bind *:80", "    mode tcp\n    bind *:80"),
            "frontend web is mode tcp",
        ),
    ];
    for (name, cfg, says) in cases {
        let dir = haproxy_dir(cfg);
        let toml = std::fs::read_to_string(dir.0.join("s.toml")).unwrap();
        let binary = "engine = \"haproxy\"\nbinary = \"/nonexistent/haproxy\"";
        let toml = match *name {
            "no haproxy binary" => toml.replace("engine = \"haproxy\"", binary),
            _ => toml,
        };
        std::fs::write(dir.0.join("s.toml"), toml).unwrap();
        let o = dir.run(&[]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}{err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!out.contains("Complete requests"), "{name}: {out}");
    }
}
