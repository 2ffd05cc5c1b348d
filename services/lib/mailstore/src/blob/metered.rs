//! The store every service opens ([`super::BlobConfig::open`]) records each request in the shared
//! blob metrics (`mailcluster_blob_*`, see `mc_runtime::store_metrics`): its duration, how it
//! ended and the message bytes it moved. The readiness probe is not counted.

use super::{BlobError, BlobErrorKind, BlobKey, BlobStore, BlobStream};
use async_trait::async_trait;
use bytes::Bytes;
use mc_runtime::store_metrics::{BlobOp, BlobResult, observe_blob};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Metered(pub(super) Arc<dyn BlobStore>);

fn record<T>(op: BlobOp, started: Instant, result: &Result<T, BlobError>, bytes: u64) {
    let outcome = match result {
        Ok(_) => BlobResult::Ok,
        Err(error) if error.kind() == BlobErrorKind::NotFound => BlobResult::NotFound,
        Err(_) => BlobResult::Error,
    };
    observe_blob(op, outcome, started.elapsed(), bytes);
}

#[async_trait]
impl BlobStore for Metered {
    async fn put(&self, key: &BlobKey, body: Bytes) -> Result<(), BlobError> {
        let started = Instant::now();
        let len = body.len() as u64;
        let result = self.0.put(key, body).await;
        record(BlobOp::Put, started, &result, len);
        result
    }

    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<(), BlobError> {
        let started = Instant::now();
        let len = tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let result = self.0.put_file(key, path).await;
        record(BlobOp::Put, started, &result, len);
        result
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let started = Instant::now();
        let result = self.0.get(key).await;
        let len = result.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        record(BlobOp::Get, started, &result, len);
        result
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes, BlobError> {
        let started = Instant::now();
        let result = self.0.get_range(key, range).await;
        let len = result.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        record(BlobOp::Get, started, &result, len);
        result
    }

    /// Timed until the store answered (the body then streams to the client at the client's
    /// pace); its length counts as downloaded.
    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, BlobError> {
        let started = Instant::now();
        let result = self.0.get_stream(key).await;
        let len = result.as_ref().map(|s| s.len).unwrap_or(0);
        record(BlobOp::Get, started, &result, len);
        result
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        let started = Instant::now();
        let result = self.0.head(key).await;
        if let Ok(None) = result {
            observe_blob(BlobOp::Head, BlobResult::NotFound, started.elapsed(), 0);
        } else {
            record(BlobOp::Head, started, &result, 0);
        }
        result
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let started = Instant::now();
        let result = self.0.delete(key).await;
        record(BlobOp::Delete, started, &result, 0);
        result
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.0.check().await
    }
}
