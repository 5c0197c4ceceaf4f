//! What to serve: the ports, where to bind, and each port's profile, layered
//! from defaults, a TOML file and command-line flags. Pure: the caller reads
//! the file; this module only interprets text.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::profile::Profile;
use crate::units::parse_size;
use primitives::parse_duration;

/// Ports the seed's server.py starts.
pub const DEFAULT_PORTS: &str = "8001,8002";
/// nginx's `client_max_body_size 10M` from seed 000.
pub const DEFAULT_MAX_BODY: usize = 10 << 20;
const MAX_PORTS: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid {flag} '{value}': {why}")]
    Invalid {
        flag: String,
        value: String,
        why: String,
    },
    #[error("{path}: {why}")]
    File { path: String, why: String },
}

fn invalid(flag: &str, value: &str, why: String) -> ConfigError {
    ConfigError::Invalid {
        flag: flag.to_string(),
        value: value.to_string(),
        why,
    }
}

/// One served port. Port 0 asks the OS for a free one.
#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    pub port: u16,
    pub profile: Profile,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bind: IpAddr,
    pub ports: Vec<PortConfig>,
    /// Seeds each port's random draws (latency, injected errors) so a run with
    /// the same requests in the same order answers the same way.
    pub seed: Option<u64>,
    /// Print a line per request to stdout.
    pub log: bool,
    pub max_body: usize,
    /// A client that has not finished its request headers by then is dropped;
    /// the clock also runs while a keep-alive connection sits idle, so idle
    /// connections close after it too. Zero turns it off.
    pub header_timeout: Duration,
    /// On shutdown, how long in-flight requests get to finish.
    pub grace: Duration,
    /// What a `/_mock/` control must carry in `X-Mock-Token`; `None` draws
    /// a random one at start (see `Server::admin_token`).
    pub admin_token: Option<String>,
    /// Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) instead of plain HTTP (where
    /// HTTP/2 comes with prior knowledge, h2c).
    pub tls: Option<primitives::tls::ServerTls>,
}

impl Config {
    /// `n` ports on ephemeral loopback addresses with one profile: what tests
    /// and the in-process scenario runner want.
    pub fn ephemeral(n: usize, profile: Profile) -> Config {
        Config {
            ports: vec![PortConfig { port: 0, profile }; n],
            ..Config::default()
        }
    }

    pub fn profile_mut(&mut self, index: usize) -> &mut Profile {
        &mut self.ports[index].profile
    }
}

impl Default for Config {
    fn default() -> Self {
        let profile = Profile::default();
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: parse_ports(DEFAULT_PORTS)
                .expect("default ports parse")
                .into_iter()
                .map(|port| PortConfig {
                    port,
                    profile: profile.clone(),
                })
                .collect(),
            seed: None,
            log: false,
            max_body: DEFAULT_MAX_BODY,
            // nginx's client_header_timeout.
            header_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            admin_token: None,
            tls: None,
        }
    }
}

