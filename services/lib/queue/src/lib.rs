//! The durable delivery queue in PostgreSQL.
//!
//! Ingress side ([`Queue::enqueue_batch`], usually through the group-commit [`intake`]): each
//! message and its envelope recipients become one `messages` row, one `queue_entries` row and one
//! `queue_recipients` row per recipient, and a whole batch of messages is written by a single
//! statement, i.e. one atomic transaction: either every envelope is queued or none is. The caller
//! answers `250` only after that commit.
//!
//! Blob protocol (shared with the collector in the delivery worker): before uploading a body
//! that may already be stored (same content, same key) the writer calls [`Queue::reserve_blob`],
//! which inserts or refreshes the `blobs` row; the enqueue statement refreshes it again. The
//! collector deletes an object only while holding that row's lock (`SELECT … FOR UPDATE`, delete
//! the object, delete the row, commit), so a writer's reservation either waits for the collector
//! and re-creates the row, or makes the collector skip the blob: an accepted body is never
//! collected. Bodies that are new content (see [`intake`]) are uploaded while the statement that
//! writes their row runs; the collector must therefore also sweep the bucket for objects without
//! a row older than its grace period (what a crash between upload and commit leaves).
//!
//! Worker side ([`lease`]): recipients are claimed with an attempt epoch (the fencing token) and
//! every state change is conditional on it.
#![forbid(unsafe_code)]

pub mod admin;
mod batch;
pub mod collector;
pub mod intake;
pub mod lease;

use mc_mailstore::blob::BlobKey;
use sqlx::PgPool;
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("invalid queue entry: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl mc_runtime::store_metrics::StoreOutcome for QueueError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::Invalid(_) => mc_runtime::store_metrics::Outcome::Ok,
            Self::Database(error) => error.store_outcome(),
        }
    }
}

impl QueueError {
    /// True when the entry itself broke a rule of the schema (a duplicate recipient, a value out
    /// of range): retrying it cannot help, but the other entries of its batch are not at fault.
    pub fn is_entry_fault(&self) -> bool {
        match self {
            Self::Invalid(_) => true,
            Self::Database(sqlx::Error::Database(error)) => error
                .code()
                .is_some_and(|code| code.starts_with("23") || code.starts_with("22")),
            Self::Database(_) => false,
        }
    }
}

/// One envelope recipient with its RFC 3461 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub address: String,
    pub dsn_notify: Option<String>,
    pub dsn_orcpt: Option<String>,
}

/// Where a message's bytes are: the range `[offset, offset + size)` of the blob `blob_key`,
/// which holds `blob_size` bytes in all (a message stored alone spans its whole blob; small
/// messages accepted together share one packed blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyLocation {
    pub blob_key: BlobKey,
    pub blob_size: u64,
    pub offset: u64,
    pub size: u64,
}

impl BodyLocation {
    /// A message that is a whole blob by itself.
    pub fn whole(blob_key: BlobKey, size: u64) -> Self {
        Self {
            blob_key,
            blob_size: size,
            offset: 0,
            size,
        }
    }
}

/// The envelope of a message accepted by the ingress: everything queued about it but its body.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: Uuid,
    /// Empty for the null reverse-path `<>`.
    pub sender: String,
    pub client_ip: Option<IpAddr>,
    pub client_helo: Option<String>,
    pub auth_user: Option<String>,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    pub recipients: Vec<NewRecipient>,
    /// How long the queue keeps trying before it gives up and bounces.
    pub lifetime: Duration,
    /// Scored as spam at intake: local copies are filed into Junk.
    pub junk: bool,
}

impl Envelope {
    /// A fresh, time-ordered queue id (UUIDv7), shown to clients as "queued as".
    pub fn new_id() -> Uuid {
        Uuid::now_v7()
    }
}

/// A message ready to be queued: its envelope and where its (already stored) body is.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub envelope: Envelope,
    pub body: BodyLocation,
}

/// The queue over one PostgreSQL pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queue {
    pool: PgPool,
}

impl Queue {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Inserts or refreshes the `blobs` row of a body about to be uploaded (see the crate docs).
    pub async fn reserve_blob(&self, key: &BlobKey, size_bytes: u64) -> Result<(), QueueError> {
        mc_mailstore::messages::reserve_blob_row(&self.pool, key.as_str(), size(size_bytes)?)
            .await?;
        Ok(())
    }

    /// Queues one message for all its recipients, atomically.
    pub async fn enqueue(&self, entry: &NewEntry) -> Result<Uuid, QueueError> {
        self.enqueue_batch(std::slice::from_ref(entry)).await?;
        Ok(entry.envelope.id)
    }

    /// Queues several messages in one statement (group commit): all of them or none. Blobs the
    /// entries share are refreshed once.
    pub async fn enqueue_batch(&self, entries: &[NewEntry]) -> Result<(), QueueError> {
        batch::enqueue(&self.pool, entries).await
    }

    /// Like [`Queue::enqueue_batch`], inside a transaction left open for the caller to commit
    /// (or roll back) once the bodies' upload, running meanwhile, has finished.
    /// Queues entries inside the caller's transaction (with whatever else it writes).
    pub async fn enqueue_in(
        connection: &mut sqlx::PgConnection,
        entries: &[NewEntry],
    ) -> Result<(), QueueError> {
        batch::enqueue(connection, entries).await
    }

    pub async fn enqueue_batch_uncommitted(
        &self,
        entries: &[NewEntry],
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, QueueError> {
        let mut transaction = self.pool.begin().await?;
        match batch::enqueue(&mut *transaction, entries).await {
            Ok(()) => Ok(transaction),
            Err(error) => {
                // Explicitly, now: a dropped transaction is rolled back only when its connection
                // is next used, and its uncommitted rows would block a retry of the same entries.
                let _ = transaction.rollback().await;
                Err(error)
            }
        }
    }
}

fn size(bytes: u64) -> Result<i64, QueueError> {
    i64::try_from(bytes).map_err(|_| QueueError::Invalid("size out of range".into()))
}
