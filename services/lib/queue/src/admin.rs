//! Queue administration (what `mailctl queue …` reaches through the admin API): list and show
//! entries, make recipients due now, remove entries one by one or by filter, and counters.
//!
//! Safe beside running workers, by the rules of [`crate::lease`]: nothing here bumps an epoch or
//! takes a recipient away from the worker that holds it.
//! - A retry moves `next_attempt_at` only of recipients nobody holds (`leased_until` unset or
//!   past): one in flight is left to its worker, which records its own outcome (and the retry
//!   says how many it skipped).
//! - A removal deletes the entry with its recipient rows. A worker holding a lease on one of them
//!   then finds its fenced writes hitting zero rows ([`crate::lease::Fenced`]): it records
//!   nothing and queues no bounce, though a remote delivery already under way may still reach
//!   its destination (as with the reference's "clear queue"). A fenced mailbox copy share-locks
//!   its recipient row until it commits, so a removal waits for it and the copy stays delivered.
//! - Removal is silent: no bounce or DSN is sent to anyone (as with the reference's queue delete).
//! - Bodies are never deleted here. A removed entry's message is referenced by nothing (unless a
//!   mailbox holds a copy), so the [`crate::collector`] takes it, and then its blob, once its
//!   grace period has passed; a worker still delivering it can read it until then.
//!
//! Listing order is the queue id's: UUIDv7, i.e. time-ordered as accepted, and indexed.

use crate::{Queue, QueueError};
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;

/// Entries listed when the caller names no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Most entries one listing returns.
pub const MAX_LIST_LIMIT: u32 = 10_000;
/// Longest sender or domain filter accepted (an address is at most 254 octets).
pub const MAX_FILTER_LEN: usize = 320;
/// Entries a purge removes per transaction: bounds how long its locks are held.
const PURGE_CHUNK: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no queue entry {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for AdminError {
    fn from(error: sqlx::Error) -> Self {
        Self::Queue(QueueError::Database(error))
    }
}

/// Where a recipient is: waiting (`queued`), done (`delivered`, `failed`), or set aside (`held`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientState {
    Queued,
    Delivered,
    Failed,
    Held,
}

impl RecipientState {
    pub const ALL: [Self; 4] = [Self::Queued, Self::Delivered, Self::Failed, Self::Held];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Held => "held",
        }
    }

    pub fn parse(text: &str) -> Result<Self, QueueError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                QueueError::Invalid(format!(
                    "unknown recipient state {text:?} (queued, delivered, failed or held)"
                ))
            })
    }
}

/// Which entries an operation applies to; `None` (or empty) matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A case-insensitive part of the sender address; `<>` matches the null sender only.
    pub sender: Option<String>,
    /// Entries with a recipient in this domain (exactly, case-insensitively; `@` may lead).
    pub domain: Option<String>,
}

impl Filter {
    /// The filter as bound to [`matching!`]: `(sender, domain)`, blanks dropped, bounds checked.
    fn bound(&self) -> Result<(Option<&str>, Option<&str>), QueueError> {
        let domain = clean(self.domain.as_deref(), "domain")?
            .map(|d| d.trim_start_matches('@'))
            .filter(|d| !d.is_empty());
        Ok((clean(self.sender.as_deref(), "sender")?, domain))
    }
}

/// A filter value trimmed, `None` when blank, refused when longer than [`MAX_FILTER_LEN`].
fn clean<'a>(value: Option<&'a str>, name: &str) -> Result<Option<&'a str>, QueueError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > MAX_FILTER_LEN => Err(QueueError::Invalid(format!(
            "the {name} filter is longer than {MAX_FILTER_LEN} bytes"
        ))),
        value => Ok(value),
    }
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub filter: Filter,
    /// Only entries with a recipient in this state (the domain filter then applies to such a
    /// recipient); `None` lists every entry, finished ones housekeeping has not removed yet
    /// included. Default: `queued`, i.e. what is still waiting.
    pub state: Option<RecipientState>,
    pub oldest_first: bool,
    /// 1..=[`MAX_LIST_LIMIT`]; default [`DEFAULT_LIST_LIMIT`].
    pub limit: Option<u32>,
}

