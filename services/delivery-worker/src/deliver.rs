//! One claimed recipient: resolve it again (the directory may have changed since it was
//! queued), put a copy into every local account it reaches, and record the outcome under the
//! lease. A recipient the directory now refuses fails with a bounce; what cannot be done yet
//! (remote targets) defers the recipient with a reason, and fails with a bounce once the entry
//! has expired.

use crate::Ctx;
use crate::bounce::{self, Failure, Recorded};
use mc_directory::{Rejection, Resolved, Target};
use mc_mailstore::{Delivery, INBOX, Mailstore};
use mc_queue::lease::{Claimed, LeaseError};
use std::time::Duration;

enum Outcome {
    Delivered,
    Deferred(String),
    Failed(Failure),
    /// The lease was lost while working: another worker owns the recipient, nothing is recorded.
    Fenced,
}

pub async fn one(ctx: &Ctx, recipient: Claimed) {
    let outcome = match attempt(ctx, &recipient).await {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Deferred(reason),
    };
    // The last attempt of an expired entry: what would wait fails instead (RFC 5321 4.5.4.1).
    let outcome = match outcome {
        Outcome::Deferred(reason) if recipient.expired => Outcome::Failed(Failure {
            status: "4.4.7",
            diagnostic: format!("4.4.7 message expired in the queue; last error: {reason}"),
        }),
        outcome => outcome,
    };
    let lease = recipient.lease();
    let recorded = match &outcome {
        Outcome::Fenced => Err(LeaseError::Fenced(mc_queue::lease::Fenced::of(lease))),
        Outcome::Delivered => ctx.queue.delivered(lease).await.map(|()| "delivered"),
        Outcome::Deferred(reason) => {
            let retry = Duration::from_secs(ctx.config.retry_minutes * 60);
            ctx.queue
                .defer(lease, reason, retry)
                .await
                .map(|()| "deferred")
        }
        Outcome::Failed(failure) => bounce::fail(ctx, &recipient, failure)
            .await
            .map(|recorded| match recorded {
                Recorded::Failed => "failed",
                Recorded::Bounced => "bounced",
                Recorded::Deferred(reason) => {
                    tracing::warn!(%reason, recipient = recipient.recipient_id, "bounce postponed");
                    "deferred"
                }
            }),
    };
    match recorded {
        Ok(label) => {
            ctx.metrics.outcome(label);
            let reason = match &outcome {
                Outcome::Delivered | Outcome::Fenced => "",
                Outcome::Deferred(reason) => reason.as_str(),
                Outcome::Failed(failure) => failure.diagnostic.as_str(),
            };
            tracing::info!(
                queue_id = %recipient.queue_id,
                recipient = recipient.recipient_id,
                outcome = label,
                reason,
                "attempt recorded"
            );
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
            let status = match rejection {
                Rejection::UnknownUser => "5.1.1",
                Rejection::TooManyRecursiveForwards => "5.4.6",
                Rejection::AccountDisabled
                | Rejection::AliasDisabled
                | Rejection::ListDisabled
                | Rejection::DomainDisabled => "5.2.1",
            };
            return Ok(Outcome::Failed(Failure {
                status,
                diagnostic: format!("550 {status} {rejection}"),
            }));
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
                // The copy is written under the lease: a worker that lost it writes nothing.
                let mut transaction = match ctx.queue.begin_fenced(recipient.lease()).await {
                    Ok(transaction) => transaction,
                    Err(LeaseError::Fenced(_)) => return Ok(Outcome::Fenced),
                    Err(LeaseError::Queue(error)) => return Err(format!("4.3.0 queue: {error}")),
                };
                let placed = match Mailstore::deliver_in(&mut transaction, &delivery).await {
                    Ok(placed) => placed,
                    Err(error) => {
                        // Released now: the lock would otherwise hold until the connection is
                        // reused, and the deferral below writes the same row.
                        let _ = transaction.rollback().await;
                        return Err(format!("4.3.0 mailbox of {account}: {error}"));
                    }
                };
                transaction
                    .commit()
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
