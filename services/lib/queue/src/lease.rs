//! The worker side of the queue: claiming due recipients, and changing their state only while
//! the claim still holds (RELIABILITY.md section 1.2).
//!
//! Lookups by id write the state test as `(state || '') = 'queued'`: with the plain form the
//! planner takes the partial index `queue_recipients_due` (its statistics say it is nearly empty)
//! and filters the whole backlog by id, once per statement; the expression form cannot use that
//! index, so the primary key is used.
//!
//! PostgreSQL is the authority. A claim takes due recipients (`state = 'queued'` and
//! `next_attempt_at <= now()`) with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the
//! same row, bumps each row's `epoch` (the fencing token) and moves its `next_attempt_at` to the
//! end of the lease: while a worker works, nobody else sees the row as due; if the worker dies,
//! the row becomes due again when the lease runs out. Every later write names the epoch it was
//! claimed with; a worker whose lease expired and whose row was claimed again writes nothing
//! (zero rows), and learns so ([`Fenced`]) before it sends a bounce or anything else.
//!
//! All times are the database server's (`now()`), never a worker's clock. A lease held in Redis
//! (fast path, per-destination limits) can only add to this, never replace it.

use crate::{NewEntry, Queue, QueueError, size};
use std::time::Duration;
use uuid::Uuid;

/// The right to change one recipient row: its id and the epoch it was claimed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub recipient_id: i64,
    pub epoch: i64,
}

/// A claimed recipient with what delivering it needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub recipient_id: i64,
    pub epoch: i64,
    pub queue_id: Uuid,
    pub address: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub dsn_notify: Option<String>,
    pub dsn_orcpt: Option<String>,
    /// Empty for the null reverse-path `<>`.
    pub sender: String,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    pub message_id: i64,
    pub blob_key: String,
    pub blob_offset: i64,
    /// Size of the whole blob the message lies in (packed blobs hold several).
    pub blob_size: i64,
    pub size_bytes: i64,
    /// When the message was accepted.
    pub received_at: time::OffsetDateTime,
    /// True once the entry's lifetime is over: a failure now is final.
    pub expired: bool,
    /// Scored as spam at intake: local copies go to Junk.
    pub junk: bool,
}

impl Claimed {
    pub fn lease(&self) -> Lease {
        Lease {
            recipient_id: self.recipient_id,
            epoch: self.epoch,
        }
    }
}

/// The row was claimed again (or finished) by someone else: this worker must not act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("recipient {recipient_id} was claimed again after epoch {epoch}")]
pub struct Fenced {
    pub recipient_id: i64,
    pub epoch: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Fenced(#[from] Fenced),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl mc_runtime::store_metrics::StoreOutcome for LeaseError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::Fenced(_) => mc_runtime::store_metrics::Outcome::Ok,
            Self::Queue(error) => error.store_outcome(),
        }
    }
}

impl Fenced {
    /// The lease that turned out not to hold.
    pub fn of(lease: Lease) -> Self {
        Self {
            recipient_id: lease.recipient_id,
            epoch: lease.epoch,
        }
    }
}

impl From<sqlx::Error> for LeaseError {
    fn from(error: sqlx::Error) -> Self {
        Self::Queue(QueueError::Database(error))
    }
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Zero rows changed means the row no longer carries this lease's epoch (or is finished).
fn fenced(lease: Lease, changed: u64) -> Result<(), LeaseError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(LeaseError::Fenced(Fenced::of(lease)))
    }
}

async fn mark_delivered<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    lease: Lease,
) -> Result<(), LeaseError> {
    let done = sqlx::query(
        "UPDATE queue_recipients SET state = 'delivered', last_error = NULL, leased_until = NULL,
                updated_at = now()
          WHERE id = $1 AND epoch = $2 AND (state || '') = 'queued'",
    )
    .bind(lease.recipient_id)
    .bind(lease.epoch)
    .execute(executor)
    .await?;
    fenced(lease, done.rows_affected())
}

/// Commits what was written, or rolls back now (rather than when the connection is next
/// used, see `begin_fenced`).
async fn finish(
    transaction: sqlx::Transaction<'static, sqlx::Postgres>,
    written: Result<(), LeaseError>,
) -> Result<(), LeaseError> {
    match written {
        Ok(()) => Ok(transaction.commit().await?),
        Err(error) => {
            let _ = transaction.rollback().await;
            Err(error)
        }
    }
}

