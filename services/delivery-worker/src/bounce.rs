//! Failing a recipient, with a bounce when the sender wants one: the notification is built
//! (`mc_smtp::dsn`), stored, and queued from `<>` to the sender in the same transaction that marks
//! the recipient failed, so a bounce is sent exactly when the failure is recorded, and never by a
//! worker that lost its lease.

use crate::Ctx;
use mc_mailstore::blob::BlobKey;
use mc_queue::lease::{Claimed, LeaseError};
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient};
use mc_smtp::dsn::{Action, Notification, RecipientReport, Return};
use std::time::Duration;

/// Why a recipient failed: its enhanced status code and the explanation for the sender.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: String,
    pub diagnostic: String,
    /// The server that refused the recipient, if one did (DSN `Remote-MTA`).
    pub remote_mta: Option<String>,
}

impl Failure {
    pub fn new(status: &str, diagnostic: String) -> Self {
        Self::new_owned(status.to_string(), diagnostic)
    }

    pub fn new_owned(status: String, diagnostic: String) -> Self {
        Self {
            status,
            diagnostic,
            remote_mta: None,
        }
    }
}

/// Whether the sender asked to hear about success (RFC 3461 NOTIFY=SUCCESS); never for `<>`.
pub fn wants_success(recipient: &Claimed) -> bool {
    !recipient.sender.is_empty()
        && recipient
            .dsn_notify
            .as_deref()
            .is_some_and(|notify| notify.to_ascii_uppercase().contains("SUCCESS"))
}

/// The success report for a recipient who asked for one: delivered here, or relayed to
/// `relayed_to`, a server that offers no DSN of its own. Stored, ready to be queued with the
/// delivered mark.
pub async fn success(
    ctx: &Ctx,
    recipient: &Claimed,
    relayed_to: Option<&str>,
) -> Result<NewEntry, String> {
    let (action, diagnostic) = match relayed_to {
        None => (
            Action::Delivered,
            "250 2.0.0 delivered to the mailbox".to_string(),
        ),
        Some(host) => (
            Action::Relayed,
            format!("250 2.0.0 relayed to {host}, which sends no delivery reports"),
        ),
    };
    let mut report = Failure::new("2.0.0", diagnostic);
    report.remote_mta = relayed_to.map(str::to_string);
    build(ctx, recipient, &recipient.address, &report, action).await
}

/// Whether the sender asked to hear about failures: yes unless the sender is `<>` (bounces are
/// never bounced) or NOTIFY said NEVER or named other events only (RFC 3461 section 4.1).
fn wants_bounce(recipient: &Claimed) -> bool {
    if recipient.sender.is_empty() {
        return false;
    }
    match &recipient.dsn_notify {
        None => true,
        Some(notify) => {
            let notify = notify.to_ascii_uppercase();
            notify.contains("FAILURE") && !notify.contains("NEVER")
        }
    }
}

/// What was recorded for a failed recipient.
pub enum Recorded {
    /// Failed, no bounce wanted.
    Failed,
    /// Failed, and the bounce is queued.
    Bounced,
    /// The bounce could not be stored: the recipient waits and is tried again (never failed
    /// silently).
    Deferred(String),
}

/// Records the failure (and queues the bounce). Errors are the lease's: `Fenced` means nothing
/// was written.
pub async fn fail(
    ctx: &Ctx,
    recipient: &Claimed,
    failure: &Failure,
) -> Result<Recorded, LeaseError> {
    let lease = recipient.lease();
    if !wants_bounce(recipient) {
        ctx.queue.failed(lease, &failure.diagnostic).await?;
        return Ok(Recorded::Failed);
    }
    match build(ctx, recipient, &recipient.address, failure, Action::Failed).await {
        Ok(bounce) => {
            ctx.queue
                .failed_with_bounce(lease, &failure.diagnostic, &bounce)
                .await?;
            Ok(Recorded::Bounced)
        }
        Err(error) => {
            let reason = format!("4.3.0 bounce not stored yet: {error}");
            let retry = Duration::from_secs(ctx.config.retry_minutes * 60);
            ctx.queue.defer(lease, &reason, retry).await?;
            Ok(Recorded::Deferred(reason))
        }
    }
}

/// A bounce for one target of a recipient that was otherwise delivered (a list member over
/// quota): stored, ready to be queued with the delivered mark; `None` if the sender wants none.
pub async fn for_target(
    ctx: &Ctx,
    recipient: &Claimed,
    target: &str,
    failure: &Failure,
) -> Result<Option<NewEntry>, String> {
    if !wants_bounce(recipient) {
        return Ok(None);
    }
    build(ctx, recipient, target, failure, Action::Failed)
        .await
        .map(Some)
}

/// Builds and stores the notification about `final_recipient`; returns its queue entry.
async fn build(
    ctx: &Ctx,
    recipient: &Claimed,
    final_recipient: &str,
    failure: &Failure,
    action: Action,
) -> Result<NewEntry, String> {
    let key = BlobKey::parse(&recipient.blob_key).map_err(|e| e.to_string())?;
    let size = u64::try_from(recipient.size_bytes).map_err(|e| e.to_string())?;
    let offset = u64::try_from(recipient.blob_offset).map_err(|e| e.to_string())?;
    // A success report carries the header section only (RFC 3461 4.3: RET is for failures).
    let full = action == Action::Failed
        && recipient.dsn_ret.as_deref() == Some("FULL")
        && size <= ctx.config.bounce_max_original_bytes;
    // Enough of the original for its header section when only that is attached.
    let wanted = if full { size } else { size.min(256 * 1024) };
    let original = ctx
        .blobs
        .get_range(&key, offset..offset + wanted)
        .await
        .map_err(|e| e.to_string())?;
    let id = Envelope::new_id();
    let id_text = id.to_string();
    let now = time::OffsetDateTime::now_utc();
    let reports = [RecipientReport {
        final_recipient,
        original_recipient: recipient.dsn_orcpt.as_deref(),
        action,
        status: &failure.status,
        remote_mta: failure.remote_mta.as_deref(),
        diagnostic: &failure.diagnostic,
    }];
    let body = Notification {
        hostname: &ctx.config.hostname,
        to: &recipient.sender,
        id: &id_text,
        now,
        arrival: recipient.received_at,
        envelope_id: recipient.dsn_envid.as_deref(),
        recipients: &reports,
        original: &original,
        attach: if full { Return::Full } else { Return::Headers },
    }
    .render();
    notice(ctx, id, body, &recipient.sender).await
}

/// Stores a message this server wrote (a bounce, a report, an auto-reply) and returns its queue
/// entry from `<>` to `to`, ready to be queued with whatever else the caller commits.
pub async fn notice(
    ctx: &Ctx,
    id: uuid::Uuid,
    body: Vec<u8>,
    to: &str,
) -> Result<NewEntry, String> {
    let size = body.len() as u64;
    let key = BlobKey::for_content(&body);
    ctx.queue
        .reserve_blob(&key, size)
        .await
        .map_err(|e| e.to_string())?;
    ctx.blobs
        .put(&key, bytes::Bytes::from(body))
        .await
        .map_err(|e| e.to_string())?;
    Ok(NewEntry {
        body: BodyLocation::whole(key, size),
        envelope: Envelope {
            id,
            sender: String::new(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: None,
            dsn_envid: None,
            recipients: vec![NewRecipient {
                address: to.to_string(),
                dsn_notify: None,
                dsn_orcpt: None,
            }],
            lifetime: Duration::from_secs(ctx.config.bounce_lifetime_secs),
            junk: false,
        },
    })
}
