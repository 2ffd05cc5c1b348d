//! The fast path for the common case: recipients that resolve to local accounts only, whose
//! accounts have room and no auto-reply. All of them (one claim's worth) are delivered in ONE
//! transaction: their leases are held (`begin_fenced_many`), every copy goes in with a few
//! statements (`Mailstore::deliver_batch_in`: one UID/MODSEQ allocation per mailbox, one
//! insert), and every recipient is marked delivered by one update, committed together. A
//! recipient whose lease is gone is simply left out (another worker owns it).
//!
//! Anything else (remote, forwards, quota, auto-reply, errors) takes the per-recipient path in
//! `deliver`, which this module hands recipients back to.

use crate::Ctx;
use crate::deliver::Resolution;
use mc_directory::{Resolved, Target};
use mc_mailstore::{BatchCopy, Mailstore};
use mc_queue::Queue;
use mc_queue::lease::{Claimed, Lease};
use mc_runtime::store_metrics::{DbOp, Outcome, StoreOutcome, observe_db};
use std::collections::{HashMap, HashSet};

/// Whether the batch can take this recipient at all: its accounts, if it resolves to local
/// accounts only.
pub fn accounts(resolution: &Resolution) -> Option<Vec<String>> {
    match resolution {
        Ok(Resolved::Deliver { targets, .. }) => targets
            .iter()
            .map(|target| match target {
                Target::Account(account) => Some(account.clone()),
                Target::External(_) => None,
            })
            .collect(),
        _ => None,
    }
}

/// Delivers what it can; returns the recipients left for the per-recipient path.
pub async fn deliver(
    ctx: &Ctx,
    candidates: Vec<(Claimed, Resolution, Vec<String>)>,
) -> Vec<(Claimed, Resolution)> {
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = candidates
        .iter()
        .flat_map(|(_, _, accounts)| accounts.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let profiles = match ctx.directory.delivery_profiles(&names).await {
        Ok(profiles) => profiles,
        Err(error) => {
            tracing::debug!(%error, "no batch: account profiles unavailable");
            return candidates.into_iter().map(|(c, r, _)| (c, r)).collect();
        }
    };
    // Room is checked with this batch's own additions counted (conservatively: a message that
    // reaches one account twice counts twice). Domain-wide limits go the careful way.
    let mut added: HashMap<&str, i64> = HashMap::new();
    let mut taken = Vec::new();
    let mut left = Vec::new();
    for (recipient, resolution, accounts) in candidates {
        let fits = accounts.iter().all(|account| {
            profiles.get(account).is_some_and(|profile| {
                profile.autoreply.is_none()
                    && profile.domain_max_bytes == 0
                    && (profile.quota_bytes == 0
                        || profile.used_bytes
                            + added.get(account.as_str()).copied().unwrap_or(0)
                            + recipient.size_bytes
                            <= profile.quota_bytes)
            })
        });
        if fits {
            for account in &accounts {
                if let Some((name, _)) = profiles.get_key_value(account) {
                    *added.entry(name.as_str()).or_default() += recipient.size_bytes;
                }
            }
            taken.push((recipient, resolution, accounts));
        } else {
            left.push((recipient, resolution));
        }
    }
    if taken.is_empty() {
        return left;
    }
    match commit(ctx, &taken).await {
        Ok(()) => {}
        Err(error) => {
            tracing::warn!(%error, recipients = taken.len(), "batch delivery failed; one by one instead");
            left.extend(taken.into_iter().map(|(c, r, _)| (c, r)));
        }
    }
    left
}

async fn commit(ctx: &Ctx, taken: &[(Claimed, Resolution, Vec<String>)]) -> Result<(), String> {
    let leases: Vec<Lease> = taken.iter().map(|(c, _, _)| c.lease()).collect();
    // The whole transaction is one mailbox_delivery operation, its pool wait included.
    let started = std::time::Instant::now();
    let record = |outcome: Outcome| observe_db(DbOp::MailboxDelivery, outcome, started.elapsed());
    let (mut transaction, held) = match ctx.queue.begin_fenced_many(&leases).await {
        Ok(begun) => begun,
        Err(error) => {
            record(error.store_outcome());
            return Err(error.to_string());
        }
    };
    let held_ids: HashSet<i64> = held.iter().map(|l| l.recipient_id).collect();
    let keys: Vec<String> = taken
        .iter()
        .map(|(c, _, _)| c.queue_id.to_string())
        .collect();
    let mut copies = Vec::new();
    for ((recipient, _, accounts), key) in taken.iter().zip(&keys) {
        if !held_ids.contains(&recipient.recipient_id) {
            continue;
        }
        for account in accounts {
            copies.push(BatchCopy {
                account,
                mailbox: crate::deliver::mailbox_for(recipient),
                message_id: recipient.message_id,
                size_bytes: recipient.size_bytes,
                delivery_key: key,
            });
        }
    }
    let written = async {
        let placed = Mailstore::deliver_batch_in(&mut transaction, &copies)
            .await
            .map_err(|e| (e.store_outcome(), e.to_string()))?;
        let marked = Queue::delivered_in(&mut transaction, &held)
            .await
            .map_err(|e| (e.store_outcome(), e.to_string()))?;
        if marked != held.len() as u64 {
            return Err((
                Outcome::Ok,
                format!("{marked} of {} held recipients marked", held.len()),
            ));
        }
        Ok(placed)
    }
    .await;
    let placed = match written {
        Ok(placed) => placed,
        Err((outcome, error)) => {
            let _ = transaction.rollback().await;
            record(outcome);
            return Err(error);
        }
    };
    let committed = transaction.commit().await;
    record(
        committed
            .as_ref()
            .map_or_else(StoreOutcome::store_outcome, |()| Outcome::Ok),
    );
    committed.map_err(|e| e.to_string())?;
    let new: Vec<_> = placed.iter().filter(|p| p.new).collect();
    ctx.metrics.local_copies.inc_by(new.len() as u64);
    ctx.metrics.outcomes("delivered", held.len() as u64);
    ctx.metrics
        .outcomes("fenced", (taken.len() - held.len()) as u64);
    ctx.metrics.batch_recipients.observe(held.len() as f64);
    if let Some(redis) = &ctx.redis {
        let mut changed: Vec<i64> = new.iter().map(|p| p.mailbox_id).collect();
        changed.sort_unstable();
        changed.dedup();
        for mailbox in changed {
            redis.publish_hint("mailbox:changed", mailbox.to_string());
        }
    }
    tracing::info!(
        delivered = held.len(),
        fenced = taken.len() - held.len(),
        copies = new.len(),
        "batch delivered"
    );
    Ok(())
}
