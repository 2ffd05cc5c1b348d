//! The messages of one mailbox as IMAP and POP3 sessions read and change them: the snapshot a
//! SELECT starts from, the changes since a MODSEQ (how a session on any replica learns what
//! others did), FETCH rows, STORE, EXPUNGE, COPY/MOVE and APPEND.
//!
//! Every change takes the mailbox row's lock, bumps its `highest_modseq` once and stamps the rows
//! it touches with that MODSEQ; expunged UIDs are recorded in `mailbox_expunges` with theirs.
//! So `modseq > n` finds everything that happened after a session's last look (RFC 7162), and
//! UIDs stay strictly ascending because they are allocated under the same lock.

use crate::Mailstore;
use crate::mailboxes::MailboxError;
use time::OffsetDateTime;

/// What a session keeps of each message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageState {
    pub uid: i64,
    pub flags: Vec<String>,
    pub modseq: i64,
}

/// A mailbox's state at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub highest_modseq: i64,
    pub uid_next: i64,
    pub uid_validity: i64,
    pub messages: Vec<MessageState>,
}

/// What changed after a MODSEQ: rows changed or added (by UID), UIDs expunged.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub highest_modseq: i64,
    pub changed: Vec<MessageState>,
    pub expunged: Vec<i64>,
}

/// Everything FETCH may need of one message except its body.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FetchRow {
    pub uid: i64,
    pub flags: Vec<String>,
    pub modseq: i64,
    pub internal_date: OffsetDateTime,
    pub size_bytes: i64,
    pub message_id: i64,
    pub blob_key: String,
    pub blob_offset: i64,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    Add,
    Remove,
    Replace,
}

/// Messages copied: `(source uid, new uid)` pairs, in source order.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub uid_validity: i64,
    pub uids: Vec<(i64, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("mailbox over quota")]
    OverQuota,
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl mc_runtime::store_metrics::StoreOutcome for StoreError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::OverQuota => mc_runtime::store_metrics::Outcome::Ok,
            Self::Mailbox(error) => error.store_outcome(),
            Self::Database(error) => error.store_outcome(),
        }
    }
}

type Transaction<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

