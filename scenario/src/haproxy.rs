//! Real HAProxy for one scenario run: the binary found, the rewritten
//! config checked with `haproxy -c` (its own message when it is wrong,
//! traced to the user's line), started as a [`Daemon`] in the foreground
//! (`-db`) with its log on stdout written to a file, and stopped with
//! SIGUSR1, HAProxy's soft stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::Signal;
use tokio::process::Command;

use crate::daemon::{self, Daemon};
use crate::error::ScenarioError;
use crate::nginx_conf::LOG_FILE;

/// The haproxy binary to run: `binary` as given, else `haproxy` on PATH,
/// else /usr/sbin/haproxy.
pub fn find(binary: Option<&str>) -> Result<PathBuf, ScenarioError> {
    daemon::find(binary, "haproxy").map_err(|looked| ScenarioError::BinaryMissing {
        engine: "haproxy",
        looked,
    })
}

/// `haproxy -v`'s answer: `HAProxy 2.6.12-1+deb12u1`.
pub async fn version(binary: &Path) -> Result<String, ScenarioError> {
    let out = Command::new(binary)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ScenarioError::Haproxy(format!("{}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("HAProxy version "))
        .and_then(|v| v.split_whitespace().next())
        .map_or("HAProxy".to_string(), |v| format!("HAProxy {v}"));
    Ok(version)
}

/// Writes `conf` into `prefix`, runs `haproxy -c`, then HAProxy itself on
/// it, logging to the prefix's [`LOG_FILE`]; returns once it accepts
/// connections on `port`. `origins[n - 1]` is the line of the user's file
/// `user` that line `n` of `conf` came from (0: lbkit's), for HAProxy's
/// messages.
pub async fn start(
    binary: &Path,
    prefix: &Path,
    (conf, origins): &(String, Vec<usize>),
    port: u16,
    user: &Path,
) -> Result<Daemon, ScenarioError> {
    let scratch = |e: std::io::Error| ScenarioError::Haproxy(format!("{}: {e}", prefix.display()));
    let conf_path = prefix.join("haproxy.cfg");
    std::fs::write(&conf_path, conf).map_err(scratch)?;
    let origin = |n: usize| {
        n.checked_sub(1)
            .and_then(|i| origins.get(i))
            .copied()
            .unwrap_or(0)
    };
    let conf = &conf_path;
    let check = Command::new(binary)
        .args(["-c", "-f"])
        .arg(conf)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ScenarioError::Haproxy(format!("{}: {e}", binary.display())))?;
    if !check.status.success() {
        let said = String::from_utf8_lossy(&check.stderr);
        let said = format!("{said}{}", String::from_utf8_lossy(&check.stdout));
        return Err(ScenarioError::HaproxyCheck(first_problem(
            &said, conf, user, &origin,
        )));
    }
    let file = std::fs::File::create(prefix.join(LOG_FILE)).map_err(scratch)?;
    let mut run = Command::new(binary);
    run.arg("-db").arg("-f").arg(conf).stdout(file);
    Daemon::start(run, Signal::SIGUSR1, port)
        .await
        .map_err(|f| {
            ScenarioError::Haproxy(f.line("haproxy", port, |said| {
                first_problem(said, conf, user, &origin)
            }))
        })
}

/// HAProxy's first `[ALERT]` line, with the place in the generated config
/// it names (`[/tmp/.../haproxy.cfg:22]`) traced to the user's file.
fn first_problem(said: &str, conf: &Path, user: &Path, origin: &dyn Fn(usize) -> usize) -> String {
    let line = said
        .lines()
        .find(|l| l.contains("[ALERT]"))
        .or_else(|| said.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim();
    // `[ALERT]    (1234) : config : parsing [...]`: keep from the message.
    let line = match line.find(" : ") {
        Some(i) if line.starts_with("[ALERT]") => line[i + 3..].trim_start_matches("config : "),
        _ => line,
    };
    let conf = format!("[{}:", conf.display());
    let Some(at) = line.find(&conf) else {
        return line.to_string();
    };
    let rest = &line[at + conf.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let place = match digits.parse().map(origin) {
        Ok(n) if n > 0 => format!("[{}:{n}", user.display()),
        _ => "[the lines lbkit adds to the config".to_string(),
    };
    format!("{}{place}{}", &line[..at], &rest[digits.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_messages_point_at_the_users_line() {
        let said = "[NOTICE]   (9) : haproxy version is 2.6.12\n[ALERT]    (9) : config : parsing [/tmp/p/haproxy.cfg:7] : unknown keyword 'serverr' in 'backend' section\n[ALERT]    (9) : config : Error(s) found in configuration file : /tmp/p/haproxy.cfg\n";
        let origin = |n: usize| if n == 7 { 23 } else { 0 };
        assert_eq!(
            first_problem(
                said,
                Path::new("/tmp/p/haproxy.cfg"),
                Path::new("lb/haproxy.cfg"),
                &origin
            ),
            "parsing [lb/haproxy.cfg:23] : unknown keyword 'serverr' in 'backend' section"
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let e = find(Some("/nonexistent/haproxy")).unwrap_err().to_string();
        assert!(e.starts_with("[balancer] engine = \"haproxy\": no haproxy binary (\"/nonexistent/haproxy\" ([balancer] binary)); install it (apt-get install -y haproxy)"), "{e}");
    }
}