impl Default for ListRequest {
    fn default() -> Self {
        Self {
            filter: Filter::default(),
            state: Some(RecipientState::Queued),
            oldest_first: false,
            limit: None,
        }
    }
}

/// Recipients of an entry by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub queued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub held: u64,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    pub id: Uuid,
    /// Empty for the null reverse-path `<>`.
    pub sender: String,
    pub received_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub size_bytes: u64,
    pub recipients: StateCounts,
    /// Waiting recipients a worker holds right now.
    pub in_flight: u64,
    /// The earliest next attempt of a waiting recipient.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The error of the most recently tried waiting recipient that has one.
    pub last_error: Option<String>,
    /// The most attempts any recipient has had.
    pub attempts: u32,
}

/// One recipient of an entry, as [`Queue::show`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientDetail {
    pub id: i64,
    pub address: String,
    pub state: RecipientState,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    /// A worker holds it (its lease has not run out).
    pub in_flight: bool,
    pub dsn_notify: Option<String>,
}

/// An entry with every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDetail {
    pub id: Uuid,
    pub sender: String,
    pub client_ip: Option<IpAddr>,
    pub client_helo: Option<String>,
    pub auth_user: Option<String>,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    pub received_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub size_bytes: u64,
    pub recipients: Vec<RecipientDetail>,
}

/// What a retry did to the waiting recipients it was aimed at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retried {
    /// Made due now (they were waiting for a later attempt).
    pub rescheduled: u64,
    /// Due already; left as they were.
    pub already_due: u64,
    /// Held by a worker; left to it.
    pub in_flight: u64,
}

/// What a removal or purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub recipients: u64,
    /// Recipients that were still queued or held: they will never be delivered.
    pub undelivered: u64,
}

/// Counters of the waiting recipients, for metrics and `mailctl queue stats`. The three
/// recipient counts do not overlap: `queued = fresh + deferred + in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued_recipients: u64,
    /// Tried at least once and waiting for the next attempt (not in flight).
    pub deferred_recipients: u64,
    /// Held by a worker right now.
    pub in_flight: u64,
    /// Age of the oldest entry with a waiting recipient; `None` when nothing waits.
    pub oldest_queued_age_secs: Option<u64>,
}

/// The condition on `queue_entries e` shared by listing and purging: `$1` sender filter, and a
/// recipient in state `$2` and domain `$3` (each NULL for any).
macro_rules! matching {
    () => {
        "($1::text IS NULL
              OR CASE WHEN $1 = '<>' THEN e.sender = ''
                      ELSE strpos(lower(e.sender), lower($1)) > 0 END)
         AND (($2::text IS NULL AND $3::text IS NULL) OR EXISTS (
              SELECT 1 FROM queue_recipients r
               WHERE r.queue_id = e.id
                 AND ($2::text IS NULL OR r.state = $2)
                 AND ($3::text IS NULL
                      OR lower(right(r.address, length($3) + 1)) = '@' || lower($3))))"
    };
}

/// The summary of each entry in `chosen (id)`.
macro_rules! summaries {
    () => {
        "SELECT e.id, e.sender, e.received_at, e.expires_at, m.size_bytes,
                count(q.id) FILTER (WHERE q.state = 'queued') AS queued,
                count(q.id) FILTER (WHERE q.state = 'delivered') AS delivered,
                count(q.id) FILTER (WHERE q.state = 'failed') AS failed,
                count(q.id) FILTER (WHERE q.state = 'held') AS held,
                count(q.id) FILTER (WHERE q.state = 'queued' AND q.leased_until > now())
                    AS in_flight,
                min(q.next_attempt_at) FILTER (WHERE q.state = 'queued') AS next_attempt_at,
                (array_agg(q.last_error ORDER BY q.last_attempt_at DESC NULLS LAST)
                    FILTER (WHERE q.state = 'queued' AND q.last_error IS NOT NULL))[1]
                    AS last_error,
                coalesce(max(q.attempts), 0) AS attempts
           FROM chosen c
           JOIN queue_entries e ON e.id = c.id
           JOIN messages m ON m.id = e.message_id
           LEFT JOIN queue_recipients q ON q.queue_id = e.id
          GROUP BY e.id, m.size_bytes"
    };
}

