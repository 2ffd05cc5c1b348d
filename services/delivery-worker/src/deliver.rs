//! The claimed recipients of one message at one domain: each is resolved again (the directory
//! may have changed since it was queued). A hosted one gets a copy in every local account it
//! reaches, and its remote targets (forwards, aliases or list members elsewhere) are queued
//! anew; one not hosted here goes to `remote`. Every outcome is recorded under the lease. A
//! recipient the directory now refuses fails with a bounce; one that keeps failing
//! temporarily fails with a bounce once its entry expires (or, remote, after its retries).

use crate::Ctx;
use crate::autoreply;
use crate::bounce::{self, Failure, Recorded};
use crate::remote::RetryPolicy;
use mc_directory::{Rejection, Resolved, Target};
use mc_mailstore::blob::BlobKey;
use mc_mailstore::{Delivery, INBOX, Mailstore};
use mc_queue::Queue;
use mc_queue::lease::{Claimed, LeaseError};
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient};
use mc_runtime::store_metrics::{DbOp, Outcome as StoreResult, StoreOutcome, observe_db};
use std::time::Duration;

#[derive(Clone)]
pub enum Outcome {
    Delivered,
    /// Delivered to a remote server that offers no DSN (reported when NOTIFY=SUCCESS).
    Relayed(String),
    /// Delivered, and these remote forwards are to be queued with the delivered mark.
    Forwarded(Vec<NewEntry>),
    Deferred(String),
    Failed(Failure),
    /// The lease was lost while working: another worker owns the recipient, nothing is recorded.
    Fenced,
}

/// A recipient's resolution, or why it failed (temporarily).
pub type Resolution = Result<Resolved, String>;

/// Resolves a recipient again (the directory may have changed since it was queued). Deliverable
/// answers are cached while the worker hears the cluster's change notices: a stale one costs at
/// most a retry or a bounce (the account's mailbox is looked up in the delivery itself).
pub async fn resolve(ctx: &Ctx, address: &str) -> Resolution {
    let now = std::time::Instant::now();
    if let Some(resolved) = ctx.cache.resolved(address, now) {
        return Ok(resolved);
    }
    let ticket = ctx.cache.ticket();
    let resolved = ctx
        .directory
        .resolve(address)
        .await
        .map_err(|error| format!("4.3.0 directory unavailable: {error}"))?;
    if matches!(resolved, Resolved::Deliver { .. }) {
        ctx.cache
            .store_resolved(ticket, address, resolved.clone(), std::time::Instant::now());
    }
    Ok(resolved)
}

/// What the local step decided for a recipient.
enum Local {
    Done(Outcome),
    /// Not hosted here: delivered remotely, with the other recipients of its message at its
    /// domain.
    Remote,
}

/// The domain of an address, lower-cased (the grouping key for remote delivery).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Delivers the recipients of one message at one domain (claimed together): local ones each
/// on their own, remote ones in shared transactions.
pub async fn group(ctx: &Ctx, recipients: Vec<(Claimed, Resolution)>) {
    let mut remote = Vec::new();
    for (recipient, resolved) in &recipients {
        let outcome = match local(ctx, recipient, resolved.clone()).await {
            Ok(Local::Done(outcome)) => outcome,
            Ok(Local::Remote) => {
                remote.push(recipient);
                continue;
            }
            Err(reason) => Outcome::Deferred(reason),
        };
        record(ctx, recipient, outcome, None).await;
    }
    let Some(first) = remote.first() else { return };
    let domain = domain_of(&first.address);
    let (outcomes, policy) = crate::remote::deliver(ctx, &domain, &remote).await;
    for (recipient, outcome) in remote.into_iter().zip(outcomes) {
        record(ctx, recipient, outcome, Some(policy)).await;
    }
}