impl Mailstore {
    /// The state a SELECT starts from, read in one consistent snapshot.
    pub async fn snapshot(&self, mailbox_id: i64) -> Result<Snapshot, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MailboxSync, async move {
            let mut transaction = self.pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *transaction)
                .await?;
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT highest_modseq, uid_next, uid_validity FROM mailboxes WHERE id = $1",
            )
            .bind(mailbox_id)
            .fetch_optional(&mut *transaction)
            .await?;
            let (highest_modseq, uid_next, uid_validity) = row.ok_or(MailboxError::NotFound)?;
            let messages = sqlx::query_as(
                "SELECT uid, flags, modseq FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
            )
            .bind(mailbox_id)
            .fetch_all(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(Snapshot {
                highest_modseq,
                uid_next,
                uid_validity,
                messages,
            })
        })
        .await
    }

    /// Everything that happened after `since` (a MODSEQ the session saw), consistently.
    /// `Err(NotFound)` when the mailbox is gone (deleted or renamed away).
    pub async fn changes_since(&self, mailbox_id: i64, since: i64) -> Result<Changes, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MailboxSync, async move {
            let mut transaction = self.pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *transaction)
                .await?;
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT highest_modseq FROM mailboxes WHERE id = $1")
                    .bind(mailbox_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
            let (highest_modseq,) = row.ok_or(MailboxError::NotFound)?;
            if highest_modseq <= since {
                transaction.commit().await?;
                return Ok(Changes {
                    highest_modseq,
                    ..Changes::default()
                });
            }
            let changed = sqlx::query_as(
                "SELECT uid, flags, modseq FROM mailbox_messages
                  WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            )
            .bind(mailbox_id)
            .bind(since)
            .fetch_all(&mut *transaction)
            .await?;
            let expunged: Vec<(i64,)> = sqlx::query_as(
                "SELECT uid FROM mailbox_expunges WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            )
            .bind(mailbox_id)
            .bind(since)
            .fetch_all(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(Changes {
                highest_modseq,
                changed,
                expunged: expunged.into_iter().map(|(uid,)| uid).collect(),
            })
        })
        .await
    }

    /// The FETCH rows of these UIDs (those still present), by UID.
    pub async fn fetch_rows(
        &self,
        mailbox_id: i64,
        uids: &[i64],
    ) -> Result<Vec<FetchRow>, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageFetch, async move {
            Ok(sqlx::query_as(
                "SELECT mm.uid, mm.flags, mm.modseq, mm.internal_date, mm.size_bytes, mm.message_id,
                        m.blob_key, m.blob_offset, m.metadata
                   FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                  WHERE mm.mailbox_id = $1 AND mm.uid = ANY($2) ORDER BY mm.uid",
            )
            .bind(mailbox_id)
            .bind(uids)
            .fetch_all(&self.pool)
            .await?)
        })
        .await
    }

    /// Keeps the metadata parsed from a body that had none (stored once, for every copy).
    pub async fn set_metadata(
        &self,
        message_id: i64,
        metadata: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE messages SET metadata = $2 WHERE id = $1 AND metadata IS NULL")
            .bind(message_id)
            .bind(metadata)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// STORE: changes the flags of these UIDs. Only rows whose flags really change get the new
    /// MODSEQ; with `unchanged_since` (CONDSTORE) rows modified after it are left alone and
    /// returned in the second list. Returns the rows as they are now.
    pub async fn store_flags(
        &self,
        mailbox_id: i64,
        uids: &[i64],
        change: FlagChange,
        flags: &[String],
        unchanged_since: Option<i64>,
    ) -> Result<(Vec<MessageState>, Vec<i64>), StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageUpdate, async move {
            let mut transaction = self.pool.begin().await?;
            let modseq = bump_modseq(&mut transaction, mailbox_id).await?;
            let new_flags = match change {
                FlagChange::Add => {
                    "ARRAY(SELECT DISTINCT f FROM unnest(flags || $3::text[]) f ORDER BY f)"
                }
                FlagChange::Remove => {
                    "ARRAY(SELECT f FROM unnest(flags) f WHERE f <> ALL($3::text[]) ORDER BY f)"
                }
                FlagChange::Replace => "ARRAY(SELECT DISTINCT f FROM unnest($3::text[]) f ORDER BY f)",
            };
            let updated: Vec<MessageState> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "WITH target AS (
                     SELECT id, {new_flags} AS new_flags FROM mailbox_messages
                      WHERE mailbox_id = $1 AND uid = ANY($2) AND ($5::bigint IS NULL OR modseq <= $5)
                      FOR UPDATE
                 )
                 UPDATE mailbox_messages mm SET flags = t.new_flags, modseq = $4
                   FROM target t
                  WHERE mm.id = t.id AND NOT (mm.flags @> t.new_flags AND t.new_flags @> mm.flags)
                 RETURNING mm.uid, mm.flags, mm.modseq"
            )))
            .bind(mailbox_id)
            .bind(uids)
            .bind(flags)
            .bind(modseq)
            .bind(unchanged_since)
            .fetch_all(&mut *transaction)
            .await?;
            let refused: Vec<(i64,)> = match unchanged_since {
                Some(since) => {
                    sqlx::query_as(
                        "SELECT uid FROM mailbox_messages
                          WHERE mailbox_id = $1 AND uid = ANY($2) AND modseq > $3 AND modseq <> $4
                          ORDER BY uid",
                    )
                    .bind(mailbox_id)
                    .bind(uids)
                    .bind(since)
                    .bind(modseq)
                    .fetch_all(&mut *transaction)
                    .await?
                }
                None => Vec::new(),
            };
            if updated.is_empty() {
                // Nothing changed: the MODSEQ bump is rolled back with the transaction.
                transaction.rollback().await?;
            } else {
                transaction.commit().await?;
            }
            Ok((updated, refused.into_iter().map(|(uid,)| uid).collect()))
        })
        .await
    }

    /// EXPUNGE (or UID EXPUNGE with `uids`): removes the messages flagged `\Deleted`, gives
    /// their quota back and records their UIDs. Returns the expunged UIDs, ascending.
    pub async fn expunge(
        &self,
        account_id: i64,
        mailbox_id: i64,
        uids: Option<&[i64]>,
    ) -> Result<Vec<i64>, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageUpdate, async move {
            let mut transaction = self.pool.begin().await?;
            let modseq = bump_modseq(&mut transaction, mailbox_id).await?;
            let gone = expunge_in(
                &mut transaction,
                account_id,
                mailbox_id,
                modseq,
                uids,
                Cleanup::Deleted,
            )
            .await?;
            if gone.is_empty() {
                transaction.rollback().await?;
            } else {
                transaction.commit().await?;
            }
            Ok(gone)
        })
        .await
    }

    /// Removes these messages whatever their flags (POP3 DELE applied at QUIT), giving their
    /// quota back and recording their UIDs as expunged. Returns the UIDs removed.
    pub async fn remove(
        &self,
        account_id: i64,
        mailbox_id: i64,
        uids: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageUpdate, async move {
            let mut transaction = self.pool.begin().await?;
            let modseq = bump_modseq(&mut transaction, mailbox_id).await?;
            let gone = expunge_in(
                &mut transaction,
                account_id,
                mailbox_id,
                modseq,
                Some(uids),
                Cleanup::AnyFlags,
            )
            .await?;
            transaction.commit().await?;
            Ok(gone)
        })
        .await
    }

    /// `(uid, size)` of every message of a mailbox, ascending (a POP3 maildrop listing).
    pub async fn listing(&self, mailbox_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageFetch, async move {
            Ok(sqlx::query_as(
                "SELECT uid, size_bytes FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
            )
            .bind(mailbox_id)
            .fetch_all(&self.pool)
            .await?)
        })
        .await
    }

    /// COPY, or MOVE when `move_`: new rows in `target` for these UIDs, in UID order, with new
    /// UIDs (RFC 4315 COPYUID) and the flags they had; MOVE expunges the sources in the same
    /// transaction (RFC 6851). Refused when the account's quota would be exceeded.
    pub async fn copy(
        &self,
        account_id: i64,
        source: i64,
        uids: &[i64],
        target: i64,
        move_: bool,
    ) -> Result<Copied, StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageAppend, async move {
            let mut transaction = self.pool.begin().await?;
            // Lock in id order so that two copies in opposite directions cannot deadlock.
            sqlx::query("SELECT id FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind([source, target])
                .execute(&mut *transaction)
                .await?;
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT uid, size_bytes FROM mailbox_messages
                  WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
            )
            .bind(source)
            .bind(uids)
            .fetch_all(&mut *transaction)
            .await?;
            if rows.is_empty() {
                transaction.rollback().await?;
                return Ok(Copied::default());
            }
            let total: i64 = rows.iter().map(|(_, size)| size).sum();
            if !move_ {
                charge(&mut transaction, account_id, total).await?;
            }
            let count = rows.len() as i64;
            let (first_uid, modseq, uid_validity): (i64, i64, i64) = sqlx::query_as(
                "UPDATE mailboxes SET uid_next = uid_next + $2, highest_modseq = highest_modseq + 1
                  WHERE id = $1 RETURNING uid_next - $2, highest_modseq, uid_validity",
            )
            .bind(target)
            .bind(count)
            .fetch_one(&mut *transaction)
            .await?;
            let sources: Vec<i64> = rows.iter().map(|(uid, _)| *uid).collect();
            sqlx::query(
                "INSERT INTO mailbox_messages
                     (mailbox_id, uid, message_id, flags, modseq, internal_date, size_bytes)
                 SELECT $1, $3 + ordinality - 1, mm.message_id, mm.flags, $4, mm.internal_date, mm.size_bytes
                   FROM unnest($5::bigint[]) WITH ORDINALITY AS s(uid, ordinality)
                   JOIN mailbox_messages mm ON mm.mailbox_id = $2 AND mm.uid = s.uid",
            )
            .bind(target)
            .bind(source)
            .bind(first_uid)
            .bind(modseq)
            .bind(&sources)
            .execute(&mut *transaction)
            .await?;
            if move_ {
                let modseq = bump_modseq(&mut transaction, source).await?;
                expunge_in(
                    &mut transaction,
                    account_id,
                    source,
                    modseq,
                    Some(&sources),
                    Cleanup::Moved,
                )
                .await?;
            }
            transaction.commit().await?;
            Ok(Copied {
                uid_validity,
                uids: sources
                    .iter()
                    .zip(first_uid..)
                    .map(|(source, new)| (*source, new))
                    .collect(),
            })
        })
        .await
    }

    /// Inserts or refreshes the `blobs` row of a body about to be uploaded, so the collector
    /// leaves it alone (see the `blobs` table).
    pub async fn reserve_blob(&self, blob_key: &str, size_bytes: i64) -> Result<(), StoreError> {
        Ok(reserve_blob_row(&self.pool, blob_key, size_bytes).await?)
    }

    /// APPEND: a stored body becomes a message of the mailbox. The body must already be in the
    /// object store under `blob_key` (reserved in `blobs`). Returns `(uid_validity, uid)`.
    #[allow(clippy::too_many_arguments)]
    pub async fn append(
        &self,
        account_id: i64,
        mailbox_id: i64,
        blob_key: &str,
        size_bytes: i64,
        metadata: &serde_json::Value,
        flags: &[String],
        internal_date: OffsetDateTime,
    ) -> Result<(i64, i64), StoreError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::MessageAppend, async move {
            let mut transaction = self.pool.begin().await?;
            sqlx::query("SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE")
                .bind(mailbox_id)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or(MailboxError::NotFound)?;
            charge(&mut transaction, account_id, size_bytes).await?;
            let placed: (i64, i64) = sqlx::query_as(
                "WITH message AS (
                     INSERT INTO messages (blob_key, size_bytes, metadata) VALUES ($2, $3, $4)
                     RETURNING id
                 ), next AS (
                     UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                      WHERE id = $1 RETURNING uid_next - 1 AS uid, highest_modseq, uid_validity
                 ), placed AS (
                     INSERT INTO mailbox_messages
                         (mailbox_id, uid, message_id, flags, modseq, internal_date, size_bytes)
                     SELECT $1, next.uid, message.id, $5, next.highest_modseq, $6, $3
                       FROM next, message
                     RETURNING uid
                 )
                 SELECT next.uid_validity, placed.uid FROM next, placed",
            )
            .bind(mailbox_id)
            .bind(blob_key)
            .bind(size_bytes)
            .bind(metadata)
            .bind(flags)
            .bind(internal_date)
            .fetch_one(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok(placed)
        })
        .await
    }
}