const LIST_NEWEST_FIRST: &str = concat!(
    "WITH chosen AS (SELECT e.id FROM queue_entries e WHERE ",
    matching!(),
    " ORDER BY e.id DESC LIMIT $4) ",
    summaries!(),
    " ORDER BY e.id DESC"
);

const LIST_OLDEST_FIRST: &str = concat!(
    "WITH chosen AS (SELECT e.id FROM queue_entries e WHERE ",
    matching!(),
    " ORDER BY e.id LIMIT $4) ",
    summaries!(),
    " ORDER BY e.id"
);

/// The next chunk of a purge: entries that existed when it began (`$4`), locked; entries another
/// removal holds are skipped rather than waited for.
const PURGE_CHUNK_IDS: &str = concat!(
    "SELECT e.id FROM queue_entries e WHERE e.received_at <= $4 AND ",
    matching!(),
    " ORDER BY e.id LIMIT $5 FOR UPDATE OF e SKIP LOCKED"
);

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    sender: String,
    received_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    size_bytes: i64,
    queued: i64,
    delivered: i64,
    failed: i64,
    held: i64,
    in_flight: i64,
    next_attempt_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    attempts: i32,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: Uuid,
    sender: String,
    client_ip: Option<ipnet::IpNet>,
    client_helo: Option<String>,
    auth_user: Option<String>,
    dsn_ret: Option<String>,
    dsn_envid: Option<String>,
    received_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    size_bytes: i64,
}

#[derive(sqlx::FromRow)]
struct RecipientRow {
    id: i64,
    address: String,
    state: String,
    attempts: i32,
    next_attempt_at: OffsetDateTime,
    last_attempt_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    in_flight: bool,
    dsn_notify: Option<String>,
}

/// A count from SQL (never negative) as the unsigned number it is.
fn count(n: impl TryInto<u64>) -> u64 {
    n.try_into().unwrap_or(0)
}

