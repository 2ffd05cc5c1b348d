//! [`S3BlobStore`]: blobs as objects in an S3-compatible store (Garage, MinIO, AWS S3).
//! Key `blobs/<sha256>` under prefix `p/` is the object `p/blobs/<sha256>` in the configured bucket.
//!
//! The client is configured for self-hosted stores: static credentials, path-style addressing (no
//! per-bucket DNS names), and checksums only when the operation requires them, because the SDK's
//! default `aws-chunked` uploads with CRC trailers are rejected by several S3 implementations.
//! Integrity of bodies does not depend on those checksums: keys are the sha256 of the content.
//!
//! This module must never log or format the secret key (it is a [`Secret`] until the SDK's
//! credential provider gets it), and must never read a `put_file` source or a `get_stream` body
//! into memory. Every SDK error goes through [`classify`] (in `s3_error.rs`).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use mc_types::Secret;

use super::s3_error::{classify, is_unsatisfiable_range};
use super::{BlobError, BlobKey, BlobPrefix, BlobStore, BlobStream, clip_range};

/// Where and how to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3BlobConfig {
    /// `http(s)://host:port` of a self-hosted store; `None` means AWS S3 for `region`.
    pub endpoint: Option<String>,
    /// Must equal the store's configured region (Garage: `s3_region`, MinIO: `us-east-1`), since
    /// it is part of every request signature.
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    /// Prepended to every key (see [`BlobPrefix::parse`]); empty for a dedicated bucket.
    pub prefix: String,
    /// Path-style URLs (`endpoint/bucket/key`). Self-hosted stores need this; AWS accepts both.
    pub force_path_style: bool,
    pub timeouts: S3Timeouts,
}

impl S3BlobConfig {
    /// A configuration with path-style addressing and default timeouts.
    pub fn new(
        endpoint: Option<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: Secret<String>,
    ) -> Self {
        Self {
            endpoint,
            region: region.into(),
            bucket: bucket.into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            prefix: String::new(),
            force_path_style: true,
            timeouts: S3Timeouts::default(),
        }
    }
}

/// Bounds on how long one store call may take. A call that exceeds them is
/// [`BlobErrorKind::Unavailable`](super::BlobErrorKind::Unavailable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Timeouts {
    /// TCP (and TLS) connection set-up.
    pub connect: Duration,
    /// One attempt, from sending the request until the response headers (for PUT this includes
    /// uploading the body; for GET it does not include reading the body).
    pub attempt: Duration,
    /// All attempts of one call together, including back-off between them.
    pub operation: Duration,
    /// Attempts per call (1 = no retries). Throttling, 5xx and connection errors are retried.
    pub max_attempts: u32,
    /// How long a transfer may move no bytes while it is being polled before it fails. A reader
    /// that stops polling (a slow IMAP client applying back-pressure) does not count as stalled.
    pub stall_grace_period: Duration,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(90),
            max_attempts: 3,
            stall_grace_period: Duration::from_secs(20),
        }
    }
}

