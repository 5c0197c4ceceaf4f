//! A user's nginx.conf, made runnable under test (pure): its includes are
//! already followed; here the `server` lines of its upstreams are pointed
//! at the scenario's backends (every parameter kept), each `server {}`
//! listens on a loopback port of its own, the pid, logs and temp paths go
//! into a scratch prefix, and an access log in lbkit's format is added
//! beside the user's own, which the runner reads. The same directives run
//! real nginx (rendered back to text) and the reference balancer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use balancer::conf::Directive;

mod render;
pub use render::render_traced;

/// The log format the runner adds and reads: lbkit's balancer format.
pub const LOG_FORMAT: &str = "lbkit_scenario";

/// The files of a run in its prefix: the log the runner reads (written by
/// the reference, nginx or HAProxy), and nginx's error log.
pub const LOG_FILE: &str = "lbkit.log";
pub const ERROR_LOG: &str = "error.log";

/// Where a `server` line no backend stands for is pointed: a loopback port
/// nothing listens on, so no request leaves the machine.
pub const NOWHERE: &str = "127.0.0.1:1";

/// A backend as the config may name it: the address as written in a
/// `server` line, or the backend's name, and where it really is.
pub struct Stand<'a> {
    pub server: Option<&'a str>,
    pub name: &'a str,
    pub addr: SocketAddr,
}

/// What to rewrite the config for.
pub struct Setup<'a> {
    pub stands: &'a [Stand<'a>],
    /// The upstream under test, as `[balancer] upstream` names it.
    pub upstream: Option<&'a str>,
    /// The scratch directory: pid, logs, temp files.
    pub prefix: &'a Path,
    /// Clients are told apart by `X-Forwarded-For` (as the reference
    /// balancer trusts it): nginx's realip module is set to it, unless the
    /// config already says which header carries the client's address.
    pub forwarded: bool,
}

/// The config, rewritten.
pub struct Rewritten {
    pub directives: Vec<Directive>,
    /// The upstream under test.
    pub upstream: String,
    /// The port of the `server {}` that proxies to it: where the load goes.
    pub port: u16,
    /// Addresses no backend stands for, now pointed at [`NOWHERE`]: what
    /// the config writes, and where (`upstream NAME`, `proxy_pass`).
    pub unmapped: Vec<String>,
    /// The config's own access logs, now in the prefix.
    pub logs: Vec<OwnLog>,
}

/// One of the config's own access logs.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnLog {
    /// As the config writes it: `/var/log/nginx/access.log`.
    pub written: String,
    /// Where nginx writes it in this run.
    pub path: String,
}

/// Rewrites `top` as `setup` says, each `server {}` on a port `port()`
/// gives. Errors name what to fix.
pub fn rewrite(
    top: Vec<Directive>,
    setup: &Setup<'_>,
    port: &mut dyn FnMut() -> u16,
) -> Result<Rewritten, String> {
    let prefix = setup.prefix;
    let p = |name: &str| prefix.join(name).display().to_string();
    let mut top = into_http(top);
    // The process runs as whoever runs lbkit, in the foreground; TCP and
    // mail proxies would listen on the config's own ports.
    let dropped = ["user", "daemon", "master_process", "stream", "mail"];
    top.retain(|d| !dropped.contains(&d.name.as_str()));
    set(&mut top, "pid", &[&p("nginx.pid")]);
    set(&mut top, "error_log", &[&p(ERROR_LOG)]);
    if !top.iter().any(|d| d.name == "events") {
        top.insert(0, block("events", &[], vec![]));
    }
    let http = top
        .iter_mut()
        .find(|d| d.name == "http")
        .and_then(|d| d.block.as_mut())
        .expect("into_http made one");
    let chosen = choose(http, setup.upstream)?;
    let unmapped = point_servers(http, setup.stands, &chosen)?;
    for temp in [
        "client_body_temp_path",
        "proxy_temp_path",
        "fastcgi_temp_path",
        "uwsgi_temp_path",
        "scgi_temp_path",
    ] {
        set(http, temp, &[&p(temp)]);
    }
    let ours = p(LOG_FILE);
    let mut logs = Vec::new();
    redirect_logs(http, prefix, &ours, &mut logs);
    http.insert(
        0,
        directive("log_format", &[LOG_FORMAT, logformat::presets::LBKIT]),
    );
    http.insert(1, directive("access_log", &[&ours, LOG_FORMAT]));
    if setup.forwarded && !anywhere(http, "real_ip_header") {
        http.insert(2, directive("set_real_ip_from", &["127.0.0.0/8"]));
        http.insert(3, directive("real_ip_header", &["X-Forwarded-For"]));
    }
    let port = listen(http, &chosen, port)?;
    Ok(Rewritten {
        directives: top,
        upstream: chosen,
        port,
        unmapped,
        logs,
    })
}

