//! The reference balancer against real nginx under failures, request by
//! request. Each case is one nginx.conf, run by both proxies in front of
//! the same backends on loopback: backends that answer, refuse, answer
//! 5xx/4xx, close after the request, hang, answer late, or send a head
//! that does not parse. Both log `$status $upstream_addr $upstream_status`
//! (or what a case names);
//! the lines must be equal, in order, except where a case says the order
//! is the scheduler's (then the counts must be).
//!
//!     cargo run -p balancer --example nginx-differential [-- [--show] CASE...]
//!
//! Needs nginx on PATH (.ci/run installs it). Exit 0 when every case
//! agrees, 1 when one differs (both logs are printed), 2 when it could not
//! run.

mod backends;
mod cases;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use backends::Backend;
use balancer::proxy::{Options, Proxy};
use cases::{Case, Compare, Requests};

#[tokio::main]
async fn main() -> ExitCode {
    let mut only: Vec<String> = std::env::args().skip(1).collect();
    // --show: print both logs of every case, not only of those that differ.
    let show = only.iter().any(|a| a == "--show");
    only.retain(|a| a != "--show");
    let nginx = match which("nginx") {
        Some(p) => p,
        None => {
            eprintln!("nginx-differential: error: nginx not found on PATH; install it (apt-get install -y nginx-light)");
            return ExitCode::from(2);
        }
    };
    let work = std::env::temp_dir().join(format!("nginx-differential-{}", std::process::id()));
    let mut differ = 0;
    let mut table = Vec::new();
    for case in cases::all() {
        if !only.is_empty() && !only.iter().any(|o| o == case.name) {
            continue;
        }
        match run(&nginx, &work, &case).await {
            Ok((nginx_lines, ours)) => {
                let agree = match case.compare {
                    Compare::InOrder => nginx_lines == ours,
                    Compare::Counts => counts(&nginx_lines) == counts(&ours),
                };
                println!(
                    "{} {:<40} {} requests{}",
                    if agree { "✓" } else { "✗" },
                    case.name,
                    nginx_lines.len(),
                    if matches!(case.compare, Compare::Counts) {
                        " (counts)"
                    } else {
                        ""
                    }
                );
                if !agree || show {
                    println!("    nginx:    {nginx_lines:?}\n    balancer: {ours:?}");
                }
                differ += usize::from(!agree);
                table.push((case.name, case.about, nginx_lines.len(), case.compare));
            }
            Err(e) => {
                eprintln!("nginx-differential: error: {}: {e}", case.name);
                let _ = std::fs::remove_dir_all(&work);
                return ExitCode::from(2);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let total: usize = table.iter().map(|(_, _, n, _)| n).sum();
    println!("\n| case | what | requests | compared |\n|---|---|---:|---|");
    for (name, about, n, compare) in &table {
        let how = match compare {
            Compare::InOrder => "in order",
            Compare::Counts => "counts",
        };
        println!("| {name} | {about} | {n} | {how} |");
    }
    println!(
        "\n{} cases, {total} requests each side; {differ} differ.",
        table.len()
    );
    if table.is_empty() {
        eprintln!("nginx-differential: error: no case matches {only:?}");
        return ExitCode::from(2);
    }
    if differ > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Both proxies through one case: the lines each logged.
async fn run(nginx: &Path, work: &Path, case: &Case) -> Result<(Vec<String>, Vec<String>), String> {
    let dir = work.join(case.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut backends = Vec::new();
    for b in &case.backends {
        backends.push(Backend::start(*b).await);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(Backend::addr).collect();
    let upstream = (case.upstream)(&addrs);

    // nginx, in the foreground in one process, on a free port.
    let port = free_port();
    let nginx_log = dir.join("nginx.log");
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  log_format diff '{log_format}';\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  {upstream}\n  server {{\n    listen 127.0.0.1:{port};\n    access_log {log} diff;\n    location / {{\n      proxy_pass http://pool;\n      {location}\n    }}\n  }}\n}}\n",
        d = dir.display(),
        log = nginx_log.display(),
        location = case.location,
        log_format = case.log,
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, &conf).map_err(|e| e.to_string())?;
    let mut child = spawn_nginx(nginx, &dir, &conf_path)?;
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let up = wait_for(nginx_addr).await;
    let sent = match up {
        Ok(()) => send_all(nginx_addr, &case.send).await,
        Err(e) => Err(e),
    };
    stop(&mut child);
    sent.map_err(|e| {
        format!(
            "nginx: {e}; its error log: {}",
            tail(&dir.join("error.log"))
        )
    })?;
    let nginx_lines = lines(&nginx_log)?;

    // The reference balancer, in this process, reading the same text.
    let ours_log = dir.join("balancer.log");
    let ours_conf = conf.replace(
        &nginx_log.display().to_string(),
        &ours_log.display().to_string(),
    );
    let config = balancer::conf::load("nginx.conf", &ours_conf).map_err(|e| e.to_string())?;
    let proxy = Proxy::start(Options::new(
        "127.0.0.1:0".parse().expect("an address"),
        config,
    ))
    .await
    .map_err(|e| e.to_string())?;
    let sent = send_all(proxy.addr(), &case.send).await;
    proxy.shutdown().await;
    sent.map_err(|e| format!("balancer: {e}"))?;
    let ours = lines(&ours_log)?;
    for b in backends {
        b.stop();
    }
    Ok((nginx_lines, ours))
}

fn spawn_nginx(nginx: &Path, dir: &Path, conf: &Path) -> Result<Child, String> {
    Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", nginx.display()))
}

fn stop(child: &mut Child) {
    // SIGQUIT: graceful, so the access log is whole.
    let _ = Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18990)
}

async fn wait_for(addr: SocketAddr) -> Result<(), String> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("nothing listens on {addr} after 5 s"))
}

/// Sends the case's requests: one at a time, or in concurrent rounds.
async fn send_all(addr: SocketAddr, send: &Requests) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    for round in &send.rounds {
        let requests = round.requests.iter().map(|(method, path)| {
            let raw = (*method == cases::RAW).then(|| path.clone());
            let req = client.request(
                method.parse().expect("a method"),
                format!("http://{addr}{path}"),
            );
            let req = if *method == "POST" {
                req.body("{}")
            } else {
                req
            };
            async move {
                if let Some(raw) = raw {
                    return send_raw(addr, &raw).await;
                }
                // The answer's status is what the log says; a body cut short
                // is the backend's doing, not the harness's failure.
                match req.send().await {
                    Ok(r) => {
                        let _ = r.bytes().await;
                        Ok(())
                    }
                    Err(e) if e.is_timeout() => Err(format!("a request timed out: {e}")),
                    Err(_) => Ok(()),
                }
            }
        });
        for r in futures_join(requests).await {
            r?;
        }
        tokio::time::sleep(round.then).await;
    }
    Ok(())
}

/// Writes `raw` on a new connection and reads until the proxy closes it.
async fn send_raw(addr: SocketAddr, raw: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(raw.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer))
        .await
        .map_err(|_| format!("no end to the answer to {raw:?}"))?
        .map(|_| ())
        .or(Ok(()))
}

async fn futures_join<F: std::future::Future<Output = Result<(), String>> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Result<(), String>> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

fn lines(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

fn counts(lines: &[String]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for l in lines {
        *out.entry(l.as_str()).or_default() += 1;
    }
    out
}

fn tail(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}
