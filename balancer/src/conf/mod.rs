//! The subset of nginx.conf that describes balancing: `upstream {}` blocks,
//! `server { listen; location { proxy_pass; proxy_next_upstream*; ... } }`,
//! `log_format` and `access_log`. Pure: the caller reads the file. Directives
//! nginx has but that do not change balancing are listed as ignored; anything
//! else is an error naming the file, line and directive.

#[cfg(test)]
mod fuzz;
mod ignored;
pub use ignored::NEUTRAL;
mod include;
mod interpret;
mod location;
mod model;
mod realip;
pub use realip::{Cidr, RealIp};
mod syntax;
mod upstream;

pub use include::{expand, Dump, Files, Sources};
pub use interpret::interpret;
pub use model::{
    parse_time, AccessLog, Action, ClientLimits, ErrorAnswer, ErrorPage, HealthSpec, Keepalive,
    ListenTls, Location, LogFormatDef, NextUpstream, ProxyConfig, SetHeader, Timeouts,
    UpstreamOptions, UpstreamRequest, UpstreamTls, DEFAULT_SET_HEADERS,
};
pub use syntax::{parse, Directive};

/// A value in nginx's configuration language that does not read (a
/// method line, a `proxy_next_upstream` condition, a hash key): what is
/// wrong, for the caller to say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// A configuration error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", place(.file, *.line), if directive.is_empty() { String::new() } else { format!("{directive}: ") })]
pub struct ConfError {
    pub file: String,
    pub line: usize,
    pub directive: String,
    pub message: String,
}

/// `file:line`, or the file alone when the line is not known (0).
fn place(file: &str, line: usize) -> String {
    if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}")
    }
}

impl ConfError {
    pub fn new(file: &str, line: usize, directive: &str, message: impl Into<String>) -> ConfError {
        ConfError {
            file: file.to_string(),
            line,
            directive: directive.to_string(),
            message: message.into(),
        }
    }
}

/// Reads a configuration to run it: parse, then interpret; a directive this
/// does not know is an error, since it could not be honoured.
pub fn load(file: &str, text: &str) -> Result<ProxyConfig, ConfError> {
    interpret(file, &parse(file, text)?, false)
}

/// Reads a configuration for what it says about upstreams and logs (the
/// analyzer's `--nginx-conf`): directives this does not know are listed in
/// [`ProxyConfig::ignored`] instead of refused, as a real nginx.conf has
/// many.
pub fn read(file: &str, text: &str) -> Result<ProxyConfig, ConfError> {
    interpret(file, &parse(file, text)?, true)
}

/// The directives of the file at `path` with its includes followed: from
/// disk, relative ones from the file's directory; or, when the file is an
/// `nginx -T` dump, from the files it holds.
pub fn directives(path: &std::path::Path) -> Result<Vec<Directive>, ConfError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfError::new(&name, 0, "", format!("cannot read: {e}")))?;
    if let Some(mut dump) = Dump::of(&text) {
        let (main, main_text) = dump.files[0].clone();
        return expand(parse(&main, &main_text)?, &mut dump);
    }
    let dir = path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    expand(parse(&name, &text)?, &mut Files { dir })
}

/// [`load`] from a file, includes followed and host names in `server`
/// lines resolved, as nginx does at start-up (a name with several
/// addresses is several peers; one that does not resolve is an error).
pub fn load_file(path: &std::path::Path) -> Result<ProxyConfig, ConfError> {
    let name = path.display().to_string();
    let mut config = interpret(&name, &directives(path)?, false)?;
    resolve_hosts(&mut config, &name, true)?;
    Ok(config)
}

/// [`read`] from a file, includes followed; host names that resolve here
/// are resolved, the others kept as written.
pub fn read_file(path: &std::path::Path) -> Result<ProxyConfig, ConfError> {
    let name = path.display().to_string();
    let mut config = interpret(&name, &directives(path)?, true)?;
    resolve_hosts(&mut config, &name, false)?;
    Ok(config)
}

/// Replaces each `server NAME[:PORT]` by one server per address the name
/// resolves to (port 80 when none is written), keeping the name for
/// consistent hashing. `strict`: a name that does not resolve is an error.
pub fn resolve_hosts(config: &mut ProxyConfig, file: &str, strict: bool) -> Result<(), ConfError> {
    use std::net::{SocketAddr, ToSocketAddrs};
    for upstream in &mut config.upstreams {
        let mut servers = Vec::with_capacity(upstream.servers.len());
        for s in upstream.servers.drain(..) {
            if s.addr.parse::<SocketAddr>().is_ok() || s.addr.starts_with("unix:") {
                servers.push(s);
                continue;
            }
            let written = if s.addr.contains(':') {
                s.addr.clone()
            } else {
                format!("{}:80", s.addr)
            };
            match written.to_socket_addrs() {
                Ok(found) => {
                    let mut seen: Vec<SocketAddr> = Vec::new();
                    for a in found {
                        if !seen.contains(&a) {
                            seen.push(a);
                        }
                    }
                    for a in seen {
                        servers.push(crate::Server {
                            addr: a.to_string(),
                            host: Some(s.addr.clone()),
                            ..s.clone()
                        });
                    }
                }
                Err(e) if strict => {
                    let why = format!(
                        "host not found in upstream \"{}\": {} ({e})",
                        upstream.name, s.addr
                    );
                    return Err(ConfError::new(file, 0, "server", why));
                }
                Err(_) => servers.push(s),
            }
        }
        upstream.servers = servers;
    }
    Ok(())
}
