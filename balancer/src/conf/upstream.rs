//! `upstream {}` blocks: the method line and each `server` line.

use super::ignored::NEUTRAL;
use super::interpret::Ctx;
use super::model::{parse_time, Keepalive, UpstreamOptions};
use super::Directive;
use super::{ConfError, ValueError};
use crate::peer::Server;
use crate::upstream::{Method, SpecError, UpstreamSpec};

pub(super) fn upstream(
    cx: &mut Ctx<'_>,
    d: &Directive,
    block: &[Directive],
) -> Result<(), ConfError> {
    cx.args(d, 1, 1)?;
    let name = d.args[0].clone();
    if cx.config.upstreams.iter().any(|u| u.name == name) {
        return Err(cx.err(d, format!("upstream \"{name}\" is defined twice")));
    }
    let mut method = Method::RoundRobin;
    let mut servers: Vec<(Server, usize)> = Vec::new();
    let mut options = UpstreamOptions::default();
    let mut keepalive: Option<Keepalive> = None;
    // keepalive_* may come before keepalive: read them after it.
    let mut companions = Vec::new();
    for e in block {
        match e.name.as_str() {
            "server" => {
                let server = server_line(cx, e)?;
                if servers.iter().any(|(s, _)| s.addr == server.addr) {
                    return Err(cx.err(e, format!("server {} is listed twice", server.addr)));
                }
                servers.push((server, e.line));
            }
            "least_conn" | "ip_hash" | "hash" | "random" | "least_time" => {
                let args: Vec<&str> = e.args.iter().map(String::as_str).collect();
                method = Method::from_directive(&e.name, &args).map_err(|m| cx.err(e, m.0))?;
                // A method after `keepalive` takes over the peer hooks the
                // keepalive module set: nginx only warns, and keeps nothing.
                if keepalive.take().is_some() {
                    cx.config.ignored.push(format!(
                        "{}:{}: keepalive (before the balancing method, nginx turns it off)",
                        cx.file, e.line
                    ));
                }
            }
            "keepalive" => {
                cx.args(e, 1, 1)?;
                let n = e.args[0]
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| cx.err(e, format!("invalid value \"{}\"", e.args[0])))?;
                if keepalive.is_some() {
                    return Err(cx.err(e, "\"keepalive\" directive is duplicate"));
                }
                keepalive = Some(Keepalive::new(n));
            }
            "keepalive_requests" | "keepalive_timeout" | "keepalive_time" => {
                cx.args(e, 1, 1)?;
                companions.push(e);
            }
            "zone" => {
                cx.args(e, 1, 2)?;
                if let Some(size) = e.args.get(1) {
                    parse_size(size)
                        .ok_or_else(|| cx.err(e, format!("invalid zone size \"{size}\"")))?;
                }
                options.zone = true;
            }
            name if NEUTRAL.contains(&name) => cx.ignore(e)?,
            _ => cx.unknown(e)?,
        }
    }
    if let Some(k) = keepalive.as_mut() {
        for e in companions {
            let v = &e.args[0];
            let bad = || cx.err(e, format!("invalid value \"{v}\""));
            match e.name.as_str() {
                "keepalive_requests" => k.requests = v.parse().map_err(|_| bad())?,
                "keepalive_timeout" => k.timeout = parse_time(v).ok_or_else(bad)?,
                _ => k.time = parse_time(v).ok_or_else(bad)?,
            }
        }
    }
    options.keepalive = keepalive;
    cx.config.upstream_options.push((name.clone(), options));
    let spec = UpstreamSpec::new(
        name,
        method,
        servers.iter().map(|(s, _)| s.clone()).collect(),
    );
    spec.validate().map_err(|e| {
        // A misplaced backup is reported on its server line; the rest
        // (zero weights and duplicates were caught line by line) on the block.
        let line = match e {
            SpecError::BackupNotAllowed { .. } => servers
                .iter()
                .find(|(s, _)| s.backup)
                .map_or(d.line, |(_, l)| *l),
            _ => d.line,
        };
        ConfError::new(cx.file, line, "upstream", e.to_string())
    })?;
    cx.config.upstreams.push(spec);
    Ok(())
}

impl Method {
    /// Every method's name, as its directive starts.
    pub const NAMES: [&'static str; 6] = [
        "round_robin",
        "least_conn",
        "ip_hash",
        "hash",
        "random",
        "least_time",
    ];

