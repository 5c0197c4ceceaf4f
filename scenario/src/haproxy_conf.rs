//! A user's haproxy.cfg, made runnable under test (pure): the `server`
//! lines of its backends pointed at the scenario's mocks (every parameter
//! kept; the server named after its mock's address, so the log names it),
//! each frontend bound to a loopback port of its own, the process run in
//! the foreground as whoever runs lbkit, and every request logged to
//! stdout in `option httplog`'s format, which the runner reads.

use balancer::{Method, Server, UpstreamSpec};

use crate::nginx_conf::{unmatched, Stand, NOWHERE};

/// A line of the file: its words (quotes and comments read) and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub words: Vec<String>,
    /// 1-based; 0 for a line lbkit adds.
    pub line: usize,
}

/// A section: `global`, `defaults`, `frontend NAME`, `backend NAME`,
/// `listen NAME`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub header: Line,
    pub lines: Vec<Line>,
}

impl Section {
    fn kind(&self) -> &str {
        &self.header.words[0]
    }

    fn name(&self) -> Option<&str> {
        self.header.words.get(1).map(String::as_str)
    }

    fn first(&self, keyword: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.words[0] == keyword)
    }
}

const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "cache",
    "ring",
];

/// The sections of a haproxy.cfg; `Err` names the line.
pub fn parse(text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let words = words(raw).map_err(|why| format!("line {}: {why}", i + 1))?;
        if words.is_empty() {
            continue;
        }
        let line = Line { words, line: i + 1 };
        if SECTIONS.contains(&line.words[0].as_str()) {
            sections.push(Section {
                header: line,
                lines: Vec::new(),
            });
        } else {
            match sections.last_mut() {
                Some(s) => s.lines.push(line),
                None => {
                    return Err(format!(
                        "line {}: `{}` is outside any section (global, defaults, frontend, backend, listen)",
                        i + 1,
                        line.words[0]
                    ))
                }
            }
        }
    }
    Ok(sections)
}

/// A line's words, as HAProxy splits them: blanks between, `#` to the
/// end, `"..."` and `'...'` quoting, `\` escaping.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// The config, rewritten.
pub struct Rewritten {
    pub sections: Vec<Section>,
    /// The backend under test.
    pub backend: String,
    /// The port of the frontend that sends to it: where the load goes.
    pub port: u16,
    /// What the config writes that no mock stands for, now [`NOWHERE`].
    pub unmapped: Vec<String>,
    /// Each mock's name in the log (`backend/127.0.0.1:9001`), where it is
    /// in the backend under test or another; `None` when in none.
    pub logged_as: Vec<Option<String>>,
    /// What the backend under test promises, as an upstream (round robin
    /// and leastconn by weight); `None` for hashing methods, whose split
    /// depends on the keys.
    pub promise: Option<UpstreamSpec>,
}

