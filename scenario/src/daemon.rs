//! A real balancer (nginx, HAProxy) as a child process for one scenario
//! run: found on PATH or where its package installs it, started in the
//! foreground in a process group of its own (so Ctrl-C reaches lbkit,
//! which stops it after the load), waited for on its port, stopped with
//! its graceful signal; a `Daemon` dropped on an error path terminates it
//! and then kills its whole group, so nothing is left running.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long it gets to start listening, and to stop.
const START: Duration = Duration::from_secs(10);
const STOP: Duration = Duration::from_secs(10);

/// The binary to run: `given` as is (a path, or a name on PATH), else
/// `name` on PATH, else in /usr/sbin (root's PATH has it, a user's often
/// not). `Err`: where it looked.
pub fn find(given: Option<&str>, name: &str) -> Result<PathBuf, String> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    let sbin = Path::new("/usr/sbin").join(name);
    let found = match given {
        Some(b) if b.contains('/') => Some(PathBuf::from(b)).filter(|p| p.is_file()),
        Some(b) => on_path(b),
        None => on_path(name).or_else(|| Some(sbin.clone()).filter(|p| p.is_file())),
    };
    found.ok_or_else(|| match given {
        Some(b) => format!("{b:?} ([balancer] binary)"),
        None => format!("{name} on PATH and {}", sbin.display()),
    })
}

/// Why it did not come up.
pub enum Failed {
    /// It could not be run at all.
    Spawn(std::io::Error),
    /// It exited: how, and what it said on stderr.
    Exited(ExitStatus, String),
    /// It ran but did not listen in time.
    Silent,
}

impl Failed {
    /// One line for the user, `said` being the tool's own message when it
    /// exited.
    pub fn line(&self, tool: &str, port: u16, said: impl FnOnce(&str) -> String) -> String {
        match self {
            Failed::Spawn(e) => format!("{tool} could not run: {e}"),
            Failed::Exited(status, text) => {
                format!("{tool} exited at start ({status}): {}", said(text))
            }
            Failed::Silent => format!(
                "{tool} did not listen on 127.0.0.1:{port} within {}s",
                START.as_secs()
            ),
        }
    }
}

/// A running balancer.
pub struct Daemon {
    child: Option<Child>,
    /// What stops it letting requests in flight finish.
    graceful: Signal,
}

impl Daemon {
    /// Runs `command` (stdout as the caller set it; stderr kept for its
    /// message) and returns once something accepts connections on `port`.
    pub async fn start(
        mut command: Command,
        graceful: Signal,
        port: u16,
    ) -> Result<Daemon, Failed> {
        let child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(Failed::Spawn)?;
        let mut daemon = Daemon {
            child: Some(child),
            graceful,
        };
        let deadline = Instant::now() + START;
        loop {
            if let Some(status) = daemon.exited() {
                return Err(Failed::Exited(status, daemon.said().await));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                return Err(Failed::Silent);
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

    /// Stops it gracefully: requests in flight finish, the logs are whole;
    /// after [`STOP`], it is killed.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, self.graceful);
        if tokio::time::timeout(STOP, child.wait()).await.is_err() {
            kill_group(&child);
            let _ = child.wait().await;
        }
    }
}

impl Drop for Daemon {
    /// An error path: stop now (TERM: a master stops its workers and
    /// exits), waiting briefly; then kill the whole group.
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
        kill_group(&child);
    }
}

fn signal(child: &Child, sig: Signal) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), sig);
    }
}

/// A master and its workers share the group it was started in.
fn kill_group(child: &Child) {
    if let Some(pid) = child.id() {
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}
