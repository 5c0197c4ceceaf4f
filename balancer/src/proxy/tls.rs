//! TLS at both ends of the proxy, from what nginx.conf says: the
//! certificate served on `listen ... ssl` (HTTP/2 offered by ALPN with
//! `http2`), and `proxy_pass https://` with its `proxy_ssl_*` directives.

use primitives::tls::{self, Identity, ServerName, TlsAcceptor, TlsConnector, Trust};

use super::StartError;
use crate::conf::{ListenTls, UpstreamTls};

fn failed(what: &str, why: impl std::fmt::Display) -> StartError {
    StartError::Tls(format!("{what}: {why}"))
}

/// The acceptor for `listen ... ssl`, or `None` for plain HTTP.
pub(super) fn acceptor(listen: &ListenTls) -> Result<Option<TlsAcceptor>, StartError> {
    if !listen.ssl {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&listen.certificate, &listen.certificate_key) else {
        return Err(failed(
            "listen ... ssl",
            "needs ssl_certificate and ssl_certificate_key (or --ssl-certificate and --ssl-certificate-key)",
        ));
    };
    let identity = Identity::from_pem_files(cert.as_ref(), key.as_ref())
        .map_err(|e| failed("ssl_certificate", e))?;
    let alpn: &[&[u8]] = if listen.http2 {
        &[tls::H2, tls::HTTP11]
    } else {
        &[tls::HTTP11]
    };
    let config = tls::server_config(identity, alpn).map_err(|e| failed("ssl_certificate", e))?;
    Ok(Some(TlsAcceptor::from(config)))
}

/// The connector for `proxy_pass https://`: nginx's defaults are no
/// verification and no SNI; `proxy_ssl_verify on` checks the certificate
/// against `proxy_ssl_trusted_certificate` for `proxy_ssl_name`.
pub(super) fn connector(
    upstream: &UpstreamTls,
    addr: std::net::SocketAddr,
) -> Result<(TlsConnector, ServerName<'static>), StartError> {
    let trust = match (&upstream.verify, &upstream.trusted_certificate) {
        (true, Some(file)) => Trust::CaPem {
            name: file.clone(),
            pem: std::fs::read(file).map_err(|e| failed(file, e))?,
        },
        (true, None) => {
            return Err(failed(
                "proxy_ssl_verify",
                "no \"proxy_ssl_trusted_certificate\" for \"proxy_ssl_verify\"",
            ))
        }
        (false, _) => Trust::Anyone,
    };
    let mut config = (*tls::client_config(&trust, &[tls::HTTP11])
        .map_err(|e| failed("proxy_ssl_trusted_certificate", e))?)
    .clone();
    config.enable_sni = upstream.server_name;
    // A name a certificate cannot carry (an upstream called ai_backend)
    // can only be checked when verifying: then it is a config error.
    let name = match tls::server_name(&upstream.name) {
        Ok(name) => name,
        Err(e) if upstream.verify => return Err(failed("proxy_ssl_name", e)),
        Err(_) => ServerName::IpAddress(addr.ip().into()),
    };
    Ok((TlsConnector::from(std::sync::Arc::new(config)), name))
}