/// `8001,8002`, `8001-8004`, or a mix. `0` (any number of times) means an
/// ephemeral port each.
pub fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for part in text.split(',').map(str::trim) {
        let one = |s: &str| -> Result<u16, String> {
            s.trim().parse::<u16>().map_err(|_| {
                format!("'{s}' is not a port number (0-65535); write e.g. 8001,8002 or 8001-8004")
            })
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (one(a)?, one(b)?);
                if a > b || a == 0 {
                    return Err(format!("range '{part}' must go from a low to a high port"));
                }
                ports.extend(a..=b);
            }
            None => ports.push(one(part)?),
        }
        if ports.len() > MAX_PORTS {
            return Err(format!("more than {MAX_PORTS} ports"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ports.iter().find(|p| **p != 0 && !seen.insert(**p)) {
        return Err(format!("port {dup} is listed twice"));
    }
    Ok(ports)
}

/// Splits `latency=normal(200ms,50ms),error_rate=0.2` at the commas that are
/// not inside parentheses.
pub fn split_settings(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let bytes = text.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied();
        match c {
            Some(b'(') => depth += 1,
            Some(b')') => depth -= 1,
            Some(b',') | None if depth <= 0 => {
                let item = text[start..i].trim();
                if !item.is_empty() {
                    let (k, v) = item
                        .split_once('=')
                        .ok_or_else(|| format!("'{item}' is not key=value"))?;
                    out.push((k.trim().to_string(), v.trim().to_string()));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Settings that apply to the whole process, each optional so that a flag can
/// override the file only where it was given.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ServerOptions {
    pub ports: Option<String>,
    pub bind: Option<String>,
    pub seed: Option<u64>,
    pub log: Option<bool>,
    pub max_body: Option<String>,
    pub header_timeout: Option<String>,
    pub grace: Option<String>,
    pub admin_token: Option<String>,
}

/// A profile setting and where it came from, for the error message.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub source: String,
    pub key: String,
    pub value: String,
}

/// Everything one source (the file, or the flags) says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Layer {
    pub options: ServerOptions,
    /// For every port.
    pub all: Vec<Setting>,
    /// For one port.
    pub port: Vec<(u16, Setting)>,
}

impl Layer {
    /// Reads `--profile 8002:latency=300ms,error_rate=0.2`.
    pub fn add_port_override(&mut self, flag_value: &str) -> Result<(), ConfigError> {
        let bad = |why: String| invalid("--profile", flag_value, why);
        let (port, settings) = flag_value
            .split_once(':')
            .ok_or_else(|| bad("write PORT:key=value,... e.g. 8002:latency=300ms".to_string()))?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| bad(format!("'{port}' is not a port number")))?;
        for (key, value) in split_settings(settings).map_err(bad)? {
            let source = format!("--profile {port}:{key}");
            self.port.push((port, Setting { source, key, value }));
        }
        Ok(())
    }

    /// Reads a TOML config file. Top-level keys are process options or profile
    /// settings for every port; `[port.8002]` tables hold one port's settings.
    pub fn from_toml(path: &str, text: &str) -> Result<Layer, ConfigError> {
        let file_err = |why: String| ConfigError::File {
            path: path.to_string(),
            why,
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            file_err(e.message().trim().replace('\n', ": ") + &line_of(text, e.span()))
        })?;
        let mut layer = Layer::default();
        for (key, value) in &table {
            let source = format!("{path}: {key}");
            match key.as_str() {
                "port" => {
                    let ports = value.as_table().ok_or_else(|| {
                        file_err("'port' must be a table of [port.NNNN] sections".into())
                    })?;
                    for (port_key, settings) in ports {
                        let port: u16 = port_key.parse().map_err(|_| {
                            file_err(format!("[port.{port_key}]: not a port number"))
                        })?;
                        let settings = settings
                            .as_table()
                            .ok_or_else(|| file_err(format!("[port.{port}] must be a table")))?;
                        for (k, v) in settings {
                            let setting = Setting {
                                source: format!("{path}: [port.{port}] {k}"),
                                key: k.clone(),
                                value: toml_text(v)
                                    .map_err(|why| file_err(format!("[port.{port}] {k}: {why}")))?,
                            };
                            layer.port.push((port, setting));
                        }
                    }
                }
                "seed" => {
                    let seed = value
                        .as_integer()
                        .and_then(|s| u64::try_from(s).ok())
                        .ok_or_else(|| file_err("seed must be a non-negative integer".into()))?;
                    layer.options.seed = Some(seed);
                }
                "log" => {
                    let log = value
                        .as_bool()
                        .ok_or_else(|| file_err("log must be true or false".into()))?;
                    layer.options.log = Some(log);
                }
                _ => {
                    let text = toml_text(value).map_err(|why| file_err(format!("{key}: {why}")))?;
                    let options = &mut layer.options;
                    let slot = match key.as_str() {
                        "ports" => &mut options.ports,
                        "bind" => &mut options.bind,
                        "max_body" => &mut options.max_body,
                        "header_timeout" => &mut options.header_timeout,
                        "grace" => &mut options.grace,
                        "admin_token" => &mut options.admin_token,
                        _ => {
                            layer.all.push(Setting {
                                source,
                                key: key.clone(),
                                value: text,
                            });
                            continue;
                        }
                    };
                    *slot = Some(text);
                }
            }
        }
        Ok(layer)
    }
}

/// A TOML value as the text the flag parsers read (`[8001, 8002]` becomes `8001,8002`).
fn toml_text(value: &toml::Value) -> Result<String, String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_text)
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        _ => return Err("expected a string, number or list".to_string()),
    })
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| {
        format!(
            " (line {})",
            text[..s.start.min(text.len())].lines().count().max(1)
        )
    })
    .unwrap_or_default()
}

