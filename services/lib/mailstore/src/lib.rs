//! Message storage for mailcluster: messages and mailboxes over PostgreSQL ([`Mailstore`]: local
//! delivery, exactly once) plus the [`BlobStore`](blob::BlobStore) seam for message bodies
//! (S3-compatible store or local folder).
//!
//! Bodies are immutable and content-addressed (`blobs/<sha256>`); PostgreSQL holds the index that
//! references them. This crate trusts its configuration (endpoints, credentials, folders) and
//! nothing that arrives over the network: keys are validated before they reach a backend.
//! It must never acknowledge a write before the store confirmed it durable, and never hand out
//! a partial or empty body in place of a missing one.
#![forbid(unsafe_code)]

pub mod blob;
pub mod deliver;
pub mod mailboxes;
pub mod messages;

pub use blob::{
    BlobError, BlobErrorKind, BlobKey, BlobStore, FsBlobStore, S3BlobConfig, S3BlobStore,
};
pub use deliver::{BatchCopy, DeliverError, Delivery, INBOX, Mailstore, Placed};
pub use mailboxes::{MailboxCounts, MailboxError, MailboxInfo};
pub use messages::{Changes, Copied, FetchRow, FlagChange, MessageState, Snapshot, StoreError};