/// Inserts or refreshes a `blobs` row before its object is uploaded (the queue's intake and
/// APPEND both write bodies this way).
pub async fn reserve_blob_row(
    pool: &sqlx::PgPool,
    blob_key: &str,
    size_bytes: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blobs (blob_key, size_bytes) VALUES ($1, $2)
         ON CONFLICT (blob_key) DO UPDATE SET last_referenced_at = now()",
    )
    .bind(blob_key)
    .bind(size_bytes)
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes the mailbox's lock and its next MODSEQ.
async fn bump_modseq(
    transaction: &mut Transaction<'_>,
    mailbox_id: i64,
) -> Result<i64, StoreError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1
         RETURNING highest_modseq",
    )
    .bind(mailbox_id)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.ok_or(MailboxError::NotFound)?.0)
}

/// Adds `bytes` to the account's usage, refusing when that passes its quota (0 = none).
async fn charge(
    transaction: &mut Transaction<'_>,
    account_id: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    let charged = sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes + $2
          WHERE id = $1 AND (quota_bytes = 0 OR used_bytes + $2 <= quota_bytes)",
    )
    .bind(account_id)
    .bind(bytes)
    .execute(&mut **transaction)
    .await?;
    if charged.rows_affected() == 0 {
        return Err(StoreError::OverQuota);
    }
    Ok(())
}

