//! Real nginx for one scenario run: the binary found, the rewritten config
//! checked with `nginx -t` (its own message when it is wrong, traced to
//! the user's file and line), started as a [`Daemon`] in the scratch
//! prefix, and stopped with SIGQUIT, nginx's graceful stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::process::Command;

use crate::daemon::{self, Daemon};
use crate::error::ScenarioError;
use crate::nginx_conf;

/// The nginx binary to run: `binary` as given, else `nginx` on PATH, else
/// /usr/sbin/nginx.
pub fn find(binary: Option<&str>) -> Result<PathBuf, ScenarioError> {
    daemon::find(binary, "nginx").map_err(|looked| ScenarioError::BinaryMissing {
        engine: "nginx",
        looked,
    })
}

/// What `nginx -V` says of a binary.
pub struct Build {
    /// `nginx/1.22.1`.
    pub version: String,
    /// Its compiled-in `--prefix`, which relative `load_module` paths are
    /// under (the run's own prefix is the scratch directory).
    pub prefix: Option<PathBuf>,
}

/// Asks the binary what it is.
pub async fn build(binary: &Path) -> Result<Build, ScenarioError> {
    let out = Command::new(binary)
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ScenarioError::Nginx(format!("{}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("nginx version: "))
        .unwrap_or("nginx")
        .trim()
        .to_string();
    let prefix = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--prefix="))
        .map(PathBuf::from);
    Ok(Build { version, prefix })
}

/// Where a line of the generated config came from: `origins[n - 1]` for
/// line `n` (as [`crate::nginx_conf::render_traced`] gives them).
type Origins = [(Arc<str>, usize)];

/// nginx run on `conf`, written into `prefix`.
fn command(binary: &Path, prefix: &Path) -> Command {
    let mut c = Command::new(binary);
    c.arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join(nginx_conf::ERROR_LOG))
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .args(["-g", "daemon off;"]);
    c
}

/// Writes `conf` into `prefix` and runs `nginx -t` on it: nginx's own
/// refusal, traced to the user's file and line by `origins`.
pub async fn test(
    binary: &Path,
    prefix: &Path,
    (conf, origins): &(String, Vec<(Arc<str>, usize)>),
) -> Result<(), ScenarioError> {
    let scratch = |e: std::io::Error| ScenarioError::Nginx(format!("{}: {e}", prefix.display()));
    std::fs::create_dir_all(prefix.join("logs")).map_err(scratch)?;
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(scratch)?;
    let test = command(binary, prefix)
        .args(["-t", "-q"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| ScenarioError::Nginx(format!("{}: {e}", binary.display())))?;
    if !test.status.success() {
        let said = String::from_utf8_lossy(&test.stderr);
        return Err(ScenarioError::NginxTest(first_problem(
            &said, &conf_path, origins,
        )));
    }
    Ok(())
}

/// Runs `nginx -t` on `conf`, then nginx itself; returns once it accepts
/// connections on `port`. nginx's messages name the user's lines.
pub async fn start(
    binary: &Path,
    prefix: &Path,
    traced: &(String, Vec<(Arc<str>, usize)>),
    port: u16,
) -> Result<Daemon, ScenarioError> {
    test(binary, prefix, traced).await?;
    let (conf_path, origins) = (prefix.join("nginx.conf"), &traced.1);
    let error_log = prefix.join(nginx_conf::ERROR_LOG);
    let mut run = command(binary, prefix);
    run.stdout(Stdio::null());
    Daemon::start(run, Signal::SIGQUIT, port)
        .await
        .map_err(|f| {
            ScenarioError::Nginx(f.line("nginx", port, |said| {
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                first_problem(&format!("{said}\n{log}"), &conf_path, origins)
            }))
        })
}

/// nginx's first `[emerg]` (or `[alert]`) line, with the line of the
/// generated config it names traced back to the user's file and line.
fn first_problem(said: &str, conf: &Path, origins: &Origins) -> String {
    let line = said
        .lines()
        .find(|l| l.contains("[emerg]"))
        .or_else(|| {
            said.lines()
                .find(|l| l.contains("[alert]") || l.contains("[crit]"))
        })
        .or_else(|| said.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim();
    let line = line.strip_prefix("nginx: ").unwrap_or(line);
    // Error-log lines start with a timestamp and pid; keep from the level.
    let line = line.find('[').map_or(line, |i| &line[i..]);
    let conf = conf.display().to_string();
    let Some(at) = line.find(&format!("{conf}:")) else {
        return line.to_string();
    };
    let rest = &line[at + conf.len() + 1..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let traced = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| origins.get(n.checked_sub(1)?));
    let place = match traced {
        Some((file, n)) if &**file != "lbkit" => format!("{file}:{n}"),
        _ => "the lines lbkit adds to the config".to_string(),
    };
    format!("{}{place}{}", &line[..at], &rest[digits.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_messages_point_at_the_users_line() {
        // Line 7 of the generated file is line 3 of the user's conf.d/ai.conf.
        let mut origin: Vec<(Arc<str>, usize)> = vec![(Arc::from("lbkit"), 0); 7];
        origin[6] = (Arc::from("conf.d/ai.conf"), 3);
        let said = "nginx: [emerg] unknown directive \"serverr\" in /tmp/p/nginx.conf:7\nnginx: configuration file /tmp/p/nginx.conf test failed\n";
        assert_eq!(
            first_problem(said, Path::new("/tmp/p/nginx.conf"), &origin),
            "[emerg] unknown directive \"serverr\" in conf.d/ai.conf:3"
        );
        let logged = "2026/12/01 10:00:00 [emerg] 12#12: bind() to 127.0.0.1:80 failed (98: Address in use)\n";
        assert_eq!(
            first_problem(logged, Path::new("/tmp/p/nginx.conf"), &origin),
            "[emerg] 12#12: bind() to 127.0.0.1:80 failed (98: Address in use)"
        );
    }

    #[test]
    fn a_missing_binary_says_where_it_looked() {
        let e = find(Some("/nonexistent/nginx")).unwrap_err().to_string();
        assert!(
            e.starts_with("[balancer] engine = \"nginx\": no nginx binary"),
            "{e}"
        );
        assert!(
            e.contains("\"/nonexistent/nginx\" ([balancer] binary)"),
            "{e}"
        );
        assert!(e.contains("apt-get install -y nginx"), "{e}");
    }
}
