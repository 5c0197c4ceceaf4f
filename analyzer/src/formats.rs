//! Which format a log is in: named, given as an nginx `log_format` string,
//! or recognised from its first lines.

use logformat::presets::{preset, PRESETS};
use logformat::{Escape, FormatError, LogFormat, ParseError};

/// Lines looked at to recognise a format.
pub const SAMPLE_LINES: usize = 20;

/// A format chosen for a log, with the name the report says it by.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub name: String,
    pub format: LogFormat,
    /// Found by looking at the lines rather than named by the user.
    pub detected: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatChoiceError {
    #[error("--format {0}: not a format this knows; use auto, {names}", names = preset_names())]
    Unknown(String),
    #[error("--log-format: {0}")]
    Invalid(#[from] FormatError),
    #[error("--log-format: lines in this format cannot be read back: {0}")]
    Unreadable(#[from] ParseError),
    #[error("--nginx-conf: log_format {name}: {why}")]
    FromConfig { name: String, why: String },
    #[error(
        "no known format matches the first lines (the first: {first:?}); name one with --format ({names}) or give nginx's log_format with --log-format '...'",
        names = preset_names()
    )]
    Unrecognised { first: String },
}

fn preset_names() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    names.join(", ")
}

/// A format by name (`--format`), or `None` for `auto`.
pub fn named(name: &str) -> Result<Option<Chosen>, FormatChoiceError> {
    if name == "auto" {
        return Ok(None);
    }
    let format = preset(name).ok_or_else(|| FormatChoiceError::Unknown(name.to_string()))?;
    Ok(Some(Chosen {
        name: name.to_string(),
        format,
        detected: false,
    }))
}

/// A format from nginx `log_format` text (`--log-format`), with the escaping
/// nginx would use (`escape=json` as a prefix, as in nginx.conf).
pub fn custom(text: &str) -> Result<Chosen, FormatChoiceError> {
    let (escape, text) = match text.trim_start().strip_prefix("escape=") {
        Some(rest) => {
            let (mode, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let escape = match mode {
                "json" => Escape::Json,
                "none" => Escape::None,
                _ => Escape::Default,
            };
            (escape, text.trim_start())
        }
        None => (Escape::Default, text),
    };
    let format = LogFormat::compile(text, escape)?;
    format.check_parseable()?;
    Ok(Chosen {
        name: "log_format".to_string(),
        format,
        detected: false,
    })
}

/// The format of an nginx.conf's `access_log`: a `log_format` it defines,
/// nginx's `combined`, or a preset by name; `None` when it has no access log.
pub fn from_config(
    config: &balancer::conf::ProxyConfig,
) -> Result<Option<Chosen>, FormatChoiceError> {
    let Some(log) = &config.access_log else {
        return Ok(None);
    };
    if let Some(def) = config.log_formats.iter().find(|d| d.name == log.format) {
        let escape = match def.escape.as_str() {
            "json" => Escape::Json,
            "none" => Escape::None,
            _ => Escape::Default,
        };
        let unusable = |why: String| FormatChoiceError::FromConfig {
            name: def.name.clone(),
            why,
        };
        let format =
            LogFormat::compile(&def.format, escape).map_err(|e| unusable(e.to_string()))?;
        format
            .check_parseable()
            .map_err(|e| unusable(format!("lines in this format cannot be read back: {e}")))?;
        return Ok(Some(Chosen {
            name: format!("log_format {}", def.name),
            format,
            detected: false,
        }));
    }
    named(&log.format)
}

/// The preset that parses most of `lines`; among equals, the one that
/// reads more variables (`upstream_log` over `main`, which it extends).
pub fn detect(lines: &[&str]) -> Result<Chosen, FormatChoiceError> {
    let lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut best: Option<(usize, usize, &str, LogFormat)> = None;
    for (name, _) in PRESETS {
        let Some(format) = preset(name) else { continue };
        let parsed = lines.iter().filter(|l| format.parse(l).is_ok()).count();
        let vars = format.variables().len();
        let better = match &best {
            None => parsed > 0,
            Some((p, v, _, _)) => (parsed, vars) > (*p, *v),
        };
        if better {
            best = Some((parsed, vars, name, format));
        }
    }
    match best {
        Some((_, _, name, format)) => Ok(Chosen {
            name: name.to_string(),
            format,
            detected: true,
        }),
        None => Err(FormatChoiceError::Unrecognised {
            first: lines.first().map(|l| clip(l, 80)).unwrap_or_default(),
        }),
    }
}

fn clip(line: &str, chars: usize) -> String {
    match line.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"127.0.0.1:48878 / - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#;
    const COMBINED: &str = r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3""#;
    const UPSTREAM: &str = r#"127.0.0.1 - - [02/Mar/2025:21:10:11 +0800] "GET / HTTP/1.0" 200 18 "-" "ApacheBench/2.3" "-" to: 127.0.0.1:8001"#;

    #[test]
    fn recognises_each_format_from_its_lines() {
        assert_eq!(detect(&[SEED, SEED]).unwrap().name, "upstream_log_port");
        assert_eq!(detect(&[COMBINED]).unwrap().name, "combined");
        assert_eq!(detect(&[UPSTREAM]).unwrap().name, "upstream_log");
        let loadgen = "1763712000.123 200 0.012 18 127.0.0.1:8001";
        assert_eq!(detect(&[loadgen]).unwrap().name, "loadgen");
        let lbkit = format!("{UPSTREAM} rt=0.012 urt=0.011 us=200");
        assert_eq!(detect(&[&lbkit]).unwrap().name, "lbkit");
    }

    #[test]
    fn the_majority_wins_over_a_stray_line() {
        let chosen = detect(&[COMBINED, UPSTREAM, UPSTREAM, "", "garbage"]).unwrap();
        assert_eq!(chosen.name, "upstream_log");
        assert!(chosen.detected);
    }

    #[test]
    fn unknown_names_and_lines_are_errors_naming_the_way_out() {
        let e = named("apache").unwrap_err().to_string();
        assert!(
            e.starts_with("--format apache:") && e.contains("upstream_log"),
            "{e}"
        );
        let e = detect(&["hello world"]).unwrap_err().to_string();
        assert!(
            e.contains("\"hello world\"") && e.contains("--log-format"),
            "{e}"
        );
        assert!(named("auto").unwrap().is_none());
    }

    #[test]
    fn a_custom_log_format() {
        let c = custom("$remote_addr $status $request_time $upstream_addr").unwrap();
        assert!(c.format.parse("10.0.0.1 200 0.004 127.0.0.1:8002").is_ok());
        let json = custom(r#"escape=json {"addr":"$upstream_addr","status":$status}"#).unwrap();
        assert_eq!(json.format.escape(), Escape::Json);
        assert!(json
            .format
            .parse(r#"{"addr":"127.0.0.1:8001","status":200}"#)
            .is_ok());
        assert!(custom("$remote_addr$status")
            .unwrap_err()
            .to_string()
            .starts_with("--log-format:"));
    }
}