/// Which rows `expunge_in` removes, and whether their quota is given back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cleanup {
    /// EXPUNGE: only rows flagged `\Deleted`; quota given back.
    Deleted,
    /// POP3 deletions: any row; quota given back.
    AnyFlags,
    /// MOVE: any row; the copies made in the same transaction keep the quota charged.
    Moved,
}

/// Deletes rows and records them as expunged at `modseq` (see [`Cleanup`]).
async fn expunge_in(
    transaction: &mut Transaction<'_>,
    account_id: i64,
    mailbox_id: i64,
    modseq: i64,
    uids: Option<&[i64]>,
    cleanup: Cleanup,
) -> Result<Vec<i64>, StoreError> {
    let only_deleted = cleanup == Cleanup::Deleted;
    let credit = cleanup != Cleanup::Moved;
    let gone: Vec<(i64,)> = sqlx::query_as(
        "WITH gone AS (
             DELETE FROM mailbox_messages
              WHERE mailbox_id = $1 AND ($3::bigint[] IS NULL OR uid = ANY($3))
                AND (NOT $4 OR flags @> ARRAY['\\Deleted'])
             RETURNING uid, size_bytes
         ), recorded AS (
             INSERT INTO mailbox_expunges (mailbox_id, uid, modseq)
             SELECT $1, uid, $2 FROM gone
             ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq
         ), credited AS (
             UPDATE accounts SET used_bytes = greatest(0, used_bytes - (SELECT coalesce(sum(size_bytes), 0) FROM gone))
              WHERE id = $5 AND $6
         )
         SELECT uid FROM gone ORDER BY uid",
    )
    .bind(mailbox_id)
    .bind(modseq)
    .bind(uids)
    .bind(only_deleted)
    .bind(account_id)
    .bind(credit)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(gone.into_iter().map(|(uid,)| uid).collect())
}

