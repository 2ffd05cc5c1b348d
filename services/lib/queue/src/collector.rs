//! Garbage collection of message bodies (the collector's side of the blob protocol in the crate
//! docs): messages that nothing references any more, then blobs that no message references,
//! each only once it has been unreferenced for longer than a grace period.
//!
//! A blob is deleted while its `blobs` row is locked (`FOR UPDATE SKIP LOCKED`): the object
//! first, then the row, then COMMIT. A writer that reserves the same key meanwhile waits for that
//! commit and then creates the row anew before uploading again, so an accepted body is never
//! collected. The grace period must exceed the longest upload (the ingress's store timeout): a
//! reservation is refreshed before each upload, and only rows older than the grace are looked at.
//!
//! Not yet done here: objects that have no row at all (a crash between an upload and its commit)
//! need a sweep that lists the bucket.

use crate::{Queue, QueueError};
use mc_mailstore::blob::{BlobError, BlobKey, BlobStore};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub messages: u64,
    pub blobs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
}

impl From<sqlx::Error> for CollectError {
    fn from(error: sqlx::Error) -> Self {
        Self::Queue(QueueError::Database(error))
    }
}

impl Queue {
    /// Removes up to `limit` entries none of whose recipients is still waiting (all delivered or
    /// failed), with their recipient rows: the queue holds what is in flight, not history (the
    /// log has that). Their messages then live on only in mailboxes, or are collected.
    pub async fn remove_finished(&self, limit: usize) -> Result<u64, QueueError> {
        let limit = crate::size(limit as u64)?;
        Ok(sqlx::query(
            "DELETE FROM queue_entries WHERE id IN (
                 SELECT e.id FROM queue_entries e
                  WHERE NOT EXISTS (SELECT 1 FROM queue_recipients r
                                     WHERE r.queue_id = e.id AND r.state IN ('queued', 'held'))
                  LIMIT $1
                  FOR UPDATE SKIP LOCKED)",
        )
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// One collection pass over at most `limit` messages and `limit` blobs.
    pub async fn collect_garbage(
        &self,
        blobs: &dyn BlobStore,
        grace: Duration,
        limit: usize,
    ) -> Result<Collected, CollectError> {
        let limit = crate::size(limit as u64)?;
        let grace = grace.as_secs_f64();
        // A message is referenced by its queue entry until every recipient is done, and by
        // mailbox rows afterwards; one referenced by neither is garbage. SKIP LOCKED leaves rows
        // that a concurrent transaction is touching for the next pass.
        let messages = sqlx::query(
            "DELETE FROM messages WHERE id IN (
                 SELECT m.id FROM messages m
                  WHERE m.created_at < now() - make_interval(secs => $1)
                    AND NOT EXISTS (SELECT 1 FROM queue_entries e WHERE e.message_id = m.id)
                    AND NOT EXISTS (SELECT 1 FROM mailbox_messages x WHERE x.message_id = m.id)
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED)",
        )
        .bind(grace)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected();

        let mut transaction = self.pool().begin().await?;
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT b.blob_key FROM blobs b
              WHERE b.last_referenced_at < now() - make_interval(secs => $1)
                AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_key = b.blob_key)
              ORDER BY b.last_referenced_at
              LIMIT $2
              FOR UPDATE OF b SKIP LOCKED",
        )
        .bind(grace)
        .bind(limit)
        .fetch_all(&mut *transaction)
        .await?;
        for key in &keys {
            // A key that no longer parses cannot have an object of ours: drop the row only.
            if let Ok(parsed) = BlobKey::parse(key) {
                blobs.delete(&parsed).await?;
            }
        }
        sqlx::query("DELETE FROM blobs WHERE blob_key = ANY($1)")
            .bind(&keys)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Collected {
            messages,
            blobs: keys.len() as u64,
        })
    }
}