impl Queue {
    /// Entries matching `request`, newest first unless asked otherwise.
    pub async fn list(&self, request: &ListRequest) -> Result<Vec<QueueSummary>, QueueError> {
        let limit = request.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Err(QueueError::Invalid(format!(
                "the limit must be between 1 and {MAX_LIST_LIMIT}"
            )));
        }
        let (sender, domain) = request.filter.bound()?;
        let sql = if request.oldest_first {
            LIST_OLDEST_FIRST
        } else {
            LIST_NEWEST_FIRST
        };
        let rows: Vec<SummaryRow> = sqlx::query_as(sql)
            .bind(sender)
            .bind(request.state.map(RecipientState::as_str))
            .bind(domain)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| QueueSummary {
                id: row.id,
                sender: row.sender,
                received_at: row.received_at,
                expires_at: row.expires_at,
                size_bytes: count(row.size_bytes),
                recipients: StateCounts {
                    queued: count(row.queued),
                    delivered: count(row.delivered),
                    failed: count(row.failed),
                    held: count(row.held),
                },
                in_flight: count(row.in_flight),
                next_attempt_at: row.next_attempt_at,
                last_error: row.last_error,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
            })
            .collect())
    }

    /// One entry with all its recipients (in RCPT order), or `None` if there is no such entry.
    pub async fn show(&self, id: Uuid) -> Result<Option<QueueDetail>, QueueError> {
        let entry: Option<EntryRow> = sqlx::query_as(
            "SELECT e.id, e.sender, e.client_ip, e.client_helo, e.auth_user, e.dsn_ret,
                    e.dsn_envid, e.received_at, e.expires_at, m.size_bytes
               FROM queue_entries e JOIN messages m ON m.id = e.message_id
              WHERE e.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let rows: Vec<RecipientRow> = sqlx::query_as(
            "SELECT id, address, state, attempts, next_attempt_at, last_attempt_at, last_error,
                    coalesce(leased_until > now(), false) AS in_flight, dsn_notify
               FROM queue_recipients WHERE queue_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut recipients = Vec::with_capacity(rows.len());
        for row in rows {
            recipients.push(RecipientDetail {
                id: row.id,
                address: row.address,
                state: RecipientState::parse(&row.state)?,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                next_attempt_at: row.next_attempt_at,
                last_attempt_at: row.last_attempt_at,
                last_error: row.last_error,
                in_flight: row.in_flight,
                dsn_notify: row.dsn_notify,
            });
        }
        Ok(Some(QueueDetail {
            id: entry.id,
            sender: entry.sender,
            client_ip: entry.client_ip.map(|net| net.addr()),
            client_helo: entry.client_helo,
            auth_user: entry.auth_user,
            dsn_ret: entry.dsn_ret,
            dsn_envid: entry.dsn_envid,
            received_at: entry.received_at,
            expires_at: entry.expires_at,
            size_bytes: count(entry.size_bytes),
            recipients,
        }))
    }

    /// Makes the waiting recipients of entry `id` (of every entry with `None`) due now, except
    /// those a worker holds. Nothing else changes: not the epoch, not the attempts.
    pub async fn retry(&self, id: Option<Uuid>) -> Result<Retried, AdminError> {
        // The outer SELECT reads the snapshot from before the UPDATE (a data-modifying CTE's
        // changes are not visible to its own statement), so the counts do not overlap.
        let (rescheduled, already_due, in_flight, found): (i64, i64, i64, bool) = sqlx::query_as(
            "WITH made_due AS (
                 UPDATE queue_recipients SET next_attempt_at = now()
                  WHERE state = 'queued' AND ($1::uuid IS NULL OR queue_id = $1)
                    AND (leased_until IS NULL OR leased_until < now())
                    AND next_attempt_at > now()
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM made_due),
                    count(*) FILTER (WHERE (leased_until IS NULL OR leased_until < now())
                                       AND next_attempt_at <= now()),
                    count(*) FILTER (WHERE NOT (leased_until IS NULL OR leased_until < now())),
                    $1::uuid IS NULL OR EXISTS (SELECT 1 FROM queue_entries WHERE id = $1)
               FROM queue_recipients
              WHERE state = 'queued' AND ($1::uuid IS NULL OR queue_id = $1)",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        match (found, id) {
            (false, Some(id)) => Err(AdminError::NotFound(id)),
            _ => Ok(Retried {
                rescheduled: count(rescheduled),
                already_due: count(already_due),
                in_flight: count(in_flight),
            }),
        }
    }

    /// Removes entry `id` with all its recipients, silently (no bounce). See the module docs for
    /// what happens to a worker delivering it and to its body.
    pub async fn remove(&self, id: Uuid) -> Result<Removed, AdminError> {
        let mut transaction = self.pool().begin().await?;
        let locked: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM queue_entries WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *transaction)
                .await?;
        if locked.is_none() {
            let _ = transaction.rollback().await;
            return Err(AdminError::NotFound(id));
        }
        let removed = delete_entries(&mut transaction, &[id]).await?;
        transaction.commit().await?;
        Ok(removed)
    }

    /// Removes, silently, every entry that still has a waiting recipient and matches `filter`
    /// (the domain filter then applies to a waiting recipient); with an empty filter, everything
    /// that waits. Works in chunks of its own transactions, on the entries that existed when it
    /// began: what arrives meanwhile stays, and so does what another removal holds locked.
    pub async fn purge(&self, filter: &Filter) -> Result<Removed, QueueError> {
        let (sender, domain) = filter.bound()?;
        let began: OffsetDateTime = sqlx::query_scalar("SELECT now()")
            .fetch_one(self.pool())
            .await?;
        let mut total = Removed::default();
        loop {
            let mut transaction = self.pool().begin().await?;
            let ids: Vec<Uuid> = sqlx::query_scalar(PURGE_CHUNK_IDS)
                .bind(sender)
                .bind(RecipientState::Queued.as_str())
                .bind(domain)
                .bind(began)
                .bind(PURGE_CHUNK)
                .fetch_all(&mut *transaction)
                .await?;
            let removed = delete_entries(&mut transaction, &ids).await?;
            transaction.commit().await?;
            total.entries += removed.entries;
            total.recipients += removed.recipients;
            total.undelivered += removed.undelivered;
            if (ids.len() as i64) < PURGE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Counters of the waiting recipients (see [`QueueStats`]).
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        // The oldest waiting entry is found along the primary key (time-ordered ids), which
        // stops at the first match instead of reading every entry.
        let (queued, deferred, in_flight, oldest): (i64, i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE attempts > 0
                                       AND (leased_until IS NULL OR leased_until <= now())),
                    count(*) FILTER (WHERE leased_until > now()),
                    (SELECT extract(epoch FROM now() - e.received_at)::bigint
                       FROM queue_entries e
                      WHERE EXISTS (SELECT 1 FROM queue_recipients r
                                     WHERE r.queue_id = e.id AND r.state = 'queued')
                      ORDER BY e.id LIMIT 1)
               FROM queue_recipients WHERE state = 'queued'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(QueueStats {
            queued_recipients: count(queued),
            deferred_recipients: count(deferred),
            in_flight: count(in_flight),
            oldest_queued_age_secs: oldest.map(|age| count(age.max(0))),
        })
    }
}