async fn mark_failed<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    lease: Lease,
    error: &str,
) -> Result<(), LeaseError> {
    let done = sqlx::query(
        "UPDATE queue_recipients SET state = 'failed', last_error = $3, leased_until = NULL,
                updated_at = now()
          WHERE id = $1 AND epoch = $2 AND (state || '') = 'queued'",
    )
    .bind(lease.recipient_id)
    .bind(lease.epoch)
    .bind(error)
    .execute(executor)
    .await?;
    fenced(lease, done.rows_affected())
}

impl Queue {
    /// Claims up to `limit` due recipients for `lease_time`, oldest due first.
    pub async fn claim_due(
        &self,
        limit: usize,
        lease_time: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueClaim, async move {
            let limit = size(limit as u64)?;
            Ok(sqlx::query_as(
                "WITH due AS (
                     SELECT id FROM queue_recipients
                      WHERE state = 'queued' AND next_attempt_at <= now()
                      ORDER BY next_attempt_at
                      LIMIT $1
                      FOR UPDATE SKIP LOCKED
                 ), claimed AS (
                     UPDATE queue_recipients r
                        SET epoch = r.epoch + 1,
                            attempts = r.attempts + 1,
                            next_attempt_at = now() + make_interval(secs => $2),
                            leased_until = now() + make_interval(secs => $2),
                            last_attempt_at = now(),
                            updated_at = now()
                       FROM due WHERE r.id = due.id
                     RETURNING r.id, r.epoch, r.queue_id, r.address, r.attempts, r.dsn_notify, r.dsn_orcpt
                 )
                 SELECT c.id AS recipient_id, c.epoch, c.queue_id, c.address, c.attempts, c.dsn_notify,
                        c.dsn_orcpt, e.sender, e.dsn_ret, e.dsn_envid, m.id AS message_id, m.blob_key,
                        m.blob_offset, b.size_bytes AS blob_size, m.size_bytes, e.received_at,
                        e.expires_at <= now() AS expired, e.junk
                   FROM claimed c
                   JOIN queue_entries e ON e.id = c.queue_id
                   JOIN messages m ON m.id = e.message_id
                   JOIN blobs b ON b.blob_key = m.blob_key
                  ORDER BY c.id",
            )
            .bind(limit)
            .bind(seconds(lease_time))
            .fetch_all(&self.pool)
            .await?)
        })
        .await
    }

    /// Extends a lease that is still held (long deliveries renew before it runs out).
    pub async fn renew(&self, lease: Lease, lease_time: Duration) -> Result<(), LeaseError> {
        let done = sqlx::query(
            "UPDATE queue_recipients
                SET next_attempt_at = now() + make_interval(secs => $3),
                    leased_until = now() + make_interval(secs => $3), updated_at = now()
              WHERE id = $1 AND epoch = $2 AND (state || '') = 'queued'",
        )
        .bind(lease.recipient_id)
        .bind(lease.epoch)
        .bind(seconds(lease_time))
        .execute(&self.pool)
        .await?;
        fenced(lease, done.rows_affected())
    }

    /// The recipient was delivered.
    pub async fn delivered(&self, lease: Lease) -> Result<(), LeaseError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueFinish, async move {
            mark_delivered(&self.pool, lease).await
        })
        .await
    }

    /// The recipient was delivered, and these new entries (its forwards to remote addresses)
    /// are queued in the same transaction: a fenced worker queues nothing, and a crash before
    /// the commit leaves the recipient to be tried again with nothing queued twice.
    pub async fn delivered_with(
        &self,
        lease: Lease,
        entries: &[NewEntry],
    ) -> Result<(), LeaseError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueFinish, async move {
            if entries.is_empty() {
                return mark_delivered(&self.pool, lease).await;
            }
            let mut transaction = self.pool.begin().await?;
            let written = match mark_delivered(&mut *transaction, lease).await {
                Ok(()) => crate::batch::enqueue(&mut *transaction, entries)
                    .await
                    .map_err(LeaseError::from),
                Err(error) => Err(error),
            };
            finish(transaction, written).await
        })
        .await
    }

    /// A temporary failure: try again after `retry_in`.
    pub async fn defer(
        &self,
        lease: Lease,
        error: &str,
        retry_in: Duration,
    ) -> Result<(), LeaseError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueFinish, async move {
            let done = sqlx::query(
                "UPDATE queue_recipients
                    SET next_attempt_at = now() + make_interval(secs => $4), last_error = $3,
                        leased_until = NULL,
                        updated_at = now()
                  WHERE id = $1 AND epoch = $2 AND (state || '') = 'queued'",
            )
            .bind(lease.recipient_id)
            .bind(lease.epoch)
            .bind(error)
            .bind(seconds(retry_in))
            .execute(&self.pool)
            .await?;
            fenced(lease, done.rows_affected())
        })
        .await
    }

    /// A transaction in which the lease is known to hold until it ends: the recipient row is
    /// share-locked with its epoch checked, so no other worker can claim it meanwhile (claims
    /// skip locked rows). Writes made for the recipient elsewhere (mailbox copies) go in here,
    /// so a worker that lost its lease writes nothing. The caller must commit or roll back
    /// explicitly: a dropped transaction keeps its lock until its connection is next used.
    pub async fn begin_fenced(
        &self,
        lease: Lease,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, LeaseError> {
        let mut transaction = self.pool.begin().await?;
        let held: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM queue_recipients
              WHERE id = $1 AND epoch = $2 AND (state || '') = 'queued'
                FOR SHARE",
        )
        .bind(lease.recipient_id)
        .bind(lease.epoch)
        .fetch_optional(&mut *transaction)
        .await?;
        if held.is_none() {
            let _ = transaction.rollback().await;
            return Err(LeaseError::Fenced(Fenced::of(lease)));
        }
        Ok(transaction)
    }

    /// A transaction holding the leases of `leases` that still hold (share-locked with their
    /// epochs checked, in id order), and which those are: `begin_fenced` for many recipients.
    /// Commit or roll back explicitly.
    pub async fn begin_fenced_many(
        &self,
        leases: &[Lease],
    ) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, Vec<Lease>), QueueError> {
        let mut sorted = leases.to_vec();
        sorted.sort_by_key(|l| l.recipient_id);
        let ids: Vec<i64> = sorted.iter().map(|l| l.recipient_id).collect();
        let epochs: Vec<i64> = sorted.iter().map(|l| l.epoch).collect();
        let mut transaction = self.pool.begin().await?;
        let held: Result<Vec<(i64, i64)>, sqlx::Error> = sqlx::query_as(
            "SELECT r.id, r.epoch FROM queue_recipients r
               JOIN unnest($1::bigint[], $2::bigint[]) AS l(id, epoch)
                 ON r.id = l.id AND r.epoch = l.epoch
              WHERE (r.state || '') = 'queued'
              ORDER BY r.id
                FOR SHARE OF r",
        )
        .bind(&ids)
        .bind(&epochs)
        .fetch_all(&mut *transaction)
        .await;
        match held {
            Ok(held) => Ok((
                transaction,
                held.into_iter()
                    .map(|(recipient_id, epoch)| Lease {
                        recipient_id,
                        epoch,
                    })
                    .collect(),
            )),
            Err(error) => {
                let _ = transaction.rollback().await;
                Err(error.into())
            }
        }
    }

    /// Marks held recipients delivered inside the caller's transaction (from
    /// `begin_fenced_many`); returns how many rows changed.
    pub async fn delivered_in(
        connection: &mut sqlx::PgConnection,
        leases: &[Lease],
    ) -> Result<u64, QueueError> {
        let ids: Vec<i64> = leases.iter().map(|l| l.recipient_id).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let done = sqlx::query(
            "UPDATE queue_recipients r
                SET state = 'delivered', last_error = NULL, leased_until = NULL, updated_at = now()
               FROM unnest($1::bigint[], $2::bigint[]) AS l(id, epoch)
              WHERE r.id = l.id AND r.epoch = l.epoch AND (r.state || '') = 'queued'",
        )
        .bind(&ids)
        .bind(&epochs)
        .execute(connection)
        .await?;
        Ok(done.rows_affected())
    }

    /// A permanent failure without a bounce (see [`Queue::failed_with_bounce`] for one).
    pub async fn failed(&self, lease: Lease, error: &str) -> Result<(), LeaseError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueFinish, async move {
            mark_failed(&self.pool, lease, error).await
        })
        .await
    }

    /// A permanent failure and its bounce, in one transaction: the notification (whose body the
    /// caller already stored) is queued only if this worker still holds the lease, and a fenced
    /// worker queues nothing. A crash in between leaves neither.
    pub async fn failed_with_bounce(
        &self,
        lease: Lease,
        error: &str,
        bounce: &NewEntry,
    ) -> Result<(), LeaseError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::QueueFinish, async move {
            let mut transaction = self.pool.begin().await?;
            let written = match mark_failed(&mut *transaction, lease, error).await {
                Ok(()) => crate::batch::enqueue(&mut *transaction, std::slice::from_ref(bounce))
                    .await
                    .map_err(LeaseError::from),
                Err(error) => Err(error),
            };
            finish(transaction, written).await
        })
        .await
    }
}