/// Layers `file` then `flags` over the defaults: for every port, the file's
/// settings for all ports, the flags' for all ports, the file's for that port,
/// then the flags' for that port. A later layer wins.
pub fn build(file: Option<Layer>, flags: Layer) -> Result<Config, ConfigError> {
    let file = file.unwrap_or_default();
    let defaults = Config::default();
    let pick = |f: &Option<String>, c: &Option<String>| c.clone().or_else(|| f.clone());
    let (fo, co) = (&file.options, &flags.options);

    let ports_text = pick(&fo.ports, &co.ports).unwrap_or_else(|| DEFAULT_PORTS.to_string());
    let ports = parse_ports(&ports_text).map_err(|why| invalid("--ports", &ports_text, why))?;
    let bind = match pick(&fo.bind, &co.bind) {
        Some(b) => b
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                invalid(
                    "--bind",
                    &b,
                    "is not an IP address (e.g. 127.0.0.1, 0.0.0.0 or ::1)".into(),
                )
            })?,
        None => defaults.bind,
    };
    let duration = |flag: &str, v: Option<String>, default: Duration| match v {
        Some(v) => parse_duration(&v).map_err(|why| invalid(flag, &v, why.to_string())),
        None => Ok(default),
    };
    let max_body = match pick(&fo.max_body, &co.max_body) {
        Some(v) => parse_size(&v).map_err(|why| invalid("--max-body", &v, why))?,
        None => defaults.max_body,
    };

    let mut base = Profile::default();
    for s in file.all.iter().chain(&flags.all) {
        apply(&mut base, s)?;
    }
    let mut port_configs: Vec<PortConfig> = ports
        .iter()
        .map(|&port| PortConfig {
            port,
            profile: base.clone(),
        })
        .collect();
    for (port, s) in file.port.iter().chain(&flags.port) {
        let target = port_configs
            .iter_mut()
            .find(|p| p.port == *port && *port != 0)
            .ok_or_else(|| {
                invalid(
                    &s.source,
                    &s.value,
                    format!("port {port} is not one of the served ports ({ports_text})"),
                )
            })?;
        apply(&mut target.profile, s)?;
    }

    Ok(Config {
        bind,
        ports: port_configs,
        seed: co.seed.or(fo.seed),
        log: co.log.or(fo.log).unwrap_or(false),
        max_body,
        header_timeout: duration(
            "--header-timeout",
            pick(&fo.header_timeout, &co.header_timeout),
            defaults.header_timeout,
        )?,
        grace: duration("--grace", pick(&fo.grace, &co.grace), defaults.grace)?,
        admin_token: admin_token(pick(&fo.admin_token, &co.admin_token))?,
        tls: None,
    })
}

/// A token goes in a header, so it must be one: visible ASCII, no spaces.
fn admin_token(given: Option<String>) -> Result<Option<String>, ConfigError> {
    match given {
        Some(t) if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) => Err(invalid(
            "--admin-token",
            &t,
            "must be letters, digits or punctuation, without spaces".into(),
        )),
        other => Ok(other),
    }
}

