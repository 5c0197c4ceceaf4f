//! Real nginx for one scenario run: the binary found, the rewritten config
//! checked with `nginx -t` (its own message when it is wrong), started in
//! the foreground in the scratch prefix and in a process group of its own
//! (so Ctrl-C reaches lbkit, which stops it after the load), waited for on
//! its port, and stopped gracefully; a `Nginx` dropped on an error path
//! stops it too, so nothing is left running.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::error::ScenarioError;

/// How long nginx gets to start listening, and to stop.
const START: Duration = Duration::from_secs(10);
const STOP: Duration = Duration::from_secs(10);

/// The nginx binary to run: `binary` as given (a path, or a name on PATH),
/// else `nginx` on PATH, else /usr/sbin/nginx (root's PATH has it, a
/// user's often not).
pub fn find(binary: Option<&str>) -> Result<PathBuf, ScenarioError> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    let found = match binary {
        Some(b) if b.contains('/') => Some(PathBuf::from(b)).filter(|p| p.is_file()),
        Some(b) => on_path(b),
        None => on_path("nginx")
            .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file())),
    };
    found.ok_or_else(|| ScenarioError::NginxMissing {
        looked: match binary {
            Some(b) => format!("{b:?} ([balancer] binary)"),
            None => "nginx on PATH and /usr/sbin/nginx".into(),
        },
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

/// A running nginx.
pub struct Nginx {
    child: Option<Child>,
}

/// The files of a run in the prefix.
pub struct Files<'a> {
    pub prefix: &'a Path,
    pub conf: &'a Path,
    pub error_log: &'a Path,
}

impl Nginx {
    /// `nginx -t`, then nginx itself, on the config at `files.conf`;
    /// returns once it accepts connections on `port`. `origin` says which
    /// of the user's lines a line of the config came from, for nginx's
    /// messages.
    pub async fn start(
        binary: &Path,
        files: &Files<'_>,
        port: u16,
        origin: &dyn Fn(usize) -> Option<(Arc<str>, usize)>,
    ) -> Result<Nginx, ScenarioError> {
        std::fs::create_dir_all(files.prefix.join("logs"))
            .map_err(|e| ScenarioError::Nginx(format!("{}: {e}", files.prefix.display())))?;
        let command = || {
            let mut c = Command::new(binary);
            c.arg("-p")
                .arg(files.prefix)
                .arg("-e")
                .arg(files.error_log)
                .arg("-c")
                .arg(files.conf)
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .process_group(0);
            c
        };
        let test = command()
            .args(["-t", "-q"])
            .output()
            .await
            .map_err(|e| ScenarioError::Nginx(format!("{}: {e}", binary.display())))?;
        if !test.status.success() {
            let said = String::from_utf8_lossy(&test.stderr);
            return Err(ScenarioError::NginxTest(first_problem(
                &said, files.conf, origin,
            )));
        }
        let child = command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ScenarioError::Nginx(format!("{}: {e}", binary.display())))?;
        let mut nginx = Nginx { child: Some(child) };
        let deadline = Instant::now() + START;
        loop {
            if let Some(status) = nginx.exited() {
                let said = nginx.said().await;
                let log = std::fs::read_to_string(files.error_log).unwrap_or_default();
                let problem = first_problem(&format!("{said}\n{log}"), files.conf, origin);
                return Err(ScenarioError::Nginx(format!(
                    "nginx exited at start ({status}): {problem}"
                )));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                return Err(ScenarioError::Nginx(format!(
                    "nginx did not listen on 127.0.0.1:{port} within {}s",
                    START.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    async fn said(&mut self) -> String {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        if let Some(err) = self.child.as_mut().and_then(|c| c.stderr.as_mut()) {
            let _ = err.read_to_string(&mut text).await;
        }
        text
    }

    /// Stops nginx as `nginx -s quit` would: requests in flight finish,
    /// the logs are whole; after [`STOP`], it is killed.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, Signal::SIGQUIT);
        if tokio::time::timeout(STOP, child.wait()).await.is_err() {
            signal(&child, Signal::SIGKILL);
            let _ = child.wait().await;
        }
    }
}

impl Drop for Nginx {
    /// An error path: stop now (TERM: the master stops its workers and
    /// exits), waiting briefly; then kill.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Master and workers share the group it was started in.
        if let Some(pid) = child.id() {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

fn signal(child: &Child, sig: Signal) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

/// nginx's first `[emerg]` (or `[alert]`) line, with the line of the
/// generated config it names traced back to the user's file and line.
fn first_problem(
    said: &str,
    conf: &Path,
    origin: &dyn Fn(usize) -> Option<(Arc<str>, usize)>,
) -> String {
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
    let traced = digits.parse().ok().and_then(origin);
    let place = match traced {
        Some((file, n)) if &*file != "lbkit" => format!("{file}:{n}"),
        _ => "the lines lbkit adds to the config".to_string(),
    };
    format!("{}{place}{}", &line[..at], &rest[digits.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_messages_point_at_the_users_line() {
        let origin = |n: usize| (n == 7).then(|| (Arc::from("conf.d/ai.conf"), 3));
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
            e.contains("\"/nonexistent/nginx\" ([balancer] binary)"),
            "{e}"
        );
        assert!(e.contains("apt-get install -y nginx"), "{e}");
    }
}
