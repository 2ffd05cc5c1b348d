//! [`TlsReloader`]: the current server configuration of one certificate/key pair, replaced on
//! SIGHUP or when the files change, and only by a pair that loaded and matched.

use super::{TlsConfig, TlsError, build, load_chain, load_key};
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Modification time and length of both files; a change in either triggers a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp([Option<(SystemTime, u64)>; 2]);

impl FileStamp {
    fn read(cert: &Path, key: &Path) -> Self {
        let stamp = |path: &Path| {
            // A file missing mid-rename gives `None`, which differs from its old stamp and so
            // triggers another attempt once it is back.
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        Self([stamp(cert), stamp(key)])
    }
}

struct Current {
    config: Arc<ServerConfig>,
    chain: Vec<CertificateDer<'static>>,
}

struct Inner {
    cert_file: PathBuf,
    key_file: PathBuf,
    check_every: Option<Duration>,
    current: RwLock<Current>,
    reloads: AtomicU64,
}

/// The live server configuration of one certificate/key pair; clones share it.
#[derive(Clone)]
pub struct TlsReloader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert_file", &self.inner.cert_file)
            .field("key_file", &self.inner.key_file)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads the pair; `None` when the configuration does not enable TLS.
    pub fn load(config: &TlsConfig) -> Result<Option<Self>, TlsError> {
        let (cert_file, key_file) = match (&config.cert_file, &config.key_file) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => return Err(TlsError::Incomplete),
        };
        let chain = load_chain(&cert_file)?;
        let server = build(chain.clone(), load_key(&key_file)?, &cert_file, &key_file)?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                cert_file,
                key_file,
                check_every: (config.reload_check_secs > 0)
                    .then(|| Duration::from_secs(config.reload_check_secs)),
                current: RwLock::new(Current {
                    config: Arc::new(server),
                    chain,
                }),
                reloads: AtomicU64::new(0),
            }),
        }))
    }

    /// An acceptor over the configuration current now; take a new one per connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }

    /// The configuration current now.
    pub fn config(&self) -> Arc<ServerConfig> {
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&current.config)
    }

    /// The end of validity (Unix seconds) of the certificate served now (the chain's first);
    /// `None` if it cannot be read.
    pub fn not_after(&self) -> Option<i64> {
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let leaf = current.chain.first()?;
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(certificate.validity().not_after.timestamp())
    }

    /// A collector exporting `mailcluster_tls_certificate_not_after_timestamp_seconds`, read from
    /// the certificate served at scrape time (so a reload shows at once), for the expiry alert.
    pub fn expiry_collector(&self) -> Box<dyn prometheus_client::collector::Collector> {
        Box::new(ExpiryCollector(self.clone()))
    }

    /// How many reloads replaced the certificate since start.
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// Re-reads both files. Returns whether the certificate chain changed; on error nothing is
    /// replaced and the old certificate keeps serving.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let inner = &*self.inner;
        let chain = load_chain(&inner.cert_file)?;
        let key = load_key(&inner.key_file)?;
        // Same chain: the key must be the same one (rustls checks they match), so keep the
        // existing configuration and its session cache.
        if self
            .inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .chain
            == chain
        {
            return Ok(false);
        }
        let server = build(chain.clone(), key, &inner.cert_file, &inner.key_file)?;
        *inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Current {
            config: Arc::new(server),
            chain,
        };
        inner.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Reloads on SIGHUP and, if `reload_check_secs > 0`, when the files change, until `cancel`.
    pub fn spawn_watcher(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let reloader = self.clone();
        tokio::spawn(async move { reloader.watch(cancel).await })
    }

    async fn watch(self, cancel: CancellationToken) {
        let stamp = || FileStamp::read(&self.inner.cert_file, &self.inner.key_file);
        let mut hangup = signal(SignalKind::hangup())
            .map_err(
                |error| tracing::warn!(%error, "no SIGHUP handler; TLS reload by polling only"),
            )
            .ok();
        let mut poll = self.inner.check_every.map(|every| {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let mut seen = stamp();
        loop {
            let reason = tokio::select! {
                () = cancel.cancelled() => return,
                () = next_hangup(&mut hangup) => "SIGHUP",
                () = next_tick(&mut poll) => {
                    if stamp() == seen {
                        continue;
                    }
                    "files changed"
                }
            };
            // Taken before reading, so a write racing the reload is seen by the next poll.
            seen = stamp();
            let reloader = self.clone();
            match tokio::task::spawn_blocking(move || reloader.reload()).await {
                Ok(Ok(true)) => tracing::info!(
                    reason,
                    cert_file = %self.inner.cert_file.display(),
                    reloads = self.reloads(),
                    "TLS certificate reloaded"
                ),
                Ok(Ok(false)) => tracing::debug!(reason, "TLS certificate unchanged"),
                Ok(Err(error)) => tracing::warn!(
                    reason,
                    %error,
                    "TLS reload failed; the previous certificate stays in use"
                ),
                Err(error) => tracing::warn!(%error, "TLS reload task failed"),
            }
        }
    }
}

async fn next_hangup(hangup: &mut Option<Signal>) {
    if let Some(signal) = hangup
        && signal.recv().await.is_some()
    {
        return;
    }
    // No handler, or the signal stream ended: wait for the other triggers only.
    std::future::pending().await
}

async fn next_tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[derive(Debug)]
struct ExpiryCollector(TlsReloader);

impl prometheus_client::collector::Collector for ExpiryCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let Some(not_after) = self.0.not_after() else {
            return Ok(());
        };
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(not_after);
        gauge.encode(encoder.encode_descriptor(
            "mailcluster_tls_certificate_not_after_timestamp_seconds",
            "End of validity of the TLS certificate served now, in Unix seconds",
            None,
            gauge.metric_type(),
        )?)
    }
}
