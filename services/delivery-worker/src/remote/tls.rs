//! TLS for outbound SMTP. Opportunistic by default: the certificate is checked against the
//! system's trust store (plus an optional CA file) and the result is recorded, but a failure
//! only stops delivery where TLS is required (a route or relayer with `tls = required`). Most
//! MX hosts present certificates for other names; refusing them would send mail in clear
//! text instead, which is worse.

use mc_policy::TlsMode;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// How TLS went on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutcome {
    None,
    Verified,
    /// Encrypted, but the certificate did not verify (why).
    Unverified(String),
}

impl TlsOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Verified => "verified",
            Self::Unverified(_) => "unverified",
        }
    }
}

/// The trust anchors and verifier shared by every connection.
pub struct TlsClient {
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsClient {
    /// The system's trust store plus the certificates in `extra_ca` (PEM).
    pub fn new(extra_ca: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow::anyhow!("delivery.tls_ca_file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("delivery.tls_ca_file {}: {e}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("delivery.tls_ca_file {}: {e}", path.display()))?;
            }
        }
        if roots.is_empty() {
            tracing::warn!("no trusted CA certificates: outbound TLS is never verified");
        }
        tracing::debug!(
            system = added,
            total = roots.len(),
            "outbound TLS trust store"
        );
        let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| anyhow::anyhow!("outbound TLS verifier: {e}"))?;
        Ok(Self { verifier })
    }

    /// Runs the handshake over `socket` for `host`; fails only on a handshake failure (an
    /// unverifiable certificate is recorded in the outcome, not refused).
    pub async fn connect(
        &self,
        host: &str,
        peer: SocketAddr,
        socket: TcpStream,
    ) -> std::io::Result<(tokio_rustls::client::TlsStream<TcpStream>, TlsOutcome)> {
        let recording = Arc::new(Recording {
            inner: self.verifier.clone(),
            result: Mutex::new(None),
        });
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(recording.clone())
            .with_no_client_auth();
        let name = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => match ServerName::try_from(host.to_string()) {
                Ok(name) => name,
                Err(_) => ServerName::IpAddress(peer.ip().into()),
            },
        };
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, socket)
            .await?;
        let outcome = match recording.result.lock().map(|r| r.clone()) {
            Ok(Some(Ok(()))) => TlsOutcome::Verified,
            Ok(Some(Err(why))) => TlsOutcome::Unverified(why),
            _ => TlsOutcome::Unverified("no certificate checked".into()),
        };
        Ok((stream, outcome))
    }
}

/// Whether a hop's TLS mode accepts how TLS went.
pub fn acceptable(mode: TlsMode, outcome: &TlsOutcome) -> Result<(), String> {
    match (mode, outcome) {
        (TlsMode::Required, TlsOutcome::None) => {
            Err("TLS is required but the server did not offer STARTTLS".into())
        }
        (TlsMode::Required, TlsOutcome::Unverified(why)) => Err(format!(
            "TLS is required but the server's certificate did not verify: {why}"
        )),
        _ => Ok(()),
    }
}

/// Checks the certificate like the standard verifier, records the verdict, and lets the
/// handshake go on either way. Handshake signatures are always checked.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    result: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Ok(mut result) = self.result.lock() {
            *result = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
