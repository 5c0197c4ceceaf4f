//! One case through one proxy: the backends started, the config written,
//! the proxy started (real nginx, or the reference balancer in this
//! process), the rounds sent, the proxy stopped, and what each request
//! got, from the client's side and from the access log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::backend::Backends;
use crate::case::{Case, Placement};
use crate::client::{Answer, Clients};

/// Which proxy runs the case.
#[derive(Debug, Clone)]
pub enum Proxy {
    /// Real nginx, this binary.
    Nginx(PathBuf),
    /// The reference balancer, in this process.
    Reference,
}

impl Proxy {
    pub fn name(&self) -> &'static str {
        match self {
            Proxy::Nginx(_) => "nginx",
            Proxy::Reference => "reference",
        }
    }
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub round: usize,
    /// `$status|$upstream_addr|$upstream_status`, addresses as backend
    /// names (`b0`); none when the request was not logged.
    pub log: Option<String>,
    pub answer: Answer,
}

/// A run's outcome: what each request got, or the proxy's refusal of the
/// config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ran(Vec<Seen>),
    /// The config was refused at start, with the proxy's message.
    Refused(String),
}

/// Why the harness could not run a case (not a verdict on the proxy).
#[derive(Debug, thiserror::Error)]
#[error("{proxy}: {why}")]
pub struct RunError {
    pub proxy: &'static str,
    pub why: String,
}

/// Where a run listened and its backends were: the reference's run takes
/// nginx's, so `$server_port` and the consistent hash's ring are the same.
#[derive(Debug, Clone)]
pub struct Ports {
    pub listen: u16,
    pub backends: Vec<SocketAddr>,
}

/// Runs `case` through `proxy`, in the scratch directory `dir`, on the
/// ports of an earlier run when given; returns the ports it used.
pub async fn run(
    proxy: &Proxy,
    case: &Case,
    dir: &Path,
    ports: Option<&Ports>,
) -> Result<(Outcome, Ports), RunError> {
    let fail = |why: String| RunError {
        proxy: proxy.name(),
        why,
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut backends = Backends::start(&case.backends, ports.map(|p| p.backends.as_slice()))
        .await
        .map_err(|e| fail(format!("backends: {e}")))?;
    let addrs = backends.addrs();
    let log = dir.join("access.log");
    let mut used = ports.map_or(0, |p| p.listen);
    let outcome = match proxy {
        Proxy::Nginx(nginx) => {
            let started = start_nginx(nginx, case, dir, &log, &addrs).map_err(fail)?;
            match started {
                Started::Refused(why) => Ok(Outcome::Refused(why)),
                Started::Up(mut child, addr) => {
                    used = addr.port();
                    let sent = send(case, addr, &mut backends).await;
                    stop_nginx(&mut child);
                    let sent = sent.map_err(|e| {
                        fail(format!("{e}; error log: {}", tail(&dir.join("error.log"))))
                    })?;
                    Ok(Outcome::Ran(seen(case, &log, &addrs, &sent)?))
                }
            }
        }
        Proxy::Reference => {
            let placement = Placement {
                dir,
                listen: SocketAddr::from(([127, 0, 0, 1], used)),
                log: &log,
                backends: &addrs,
            };
            let text = case.render(&placement);
            match balancer::conf::load("nginx.conf", &text) {
                Err(e) => Ok(Outcome::Refused(e.to_string())),
                Ok(config) => {
                    let mut options = balancer::proxy::Options::new(placement.listen, config);
                    options.grace = Duration::from_secs(1);
                    match balancer::proxy::Proxy::start(options).await {
                        Err(e) => Ok(Outcome::Refused(e.to_string())),
                        Ok(p) => {
                            used = p.addr().port();
                            let sent = send(case, p.addr(), &mut backends).await;
                            p.shutdown().await;
                            let sent = sent.map_err(fail)?;
                            Ok(Outcome::Ran(seen(case, &log, &addrs, &sent)?))
                        }
                    }
                }
            }
        }
    };
    backends.stop().await;
    let ports = Ports {
        listen: used,
        backends: addrs,
    };
    outcome.map(|o| (o, ports))
}

/// Sends every round: a round's requests one after another 15 ms apart
/// (so they reach the proxy in order yet overlap with slow answers), the
/// next round when all are answered and the pause is over.
async fn send(
    case: &Case,
    proxy: SocketAddr,
    backends: &mut Backends,
) -> Result<Vec<Answer>, String> {
    let clients = Arc::new(Mutex::new(HashMap::<u8, Clients>::new()));
    let mut answers = Vec::new();
    let mut id = 0;
    for (r, round) in case.rounds.iter().enumerate() {
        if r > 0 {
            backends
                .enter(r)
                .await
                .map_err(|e| format!("backends: {e}"))?;
            // Let each proxy see a backend's closes before the round.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut tasks = Vec::new();
        for (i, request) in round.requests.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            let (clients, request, keepalive) =
                (clients.clone(), request.clone(), case.client_keepalive);
            let this = id;
            id += 1;
            // Each client's kept connection is its own: taken for the request.
            let mut mine = clients
                .lock()
                .await
                .remove(&request.client)
                .unwrap_or_default();
            tasks.push(tokio::spawn(async move {
                let answer = mine.send(proxy, this, &request, keepalive).await;
                clients.lock().await.insert(request.client, mine);
                answer
            }));
        }
        for t in tasks {
            answers.push(t.await.map_err(|e| e.to_string())??);
        }
        if round.pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(round.pause_ms)).await;
        }
    }
    Ok(answers)
}