/// Some directive at this level or in a block below is called `name`.
fn anywhere(level: &[Directive], name: &str) -> bool {
    level
        .iter()
        .any(|d| d.name == name || d.block.as_deref().is_some_and(|b| anywhere(b, name)))
}

/// Main-context directives: all else of a config without `http {}` (a
/// conf.d snippet, or a file made for lbkit) goes into one.
const MAIN: &[&str] = &[
    "user",
    "worker_processes",
    "worker_rlimit_nofile",
    "worker_cpu_affinity",
    "worker_priority",
    "pid",
    "error_log",
    "events",
    "load_module",
    "daemon",
    "master_process",
    "env",
    "pcre_jit",
    "thread_pool",
    "timer_resolution",
    "worker_shutdown_timeout",
    "lock_file",
    "working_directory",
];

fn into_http(top: Vec<Directive>) -> Vec<Directive> {
    if top.iter().any(|d| d.name == "http") {
        return top;
    }
    let (main, rest): (Vec<Directive>, Vec<Directive>) = top
        .into_iter()
        .partition(|d| MAIN.contains(&d.name.as_str()));
    let mut out = main;
    out.push(block("http", &[], rest));
    out
}

/// A directive lbkit adds (its file is `lbkit`).
pub fn directive(name: &str, args: &[&str]) -> Directive {
    line(name, args.iter().map(|a| a.to_string()).collect())
}

/// [`directive`] with its arguments made.
pub fn line(name: &str, args: Vec<String>) -> Directive {
    Directive {
        name: name.to_string(),
        args,
        file: Arc::from("lbkit"),
        line: 0,
        block: None,
    }
}

/// A block lbkit adds.
pub fn block(name: &str, args: &[&str], inner: Vec<Directive>) -> Directive {
    Directive {
        block: Some(inner),
        ..directive(name, args)
    }
}

/// Replaces every `name` directive at this level with one, or adds it.
fn set(level: &mut Vec<Directive>, name: &str, args: &[&str]) {
    let at = level.iter().position(|d| d.name == name);
    level.retain(|d| d.name != name);
    level.insert(
        at.unwrap_or(level.len()).min(level.len()),
        directive(name, args),
    );
}

fn servers(http: &[Directive]) -> impl Iterator<Item = &Directive> {
    http.iter()
        .filter(|d| d.name == "server" && d.block.is_some())
}

fn locations(server: &Directive) -> impl Iterator<Item = &Directive> {
    let mut out = Vec::new();
    let mut stack: Vec<&Directive> = vec![server];
    while let Some(d) = stack.pop() {
        for inner in d.block.iter().flatten() {
            if inner.name == "location" {
                out.push(inner);
                stack.push(inner);
            }
        }
    }
    out.into_iter()
}

/// `location /`: where requests no other location takes go.
fn is_root(location: &Directive) -> bool {
    location.args.last().is_some_and(|p| p == "/")
}

/// The upstream a location proxies to, if it does.
fn proxied(location: &Directive) -> Option<&str> {
    let pass = location
        .block
        .iter()
        .flatten()
        .find(|d| d.name == "proxy_pass")?;
    let target = pass.args.first()?.strip_prefix("http://")?;
    Some(target.split('/').next().unwrap_or(target))
}

fn upstream_names(http: &[Directive]) -> Vec<String> {
    http.iter()
        .filter(|d| d.name == "upstream" && d.block.is_some())
        .filter_map(|d| d.args.first().cloned())
        .collect()
}

