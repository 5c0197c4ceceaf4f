//! What the suites share: mock backend ports, and the reference balancer
//! in front of them.

use balancer::proxy::{Options, Proxy};
use balancer::UpstreamSpec;
use mockbackend::{Config, Profile, Server};

/// `n` mock ports on 127.0.0.1 with the profile `settings` make.
pub async fn mock(n: usize, settings: &[(&str, &str)]) -> Server {
    let mut p = Profile::default();
    for (k, v) in settings {
        p.set(k, v).unwrap();
    }
    Server::start(Config::ephemeral(n, p)).await.unwrap()
}

/// The balancer sending every path to one upstream whose block holds
/// `upstream` (`"ip_hash; server 127.0.0.1:8001; ..."`), and its spec.
pub async fn balancer(upstream: &str, trust_forwarded_for: bool) -> (Proxy, UpstreamSpec) {
    let conf =
        format!("upstream b {{ {upstream} }}\nserver {{ location / {{ proxy_pass http://b; }} }}");
    let config = balancer::conf::load("t.conf", &conf).unwrap();
    let spec = config.upstreams[0].clone();
    let mut options = Options::new("127.0.0.1:0".parse().unwrap(), config);
    options.trust_forwarded_for = trust_forwarded_for;
    (Proxy::start(options).await.unwrap(), spec)
}

/// `server ADDR;` lines for every port of `m`.
pub fn servers(m: &Server) -> String {
    m.addrs().iter().map(|a| format!("server {a}; ")).collect()
}