/// Records an outcome under the recipient's lease. `policy` is the remote retry policy (local
/// deferrals wait `retry_minutes` and give up only when the entry expires).
pub async fn record(ctx: &Ctx, recipient: &Claimed, outcome: Outcome, policy: Option<RetryPolicy>) {
    let exhausted =
        policy.is_some_and(|p| recipient.attempts > i32::try_from(p.retries).unwrap_or(i32::MAX));
    // The last attempt: what would wait fails instead (RFC 5321 4.5.4.1).
    let outcome = match outcome {
        Outcome::Deferred(reason) if recipient.expired || exhausted => {
            let why = if recipient.expired {
                "message expired in the queue"
            } else {
                "delivery attempts exhausted"
            };
            Outcome::Failed(Failure::new(
                "4.4.7",
                format!(
                    "4.4.7 {why} after {} attempt(s); last error: {reason}",
                    recipient.attempts
                ),
            ))
        }
        outcome => outcome,
    };
    let lease = recipient.lease();
    let recorded = match &outcome {
        Outcome::Fenced => Err(LeaseError::Fenced(mc_queue::lease::Fenced::of(lease))),
        Outcome::Delivered | Outcome::Relayed(_) if bounce::wants_success(recipient) => {
            let relayed = match &outcome {
                Outcome::Relayed(host) => Some(host.as_str()),
                _ => None,
            };
            match bounce::success(ctx, recipient, relayed).await {
                Ok(report) => ctx
                    .queue
                    .delivered_with(lease, std::slice::from_ref(&report))
                    .await
                    .map(|()| "delivered"),
                Err(error) => {
                    // Delivered all the same: a missing report is not worth a second delivery.
                    tracing::warn!(%error, recipient = recipient.recipient_id, "success report not stored");
                    ctx.queue.delivered(lease).await.map(|()| "delivered")
                }
            }
        }
        Outcome::Delivered | Outcome::Relayed(_) => {
            ctx.queue.delivered(lease).await.map(|()| "delivered")
        }
        Outcome::Forwarded(entries) => ctx
            .queue
            .delivered_with(lease, entries)
            .await
            .map(|()| "delivered"),
        Outcome::Deferred(reason) => {
            let minutes = policy.map_or(ctx.config.retry_minutes, |p| u64::from(p.retry_minutes));
            let retry = retry_delay(minutes, ctx.config.retry_backoff, recipient.attempts);
            ctx.queue
                .defer(lease, reason, retry)
                .await
                .map(|()| "deferred")
        }
        Outcome::Failed(failure) => bounce::fail(ctx, recipient, failure).await.map(|recorded| {
            match recorded {
                Recorded::Failed => "failed",
                Recorded::Bounced => "bounced",
                Recorded::Deferred(reason) => {
                    tracing::warn!(%reason, recipient = recipient.recipient_id, "bounce postponed");
                    "deferred"
                }
            }
        }),
    };
    match recorded {
        Ok(label) => {
            ctx.metrics.outcome(label);
            let reason = match &outcome {
                Outcome::Delivered
                | Outcome::Relayed(_)
                | Outcome::Forwarded(_)
                | Outcome::Fenced => "",
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

/// `minutes × backoff^(attempts − 1)`, at most a day.
fn retry_delay(minutes: u64, backoff: f64, attempts: i32) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 64);
    let seconds = (minutes as f64 * 60.0) * backoff.powi(exponent);
    Duration::from_secs_f64(seconds.clamp(60.0, 86_400.0))
}

/// Delivers every local copy; returns what to record, or why to try again later.
async fn local(ctx: &Ctx, recipient: &Claimed, resolved: Resolution) -> Result<Local, String> {
    let targets = match resolved? {
        Resolved::Deliver { targets, .. } => targets,
        Resolved::NotHosted => return Ok(Local::Remote),
        Resolved::Rejected(rejection) => {
            let status = match rejection {
                Rejection::UnknownUser => "5.1.1",
                Rejection::TooManyRecursiveForwards => "5.4.6",
                Rejection::AccountDisabled
                | Rejection::AliasDisabled
                | Rejection::ListDisabled
                | Rejection::DomainDisabled => "5.2.1",
            };
            return Ok(Local::Done(Outcome::Failed(Failure::new(
                status,
                format!("550 {status} {rejection}"),
            ))));
        }
    };
    // One copy per message and mailbox: two recipients of one message that reach the same
    // account (an alias and the account itself) share the key, so the second finds the first.
    let mut forwards = Vec::new();
    let mut entries = Vec::new();
    let mut over_quota = Vec::new();
    let mut placed_any = false;
    for target in &targets {
        match target {
            Target::Account(account) => match copy(ctx, recipient, account).await? {
                Copy::Placed => placed_any = true,
                Copy::OverQuota => over_quota.push(account.clone()),
                Copy::Fenced => return Ok(Local::Done(Outcome::Fenced)),
            },
            Target::External(address) => forwards.push(NewRecipient {
                address: address.clone(),
                dsn_notify: recipient.dsn_notify.clone(),
                dsn_orcpt: recipient
                    .dsn_orcpt
                    .clone()
                    .or_else(|| Some(format!("rfc822;{}", recipient.address))),
            }),
        }
    }
    for account in &over_quota {
        let failure = Failure::new(
            "5.2.2",
            format!("552 5.2.2 Mailbox full: {account} is over its quota"),
        );
        if !placed_any && forwards.is_empty() && over_quota.len() == 1 {
            // Nobody else receives it: the recipient itself fails.
            return Ok(Local::Done(Outcome::Failed(failure)));
        }
        // A list member over quota: the others get it, the sender hears about this one.
        if let Some(bounce) = bounce::for_target(ctx, recipient, account, &failure).await? {
            entries.push(bounce);
        }
    }
    if forwards.is_empty() {
        return Ok(Local::Done(if entries.is_empty() {
            Outcome::Delivered
        } else {
            Outcome::Forwarded(entries)
        }));
    }
    // Remote targets (forwards, aliases or list members elsewhere) become one new entry for
    // the same body, from the same sender, queued with the delivered mark.
    let blob_key =
        BlobKey::parse(&recipient.blob_key).map_err(|e| format!("4.3.0 body key: {e}"))?;
    let number = |value: i64| u64::try_from(value).map_err(|e| format!("4.3.0 body location: {e}"));
    let entry = NewEntry {
        body: BodyLocation {
            blob_key,
            blob_size: number(recipient.blob_size)?,
            offset: number(recipient.blob_offset)?,
            size: number(recipient.size_bytes)?,
        },
        envelope: Envelope {
            id: Envelope::new_id(),
            sender: recipient.sender.clone(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: recipient.dsn_ret.clone(),
            dsn_envid: recipient.dsn_envid.clone(),
            recipients: forwards,
            lifetime: Duration::from_secs(ctx.config.forward_lifetime_secs),
            junk: false,
        },
    };
    entries.push(entry);
    Ok(Local::Done(Outcome::Forwarded(entries)))
}

/// What happened to one local copy.
enum Copy {
    /// In the mailbox (now or earlier); an auto-reply, if due, was queued with it.
    Placed,
    /// Not stored: the account or its domain is over quota.
    OverQuota,
    Fenced,
}

/// Where a local copy goes: the INBOX, or Junk for mail the ingress scored as spam.
pub(crate) fn mailbox_for(recipient: &Claimed) -> &'static str {
    if recipient.junk { JUNK } else { INBOX }
}

const JUNK: &str = "Junk";

/// Puts the copy into the account's INBOX (or Junk) in a transaction that holds the recipient's lease (a
/// worker that lost it writes nothing); checks the quota for a new copy and records the
/// auto-reply in the same transaction.
async fn copy(ctx: &Ctx, recipient: &Claimed, account: &str) -> Result<Copy, String> {
    let profile = ctx
        .directory
        .delivery_profile(account)
        .await
        .map_err(|error| format!("4.3.0 directory unavailable: {error}"))?
        .ok_or_else(|| format!("4.3.0 the account {account} disappeared during delivery"))?;
    let reply = match &profile.autoreply {
        Some(reply) => autoreply::prepare(ctx, recipient, account, profile.account_id, reply).await,
        None => None,
    };
    let key = recipient.queue_id.to_string();
    let delivery = Delivery {
        account,
        mailbox: mailbox_for(recipient),
        message_id: recipient.message_id,
        size_bytes: recipient.size_bytes,
        delivery_key: &key,
        flags: &[],
    };
    // The whole transaction is one mailbox_delivery operation, its pool wait included.
    let started = std::time::Instant::now();
    let record =
        |outcome: StoreResult| observe_db(DbOp::MailboxDelivery, outcome, started.elapsed());
    let mut transaction = match ctx.queue.begin_fenced(recipient.lease()).await {
        Ok(transaction) => transaction,
        Err(LeaseError::Fenced(_)) => return Ok(Copy::Fenced),
        Err(LeaseError::Queue(error)) => {
            record(error.store_outcome());
            return Err(format!("4.3.0 queue: {error}"));
        }
    };
    let written = async {
        let placed = Mailstore::deliver_in(&mut transaction, &delivery)
            .await
            .map_err(|error| {
                record(error.store_outcome());
                format!("4.3.0 mailbox of {account}: {error}")
            })?;
        // Checked on the use before this copy; concurrent copies may overshoot a little.
        if placed.new && profile.over_quota(recipient.size_bytes) {
            return Ok(None);
        }
        let mut queued = None;
        if placed.new
            && let Some(reply) = reply
            && autoreply::claim(
                &mut transaction,
                profile.account_id,
                &recipient.sender,
                ctx.config.autoreply_interval_hours,
            )
            .await
            .map_err(|error| {
                record(error.store_outcome());
                format!("4.3.0 auto-reply record: {error}")
            })?
        {
            Queue::enqueue_in(&mut transaction, std::slice::from_ref(&reply))
                .await
                .map_err(|error| {
                    record(error.store_outcome());
                    format!("4.3.0 auto-reply: {error}")
                })?;
            queued = Some(reply);
        }
        Ok::<_, String>(Some((placed, queued)))
    }
    .await;
    let (placed, queued) = match written {
        Ok(Some(done)) => done,
        Ok(None) => {
            let _ = transaction.rollback().await;
            record(StoreResult::Ok);
            ctx.metrics.outcome("over_quota");
            return Ok(Copy::OverQuota);
        }
        Err(reason) => {
            // Released now: the lock would otherwise hold until the connection is reused, and
            // the deferral writes the same row.
            let _ = transaction.rollback().await;
            return Err(reason);
        }
    };
    let committed = transaction.commit().await;
    record(
        committed
            .as_ref()
            .map_or_else(StoreOutcome::store_outcome, |()| StoreResult::Ok),
    );
    committed.map_err(|error| format!("4.3.0 mailbox of {account}: {error}"))?;
    if placed.new {
        ctx.metrics.local_copies.inc();
        if let Some(redis) = &ctx.redis {
            redis.publish_hint("mailbox:changed", placed.mailbox_id.to_string());
        }
    }
    if queued.is_some() {
        ctx.metrics.autoreplies.inc();
    }
    Ok(Copy::Placed)
}