/// RENAME INBOX: its messages move to a new mailbox `to`; INBOX stays, empty.
pub(crate) async fn move_all_in(
    transaction: &mut Transaction<'_>,
    account_id: i64,
    inbox: i64,
    to: &str,
) -> Result<(), MailboxError> {
    let (target,): (i64,) =
        sqlx::query_as("INSERT INTO mailboxes (account_id, name) VALUES ($1, $2) RETURNING id")
            .bind(account_id)
            .bind(to)
            .fetch_one(&mut **transaction)
            .await?;
    let uids: Vec<(i64,)> =
        sqlx::query_as("SELECT uid FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid")
            .bind(inbox)
            .fetch_all(&mut **transaction)
            .await?;
    if uids.is_empty() {
        return Ok(());
    }
    let count = uids.len() as i64;
    let (modseq,): (i64,) = sqlx::query_as(
        "UPDATE mailboxes SET uid_next = $2 + 1, highest_modseq = highest_modseq + 1
          WHERE id = $1 RETURNING highest_modseq",
    )
    .bind(target)
    .bind(count)
    .fetch_one(&mut **transaction)
    .await?;
    sqlx::query(
        "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, modseq, internal_date, size_bytes)
         SELECT $1, row_number() OVER (ORDER BY uid), message_id, flags, $3, internal_date, size_bytes
           FROM mailbox_messages WHERE mailbox_id = $2",
    )
    .bind(target)
    .bind(inbox)
    .bind(modseq)
    .execute(&mut **transaction)
    .await?;
    let (inbox_modseq,): (i64,) = sqlx::query_as(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
    )
    .bind(inbox)
    .fetch_one(&mut **transaction)
    .await?;
    sqlx::query(
        "WITH gone AS (DELETE FROM mailbox_messages WHERE mailbox_id = $1 RETURNING uid)
         INSERT INTO mailbox_expunges (mailbox_id, uid, modseq) SELECT $1, uid, $2 FROM gone
         ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq",
    )
    .bind(inbox)
    .bind(inbox_modseq)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