/// Blob store over one S3 bucket. Cloning is cheap (the SDK client is shared).
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    prefix: BlobPrefix,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// Builds the client. No request is sent; use [`BlobStore::check`] to find out whether the
    /// bucket is reachable with these credentials.
    pub fn new(config: S3BlobConfig) -> Result<Self, BlobError> {
        let prefix = BlobPrefix::parse(&config.prefix)?;
        if config.bucket.is_empty() {
            return Err(BlobError::internal("S3 bucket name is empty"));
        }
        let timeouts = config.timeouts;
        let credentials = Credentials::new(
            config.access_key_id,
            config.secret_access_key.expose().clone(),
            None,
            None,
            "mailcluster-config",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region))
            .credentials_provider(credentials)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .operation_attempt_timeout(timeouts.attempt)
                    .operation_timeout(timeouts.operation)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(timeouts.max_attempts.max(1)))
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(timeouts.stall_grace_period)
                    .build(),
            );
        if let Some(endpoint) = config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            prefix,
        })
    }

    /// A whole-object GET: the object name (for messages) and the response with its body unread.
    async fn get_object(
        &self,
        key: &BlobKey,
    ) -> Result<(String, aws_sdk_s3::operation::get_object::GetObjectOutput), BlobError> {
        let object = self.object(key);
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
            .map_err(|e| classify("GetObject", &object, e))?;
        Ok((object, output))
    }

    fn object(&self, key: &BlobKey) -> String {
        self.prefix.join(key)
    }

    async fn put_body(&self, key: &BlobKey, body: ByteStream) -> Result<(), BlobError> {
        let object = self.object(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .body(body)
            .send()
            .await
            .map_err(|e| classify("PutObject", &object, e))?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, body: Bytes) -> Result<(), BlobError> {
        self.put_body(key, ByteStream::from(body)).await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<(), BlobError> {
        // from_path reads the length up front (PutObject needs Content-Length) and streams the
        // file in chunks; a retry re-opens the file.
        let body = ByteStream::from_path(path).await.map_err(|e| {
            BlobError::internal(format!("cannot open source file {}: {e}", path.display()))
        })?;
        self.put_body(key, body).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let (object, output) = self.get_object(key).await?;
        let body = output.body.collect().await.map_err(|e| {
            BlobError::unavailable(format!("GetObject {object}: body interrupted: {e}"))
        })?;
        Ok(body.into_bytes())
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes, BlobError> {
        if range.start >= range.end {
            // No bytes wanted, and no valid HTTP range expresses that; the key must still exist.
            return match self.head(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(BlobError::not_found(format!(
                    "{} does not exist",
                    self.object(key)
                ))),
            };
        }
        let object = self.object(key);
        // HTTP ranges are inclusive; S3 clips a last byte beyond the end to the end.
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object)
            .range(header)
            .send()
            .await
        {
            Ok(output) => output,
            // 416: the object exists but ends at or before `range.start`.
            Err(e) if is_unsatisfiable_range(&e) => return Ok(Bytes::new()),
            Err(e) => return Err(classify("GetObject", &object, e)),
        };
        let ranged = output.content_range().is_some();
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| {
                BlobError::unavailable(format!("GetObject {object}: body interrupted: {e}"))
            })?
            .into_bytes();
        if ranged {
            return Ok(body);
        }
        // A store that ignores Range answers 200 with the whole object: cut it here.
        let len = body.len() as u64;
        Ok(match clip_range(&range, len) {
            Some(part) => body.slice(to_usize(part.start)?..to_usize(part.end)?),
            None => Bytes::new(),
        })
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, BlobError> {
        let (object, output) = self.get_object(key).await?;
        let len = output
            .content_length()
            .and_then(|len| u64::try_from(len).ok())
            .ok_or_else(|| BlobError::internal(format!("GetObject {object}: no Content-Length")))?;
        Ok(BlobStream {
            len,
            reader: Box::pin(output.body.into_async_read()),
        })
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        // A HEAD response has no body, so a missing bucket (404 without `NoSuchBucket`) cannot be
        // told from a missing key here and reads as `None`; `check` is what catches that.
        let object = self.object(key);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .content_length()
                    .and_then(|len| u64::try_from(len).ok())
                    .unwrap_or(0),
            )),
            Err(e) => match classify("HeadObject", &object, e) {
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let object = self.object(key);
        // S3 answers 204 for a missing key too; NotFound is accepted in case a store differs.
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("DeleteObject", &object, e) {
                err if err.is_not_found() => Ok(()),
                err => Err(err),
            },
        }
    }

    async fn check(&self) -> Result<(), BlobError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            // A missing bucket is a broken deployment, not a missing blob.
            Err(e) => Err(match classify("HeadBucket", &self.bucket, e) {
                err if err.is_not_found() => {
                    BlobError::unavailable(format!("bucket {} does not exist", self.bucket))
                }
                err => err,
            }),
        }
    }
}

fn to_usize(offset: u64) -> Result<usize, BlobError> {
    usize::try_from(offset).map_err(|_| BlobError::internal("range offset does not fit in memory"))
}