/// The upstream under test: as named, else the one `location /` proxies
/// to, else the only one.
fn choose(http: &[Directive], named: Option<&str>) -> Result<String, String> {
    let names = upstream_names(http);
    let list = || {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    if let Some(n) = named {
        return if names.iter().any(|m| m == n) {
            Ok(n.to_string())
        } else {
            Err(format!(
                "[balancer] upstream {n:?}: the config has no such upstream (it has {})",
                list()
            ))
        };
    }
    let root = servers(http)
        .flat_map(locations)
        .find(|l| is_root(l))
        .and_then(proxied)
        .filter(|u| names.iter().any(|n| n == u));
    match (root, names.as_slice()) {
        (Some(u), _) => Ok(u.to_string()),
        (None, [only]) => Ok(only.clone()),
        (None, []) => Err("the config has no upstream {} block to test".into()),
        (None, _) => Err(format!(
            "no `location /` proxies to an upstream, and the config has several ({}): say which with [balancer] upstream",
            list()
        )),
    }
}

/// Points `server` lines at the backends standing for them: the backend
/// whose `server` is the address as written, else whose name it is; with
/// neither anywhere, the chosen upstream's lines in order. Lines no backend
/// stands for, and `proxy_pass` to an address, go [`NOWHERE`] unless a
/// backend stands for that address; they are returned.
fn point_servers(
    http: &mut [Directive],
    stands: &[Stand<'_>],
    chosen: &str,
) -> Result<Vec<String>, String> {
    let upstreams = upstream_names(http);
    let written: Vec<(String, String)> = http
        .iter()
        .filter(|d| d.name == "upstream")
        .flat_map(|u| {
            let name = u.args.first().cloned().unwrap_or_default();
            u.block
                .iter()
                .flatten()
                .filter(|s| s.name == "server")
                .filter_map(move |s| Some((name.clone(), s.args.first()?.clone())))
        })
        .collect();
    let addrs: Vec<&str> = written.iter().map(|(_, w)| w.as_str()).collect();
    unmatched(stands, |server| addrs.contains(&server), &addrs)?;
    let stand_for = |w: &str| {
        stands
            .iter()
            .find(|s| s.server == Some(w))
            .or_else(|| stands.iter().find(|s| s.name == w))
    };
    let by_order = !written.iter().any(|(_, w)| stand_for(w).is_some());
    let in_chosen = written.iter().filter(|(u, _)| u == chosen).count();
    if by_order && in_chosen != stands.len() {
        return Err(format!(
            "upstream {chosen} has {in_chosen} server lines and the scenario {} [[backend]]s; give each backend the line it stands for with server = \"...\"",
            stands.len()
        ));
    }
    let mut unmapped = Vec::new();
    for u in http.iter_mut().filter(|d| d.name == "upstream") {
        let name = u.args.first().cloned().unwrap_or_default();
        let mut nth = 0;
        for s in u.block.iter_mut().flatten().filter(|s| s.name == "server") {
            let Some(w) = s.args.first().cloned() else {
                continue;
            };
            let stand = if by_order && name == chosen {
                nth += 1;
                stands.get(nth - 1)
            } else {
                stand_for(&w)
            };
            s.args[0] = match stand {
                Some(stand) => stand.addr.to_string(),
                None => {
                    unmapped.push(format!("upstream {name}: server {w}"));
                    NOWHERE.to_string()
                }
            };
        }
    }
    let mut passes = Vec::new();
    proxy_passes(http, &mut passes);
    for pass in passes {
        let Some(arg) = pass.args.first_mut() else {
            continue;
        };
        let Some(rest) = arg.strip_prefix("http://") else {
            continue;
        };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if upstreams.iter().any(|u| u == host) || host.contains('$') {
            continue;
        }
        let to = match stand_for(host) {
            Some(stand) => stand.addr.to_string(),
            None => {
                unmapped.push(format!("proxy_pass {arg}"));
                NOWHERE.to_string()
            }
        };
        *arg = format!("http://{to}{path}");
    }
    Ok(unmapped)
}

/// The report's line on what no backend stands for, if anything.
pub fn unmapped_note(unmapped: &[String]) -> Option<String> {
    (!unmapped.is_empty()).then(|| {
        format!(
            "No backend stands for {}: pointed at {NOWHERE} (nothing listens there).",
            unmapped.join("; ")
        )
    })
}

/// A backend standing for a `server` line no line is (by `has`): the
/// error, listing the addresses `written`.
pub(crate) fn unmatched(
    stands: &[Stand<'_>],
    has: impl Fn(&str) -> bool,
    written: &[&str],
) -> Result<(), String> {
    let Some((name, server)) = stands
        .iter()
        .find_map(|s| Some((s.name, s.server?)).filter(|(_, server)| !has(server)))
    else {
        return Ok(());
    };
    let mut all: Vec<&str> = Vec::new();
    for w in written {
        if !all.contains(w) {
            all.push(w);
        }
    }
    Err(format!(
        "[[backend]] {name} server = {server:?}: no server line has it (the config's: {})",
        all.join(", ")
    ))
}

/// Every `proxy_pass` in these blocks, however deep.
fn proxy_passes<'a>(level: &'a mut [Directive], out: &mut Vec<&'a mut Directive>) {
    for d in level {
        if d.name == "proxy_pass" {
            out.push(d);
        } else if let Some(inner) = d.block.as_mut() {
            proxy_passes(inner, out);
        }
    }
}

/// The user's access logs go to the prefix; lbkit's is written beside each
/// one a block sets for itself (which hides the http-level one).
fn redirect_logs(level: &mut [Directive], prefix: &Path, ours: &str, moved: &mut Vec<OwnLog>) {
    for d in level.iter_mut() {
        let target = d.args.first().map(String::as_str);
        if d.name == "access_log" && !matches!(target, Some("off") | None) {
            let written = d.args[0].clone();
            // A syslog server would be traffic off the machine: a file too.
            let file = match written.starts_with("syslog:") {
                true => "syslog.log".to_string(),
                false => Path::new(&written)
                    .file_name()
                    .map_or("access.log".into(), |f| f.to_string_lossy().into_owned()),
            };
            let path = prefix.join("logs").join(file).display().to_string();
            d.args[0] = path.clone();
            if !moved.iter().any(|m| m.path == path) {
                moved.push(OwnLog { written, path });
            }
        }
        if d.name == "error_log" {
            if let Some(p) = d.args.first_mut() {
                *p = prefix.join(ERROR_LOG).display().to_string();
            }
        }
        if let Some(inner) = d.block.as_mut() {
            redirect_logs(inner, prefix, ours, moved);
            let sets_own = inner
                .iter()
                .any(|i| i.name == "access_log" && i.args.first().is_some_and(|a| a != "off"));
            if sets_own && matches!(d.name.as_str(), "server" | "location") {
                inner.push(directive("access_log", &[ours, LOG_FORMAT]));
            }
        }
    }
}

/// Every `server {}` listens on a loopback port of its own; the port of
/// the one that proxies to the upstream under test is returned.
fn listen(
    http: &mut [Directive],
    chosen: &str,
    port: &mut dyn FnMut() -> u16,
) -> Result<u16, String> {
    let mut target = None;
    for s in http
        .iter_mut()
        .filter(|d| d.name == "server" && d.block.is_some())
    {
        let p = port();
        let to_chosen = |l: &Directive| proxied(l) == Some(chosen);
        let root = locations(s).any(|l| to_chosen(l) && is_root(l));
        let any = locations(s).any(to_chosen);
        let inner = s.block.as_mut().expect("a server block");
        inner.retain(|d| d.name != "listen");
        inner.insert(0, directive("listen", &[&format!("127.0.0.1:{p}")]));
        if root || (any && target.is_none()) {
            target = Some(p);
        }
    }
    target.ok_or_else(|| format!("no server {{}} has a location that proxies to upstream {chosen}"))
}

/// `load_module` paths written relative to nginx's compiled-in prefix
/// (Debian's modules-enabled files) made absolute, as the run's prefix is
/// another.
pub fn absolute_modules(top: &mut [Directive], compiled: &Path) {
    for d in top.iter_mut().filter(|d| d.name == "load_module") {
        if let Some(path) = d.args.first_mut().filter(|p| !p.starts_with('/')) {
            *path = compiled.join(&*path).display().to_string();
        }
    }
}

#[cfg(test)]
mod tests;
