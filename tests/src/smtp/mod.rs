//! SMTP end-to-end harness: the `mailcluster-smtp-ingress` process on fresh ports, a seeded
//! directory, a raw line client, and the independent clients (Python's smtplib, swaks).

mod clients;
mod store;

pub use clients::{
    PythonRun, PythonSession, RawClient, Reply, SwaksRun, Tls, queued_id, smtplib, swaks,
};
pub use store::{
    QueuedMessage, count, disable_account, internet_like_loopback, loopback_is_internet,
    loopback_may_relay, queued, seed_directory,
};

use crate::{TestDatabase, bin, free_port, http_status, uuid_like};
use mc_mailstore::blob::{BlobBackend, BlobConfig, BlobKey, BlobStore};
use mc_types::Secret;
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hostname the ingress announces.
pub const HOSTNAME: &str = "mx.test.example";
/// The password of every seeded account.
pub const PASSWORD: &str = "correct horse battery";

/// A running `mailcluster-smtp-ingress serve`; killed (SIGKILL) when dropped.
pub struct IngressProcess {
    pub child: Child,
    pub mx_port: u16,
    pub submission_port: u16,
    pub submissions_port: u16,
    pub ops_url: String,
    /// Object-key prefix of this process's blobs.
    pub s3_prefix: String,
    log: PathBuf,
    _tls: tempfile::TempDir,
    /// The DNS server the sender checks ask when the test named none: an empty zone, so that
    /// nothing waits on the machine's resolver (every name is NXDOMAIN).
    _dns: Option<crate::dns::DnsServer>,
}

impl IngressProcess {
    /// Starts the ingress against `db` with TLS (a self-signed certificate for localhost) on all
    /// three listeners and waits until `/readyz` answers 200. `extra_env` overrides anything.
    pub fn start(db: &TestDatabase, extra_env: &[(&str, &str)]) -> Self {
        let ingress = Self::spawn(db, extra_env);
        ingress.wait(Duration::from_secs(30), |i| {
            http_status(&format!("{}/readyz", i.ops_url)) == Some(200)
        });
        ingress
    }

    /// Like [`IngressProcess::start`] but only waits for the MX banner (for a process whose
    /// readiness is expected to fail, e.g. with the object store unreachable).
    pub fn start_unready(db: &TestDatabase, extra_env: &[(&str, &str)]) -> Self {
        let ingress = Self::spawn(db, extra_env);
        ingress.wait(Duration::from_secs(30), |i| {
            TcpStream::connect(("127.0.0.1", i.mx_port))
                .ok()
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                    let mut buf = [0u8; 3];
                    s.read_exact(&mut buf).ok()?;
                    Some(&buf == b"220")
                })
                .unwrap_or(false)
        });
        ingress
    }

    fn spawn(db: &TestDatabase, extra_env: &[(&str, &str)]) -> Self {
        let (tls, cert, key) = crate::self_signed_tls();
        let s3_prefix = mc_testkit::unique_prefix("smtp");
        let (mx, sub, subs, ops) = (free_port(), free_port(), free_port(), free_port());
        let log = std::env::temp_dir().join(format!("mc-smtp-ingress-{}.log", uuid_like()));
        let file = std::fs::File::create(&log).expect("log file");
        let list = |port: u16| format!("[\"127.0.0.1:{port}\"]");
        let dns = (!extra_env
            .iter()
            .any(|(k, _)| *k == "MAILCLUSTER_SMTP__DNS_SERVERS"))
        .then(|| crate::dns::DnsServer::start(crate::dns::Zone::default()));
        let dns_servers = dns
            .as_ref()
            .map(|dns| format!("[\"{}\"]", dns.addr()))
            .unwrap_or_default();
        let child = Command::new(bin("mailcluster-smtp-ingress"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MAILCLUSTER_DATABASE__URL", &db.url)
            .envs(crate::store_env(&s3_prefix))
            .env(
                "MAILCLUSTER_REDIS__KEY_PREFIX",
                mc_testkit::unique_prefix("smtp"),
            )
            .env("MAILCLUSTER_SMTP__HOSTNAME", HOSTNAME)
            .env("MAILCLUSTER_SMTP__MX_LISTEN", list(mx))
            .env("MAILCLUSTER_SMTP__SUBMISSION_LISTEN", list(sub))
            .env("MAILCLUSTER_SMTP__SUBMISSIONS_LISTEN", list(subs))
            .env("MAILCLUSTER_OPS__LISTEN", format!("127.0.0.1:{ops}"))
            .env("MAILCLUSTER_LOG__FORMAT", "text")
            .env("MAILCLUSTER_TLS__CERT_FILE", &cert)
            .env("MAILCLUSTER_TLS__KEY_FILE", &key)
            .env("MAILCLUSTER_SMTP__DNS_SERVERS", dns_servers)
            .envs(extra_env.iter().copied())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start mailcluster-smtp-ingress");
        let prefix = extra_env
            .iter()
            .find(|(k, _)| *k == "MAILCLUSTER_BLOB__S3__PREFIX")
            .map(|(_, v)| v.to_string())
            .unwrap_or(s3_prefix);
        Self {
            child,
            mx_port: mx,
            submission_port: sub,
            submissions_port: subs,
            ops_url: format!("http://127.0.0.1:{ops}"),
            s3_prefix: prefix,
            log,
            _tls: tls,
            _dns: dns,
        }
    }

    fn wait(&self, limit: Duration, ready: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if ready(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mailcluster-smtp-ingress did not become ready; its log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The object store this process writes to (same bucket and prefix).
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        let s3 = mc_testkit::S3Settings::from_env("unused");
        let mut config = BlobConfig {
            backend: BlobBackend::S3,
            ..Default::default()
        };
        config.s3.endpoint = Some(s3.endpoint);
        config.s3.region = s3.region;
        config.s3.bucket = Some(s3.bucket);
        config.s3.access_key_id = Some(s3.access_key_id);
        config.s3.secret_access_key = Some(Secret::new(s3.secret_access_key));
        config.s3.prefix = self.s3_prefix.clone();
        config.open().expect("open the test bucket")
    }

    /// The stored body of a queued message: its byte range of its blob, which it may share
    /// with other messages accepted at the same moment.
    pub async fn body(&self, message: &store::QueuedMessage) -> Vec<u8> {
        let key = BlobKey::parse(&message.blob_key).expect("blob key");
        let start = u64::try_from(message.blob_offset).expect("offset");
        let end = start + u64::try_from(message.size_bytes).expect("size");
        let body = self
            .blob_store()
            .get_range(&key, start..end)
            .await
            .expect("blob")
            .to_vec();
        assert_eq!(
            body.len() as u64,
            end - start,
            "the blob holds the whole message"
        );
        body
    }

    /// `GET /metrics` on the ops port.
    pub fn metrics(&self) -> String {
        crate::http_get(&format!("{}/metrics", self.ops_url)).expect("metrics")
    }
}

impl Drop for IngressProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