/// Joins the log's lines to the answers, by request id.
fn seen(
    case: &Case,
    log: &Path,
    addrs: &[SocketAddr],
    answers: &[Answer],
) -> Result<Vec<Seen>, RunError> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let names: HashMap<String, String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.to_string(), format!("b{i}")))
        .collect();
    let mut by_id: HashMap<usize, String> = HashMap::new();
    for line in text.lines() {
        let Some((id, rest)) = line.split_once('|') else {
            continue;
        };
        let Ok(id) = id.parse::<usize>() else {
            continue;
        };
        let mut mapped = rest.to_string();
        for (addr, name) in &names {
            mapped = mapped.replace(addr.as_str(), name);
        }
        by_id.insert(id, mapped);
    }
    Ok(case
        .requests()
        .map(|(id, round, _)| Seen {
            round,
            log: by_id.remove(&id),
            answer: answers.get(id).cloned().unwrap_or(Answer::Nothing),
        })
        .collect())
}

enum Started {
    Up(Child, SocketAddr),
    Refused(String),
}

/// Real nginx on a free port: `nginx -t` first (its refusal is an
/// outcome), then in the foreground; a lost race for the port is tried
/// again on another.
fn start_nginx(
    nginx: &Path,
    case: &Case,
    dir: &Path,
    log: &Path,
    addrs: &[SocketAddr],
) -> Result<Started, String> {
    let conf_path = dir.join("nginx.conf");
    let mut last = String::new();
    for _ in 0..5 {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let placement = Placement {
            dir,
            listen,
            log,
            backends: addrs,
        };
        std::fs::write(&conf_path, case.render(&placement)).map_err(|e| e.to_string())?;
        let test = Command::new(nginx)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", nginx.display()))?;
        if !test.status.success() {
            let why = String::from_utf8_lossy(&test.stderr);
            let why = why
                .lines()
                .find(|l| l.contains("[emerg]"))
                .unwrap_or(why.trim())
                .to_string();
            return Ok(Started::Refused(why));
        }
        let master = if case.workers > 1 {
            ""
        } else {
            " master_process off;"
        };
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", &format!("daemon off;{master}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", nginx.display()))?;
        if wait_for(listen, &mut child) {
            return Ok(Started::Up(child, listen));
        }
        stop_nginx(&mut child);
        last = tail(&dir.join("error.log"));
        let _ = std::fs::remove_file(dir.join("error.log"));
    }
    Err(format!("nginx did not start: {last}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether nginx listens within 5 s (false at once if it exited).
fn wait_for(addr: SocketAddr, child: &mut Child) -> bool {
    for _ in 0..500 {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn stop_nginx(child: &mut Child) {
    // SIGQUIT: graceful, so the access log is whole and workers go too.
    let _ = Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status();
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
}

fn tail(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

/// nginx on PATH, or in /usr/sbin.
pub fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}
