//! `/api/v1/queue`: the delivery queue as operators see it (list, show, retry, remove, purge,
//! counters), over `mc_queue::admin`, which keeps every operation safe beside running workers.
//! Removal and purge are silent: no bounce goes to the sender.

use super::{AppState, Body, Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use mc_queue::admin::{self, Filter, ListRequest, RecipientState};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Where a recipient is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueRecipientState {
    Queued,
    Delivered,
    Failed,
    Held,
}

impl From<RecipientState> for QueueRecipientState {
    fn from(state: RecipientState) -> Self {
        match state {
            RecipientState::Queued => Self::Queued,
            RecipientState::Delivered => Self::Delivered,
            RecipientState::Failed => Self::Failed,
            RecipientState::Held => Self::Held,
        }
    }
}

/// Recipients of an entry by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueRecipientCounts {
    pub queued: u64,
    pub delivered: u64,
    pub failed: u64,
    pub held: u64,
}

/// One entry of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntry {
    #[schema(value_type = String, example = "01927f3c-5d2e-7a4b-9c1d-2e3f4a5b6c7d")]
    pub id: Uuid,
    /// Empty for the null reverse-path `<>`.
    pub sender: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// When the queue gives up and bounces.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub size_bytes: u64,
    pub recipients: QueueRecipientCounts,
    /// Waiting recipients a delivery worker holds right now.
    pub in_flight: u64,
    /// The earliest next attempt of a waiting recipient.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The error of the most recently tried waiting recipient that has one.
    pub last_error: Option<String>,
    /// The most attempts any recipient has had.
    pub attempts: u32,
}

/// One recipient of an entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueRecipient {
    pub address: String,
    pub state: QueueRecipientState,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    /// A delivery worker holds it: a retry leaves it alone.
    pub in_flight: bool,
    /// RFC 3461 NOTIFY given with RCPT TO.
    pub dsn_notify: Option<String>,
}

/// An entry with every recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntryDetail {
    #[schema(value_type = String, example = "01927f3c-5d2e-7a4b-9c1d-2e3f4a5b6c7d")]
    pub id: Uuid,
    /// Empty for the null reverse-path `<>`.
    pub sender: String,
    pub client_ip: Option<String>,
    pub client_helo: Option<String>,
    pub auth_user: Option<String>,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub size_bytes: u64,
    pub recipients: Vec<QueueRecipient>,
}

/// What a retry did.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueRetried {
    /// Recipients made due now.
    pub rescheduled: u64,
    /// Recipients that were due already.
    pub already_due: u64,
    /// Recipients a worker holds, left alone.
    pub in_flight: u64,
}

/// What a removal or purge deleted (silently: no bounce is sent).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueRemoved {
    pub entries: u64,
    pub recipients: u64,
    /// Recipients that were still waiting and will never be delivered.
    pub undelivered: u64,
}

/// Counters of the waiting recipients (also exported as metrics).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCounters {
    pub queued_recipients: u64,
    /// Tried at least once and waiting for the next attempt.
    pub deferred_recipients: u64,
    pub in_flight: u64,
    /// Age of the oldest entry with a waiting recipient; null when nothing waits.
    pub oldest_queued_age_secs: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QueueListQuery {
    /// `queued` (default: entries still waiting), `delivered`, `failed`, `held` (entries with
    /// a recipient in that state) or `all`.
    pub state: Option<String>,
    /// Part of the sender address (case-insensitive); `<>` for the null sender.
    pub sender: Option<String>,
    /// Entries with a recipient (in the chosen state) in this domain.
    pub domain: Option<String>,
    /// 1–10000, default 100.
    pub limit: Option<u32>,
    /// Oldest first (default: newest first).
    pub oldest_first: Option<bool>,
}

/// Which entries a purge removes: every one with a waiting recipient that matches.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueuePurge {
    /// Part of the sender address (case-insensitive); `<>` for the null sender.
    pub sender: Option<String>,
    /// Entries with a waiting recipient in this domain.
    pub domain: Option<String>,
    /// Must be `true`: a purge without a filter empties the queue.
    #[serde(default)]
    pub confirm: bool,
}

fn queue_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::invalid("a queue id is a UUID"))
}

#[utoipa::path(get, path = "/api/v1/queue", tag = "queue", params(QueueListQuery),
    responses((status = 200, body = [QueueEntry]), (status = 400, body = ErrorBody)))]
