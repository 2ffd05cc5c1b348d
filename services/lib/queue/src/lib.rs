//! The durable delivery queue in PostgreSQL.
//!
//! Ingress side ([`Queue::enqueue`]): one message and its envelope recipients become one
//! `messages` row, one `queue_entries` row and one `queue_recipients` row per recipient, written
//! by a single statement, i.e. one atomic transaction: either the whole envelope is queued or
//! nothing is. The caller answers `250` only after this returns `Ok`.
//!
//! Blob protocol (shared with the collector in the delivery worker): before uploading a body the
//! writer calls [`Queue::reserve_blob`], which inserts or refreshes the `blobs` row; the enqueue
//! statement refreshes it again. The collector deletes an object only while holding that row's
//! lock (`SELECT … FOR UPDATE`, delete the object, delete the row, commit), so a writer's
//! reservation either waits for the collector and re-creates the row, or makes the collector skip
//! the blob: an accepted body is never collected.
//!
//! Worker side (leases, epoch fencing, retries) is added by the delivery worker.
#![forbid(unsafe_code)]

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

/// One envelope recipient with its RFC 3461 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub address: String,
    pub dsn_notify: Option<String>,
    pub dsn_orcpt: Option<String>,
}

/// A message accepted by the ingress, ready to be queued.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub id: Uuid,
    pub blob_key: BlobKey,
    pub size_bytes: u64,
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
}

impl NewEntry {
    /// A fresh, time-ordered queue id (UUIDv7), shown to clients as "queued as".
    pub fn new_id() -> Uuid {
        Uuid::now_v7()
    }
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
        sqlx::query(
            "INSERT INTO blobs (blob_key, size_bytes) VALUES ($1, $2)
             ON CONFLICT (blob_key) DO UPDATE SET last_referenced_at = now()",
        )
        .bind(key.as_str())
        .bind(size(size_bytes)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues one message for all its recipients, atomically.
    pub async fn enqueue(&self, entry: &NewEntry) -> Result<Uuid, QueueError> {
        if entry.recipients.is_empty() {
            return Err(QueueError::Invalid(
                "a queue entry needs a recipient".into(),
            ));
        }
        let addresses: Vec<&str> = entry
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        let notify: Vec<Option<&str>> = entry
            .recipients
            .iter()
            .map(|r| r.dsn_notify.as_deref())
            .collect();
        let orcpt: Vec<Option<&str>> = entry
            .recipients
            .iter()
            .map(|r| r.dsn_orcpt.as_deref())
            .collect();
        let lifetime_secs = i64::try_from(entry.lifetime.as_secs())
            .map_err(|_| QueueError::Invalid("lifetime out of range".into()))?;
        let client_ip = entry.client_ip.map(ipnet::IpNet::from);
        // One statement: PostgreSQL runs it as one transaction, in one round trip.
        let inserted: i64 = sqlx::query_scalar(
            "WITH blob AS (
                 INSERT INTO blobs (blob_key, size_bytes) VALUES ($2, $3)
                 ON CONFLICT (blob_key) DO UPDATE SET last_referenced_at = now()
                 RETURNING blob_key
             ), message AS (
                 INSERT INTO messages (blob_key, size_bytes) SELECT blob_key, $3 FROM blob
                 RETURNING id
             ), entry AS (
                 INSERT INTO queue_entries
                     (id, message_id, sender, client_ip, client_helo, auth_user,
                      dsn_ret, dsn_envid, expires_at)
                 SELECT $1, id, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10)
                 FROM message
                 RETURNING id
             ), recipients AS (
                 INSERT INTO queue_recipients (queue_id, address, dsn_notify, dsn_orcpt)
                 SELECT entry.id, r.address, r.notify, r.orcpt
                 FROM entry, unnest($11::text[], $12::text[], $13::text[]) AS r(address, notify, orcpt)
                 RETURNING 1
             )
             SELECT count(*) FROM recipients",
        )
        .bind(entry.id)
        .bind(entry.blob_key.as_str())
        .bind(size(entry.size_bytes)?)
        .bind(&entry.sender)
        .bind(client_ip)
        .bind(entry.client_helo.as_deref())
        .bind(entry.auth_user.as_deref())
        .bind(entry.dsn_ret.as_deref())
        .bind(entry.dsn_envid.as_deref())
        .bind(lifetime_secs as f64)
        .bind(&addresses)
        .bind(&notify)
        .bind(&orcpt)
        .fetch_one(&self.pool)
        .await?;
        if inserted as usize != entry.recipients.len() {
            // Cannot happen without a schema change; the statement is atomic either way.
            return Err(QueueError::Invalid(format!(
                "queued {inserted} of {} recipients",
                entry.recipients.len()
            )));
        }
        Ok(entry.id)
    }
}

fn size(bytes: u64) -> Result<i64, QueueError> {
    i64::try_from(bytes).map_err(|_| QueueError::Invalid("size out of range".into()))
}
