//! nginx.conf read from its files as nginx reads them: includes (globs,
//! relative to the main file), an `nginx -T` dump, host names in `server`
//! lines, several access logs, and the directives it does not act on.

use std::path::PathBuf;

use balancer::conf;

/// A directory of config files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("balancer-conf-{}-{name}", std::process::id()));
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Dir(dir)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// seed 003's Debian layout: nginx.conf includes conf.d/*.conf, where the
/// upstream is, named by host.
const MAIN: &str = "user www-data;\nworker_processes auto;\nevents { worker_connections 768; }\nhttp {\n    sendfile on;\n    include /etc/nginx/mime.types.missing-is-fine*;\n    include conf.d/*.conf;\n}\n";
const AI: &str = "upstream backend {\n    server localhost:18001 weight=3;\n    server 127.0.0.1:18002 weight=2;\n}\nserver {\n    listen 80;\n    location / { proxy_pass http://backend; }\n}\n";

fn addrs(c: &conf::ProxyConfig) -> Vec<(String, Option<String>, u32)> {
    c.upstreams[0]
        .servers
        .iter()
        .map(|s| (s.addr.clone(), s.host.clone(), s.weight))
        .collect()
}

#[test]
fn includes_are_followed_and_host_names_resolved() {
    let d = Dir::new("include", &[("nginx.conf", MAIN), ("conf.d/ai.conf", AI)]);
    let c = conf::load_file(&d.path("nginx.conf")).unwrap();
    assert_eq!(c.upstreams.len(), 1, "the upstream is in conf.d");
    let servers = addrs(&c);
    // localhost is 127.0.0.1 (and perhaps ::1): a peer per address.
    assert!(
        servers.contains(&("127.0.0.1:18001".into(), Some("localhost:18001".into()), 3)),
        "{servers:?}"
    );
    assert!(servers.contains(&("127.0.0.1:18002".into(), None, 2)));
    let read = conf::read_file(&d.path("nginx.conf")).unwrap();
    assert!(
        read.ignored.iter().any(|i| i.ends_with(": user")),
        "what it does not act on is listed: {:?}",
        read.ignored
    );
}

#[test]
fn a_missing_include_and_an_unknown_host_are_errors_naming_them() {
    let d = Dir::new(
        "missing",
        &[
            ("nginx.conf", "http { include nope.conf; }"),
            ("bad.conf", "upstream u { server no-such-host.invalid:80; }"),
        ],
    );
    let e = conf::load_file(&d.path("nginx.conf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("include: cannot read") && e.contains("nope.conf"),
        "{e}"
    );
    let e = conf::load_file(&d.path("bad.conf"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server: host not found in upstream \"u\": no-such-host.invalid:80"),
        "{e}"
    );
    // Read for its shares, an unresolvable name is kept as written.
    let read = conf::read_file(&d.path("bad.conf")).unwrap();
    assert_eq!(addrs(&read)[0].0, "no-such-host.invalid:80");
}

#[test]
fn an_nginx_t_dump_is_read_as_the_files_it_holds() {
    let dump = format!(
        "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n\
         # configuration file /etc/nginx/nginx.conf:\n{MAIN}\n\
         # configuration file /etc/nginx/conf.d/ai.conf:\n{AI}"
    );
    let d = Dir::new("dump", &[("nginx-T.txt", &dump)]);
    let c = conf::load_file(&d.path("nginx-T.txt")).unwrap();
    assert_eq!(c.upstreams[0].name, "backend");
    assert!(addrs(&c).iter().any(|s| s.0 == "127.0.0.1:18002"));
}

#[test]
fn the_access_log_that_wrote_a_file_is_found() {
    let text = "http {\n  log_format up '$remote_addr $upstream_addr';\n  access_log /var/log/nginx/access.log combined;\n  server {\n    access_log /var/log/nginx/upstream.log up;\n    location / { return 200; }\n  }\n}\n";
    let d = Dir::new("logs", &[("nginx.conf", text)]);
    let c = conf::read_file(&d.path("nginx.conf")).unwrap();
    assert_eq!(c.access_logs.len(), 2);
    let format = |p: &str| c.access_log_for(p).map(|l| l.map(|l| l.format.clone()));
    assert_eq!(format("/var/log/nginx/upstream.log"), Ok(Some("up".into())));
    assert_eq!(
        format("/copied/here/access.log"),
        Ok(Some("combined".into())),
        "by name"
    );
    let e = format("other.log").unwrap_err();
    assert!(
        e.contains("/var/log/nginx/access.log (combined), /var/log/nginx/upstream.log (up)"),
        "{e}"
    );
}

#[test]
fn text_without_its_files_refuses_an_include() {
    let e = conf::load("x.conf", "http { include conf.d/*.conf; }")
        .unwrap_err()
        .to_string();
    assert!(e.contains("so its includes are followed"), "{e}");
}

#[test]
fn unknown_directives_are_listed_where_they_are_never_dropped() {
    let site = format!("{AI}\nlua_shared_dict cache 10m;\n");
    let d = Dir::new(
        "unknown",
        &[("nginx.conf", MAIN), ("conf.d/ai.conf", &site)],
    );
    // Read for what it says (analyzer --nginx-conf): listed, with its place.
    let read = conf::read_file(&d.path("nginx.conf")).unwrap();
    let file = d.path("conf.d/ai.conf").display().to_string();
    assert!(
        read.unmodelled
            .iter()
            .any(|i| i.starts_with(&file) && i.ends_with("lua_shared_dict")),
        "{:?}",
        read.unmodelled
    );
    // Run (balancer --config): refused, naming the file and line.
    let e = conf::load_file(&d.path("nginx.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&file) && e.contains("lua_shared_dict"), "{e}");
}
