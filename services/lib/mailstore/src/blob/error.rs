//! The one error type of the blob seam: every backend failure is classified here, once, into a
//! [`BlobErrorKind`] that callers can act on (answer `451`/`NO [UNAVAILABLE]`, report not ready,
//! treat a body as lost) without knowing which backend produced it.
//!
//! The message is for logs. It must never be shown to mail clients (it may name buckets, paths and
//! endpoints), and it must never contain credentials.

use std::fmt;

/// What a caller can do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobErrorKind {
    /// The key does not exist. Never reported as an empty body.
    NotFound,
    /// The store could not be reached or answered "try later" (connection refused, timeout, 5xx,
    /// throttling, disk full, I/O error). Temporary: retry, or answer with a temporary failure.
    Unavailable,
    /// The store refused our credentials or permissions (S3 401/403, filesystem permission
    /// denied). An operator must fix the configuration; retrying will not help.
    Unauthorized,
    /// Anything else: an invalid key or prefix, an unexpected answer, a bug.
    Internal,
}

impl BlobErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::Unavailable => "unavailable",
            Self::Unauthorized => "unauthorized",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for BlobErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified blob store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blob store {kind}: {message}")]
pub struct BlobError {
    kind: BlobErrorKind,
    message: String,
}

impl BlobError {
    pub fn new(kind: BlobErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(BlobErrorKind::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(BlobErrorKind::Unavailable, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(BlobErrorKind::Unauthorized, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(BlobErrorKind::Internal, message)
    }

    pub fn kind(&self) -> BlobErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == BlobErrorKind::NotFound
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind == BlobErrorKind::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_message() {
        let err = BlobError::unavailable("connection refused");
        assert_eq!(
            err.to_string(),
            "blob store unavailable: connection refused"
        );
        assert!(err.is_temporary());
        assert!(!err.is_not_found());
    }
}
