//! TLS configurations for both ends: the listener's certificate, and how
//! the gateway checks a server's certificate. The crypto provider is the
//! process default, which the binary installs once at start-up; nothing
//! here installs one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No process-wide crypto provider was installed.
    #[error("no TLS crypto provider installed (the binary installs one at start-up)")]
    NoProvider,
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Result<Arc<CryptoProvider>, TlsError> {
    CryptoProvider::get_default()
        .cloned()
        .ok_or(TlsError::NoProvider)
}

fn pem_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate found"));
    }
    Ok(certs)
}

/// The listener's TLS configuration from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider()?)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // libpq 17+ announces ALPN "postgresql"; clients that send none are
    // still accepted.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Arc::new(config))
}

/// How the gateway checks the certificate of a server it connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTls {
    /// No TLS.
    Disable,
    /// TLS without checking the certificate (like libpq's `require`).
    Require,
    /// TLS; the certificate must chain to the CA file and match the host.
    VerifyFull {
        /// PEM file of trusted CA certificates.
        ca_file: PathBuf,
    },
}

/// The client configuration for a server connection, or `None` for
/// `Disable`.
pub fn client_config(mode: &ServerTls) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    let provider = provider()?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match mode {
        ServerTls::Disable => return Ok(None),
        ServerTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoChainCheck(provider)))
            .with_no_client_auth(),
        ServerTls::VerifyFull { ca_file } => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(ca_file)? {
                roots.add(cert).map_err(|e| pem_error(ca_file, e))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(Arc::new(config)))
}

/// `sslmode=require`: the session is encrypted and the handshake
/// signatures are checked, but the certificate chain and name are not.
#[derive(Debug)]
struct NoChainCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoChainCheck {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
