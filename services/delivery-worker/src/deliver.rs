//! One claimed recipient: resolve it again (the directory may have changed since it was
//! queued), put a copy into every local account it reaches, and record the outcome under the
//! lease. What cannot be done yet (remote targets, bounces) defers the recipient with a reason.

use crate::Ctx;
use mc_directory::{Resolved, Target};
use mc_mailstore::{Delivery, INBOX};
use mc_queue::lease::{Claimed, LeaseError};
use std::time::Duration;

enum Outcome {
    Delivered,
    Deferred(String),
}

pub async fn one(ctx: &Ctx, recipient: Claimed) {
    let outcome = match attempt(ctx, &recipient).await {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Deferred(reason),
    };
    let lease = recipient.lease();
    let (recorded, label) = match &outcome {
        Outcome::Delivered => (ctx.queue.delivered(lease).await, "delivered"),
        Outcome::Deferred(reason) => {
            let retry = Duration::from_secs(ctx.config.retry_minutes * 60);
            (ctx.queue.defer(lease, reason, retry).await, "deferred")
        }
    };
    match recorded {
        Ok(()) => {
            ctx.metrics.outcome(label);
            match &outcome {
                Outcome::Delivered => tracing::info!(
                    queue_id = %recipient.queue_id,
                    recipient = recipient.recipient_id,
                    "delivered"
                ),
                Outcome::Deferred(reason) => tracing::info!(
                    queue_id = %recipient.queue_id,
                    recipient = recipient.recipient_id,
                    %reason,
                    "deferred"
                ),
            }
        }
        Err(LeaseError::Fenced(fenced)) => {
            ctx.metrics.outcome("fenced");
            tracing::warn!(%fenced, "lease lost; another worker owns this recipient now");
        }
        Err(LeaseError::Queue(error)) => {
            // The lease runs out and the recipient is tried again: local copies are idempotent.
            ctx.metrics.outcome("unrecorded");
            tracing::warn!(%error, recipient = recipient.recipient_id, "recording the outcome failed");
        }
    }
}

/// Delivers every local copy; returns what to record, or why to try again later.
async fn attempt(ctx: &Ctx, recipient: &Claimed) -> Result<Outcome, String> {
    let resolved = ctx
        .directory
        .resolve(&recipient.address)
        .await
        .map_err(|error| format!("4.3.0 directory unavailable: {error}"))?;
    let targets = match resolved {
        Resolved::Deliver { targets, .. } => targets,
        Resolved::NotHosted => {
            return Ok(Outcome::Deferred(
                "4.4.0 remote delivery is not available in this version yet".into(),
            ));
        }
        Resolved::Rejected(rejection) => {
            return Ok(Outcome::Deferred(format!(
                "5.1.1 refused at delivery ({rejection}); bounces are not available in this version yet"
            )));
        }
    };
    // One copy per message and mailbox: two recipients of one message that reach the same
    // account (an alias and the account itself) share the key, so the second finds the first.
    let key = recipient.queue_id.to_string();
    let mut remote = 0;
    for target in &targets {
        match target {
            Target::Account(account) => {
                let delivery = Delivery {
                    account,
                    mailbox: INBOX,
                    message_id: recipient.message_id,
                    size_bytes: recipient.size_bytes,
                    delivery_key: &key,
                    flags: &[],
                };
                let placed = ctx
                    .mailstore
                    .deliver(&delivery)
                    .await
                    .map_err(|error| format!("4.3.0 mailbox of {account}: {error}"))?;
                if placed.new {
                    ctx.metrics.local_copies.inc();
                    if let Some(redis) = &ctx.redis {
                        redis.publish_hint("mailbox:changed", placed.mailbox_id.to_string());
                    }
                }
            }
            Target::External(_) => remote += 1,
        }
    }
    if remote > 0 {
        // The local copies stay (a retry finds them); only the remote part waits.
        return Ok(Outcome::Deferred(format!(
            "4.4.0 {remote} remote target(s): remote delivery is not available in this version yet"
        )));
    }
    Ok(Outcome::Delivered)
}
