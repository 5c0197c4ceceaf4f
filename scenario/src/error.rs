//! Why a scenario could not run (exit 2): the file is wrong, or what it
//! asks for could not be started. Each names the key or file to fix.

use std::path::PathBuf;

use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("[[backend]]: {0}")]
    Backends(#[from] mockbackend::StartError),
    #[error("{key}: {why}")]
    Address { key: String, why: String },
    #[error("[balancer] config {}: {why}", .path.display())]
    ConfigUse { path: PathBuf, why: String },
    #[error("[balancer] engine = \"{engine}\": no {engine} binary ({looked}); install it (apt-get install -y {engine}) or name it with [balancer] binary")]
    BinaryMissing {
        engine: &'static str,
        looked: String,
    },
    #[error("[balancer] config: nginx -t: {0}")]
    NginxTest(String),
    #[error("[balancer] config: the reference balancer does not model {0}, which could change what requests get; run the scenario with engine = \"nginx\"")]
    Unmodelled(String),
    #[error("nginx: {0}")]
    Nginx(String),
    #[error("[balancer] config: haproxy -c: {0}")]
    HaproxyCheck(String),
    #[error("haproxy: {0}")]
    Haproxy(String),
    #[error("{0}")]
    Config(#[from] balancer::conf::ConfError),
    #[error("[balancer] {0}")]
    Balancer(String),
    #[error("[balancer]: {0}")]
    BalancerStart(#[from] balancer::proxy::StartError),
    #[error("[load] {0}")]
    Load(String),
    #[error("the balancer's access log: {0}")]
    Log(String),
    #[error("a scratch directory {}: {source}", .path.display())]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] engine::WriteError),
}
