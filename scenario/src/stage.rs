//! What a scenario runs against: its in-process mock backends, the
//! balancer in front of them (the reference in this process, real nginx
//! started for the run, or the external `target`), and the scratch
//! directory the balancer runs and logs in. A `Stage` owns them all:
//! [`Stage::stop`] shuts them down and reads the balancer's log, and a
//! stage dropped on an early error still stops them and removes the
//! directory, so nothing is left behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use analyzer::Input;
use analyzer::Summary;
use balancer::conf::{Directive, ProxyConfig};
use balancer::proxy::{Options, Proxy};
use mockbackend::{Config, PortConfig, Server};

use crate::daemon::Daemon;
use crate::error::ScenarioError;
use crate::nginx_conf::{self, OwnLog, Setup, Stand};
use crate::spec::{Engine, Loaded};
use crate::{conf, external};
use crate::{haproxy, haproxy_conf, nginx};

pub struct Stage {
    /// The balancer under test; `None` for an external `target`.
    pub engine: Option<Engine>,
    /// What it is, for the report: `the reference balancer`, `nginx/1.22.1`.
    pub about: String,
    /// The in-process backends, one server for all their ports.
    pub servers: Option<Arc<Server>>,
    /// The reference balancer, when it is the one under test.
    pub proxy: Option<Arc<Proxy>>,
    /// Real nginx or HAProxy, when it is the one under test.
    daemon: Option<Daemon>,
    /// Which backends are in-process, by index: the n-th is port n of `servers`.
    pub local: Vec<usize>,
    /// Each backend's address as logs and headers name it.
    pub addrs: Vec<String>,
    /// Where the load goes: the balancer.
    pub target: SocketAddr,
    /// The balancer's configuration, as the reference reads it: what the
    /// expected shares come from. `None` for a target.
    pub config: Option<ProxyConfig>,
    /// With `[balancer] config`: the upstream under test.
    pub upstream: Option<String>,
    /// What the report should say about how the config was run.
    pub notes: Vec<String>,
    /// nginx's runs: the config's own access logs, where they are written.
    own_logs: Vec<OwnLog>,
    /// And each as the analyzer read it, once nginx stopped.
    pub own_read: Vec<OwnRead>,
    /// The format the runner reads the balancer's log in, and the field
    /// its latency is from: lbkit's, or HAProxy's httplog.
    pub log_format: (&'static str, &'static str),
    scratch: Scratch,
}

/// One of the config's own access logs, as the analyzer read it.
pub struct OwnRead {
    pub log: OwnLog,
    /// The format it was read in (`log_format upstream_log`), or why not.
    pub read: Result<(String, Summary), String>,
}

