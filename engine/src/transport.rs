//! How requests travel: plain TCP or TLS, HTTP/1.1 or HTTP/2, as flags and
//! as the value a plan carries. The worker loop does not change with it;
//! `connect.rs` opens what this describes.

use std::sync::Arc;

use primitives::tls::{self, ClientConfig, Trust};

use crate::flags::{err, PlanError};
use crate::plan::Target;

/// The flags that choose the transport (as curl's and oha's).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TransportFlags {
    /// https://: accept any server certificate (a self-signed one on loopback)
    #[arg(long)]
    pub insecure: bool,
    /// https://: trust only the CA certificates of this PEM file, not the system's
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<String>,
    /// The --cacert file's bytes (read by the caller).
    #[arg(skip)]
    pub cacert_pem: Option<Vec<u8>>,
    /// HTTP/2: negotiated by ALPN on https://, with prior knowledge (h2c) on
    /// http://; connections are always kept, as -k
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2 with prior knowledge on a plain http:// URL
    #[arg(long)]
    pub h2c: bool,
    /// HTTP/2: requests in flight at once on each connection (oha's -p);
    /// -c / N connections carry -c streams [default: 1]
    #[arg(long, value_name = "N")]
    pub streams_per_conn: Option<usize>,
}

/// The transport of a run.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// TLS, for https:// targets.
    pub tls: Option<Arc<ClientConfig>>,
    /// HTTP/2, and how many requests share each connection; `None`: HTTP/1.
    pub http2: Option<usize>,
}

impl Transport {
    /// What goes over the wire: HTTP/1.0 without -k (as ab), HTTP/1.1 with.
    pub fn name(&self, keepalive: bool) -> &'static str {
        match (self.tls.is_some(), self.http2.is_some(), keepalive) {
            (false, false, false) => "HTTP/1.0",
            (false, false, true) => "HTTP/1.1",
            (true, false, false) => "HTTP/1.0 over TLS",
            (true, false, true) => "HTTP/1.1 over TLS",
            (false, true, _) => "HTTP/2 (h2c)",
            (true, true, _) => "HTTP/2 over TLS",
        }
    }
}

impl TransportFlags {
    /// The checked transport for `target`.
    pub fn transport(&self, target: &Target, proxied: bool) -> Result<Transport, PlanError> {
        if self.h2c && target.tls {
            return Err(err(
                "--h2c",
                "is HTTP/2 without TLS; an https:// URL takes --http2",
            ));
        }
        let http2 = self.http2 || self.h2c;
        let streams =
            match self.streams_per_conn {
                Some(0) => return Err(err("--streams-per-conn", "must be at least 1")),
                Some(_) if !http2 => return Err(err(
                    "--streams-per-conn",
                    "needs --http2 or --h2c: an HTTP/1.1 connection carries one request at a time",
                )),
                Some(n) => n,
                None => 1,
            };
        if !target.tls && (self.insecure || self.cacert.is_some()) {
            let flag = if self.insecure {
                "--insecure"
            } else {
                "--cacert"
            };
            return Err(err(flag, "is for https:// URLs; this one is http://"));
        }
        if target.tls && proxied {
            return Err(err(
                "-X",
                "a proxy in front of an https:// URL needs CONNECT, which loadgen does not speak",
            ));
        }
        let tls = if target.tls {
            let trust = match (&self.cacert, &self.cacert_pem) {
                _ if self.insecure => Trust::Anyone,
                (Some(name), Some(pem)) => Trust::CaPem {
                    name: name.clone(),
                    pem: pem.clone(),
                },
                (Some(name), None) => return Err(err("--cacert", format!("{name}: not read"))),
                (None, _) => Trust::System,
            };
            let alpn: &[&[u8]] = if http2 { &[tls::H2] } else { &[tls::HTTP11] };
            let flag = if self.cacert.is_some() {
                "--cacert"
            } else {
                "URL"
            };
            Some(tls::client_config(&trust, alpn).map_err(|e| err(flag, e.to_string()))?)
        } else {
            None
        };
        Ok(Transport {
            tls,
            http2: http2.then_some(streams),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn plain_http_is_http1_unless_told() {
        let t = TransportFlags::default()
            .transport(&target("http://127.0.0.1:1/"), false)
            .unwrap();
        assert_eq!((t.tls.is_some(), t.http2), (false, None));
        assert_eq!((t.name(false), t.name(true)), ("HTTP/1.0", "HTTP/1.1"));
        let h2c = TransportFlags {
            h2c: true,
            streams_per_conn: Some(8),
            ..Default::default()
        };
        let t = h2c
            .transport(&target("http://127.0.0.1:1/"), false)
            .unwrap();
        assert_eq!((t.http2, t.name(true)), (Some(8), "HTTP/2 (h2c)"));
    }

    #[test]
    fn https_asks_alpn_for_what_it_speaks() {
        let insecure = TransportFlags {
            insecure: true,
            ..Default::default()
        };
        let t = insecure
            .transport(&target("https://localhost/"), false)
            .unwrap();
        assert_eq!(t.tls.unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
        let h2 = TransportFlags {
            http2: true,
            ..insecure
        };
        let t = h2.transport(&target("https://localhost/"), false).unwrap();
        assert_eq!(t.tls.unwrap().alpn_protocols, vec![b"h2".to_vec()]);
        assert_eq!(t.http2, Some(1));
    }

    #[test]
    fn mismatched_flags_name_themselves() {
        let why = |f: TransportFlags, url: &str, proxied: bool| {
            f.transport(&target(url), proxied).unwrap_err().flag
        };
        let h2c = TransportFlags {
            h2c: true,
            ..Default::default()
        };
        assert_eq!(why(h2c, "https://localhost/", false), "--h2c");
        let streams = TransportFlags {
            streams_per_conn: Some(4),
            ..Default::default()
        };
        assert_eq!(
            why(streams, "http://localhost/", false),
            "--streams-per-conn"
        );
        let insecure = TransportFlags {
            insecure: true,
            ..Default::default()
        };
        assert_eq!(
            why(insecure.clone(), "http://localhost/", false),
            "--insecure"
        );
        assert_eq!(why(insecure, "https://localhost/", true), "-X");
        let bad_ca = TransportFlags {
            cacert: Some("ca.pem".into()),
            cacert_pem: Some(b"not pem".to_vec()),
            ..Default::default()
        };
        let e = bad_ca
            .transport(&target("https://localhost/"), false)
            .unwrap_err();
        assert_eq!(e.flag, "--cacert");
        assert!(e.why.starts_with("ca.pem: "), "{}", e.why);
    }
}