pub async fn list_queue(
    State(s): State<AppState>,
    Query(query): Query<QueueListQuery>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    let state = match query.state.as_deref() {
        None | Some("") => Some(RecipientState::Queued),
        Some(all) if all.eq_ignore_ascii_case("all") => None,
        Some(state) => Some(RecipientState::parse(state)?),
    };
    let request = ListRequest {
        filter: Filter {
            sender: query.sender,
            domain: query.domain,
        },
        state,
        oldest_first: query.oldest_first.unwrap_or(false),
        limit: query.limit,
    };
    let listed = s.queue.list(&request).await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|e| QueueEntry {
                id: e.id,
                sender: e.sender,
                received_at: e.received_at,
                expires_at: e.expires_at,
                size_bytes: e.size_bytes,
                recipients: QueueRecipientCounts {
                    queued: e.recipients.queued,
                    delivered: e.recipients.delivered,
                    failed: e.recipients.failed,
                    held: e.recipients.held,
                },
                in_flight: e.in_flight,
                next_attempt_at: e.next_attempt_at,
                last_error: e.last_error,
                attempts: e.attempts,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/queue/{id}", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, body = QueueEntryDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show_queue_entry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueEntryDetail>, ApiError> {
    let id = queue_id(&id)?;
    let e = s
        .queue
        .show(id)
        .await?
        .ok_or(admin::AdminError::NotFound(id))?;
    Ok(Json(QueueEntryDetail {
        id: e.id,
        sender: e.sender,
        client_ip: e.client_ip.map(|ip| ip.to_string()),
        client_helo: e.client_helo,
        auth_user: e.auth_user,
        dsn_ret: e.dsn_ret,
        dsn_envid: e.dsn_envid,
        received_at: e.received_at,
        expires_at: e.expires_at,
        size_bytes: e.size_bytes,
        recipients: e
            .recipients
            .into_iter()
            .map(|r| QueueRecipient {
                address: r.address,
                state: r.state.into(),
                attempts: r.attempts,
                next_attempt_at: r.next_attempt_at,
                last_attempt_at: r.last_attempt_at,
                last_error: r.last_error,
                in_flight: r.in_flight,
                dsn_notify: r.dsn_notify,
            })
            .collect(),
    }))
}

/// Makes the entry's waiting recipients due now, except those a worker holds.
#[utoipa::path(post, path = "/api/v1/queue/{id}/retry", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, body = QueueRetried), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retry_queue_entry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueRetried>, ApiError> {
    Ok(retried(s.queue.retry(Some(queue_id(&id)?)).await?))
}

/// Makes every waiting recipient due now, except those a worker holds.
#[utoipa::path(post, path = "/api/v1/queue/retry", tag = "queue", responses((status = 200, body = QueueRetried)))]
pub async fn retry_queue(State(s): State<AppState>) -> Result<Json<QueueRetried>, ApiError> {
    Ok(retried(s.queue.retry(None).await?))
}

fn retried(r: admin::Retried) -> Json<QueueRetried> {
    Json(QueueRetried {
        rescheduled: r.rescheduled,
        already_due: r.already_due,
        in_flight: r.in_flight,
    })
}

/// Removes an entry with all its recipients, silently (no bounce).
#[utoipa::path(delete, path = "/api/v1/queue/{id}", tag = "queue", params(("id" = String, Path)),
    responses((status = 200, body = QueueRemoved), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_queue_entry(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueRemoved>, ApiError> {
    Ok(removed(s.queue.remove(queue_id(&id)?).await?))
}

/// Removes, silently, every entry with a waiting recipient that matches the filter (with no
/// filter: every one). Needs `"confirm": true`.
#[utoipa::path(post, path = "/api/v1/queue/purge", tag = "queue", request_body = QueuePurge,
    responses((status = 200, body = QueueRemoved), (status = 400, body = ErrorBody)))]
pub async fn purge_queue(
    State(s): State<AppState>,
    Body(purge): Body<QueuePurge>,
) -> Result<Json<QueueRemoved>, ApiError> {
    if !purge.confirm {
        return Err(ApiError::invalid(
            "a purge removes every matching entry without a bounce: set \"confirm\": true",
        ));
    }
    let filter = Filter {
        sender: purge.sender,
        domain: purge.domain,
    };
    Ok(removed(s.queue.purge(&filter).await?))
}

fn removed(r: admin::Removed) -> Json<QueueRemoved> {
    Json(QueueRemoved {
        entries: r.entries,
        recipients: r.recipients,
        undelivered: r.undelivered,
    })
}

#[utoipa::path(get, path = "/api/v1/queue/stats", tag = "queue", responses((status = 200, body = QueueCounters)))]
pub async fn queue_stats(State(s): State<AppState>) -> Result<Json<QueueCounters>, ApiError> {
    let stats = s.queue.stats().await?;
    Ok(Json(QueueCounters {
        queued_recipients: stats.queued_recipients,
        deferred_recipients: stats.deferred_recipients,
        in_flight: stats.in_flight,
        oldest_queued_age_secs: stats.oldest_queued_age_secs,
    }))
}