impl Stage {
    /// Starts the backends and, on `engine`, the balancer the scenario
    /// describes. `again`: a stage of the same scenario before this one,
    /// whose in-process backends' ports this one's take, so a second engine
    /// sees the same addresses (and a hash ring of addresses is the same).
    pub async fn start(
        loaded: &Loaded,
        engine: Engine,
        again: Option<&Stage>,
    ) -> Result<Stage, ScenarioError> {
        let s = &loaded.scenario;
        let local: Vec<usize> = (0..s.backends.len())
            .filter(|i| s.backends[*i].get_ref().url.is_none())
            .collect();
        let scratch = Scratch::new()?;
        let mut stage = Stage {
            engine: None,
            about: String::new(),
            servers: None,
            proxy: None,
            daemon: None,
            local,
            addrs: Vec::new(),
            target: ([127, 0, 0, 1], 0).into(),
            config: None,
            upstream: None,
            notes: Vec::new(),
            own_logs: Vec::new(),
            own_read: Vec::new(),
            log_format: ("lbkit", "$request_time"),
            scratch,
        };
        if !stage.local.is_empty() {
            let ports = stage.local.iter().map(|i| PortConfig {
                port: again
                    .and_then(|a| a.addrs.get(*i))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .map_or(s.backends[*i].get_ref().port, |a| a.port()),
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
        if let Some(url) = &s.balancer.target {
            stage.target = external(url, "[balancer] target")?;
            stage.about = format!("the balancer at {url}");
            return Ok(stage);
        }
        stage.engine = Some(engine);
        let log = stage.log_path().display().to_string();
        let config_file = s.balancer.config.as_ref().map(|f| {
            loaded
                .file
                .parent()
                .unwrap_or(Path::new("."))
                .join(f.get_ref())
        });
        if engine == Engine::Haproxy {
            let path = config_file
                .as_deref()
                .expect("checked: haproxy has a config");
            stage.start_haproxy(loaded, path, &addrs).await?;
            return Ok(stage);
        }
        if engine == Engine::Reference && config_file.is_none() {
            let config = conf::config(s, &addrs, &log).map_err(ScenarioError::Balancer)?;
            stage.start_reference(config).await?;
            return Ok(stage);
        }
        // The user's config, or the scenario's balancer written as one: the
        // same rewritten directives run nginx and the reference.
        let (top, server_of): (Vec<Directive>, Vec<Option<String>>) = match &config_file {
            Some(path) => (balancer::conf::directives(path)?, servers_written(loaded)),
            None => {
                let value = conf::config(s, &addrs, &log).map_err(ScenarioError::Balancer)?;
                (
                    conf::nginx(&value),
                    stage.addrs.iter().cloned().map(Some).collect(),
                )
            }
        };
        let stands = stands(loaded, &server_of, &addrs);
        let setup = Setup {
            stands: &stands,
            upstream: s.balancer.upstream.as_deref(),
            prefix: &stage.scratch.0,
            forwarded: s.load.clients.is_some(),
        };
        // The reference listens where it is told; the port is for nginx
        // (or its `-t` when only the reference runs).
        let mut free = free_port;
        let named = config_file
            .clone()
            .unwrap_or_else(|| "the scenario's [balancer]".into());
        let rewritten = nginx_conf::rewrite(top, &setup, &mut free).map_err(|why| {
            ScenarioError::ConfigUse {
                path: named.clone(),
                why,
            }
        })?;
        stage
            .notes
            .extend(nginx_conf::unmapped_note(&rewritten.unmapped));
        let mut config =
            balancer::conf::interpret(&named.display().to_string(), &rewritten.directives, true)?;
        if config_file.is_some() {
            stage.upstream = Some(rewritten.upstream.clone());
        }
        match engine {
            Engine::Reference => {
                if !config.unmodelled.is_empty() {
                    return Err(ScenarioError::Unmodelled(config.unmodelled.join(", ")));
                }
                // What nginx refuses the reference refuses too, when nginx
                // is here to ask.
                if let Ok(binary) = nginx::find(s.balancer.binary.as_deref()) {
                    let build = nginx::build(&binary).await?;
                    let mut top = rewritten.directives.clone();
                    if let Some(prefix) = &build.prefix {
                        nginx_conf::absolute_modules(&mut top, prefix);
                    }
                    let traced = nginx_conf::render_traced(&top);
                    nginx::test(&binary, &stage.scratch.0, &traced).await?;
                    stage
                        .notes
                        .push(format!("{} accepts the config (nginx -t).", build.version));
                }
                stage.notes.extend(ignored_note(&config));
                config.access_log = Some(conf::lbkit_log(&log));
                stage.start_reference(config).await?;
            }
            _ => {
                let binary = nginx::find(s.balancer.binary.as_deref())?;
                stage.start_nginx(&binary, rewritten, config).await?;
            }
        }
        Ok(stage)
    }

    /// Starts `binary` on the rewritten config; `config` is what the
    /// reference reads of it.
    async fn start_nginx(
        &mut self,
        binary: &Path,
        rewritten: nginx_conf::Rewritten,
        config: ProxyConfig,
    ) -> Result<(), ScenarioError> {
        let build = nginx::build(binary).await?;
        let mut top = rewritten.directives;
        if let Some(prefix) = &build.prefix {
            nginx_conf::absolute_modules(&mut top, prefix);
        }
        let conf = nginx_conf::render_traced(&top);
        self.daemon = Some(nginx::start(binary, &self.scratch.0, &conf, rewritten.port).await?);
        self.target = ([127, 0, 0, 1], rewritten.port).into();
        self.about = format!("{} ({})", build.version, binary.display());
        self.config = Some(config);
        self.own_logs = rewritten.logs;
        Ok(())
    }

    /// Starts HAProxy on a rewritten copy of the haproxy.cfg at `path`.
    async fn start_haproxy(
        &mut self,
        loaded: &Loaded,
        path: &Path,
        addrs: &[SocketAddr],
    ) -> Result<(), ScenarioError> {
        let s = &loaded.scenario;
        let fail = |why: String| ScenarioError::ConfigUse {
            path: path.to_path_buf(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let sections = haproxy_conf::parse(&text).map_err(fail)?;
        let servers = servers_written(loaded);
        let stands = stands(loaded, &servers, addrs);
        let forwarded = s.load.clients.is_some();
        let upstream = s.balancer.upstream.as_deref();
        let rewritten =
            haproxy_conf::rewrite(sections, &stands, upstream, forwarded, &mut free_port)
                .map_err(fail)?;
        self.notes
            .extend(nginx_conf::unmapped_note(&rewritten.unmapped));
        // HAProxy's log names a server by backend/name.
        for (i, logged) in rewritten.logged_as.iter().enumerate() {
            if let Some(name) = logged {
                self.addrs[i] = name.clone();
            }
        }
        let binary = haproxy::find(s.balancer.binary.as_deref())?;
        let version = haproxy::version(&binary).await?;
        let conf = haproxy_conf::render(&rewritten.sections);
        let daemon = haproxy::start(&binary, &self.scratch.0, &conf, rewritten.port, path).await?;
        self.daemon = Some(daemon);
        self.target = ([127, 0, 0, 1], rewritten.port).into();
        self.about = format!("{version} ({})", binary.display());
        self.upstream = Some(rewritten.backend);
        self.log_format = ("haproxy", "Ta");
        self.config = Some(ProxyConfig {
            upstreams: rewritten.promise.into_iter().collect(),
            ..ProxyConfig::default()
        });
        Ok(())
    }

    /// Starts the reference balancer on `config`.
    async fn start_reference(&mut self, config: ProxyConfig) -> Result<(), ScenarioError> {
        let mut options = Options::new(([127, 0, 0, 1], 0).into(), config.clone());
        // Client identities come as X-Forwarded-For from one address.
        options.trust_forwarded_for = true;
        options.grace = Duration::from_secs(5);
        let proxy = Proxy::start(options).await?;
        self.target = proxy.addr();
        self.proxy = Some(Arc::new(proxy));
        self.config = Some(config);
        self.about = "the reference balancer".into();
        Ok(())
    }

    /// The log the runner reads: the reference's, or the one the
    /// rewrite adds to nginx's config.
    fn log_path(&self) -> PathBuf {
        self.scratch.0.join(nginx_conf::LOG_FILE)
    }

    /// Stops everything, the balancer first, so its log is whole; then reads
    /// the log (`None` for an external balancer, whose log is not ours).
    /// The stage keeps what it knows; its directory goes when it is dropped.
    pub async fn stop(&mut self) -> Result<Option<Summary>, ScenarioError> {
        self.halt().await;
        if self.engine.is_none() {
            return Ok(None);
        }
        if self.engine == Some(Engine::Haproxy) {
            self.haproxy_events()?;
        }
        let format = analyzer::formats::named(self.log_format.0)
            .map_err(|e| ScenarioError::Log(e.to_string()))?;
        let read = analyzer::summarize(&[Input::File(self.log_path())], format)
            .map_err(|e| ScenarioError::Log(format!("{e:#}")))?;
        if let Some(config) = &self.config {
            self.own_read = (self.own_logs.iter())
                .map(|log| OwnRead {
                    log: log.clone(),
                    read: read_own(config, &log.path),
                })
                .collect();
        }
        Ok(Some(read.summary))
    }
}

impl Stage {
    /// HAProxy's own messages out of its log, into the report's notes.
    fn haproxy_events(&mut self) -> Result<(), ScenarioError> {
        let path = self.log_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ScenarioError::Log(format!("{}: {e}", path.display())))?;
        let (requests, events) = haproxy_conf::split_log(&text);
        std::fs::write(&path, requests)
            .map_err(|e| ScenarioError::Log(format!("{}: {e}", path.display())))?;
        if !events.is_empty() {
            self.notes
                .push(format!("HAProxy said: {}", events.join(" / ")));
        }
        Ok(())
    }

    /// Stops the balancer, then the backends.
    pub async fn halt(&mut self) {
        if let Some(p) = self.proxy.take().and_then(|p| Arc::try_unwrap(p).ok()) {
            p.shutdown().await;
        }
        if let Some(mut d) = self.daemon.take() {
            d.stop().await;
        }
        if let Some(s) = self.servers.take().and_then(|s| Arc::try_unwrap(s).ok()) {
            s.shutdown().await;
        }
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

/// The `server` line each backend stands for in the user's config, as its
/// `[[backend]] server` writes it.
fn servers_written(loaded: &Loaded) -> Vec<Option<String>> {
    let backends = &loaded.scenario.backends;
    backends
        .iter()
        .map(|b| b.get_ref().server.clone())
        .collect()
}

/// Each backend as a config may name it: the line it stands for, its
/// name, and where it really is.
fn stands<'a>(
    loaded: &'a Loaded,
    servers: &'a [Option<String>],
    addrs: &[SocketAddr],
) -> Vec<Stand<'a>> {
    (0..addrs.len())
        .map(|i| Stand {
            server: servers[i].as_deref(),
            name: &loaded.names[i],
            addr: addrs[i],
        })
        .collect()
}

/// What the reference does not act on in a user's config (what the
/// rewrite added, file `lbkit`, is for nginx): one line naming each
/// directive once.
fn ignored_note(config: &ProxyConfig) -> Option<String> {
    let ignored: Vec<&String> = (config.ignored.iter())
        .filter(|d| !d.starts_with("lbkit:"))
        .collect();
    let mut names: Vec<&str> = Vec::new();
    for d in &ignored {
        let name = d.rsplit(": ").next().unwrap_or(d);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    (!ignored.is_empty()).then(|| {
        format!(
            "The reference balancer does not act on {} line(s) of the config: {}; differential runs against nginx show they change no pick, no request sent upstream and no answer.",
            ignored.len(),
            names.join(", ")
        )
    })
}

/// A config's own access log, in the format its `access_log` names.
fn read_own(config: &ProxyConfig, path: &str) -> Result<(String, Summary), String> {
    let chosen = analyzer::formats::from_config(config, path)
        .map_err(|e| e.to_string())?
        .ok_or("the config names no format for it")?;
    let name = chosen.name.clone();
    let read = analyzer::summarize(&[Input::File(PathBuf::from(path))], Some(chosen))
        .map_err(|e| format!("{e:#}"))?;
    Ok((name, read.summary))
}

/// A loopback port free now, for nginx to listen on (nginx needs a number;
/// the moment between this and nginx's bind is the only race, and a lost
/// one is nginx's "address in use" at start).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
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
