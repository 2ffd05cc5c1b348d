//! The `[blob]` configuration section every service that reads or writes bodies shares, and the
//! store it opens.
//!
//! ```toml
//! [blob]
//! backend = "s3"            # or "fs"
//! [blob.s3]
//! endpoint = "http://127.0.0.1:3900"
//! region = "garage"
//! bucket = "mailcluster"
//! access_key_id = "GK…"
//! secret_access_key_file = "/run/secrets/s3"
//! [blob.fs]
//! root = "/var/lib/mailcluster/blobs"
//! ```

use super::{BlobError, BlobStore, FsBlobStore, S3BlobConfig, S3BlobStore, S3Timeouts};
use mc_runtime::config::{ConfigError, require, resolve_secret};
use mc_types::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    S3,
    Fs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobConfig {
    pub backend: BlobBackend,
    pub s3: S3Section,
    pub fs: FsSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret<String>>,
    pub secret_access_key_file: Option<PathBuf>,
    pub prefix: String,
    pub force_path_style: bool,
    pub connect_timeout_secs: u64,
    pub attempt_timeout_secs: u64,
    pub operation_timeout_secs: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FsSection {
    pub root: Option<PathBuf>,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            backend: BlobBackend::S3,
            s3: S3Section::default(),
            fs: FsSection::default(),
        }
    }
}

impl Default for S3Section {
    fn default() -> Self {
        let timeouts = S3Timeouts::default();
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: None,
            access_key_id: None,
            secret_access_key: None,
            secret_access_key_file: None,
            prefix: String::new(),
            force_path_style: true,
            connect_timeout_secs: timeouts.connect.as_secs(),
            attempt_timeout_secs: timeouts.attempt.as_secs(),
            operation_timeout_secs: timeouts.operation.as_secs(),
            max_attempts: timeouts.max_attempts,
        }
    }
}

impl BlobConfig {
    pub fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        match self.backend {
            BlobBackend::S3 => {
                let s3 = &mut self.s3;
                resolve_secret(
                    "blob.s3.secret_access_key",
                    &mut s3.secret_access_key,
                    &s3.secret_access_key_file,
                    errors,
                );
                require("blob.s3.bucket", &s3.bucket, errors);
                require("blob.s3.access_key_id", &s3.access_key_id, errors);
                require("blob.s3.secret_access_key", &s3.secret_access_key, errors);
                if s3.max_attempts == 0 {
                    errors.push(ConfigError::new(
                        "blob.s3.max_attempts",
                        "must be at least 1",
                    ));
                }
                if s3.operation_timeout_secs == 0 || s3.attempt_timeout_secs == 0 {
                    errors.push(ConfigError::new(
                        "blob.s3.operation_timeout_secs",
                        "timeouts must be at least 1 second",
                    ));
                }
            }
            BlobBackend::Fs => require("blob.fs.root", &self.fs.root, errors),
        }
    }

    /// Opens the configured store (no request is sent; use `check` for reachability). Its
    /// requests are recorded in the `mailcluster_blob_*` metrics.
    pub fn open(&self) -> Result<Arc<dyn BlobStore>, BlobError> {
        Ok(Arc::new(super::metered::Metered(self.open_unmetered()?)))
    }

    fn open_unmetered(&self) -> Result<Arc<dyn BlobStore>, BlobError> {
        match self.backend {
            BlobBackend::S3 => {
                let s3 = &self.s3;
                let missing = || BlobError::internal("blob.s3 is incomplete");
                let mut config = S3BlobConfig::new(
                    s3.endpoint.clone(),
                    s3.region.clone(),
                    s3.bucket.clone().ok_or_else(missing)?,
                    s3.access_key_id.clone().ok_or_else(missing)?,
                    s3.secret_access_key.clone().ok_or_else(missing)?,
                );
                config.prefix = s3.prefix.clone();
                config.force_path_style = s3.force_path_style;
                config.timeouts = S3Timeouts {
                    connect: Duration::from_secs(s3.connect_timeout_secs),
                    attempt: Duration::from_secs(s3.attempt_timeout_secs),
                    operation: Duration::from_secs(s3.operation_timeout_secs),
                    max_attempts: s3.max_attempts,
                    ..S3Timeouts::default()
                };
                Ok(Arc::new(S3BlobStore::new(config)?))
            }
            BlobBackend::Fs => {
                let root = self
                    .fs
                    .root
                    .clone()
                    .ok_or_else(|| BlobError::internal("blob.fs.root is not set"))?;
                Ok(Arc::new(FsBlobStore::new(root)))
            }
        }
    }
}
