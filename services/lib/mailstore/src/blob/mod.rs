//! The `BlobStore` seam: immutable message bodies in an object store, addressed by [`BlobKey`].
//!
//! Two real implementations exist: [`S3BlobStore`] (production: any S3-compatible store such as
//! Garage or MinIO) and [`FsBlobStore`] (a local folder, for single-node installations and
//! development). Both must pass the same contract suite (`contract`, behind the `testsuite`
//! feature), which is the definition of the semantics below; a backend that needs an exception
//! must change the contract, not special-case a caller.
//!
//! What every implementation guarantees:
//! * `put` is idempotent for one key and content, and once it returns `Ok` the blob is durable and
//!   complete. No reader ever sees a half-written blob, and a failed `put` leaves either the old
//!   blob or none.
//! * A missing key is [`BlobErrorKind::NotFound`] for every read, never an empty body; `delete` of a
//!   missing key is `Ok` (the garbage collector may race with itself).
//! * Errors are classified into [`BlobErrorKind`] inside the backend, never by callers.
//!
//! This module must never log or return credentials, and must never buffer a body it was asked
//! to stream (`put_file`, `get_stream`).

mod config;
mod error;
mod fs;
mod key;
mod metered;
mod s3;
mod s3_error;

#[cfg(any(test, feature = "testsuite"))]
pub mod contract;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

pub use config::{BlobBackend, BlobConfig, FsSection, S3Section};
pub use error::{BlobError, BlobErrorKind};
pub use fs::FsBlobStore;
pub use key::{BlobKey, BlobPrefix, MAX_KEY_LEN, MAX_PREFIX_LEN};
pub use s3::{S3BlobConfig, S3BlobStore, S3Timeouts};

/// Bytes of a blob as they arrive. A read error after [`BlobStore::get_stream`] returned is an
/// `std::io::Error` (the connection to the store broke mid-body); the caller must abort the
/// transfer to its client rather than send a truncated body.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// An opened blob: its exact length (IMAP literals and POP3 sizes must be announced before the
/// bytes) and a reader that yields exactly that many bytes.
pub struct BlobStream {
    pub len: u64,
    pub reader: BlobReader,
}

impl fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStream")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Storage for immutable blobs. See the module documentation for the guarantees.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// Stores `body` under `key`, replacing any previous blob (with content-addressed keys the
    /// previous blob has the same bytes).
    async fn put(&self, key: &BlobKey, body: Bytes) -> Result<(), BlobError>;

    /// Stores the content of the file at `path` (e.g. a spooled SMTP DATA) without reading it
    /// into memory. The file must not change while this runs. A missing or unreadable file is
    /// [`BlobErrorKind::Internal`]: it is the caller's file, not a missing blob.
    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<(), BlobError>;

    /// The whole blob, in memory. Use [`BlobStore::get_stream`] for bodies sent to clients.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError>;

    /// The bytes in `range` (IMAP partial FETCH). A range reaching past the end is clipped to the
    /// end; a range starting at or after the end, or an empty range, yields an empty body (that is
    /// what IMAP answers for `BODY[]<start.count>` beyond the end). A missing key is still
    /// [`BlobErrorKind::NotFound`].
    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes, BlobError>;

    /// Opens the blob for streaming, so large bodies go to a socket without being buffered.
    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, BlobError>;

    /// The size of the blob, or `None` if it does not exist.
    async fn head(&self, key: &BlobKey) -> Result<Option<u64>, BlobError>;

    /// Removes the blob; a missing key is `Ok`.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Readiness probe: `Ok` when reads and writes can be expected to work.
    async fn check(&self) -> Result<(), BlobError>;
}

/// `range` clipped to a blob of `len` bytes; `None` when nothing of the blob lies inside it.
fn clip_range(range: &Range<u64>, len: u64) -> Option<Range<u64>> {
    let end = range.end.min(len);
    (range.start < end).then_some(range.start..end)
}

/// The `/readyz` check of a service that needs the object store: a cheap request that proves
/// the bucket answers with these credentials (its error kind is what the probe reports).
pub fn readiness_check(blobs: std::sync::Arc<dyn BlobStore>) -> mc_runtime::ops::Check {
    std::sync::Arc::new(move || {
        let blobs = blobs.clone();
        Box::pin(async move {
            blobs
                .check()
                .await
                .map_err(|e| e.kind().as_str().to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::clip_range;

    #[test]
    fn clip_range_clips_at_the_end_and_empties_beyond_it() {
        assert_eq!(clip_range(&(2..5), 10), Some(2..5));
        assert_eq!(clip_range(&(2..50), 10), Some(2..10));
        assert_eq!(clip_range(&(10..12), 10), None);
        assert_eq!(clip_range(&(3..3), 10), None);
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = 5..2;
        assert_eq!(clip_range(&inverted, 10), None);
        assert_eq!(clip_range(&(0..1), 0), None);
    }
}