fn apply(profile: &mut Profile, s: &Setting) -> Result<(), ConfigError> {
    profile
        .set(&s.key, &s.value)
        .map_err(|why| invalid(&s.source, &s.value, why.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(key: &str, value: &str) -> Setting {
        Setting {
            source: format!("--{key}"),
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn port_lists_and_ranges() {
        assert_eq!(parse_ports("8001,8002"), Ok(vec![8001, 8002]));
        assert_eq!(parse_ports("8001-8004"), Ok(vec![8001, 8002, 8003, 8004]));
        assert_eq!(parse_ports("8001-8002, 9000"), Ok(vec![8001, 8002, 9000]));
        assert_eq!(parse_ports("0,0"), Ok(vec![0, 0]));
        assert!(parse_ports("8001,8001")
            .unwrap_err()
            .contains("listed twice"));
        assert!(parse_ports("8004-8001")
            .unwrap_err()
            .contains("low to a high"));
        assert!(parse_ports("80a1")
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("1-65535").unwrap_err().contains("more than"));
    }

    #[test]
    fn settings_split_outside_parentheses() {
        assert_eq!(
            split_settings("latency=normal(200ms,50ms), error_rate=0.2").unwrap(),
            vec![
                ("latency".to_string(), "normal(200ms,50ms)".to_string()),
                ("error_rate".to_string(), "0.2".to_string())
            ]
        );
        assert!(split_settings("latency").unwrap_err().contains("key=value"));
    }

    #[test]
    fn defaults_are_the_seed_setup() {
        let c = build(None, Layer::default()).unwrap();
        let ports: Vec<u16> = c.ports.iter().map(|p| p.port).collect();
        assert_eq!(ports, vec![8001, 8002]);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.max_body, 10 << 20);
    }

    #[test]
    fn layers_apply_in_order_port_beats_all_and_flags_beat_file() {
        let file = Layer::from_toml(
            "mock.toml",
            r#"
ports = [8001, 8002, 8003]
latency = "10ms"
error_rate = 0.1
[port.8002]
latency = "300ms"
error_status = 503
"#,
        )
        .unwrap();
        let mut flags = Layer::default();
        flags.all.push(flag("latency", "20ms"));
        flags
            .add_port_override("8003:error_rate=0.5,latency=normal(1s,100ms)")
            .unwrap();
        let c = build(Some(file), flags).unwrap();
        let p: Vec<&Profile> = c.ports.iter().map(|p| &p.profile).collect();
        assert_eq!(p[0].latency.to_string(), "20ms");
        assert_eq!(p[0].error_rate, 0.1);
        assert_eq!(p[1].latency.to_string(), "300ms");
        assert_eq!(p[1].error_status, 503);
        assert_eq!(p[2].latency.to_string(), "normal(1s,100ms)");
        assert_eq!(p[2].error_rate, 0.5);
    }

    #[test]
    fn errors_name_the_flag_and_the_value() {
        let mut flags = Layer::default();
        flags.all.push(flag("latency", "normal(200ms)"));
        let e = build(None, flags).unwrap_err().to_string();
        assert!(e.starts_with("invalid --latency 'normal(200ms)': "), "{e}");

        let mut flags = Layer::default();
        flags.options.ports = Some("8001,x".into());
        let e = build(None, flags).unwrap_err().to_string();
        assert!(
            e.contains("--ports") && e.contains("'x' is not a port number"),
            "{e}"
        );

        let mut flags = Layer::default();
        flags.add_port_override("9000:latency=1s").unwrap();
        let e = build(None, flags).unwrap_err().to_string();
        assert!(
            e.contains("port 9000 is not one of the served ports"),
            "{e}"
        );

        let mut flags = Layer::default();
        assert!(flags
            .add_port_override("latency=1s")
            .unwrap_err()
            .to_string()
            .contains("PORT:key=value"));
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let e = Layer::from_toml("mock.toml", "latency = \n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("mock.toml: ") && e.contains("line 1"), "{e}");
        let e = Layer::from_toml("mock.toml", "[port.abc]\nlatency='1s'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[port.abc]"), "{e}");
        let file = Layer::from_toml("mock.toml", "colour = 'red'").unwrap();
        let e = build(Some(file), Layer::default()).unwrap_err().to_string();
        assert!(
            e.contains("mock.toml: colour") && e.contains("unknown setting"),
            "{e}"
        );
    }
}
