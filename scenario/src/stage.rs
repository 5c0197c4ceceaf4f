//! What a scenario runs against: its in-process mock backends, the
//! reference balancer in front of them (or the external `target`), and the
//! scratch directory the balancer logs into. A `Stage` owns them all:
//! [`Stage::stop`] shuts them down and reads the balancer's log, and a
//! stage dropped on an early error still stops them and removes the
//! directory, so nothing is left behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use analyzer::Input;
use analyzer::Summary;
use balancer::conf::ProxyConfig;
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, PortConfig, Server};

use crate::error::ScenarioError;
use crate::spec::Loaded;
use crate::{conf, external};

pub struct Stage {
    /// The in-process backends, one server for all their ports.
    pub servers: Option<Arc<Server>>,
    /// The reference balancer; `None` when the scenario tests a `target`.
    pub proxy: Option<Arc<Proxy>>,
    /// Which backends are in-process, by index: the n-th is port n of `servers`.
    pub local: Vec<usize>,
    /// Each backend's address as logs and headers name it.
    pub addrs: Vec<String>,
    /// Where the load goes: the balancer.
    pub target: SocketAddr,
    /// The in-process balancer's configuration.
    pub config: Option<ProxyConfig>,
    scratch: Scratch,
}

impl Stage {
    /// Starts the backends and the balancer the scenario describes.
    pub async fn start(loaded: &Loaded) -> Result<Stage, ScenarioError> {
        let s = &loaded.scenario;
        let local: Vec<usize> = (0..s.backends.len())
            .filter(|i| s.backends[*i].get_ref().url.is_none())
            .collect();
        let scratch = Scratch::new()?;
        let mut stage = Stage {
            servers: None,
            proxy: None,
            local,
            addrs: Vec::new(),
            target: ([127, 0, 0, 1], 0).into(),
            config: None,
            scratch,
        };
        if !stage.local.is_empty() {
            let ports = stage.local.iter().map(|i| PortConfig {
                port: s.backends[*i].get_ref().port,
                profile: loaded.profiles[*i].clone(),
            });
            let config = Config {
                ports: ports.collect(),
                ..Config::default()
            };
            stage.servers = Some(Arc::new(Server::start(config).await?));
        }
        let mut addrs = Vec::new();
        for (i, b) in s.backends.iter().enumerate() {
            addrs.push(match &b.get_ref().url {
                Some(url) => external(url, &format!("[[backend]] {} url", loaded.names[i]))?,
                None => {
                    let j = stage.local.iter().position(|l| *l == i).expect("local");
                    stage.servers.as_ref().expect("started above").addrs()[j]
                }
            });
        }
        stage.addrs = addrs.iter().map(ToString::to_string).collect();
        match &s.balancer.target {
            Some(url) => stage.target = external(url, "[balancer] target")?,
            None => {
                let log = stage.log_path().display().to_string();
                let config = match &s.balancer.nginx_conf {
                    Some(file) => {
                        let path = loaded.file.parent().unwrap_or(Path::new(".")).join(file);
                        let text = std::fs::read_to_string(&path)
                            .map_err(|source| ScenarioError::NginxConf { path, source })?;
                        let text = conf::with_backends(&text, &loaded.names, &addrs);
                        let mut config = balancer::conf::load("[balancer] nginx_conf", &text)?;
                        // The runner reads the log it knows the format of.
                        config.access_log = Some(conf::lbkit_log(&log));
                        config
                    }
                    None => conf::config(s, &addrs, &log).map_err(ScenarioError::Balancer)?,
                };
                let mut options = Options::new(([127, 0, 0, 1], 0).into(), config.clone());
                // Client identities come as X-Forwarded-For from one address.
                options.trust_forwarded_for = true;
                options.grace = Duration::from_secs(5);
                let proxy = Proxy::start(options).await?;
                stage.target = proxy.addr();
                stage.proxy = Some(Arc::new(proxy));
                stage.config = Some(config);
            }
        }
        Ok(stage)
    }

    fn log_path(&self) -> PathBuf {
        self.scratch.0.join("balancer.log")
    }

    /// Stops everything, the balancer first, so its log is whole; then reads
    /// the log (`None` for an external balancer, whose log is not ours).
    /// The stage keeps what it knows; its directory goes when it is dropped.
    pub async fn stop(&mut self) -> Result<Option<Summary>, ScenarioError> {
        if let Some(p) = self.proxy.take().and_then(|p| Arc::try_unwrap(p).ok()) {
            p.shutdown().await;
        }
        if let Some(s) = self.servers.take().and_then(|s| Arc::try_unwrap(s).ok()) {
            s.shutdown().await;
        }
        if self.config.is_none() {
            return Ok(None);
        }
        let lbkit =
            analyzer::formats::named("lbkit").map_err(|e| ScenarioError::Log(e.to_string()))?;
        let read = analyzer::summarize(&[Input::File(self.log_path())], lbkit)
            .map_err(|e| ScenarioError::Log(format!("{e:#}")))?;
        Ok(Some(read.summary))
    }
}

impl Drop for Stage {
    /// A stage left on an error path: stop what still runs (in the
    /// background of the runtime it started on); the directory goes with
    /// `scratch`.
    fn drop(&mut self) {
        let proxy = self.proxy.take().and_then(|p| Arc::try_unwrap(p).ok());
        let servers = self.servers.take().and_then(|s| Arc::try_unwrap(s).ok());
        if proxy.is_none() && servers.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(p) = proxy {
                    p.shutdown().await;
                }
                if let Some(s) = servers {
                    s.shutdown().await;
                }
            });
        }
    }
}

/// A directory of this run's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, ScenarioError> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("lbkit-scenario-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| ScenarioError::Scratch {
            path: path.clone(),
            source,
        })?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