    /// The method an upstream's method directive names: `least_conn`,
    /// `ip_hash`, `hash KEY [consistent]`, `random [two [least_conn]]`,
    /// nginx Plus's `least_time header|last_byte [inflight]`, or lbkit's
    /// `round_robin` (nginx's default, which has no directive).
    pub fn from_directive(name: &str, args: &[&str]) -> Result<Method, ValueError> {
        Method::read(name, args).map_err(ValueError)
    }

    fn read(name: &str, args: &[&str]) -> Result<Method, String> {
        let count = |min: usize, max: usize| {
            if (min..=max).contains(&args.len()) {
                Ok(())
            } else {
                Err(format!(
                    "takes {} arguments, not {}",
                    super::interpret::plural(min, max),
                    args.len()
                ))
            }
        };
        Ok(match name {
            "round_robin" => {
                count(0, 0)?;
                Method::RoundRobin
            }
            "least_conn" => {
                count(0, 0)?;
                Method::LeastConn
            }
            "ip_hash" => {
                count(0, 0)?;
                Method::IpHash
            }
            "hash" => {
                count(1, 2)?;
                let key = crate::key::KeyExpr::parse(args[0]).map_err(|e| e.0)?;
                let consistent = match args.get(1) {
                    None => false,
                    Some(&"consistent") => true,
                    Some(other) => return Err(format!("invalid parameter \"{other}\"")),
                };
                Method::Hash { key, consistent }
            }
            "random" => {
                let two = match args {
                    [] => false,
                    ["two"] | ["two", "least_conn"] => true,
                    _ => return Err(format!("invalid parameters \"{}\"", args.join(" "))),
                };
                Method::Random { two }
            }
            // In-flight requests always count here, so `inflight` changes
            // nothing.
            "least_time" => {
                count(0, 2)?;
                let mut last_byte = false;
                for arg in args {
                    match *arg {
                        "header" | "inflight" => {}
                        "last_byte" => last_byte = true,
                        other => {
                            return Err(format!(
                                "invalid parameter \"{other}\"; header, last_byte or inflight"
                            ))
                        }
                    }
                }
                Method::LeastTime { last_byte }
            }
            other => {
                return Err(format!(
                    "\"{other}\" is not a balancing method; use {}",
                    Method::NAMES.join(", ")
                ))
            }
        })
    }
}

/// A whole method line, as a scenario or a flag writes it: `least_conn`,
/// `hash $request_uri consistent`, `random two least_conn`...
impl std::str::FromStr for Method {
    type Err = ValueError;

    fn from_str(line: &str) -> Result<Method, ValueError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, args) = words
            .split_first()
            .ok_or_else(|| ValueError(format!("no method; use {}", Method::NAMES.join(", "))))?;
        Method::from_directive(name, args)
    }
}

/// `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=TIME] [max_conns=N] [backup] [down];`
fn server_line(cx: &Ctx<'_>, d: &Directive) -> Result<Server, ConfError> {
    cx.args(d, 1, usize::MAX)?;
    let mut s = Server::new(d.args[0].clone());
    let number = |v: &str, what: &str| -> Result<u32, ConfError> {
        v.parse::<u32>()
            .map_err(|_| cx.err(d, format!("invalid {what} \"{v}\"")))
    };
    for arg in &d.args[1..] {
        match arg.split_once('=') {
            Some(("weight", v)) => {
                s.weight = number(v, "weight")?;
                if s.weight == 0 {
                    return Err(cx.err(d, format!("invalid weight \"{v}\": weights start at 1")));
                }
            }
            Some(("max_fails", v)) => s.max_fails = number(v, "max_fails")?,
            Some(("max_conns", v)) => s.max_conns = number(v, "max_conns")?,
            Some(("fail_timeout", v)) => {
                // nginx reads this in whole seconds: 30, 30s, 1m, 1h.
                let t = parse_time(v).filter(|t| t.subsec_nanos() == 0 && !v.ends_with("ms"));
                s.fail_timeout = t
                    .ok_or_else(|| cx.err(d, format!("invalid fail_timeout \"{v}\"")))?
                    .as_secs();
            }
            None if arg == "backup" => s.backup = true,
            None if arg == "down" => s.down = true,
            _ => return Err(cx.err(d, format!("invalid parameter \"{arg}\""))),
        }
    }
    Ok(s)
}

/// nginx sizes: `64k`, `1m`, `1g`, `4096`.
pub(super) fn parse_size(v: &str) -> Option<usize> {
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: usize = digits.parse().ok()?;
    n.checked_mul(match unit {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return None,
    })
}
