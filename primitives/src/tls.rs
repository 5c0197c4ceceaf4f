//! TLS as every lbkit tool sets it up: an identity (certificate chain and
//! key) from PEM files or made on the spot for loopback, a server
//! configuration that offers HTTP/2 and HTTP/1.1 by ALPN, and a client
//! configuration that trusts the system's roots, a `--cacert` file, or
//! (`--insecure`, as curl's `-k`) any certificate. rustls on ring; no
//! OpenSSL.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

pub use rustls::pki_types::ServerName;
pub use rustls::{ClientConfig, HandshakeKind, ServerConfig};
pub use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// ALPN's names for the two protocols lbkit speaks.
pub const H2: &[u8] = b"h2";
pub const HTTP11: &[u8] = b"http/1.1";

/// Why TLS could not be set up, naming the file or the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The chain and the key in PEM, as read or made.
    pem: String,
    key_pem: String,
}

impl Identity {
    /// nginx's `ssl_certificate` and `ssl_certificate_key`: a PEM chain
    /// (leaf first) and a PEM key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let pem = std::fs::read_to_string(cert).map_err(|e| file_error(cert, e))?;
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error(cert, format!("not a PEM certificate chain: {e:?}")))?;
        if certs.is_empty() {
            return Err(file_error(cert, "holds no PEM certificate"));
        }
        let key_pem = std::fs::read_to_string(key).map_err(|e| file_error(key, e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| file_error(key, format!("holds no PEM private key: {e:?}")))?;
        Ok(Identity {
            certs,
            key,
            pem,
            key_pem,
        })
    }

    /// A self-signed certificate for `localhost` and `127.0.0.1` (and `::1`),
    /// made now: for tests and loopback runs, where no CA is at hand.
    pub fn self_signed() -> Result<Identity, TlsError> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Config(format!("could not make a certificate: {e}")))?;
        let key = PrivatePkcs8KeyDer::from(made.key_pair.serialize_der());
        Ok(Identity {
            pem: made.cert.pem(),
            key_pem: made.key_pair.serialize_pem(),
            certs: vec![made.cert.der().clone()],
            key: key.into(),
        })
    }

    /// The certificate chain in PEM, for clients to trust (`--cacert`).
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// Writes the chain and the key as PEM files, as a server such as
    /// nginx reads them (`ssl_certificate`, `ssl_certificate_key`).
    pub fn write_pem(&self, cert: &Path, key: &Path) -> std::io::Result<()> {
        std::fs::write(cert, &self.pem)?;
        std::fs::write(key, &self.key_pem)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server that offers `alpn` in order of preference (`[H2, HTTP11]`
/// lets a client pick HTTP/2; `[HTTP11]` keeps it to HTTP/1.1).
pub fn server_config(identity: Identity, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.certs, identity.key)
        .map_err(|e| TlsError::Config(format!("the certificate and key do not fit: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A server's TLS set-up as a value a configuration holds: two are the
/// same when they are the same set-up.
#[derive(Debug, Clone)]
pub struct ServerTls(pub Arc<ServerConfig>);

impl PartialEq for ServerTls {
    fn eq(&self, other: &ServerTls) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Which servers a client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's roots (as curl and oha do by default).
    System,
    /// The certificates of a PEM file (`--cacert`, named for errors), and
    /// only those.
    CaPem { name: String, pem: Vec<u8> },
    /// Any certificate for any name (`--insecure`): the handshake is still
    /// checked, the certificate is not.
    Anyone,
}

/// A client that trusts as told and asks for `alpn` (empty: no ALPN, as
/// an HTTP/1.1-only client). TLS 1.3 session tickets are kept in memory,
/// so a client that reconnects resumes instead of a full handshake.
pub fn client_config(trust: &Trust, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = match trust {
        Trust::Anyone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
        Trust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::Config(
                    "the system has no CA certificates; give --cacert FILE or --insecure".into(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::CaPem { name, pem } => {
            let path = Path::new(name);
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| file_error(path, format!("{e:?}")))?;
                roots
                    .add(cert)
                    .map_err(|e| file_error(path, format!("not a CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(file_error(path, "holds no PEM certificate"));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// `--insecure`: every certificate passes; the handshake's signatures are
/// still verified, so a broken peer is still found out.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to `addr` that trusts any certificate and asks for
/// `alpn`: what `--insecure` clients open, for tests and probes.
pub async fn connect_unverified(
    addr: std::net::SocketAddr,
    alpn: &[&[u8]],
) -> std::io::Result<client::TlsStream<tokio::net::TcpStream>> {
    let config = client_config(&Trust::Anyone, alpn).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(config).connect(name, tcp).await
}

/// The name a client sends as SNI and checks the certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| TlsError::Config(format!("{host} is not a name a certificate can carry")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_identity_round_trips_through_pem_files() {
        let made = Identity::self_signed().unwrap();
        let dir = std::env::temp_dir().join(format!("lbkit-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        made.write_pem(&cert, &key).unwrap();
        let read = Identity::from_pem_files(&cert, &key).unwrap();
        assert_eq!(read.certs, made.certs);
        assert_eq!(read.key.secret_der(), made.key.secret_der());
        assert!(server_config(read, &[H2, HTTP11]).is_ok());
        let trust = Trust::CaPem {
            name: "cert.pem".into(),
            pem: made.cert_pem().as_bytes().to_vec(),
        };
        assert!(client_config(&trust, &[]).is_ok());
        // A key file that holds no key names itself.
        let wrong = Identity::from_pem_files(&cert, &cert)
            .unwrap_err()
            .to_string();
        assert!(wrong.starts_with(&format!("{}: holds no PEM private key", cert.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