/// Deletes entries (locked by the caller) and their recipients, counting what went. Recipient
/// rows go first and explicitly, so the count is of rows really deleted: a recipient whose
/// fenced mailbox copy was committing is waited for and counted in its final state. They are
/// locked in id order first, the order in which workers share-lock a batch of them
/// (`begin_fenced_many`): in any other order a purge and a worker could deadlock.
async fn delete_entries(
    transaction: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ids: &[Uuid],
) -> Result<Removed, QueueError> {
    if ids.is_empty() {
        return Ok(Removed::default());
    }
    sqlx::query("SELECT id FROM queue_recipients WHERE queue_id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(&mut **transaction)
        .await?;
    let (recipients, undelivered): (i64, i64) = sqlx::query_as(
        "WITH gone AS (DELETE FROM queue_recipients WHERE queue_id = ANY($1) RETURNING state)
         SELECT count(*), count(*) FILTER (WHERE state IN ('queued', 'held')) FROM gone",
    )
    .bind(ids)
    .fetch_one(&mut **transaction)
    .await?;
    let entries = sqlx::query("DELETE FROM queue_entries WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut **transaction)
        .await?
        .rows_affected();
    Ok(Removed {
        entries,
        recipients: count(recipients),
        undelivered: count(undelivered),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_case_insensitively_and_unknown_ones_are_refused() {
        for state in RecipientState::ALL {
            assert_eq!(
                RecipientState::parse(&state.as_str().to_uppercase()).ok(),
                Some(state)
            );
        }
        assert!(matches!(
            RecipientState::parse("deferred"),
            Err(QueueError::Invalid(_))
        ));
    }

    #[test]
    fn filters_drop_blanks_and_a_leading_at_and_refuse_overlong_values() {
        let filter = Filter {
            sender: Some("  ".into()),
            domain: Some(" @Example.org ".into()),
        };
        assert_eq!(filter.bound().ok(), Some((None, Some("Example.org"))));
        let overlong = Filter {
            sender: Some("x".repeat(MAX_FILTER_LEN + 1)),
            domain: None,
        };
        assert!(matches!(overlong.bound(), Err(QueueError::Invalid(_))));
    }
}