/// Rewrites the sections for a run: the backend under test is `backend`
/// (else the first frontend's `default_backend`, or the only backend),
/// `forwarded`: clients are told apart by `X-Forwarded-For`.
pub fn rewrite(
    mut sections: Vec<Section>,
    stands: &[Stand<'_>],
    backend: Option<&str>,
    forwarded: bool,
    port: &mut dyn FnMut() -> u16,
) -> Result<Rewritten, String> {
    let chosen = choose(&sections, backend)?;
    let mut unmapped = Vec::new();
    let mut logged_as: Vec<Option<String>> = vec![None; stands.len()];
    point_servers(
        &mut sections,
        stands,
        &chosen,
        &mut unmapped,
        &mut logged_as,
    )?;
    let promise = promise(&sections, &chosen)?;
    let add = |words: &[&str]| Line {
        words: words.iter().map(|w| w.to_string()).collect(),
        line: 0,
    };
    // The process: foreground, this user, one log to stdout.
    let run_as = [
        "daemon",
        "user",
        "group",
        "uid",
        "gid",
        "chroot",
        "pidfile",
        "log",
        "master-worker",
        "nbproc",
        "stats",
    ];
    if !sections.iter().any(|s| s.kind() == "global") {
        sections.insert(
            0,
            Section {
                header: add(&["global"]),
                lines: Vec::new(),
            },
        );
    }
    let mut target = None;
    for s in &mut sections {
        match s.kind() {
            "global" => {
                s.lines.retain(|l| !run_as.contains(&l.words[0].as_str()));
                // Requests log at level info; state changes and stop
                // notices, above it, are not request lines.
                let log = ["log", "stdout", "format", "raw", "local0", "info", "info"];
                s.lines.push(add(&log));
            }
            "defaults" | "frontend" | "listen" => {
                // httplog is the format the runner reads.
                s.lines.retain(|l| {
                    let w: Vec<&str> = l.words.iter().map(String::as_str).collect();
                    !matches!(
                        w.as_slice(),
                        ["log", ..]
                            | ["no", "log", ..]
                            | ["log-format", ..]
                            | ["option", "httplog" | "tcplog", ..]
                    )
                });
                if s.kind() == "defaults" {
                    continue;
                }
                let name = s.name().unwrap_or("").to_string();
                if s.first("mode")
                    .is_some_and(|l| l.words.get(1).is_some_and(|m| m == "tcp"))
                {
                    return Err(format!(
                        "{} {name} is mode tcp: lbkit reads HTTP request logs (option httplog); test an HTTP frontend",
                        s.kind()
                    ));
                }
                let p = port();
                s.lines.retain(|l| l.words[0] != "bind");
                s.lines.insert(0, add(&["bind", &format!("127.0.0.1:{p}")]));
                s.lines.push(add(&["log", "global"]));
                s.lines.push(add(&["option", "httplog"]));
                // lbkit's readiness probe connects and sends nothing.
                s.lines.push(add(&["option", "dontlognull"]));
                let sets_src = s
                    .lines
                    .iter()
                    .any(|l| l.words.iter().any(|w| w == "set-src"));
                if forwarded && !sets_src {
                    s.lines
                        .push(add(&["http-request", "set-src", "hdr(x-forwarded-for)"]));
                }
                let sends_here = match s.kind() {
                    "listen" => name == chosen,
                    _ => s.first("default_backend").and_then(|l| l.words.get(1)) == Some(&chosen),
                };
                if sends_here && target.is_none() {
                    target = Some(p);
                }
            }
            _ => {}
        }
    }
    let port = target.ok_or_else(|| {
        format!("no frontend has default_backend {chosen}: say where the load goes")
    })?;
    Ok(Rewritten {
        sections,
        backend: chosen,
        port,
        unmapped,
        logged_as,
        promise,
    })
}

/// Sections that hold `server` lines.
fn has_servers(s: &Section) -> bool {
    matches!(s.kind(), "backend" | "listen")
}

/// The backend under test: as named, else the first frontend's
/// `default_backend`, else the only backend.
fn choose(sections: &[Section], named: Option<&str>) -> Result<String, String> {
    let names: Vec<&str> = sections
        .iter()
        .filter(|s| has_servers(s))
        .filter_map(Section::name)
        .collect();
    let list = || names.join(", ");
    if let Some(n) = named {
        return match names.contains(&n) {
            true => Ok(n.to_string()),
            false => Err(format!(
                "[balancer] upstream {n:?}: the config has no such backend (it has {})",
                list()
            )),
        };
    }
    let default = sections
        .iter()
        .filter(|s| s.kind() == "frontend")
        .find_map(|s| s.first("default_backend")?.words.get(1).cloned())
        .filter(|d| names.contains(&d.as_str()));
    match (default, names.as_slice()) {
        (Some(d), _) => Ok(d),
        (None, [only]) => Ok(only.to_string()),
        (None, []) => Err("the config has no backend or listen section with servers".into()),
        (None, _) => Err(format!(
            "no frontend has a default_backend, and the config has several ({}): say which with [balancer] upstream",
            list()
        )),
    }
}

/// Points each `server NAME ADDR` at the mock standing for ADDR (as
/// written) or NAME, or, with neither anywhere, the chosen backend's in
/// order; the server is renamed to its mock's address.
fn point_servers(
    sections: &mut [Section],
    stands: &[Stand<'_>],
    chosen: &str,
    unmapped: &mut Vec<String>,
    logged_as: &mut [Option<String>],
) -> Result<(), String> {
    let mut written: Vec<(String, String)> = Vec::new();
    for s in sections.iter().filter(|s| has_servers(s)) {
        for l in &s.lines {
            match l.words[0].as_str() {
                "server" if l.words.len() >= 3 => {
                    written.push((l.words[1].clone(), l.words[2].clone()))
                }
                "server-template" => {
                    return Err(format!(
                        "line {}: server-template is not supported; write the server lines out",
                        l.line
                    ))
                }
                _ => {}
            }
        }
    }
    let addrs: Vec<&str> = written.iter().map(|(_, a)| a.as_str()).collect();
    let has = |server: &str| written.iter().any(|(n, a)| a == server || n == server);
    unmatched(stands, has, &addrs)?;
    let stand_for = |name: &str, addr: &str| {
        stands
            .iter()
            .position(|s| s.server == Some(addr) || s.server == Some(name))
            .or_else(|| stands.iter().position(|s| s.name == name))
    };
    let by_order = !written.iter().any(|(n, a)| stand_for(n, a).is_some());
    let in_chosen = sections
        .iter()
        .filter(|s| has_servers(s) && s.name() == Some(chosen))
        .flat_map(|s| &s.lines)
        .filter(|l| l.words[0] == "server")
        .count();
    if by_order && in_chosen != stands.len() {
        return Err(format!(
            "backend {chosen} has {in_chosen} server lines and the scenario {} [[backend]]s; give each backend the line it stands for with server = \"...\"",
            stands.len()
        ));
    }
    for s in sections.iter_mut().filter(|s| has_servers(s)) {
        let section = s.name().unwrap_or("").to_string();
        let mut nth = 0;
        for l in s.lines.iter_mut().filter(|l| l.words[0] == "server") {
            if l.words.len() < 3 {
                continue;
            }
            let i = if by_order && section == chosen {
                nth += 1;
                Some(nth - 1)
            } else {
                stand_for(&l.words[1], &l.words[2])
            };
            let addr = match i {
                Some(i) => {
                    let addr = stands[i].addr.to_string();
                    let logged = format!("{section}/{addr}");
                    if section == chosen || logged_as[i].is_none() {
                        logged_as[i] = Some(logged);
                    }
                    addr
                }
                None => {
                    unmapped.push(format!(
                        "backend {section}: server {} {}",
                        l.words[1], l.words[2]
                    ));
                    NOWHERE.to_string()
                }
            };
            l.words[1] = addr.clone();
            l.words[2] = addr;
        }
    }
    Ok(())
}

/// What the chosen backend promises: its `balance` and the servers'
/// weights (1 by default), backups and disabled ones, in the log's names.
fn promise(sections: &[Section], chosen: &str) -> Result<Option<UpstreamSpec>, String> {
    // A section takes its defaults from the last `defaults` before it.
    let Some(at) = sections
        .iter()
        .position(|s| has_servers(s) && s.name() == Some(chosen))
    else {
        return Ok(None);
    };
    let section = &sections[at];
    let defaults = sections[..at].iter().rev().find(|s| s.kind() == "defaults");
    let balance = section
        .first("balance")
        .or_else(|| defaults.and_then(|d| d.first("balance")))
        .and_then(|l| l.words.get(1).cloned())
        .unwrap_or_else(|| "roundrobin".into());
    let method = match balance.as_str() {
        "roundrobin" | "static-rr" => Method::RoundRobin,
        "leastconn" => Method::LeastConn,
        _ => return Ok(None),
    };
    let mut servers = Vec::new();
    for l in section.lines.iter().filter(|l| l.words[0] == "server") {
        let Some(addr) = l.words.get(2) else { continue };
        let mut s = Server::new(format!("{chosen}/{addr}"));
        let mut params = l.words[3..].iter();
        while let Some(p) = params.next() {
            match p.as_str() {
                "weight" => {
                    let w = params.next().and_then(|w| w.parse().ok());
                    s.weight =
                        w.ok_or_else(|| format!("line {}: weight needs a number", l.line))?;
                }
                "backup" => s.backup = true,
                "disabled" => s.down = true,
                _ => {}
            }
        }
        // HAProxy's weight 0 takes no traffic: nginx's `down`.
        if s.weight == 0 {
            s.weight = 1;
            s.down = true;
        }
        servers.push(s);
    }
    Ok(Some(UpstreamSpec::new(chosen, method, servers)))
}

/// HAProxy's log, split into its request lines and its own event
/// messages (proxies stopping, servers going up or down), which it writes
/// to the same log whatever the level; the stops at shutdown are dropped.
pub fn split_log(text: &str) -> (String, Vec<String>) {
    let mut requests = String::with_capacity(text.len());
    let mut events = Vec::new();
    for line in text.lines() {
        let event = ["Proxy ", "Server ", "backend ", "Health check "]
            .iter()
            .any(|p| line.starts_with(p));
        match event {
            false => {
                requests.push_str(line);
                requests.push('\n');
            }
            true if line.starts_with("Proxy ") && line.contains(" stopped") => {}
            true => events.push(line.to_string()),
        }
    }
    (requests, events)
}

/// The sections as haproxy.cfg text, and the line of the user's file each
/// output line came from (0 for lbkit's).
pub fn render(sections: &[Section]) -> (String, Vec<usize>) {
    let mut text = String::new();
    let mut origins = Vec::new();
    for s in sections {
        text.push_str(&join(&s.header.words));
        text.push('\n');
        origins.push(s.header.line);
        for l in &s.lines {
            text.push_str("    ");
            text.push_str(&join(&l.words));
            text.push('\n');
            origins.push(l.line);
        }
        text.push('\n');
        origins.push(0);
    }
    (text, origins)
}

fn join(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let bare = !w.is_empty()
                && !w.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '\\'));
            match (bare, w.contains('\'')) {
                (true, _) => w.clone(),
                (false, false) => format!("'{w}'"),
                (false, true) => format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\"")),
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests;
