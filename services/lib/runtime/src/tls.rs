//! Server-side TLS from PEM files, reloaded while the service runs: the configuration behind
//! SMTP STARTTLS and implicit TLS (RFC 3207, RFC 8314), and later IMAP and POP3.
//!
//! * Protocols: TLS 1.3 and TLS 1.2 only, with the aws-lc-rs provider's default suites (AEAD
//!   only, forward secrecy only). TLS 1.0/1.1 are not compiled into rustls at all.
//! * Reload: on SIGHUP, and when the files' modification time or length changes (polled every
//!   `reload_check_secs`), so renewed certificates (ACME, cert-manager secrets) are picked up
//!   without a restart. A new certificate replaces the old one only when the pair loaded and
//!   matched; otherwise the old one keeps serving and the failure is logged. Connections already
//!   established keep the configuration they started with.
//!
//! Trusts: the certificate and key files named by the operator's configuration.
//! Must never: print key material (errors name the file and the kind of problem only, never the
//! PEM text or base64 details), or leave a listener without a certificate after a bad reload.

use crate::config::ConfigError;
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod reload;
#[cfg(test)]
mod tests;

pub use reload::TlsReloader;

/// The `tls` part of a listener's configuration. TLS is off when neither file is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, end-entity certificate first.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the end-entity certificate.
    pub key_file: Option<PathBuf>,
    /// How often to look for changed files; 0 reloads on SIGHUP only.
    pub reload_check_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_check_secs: 30,
        }
    }
}

impl TlsConfig {
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }

    /// Checks that both files are given and load as a matching pair, so that a bad certificate
    /// stops the service at start-up (exit 64) rather than at the first STARTTLS.
    pub fn finish(&self, key_prefix: &str, errors: &mut Vec<ConfigError>) {
        let cert_key = format!("{key_prefix}.cert_file");
        let key_key = format!("{key_prefix}.key_file");
        let (cert, key) = match (&self.cert_file, &self.key_file) {
            (None, None) => return,
            (Some(_), None) => {
                errors.push(ConfigError::new(
                    key_key,
                    format!("required when {cert_key} is set"),
                ));
                return;
            }
            (None, Some(_)) => {
                errors.push(ConfigError::new(
                    cert_key,
                    format!("required when {key_key} is set"),
                ));
                return;
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        let chain =
            load_chain(cert).map_err(|e| errors.push(ConfigError::new(&cert_key, e.to_string())));
        let private_key =
            load_key(key).map_err(|e| errors.push(ConfigError::new(&key_key, e.to_string())));
        if let (Ok(chain), Ok(private_key)) = (chain, private_key)
            && let Err(error) = build(chain, private_key, cert, key)
        {
            errors.push(ConfigError::new(key_key, error.to_string()));
        }
    }
}

/// Why a certificate or key could not be used. Names files, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS needs both cert_file and key_file")]
    Incomplete,
    #[error("cannot load certificate file {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("certificate file {} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("cannot load private key file {}: {reason}", path.display())]
    PrivateKey { path: PathBuf, reason: String },
    #[error("private key file {} holds no PEM private key", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("certificate {} and private key {} rejected: {source}", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Builds a TLS 1.2/1.3 server configuration from a PEM chain and key, without client auth.
pub fn server_config(cert_pem_path: &Path, key_pem_path: &Path) -> Result<ServerConfig, TlsError> {
    let chain = load_chain(cert_pem_path)?;
    let key = load_key(key_pem_path)?;
    build(chain, key, cert_pem_path, key_pem_path)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |error: pem::Error| TlsError::Certificate {
        path: path.to_owned(),
        reason: describe(error),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        error => TlsError::PrivateKey {
            path: path.to_owned(),
            reason: describe(error),
        },
    })
}

/// PEM errors in words that cannot leak key bytes: base64 errors quote the offending byte and
/// section-start errors quote the line, so only the kind of problem is kept.
fn describe(error: pem::Error) -> String {
    match error {
        pem::Error::Io(error) => error.to_string(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "the file is not valid PEM".into(),
    }
}

fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerConfig, TlsError> {
    let rejected = |source| TlsError::Rejected {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    };
    // The provider is named here rather than taken from the process default so that a missing
    // `install_crypto_provider()` cannot change which suites a listener offers.
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rejected)
}
