//! Durable accept (ARCHITECTURE.md "A message's path", step 1), through the group-commit intake
//! of `mc-queue`: a small body goes to the intake in memory and is packed with the others
//! accepted at the same moment into one object; a large or spooled body is reserved and uploaded
//! here first. Either way the entry and all its recipients are queued by one statement shared
//! with the rest of the batch. The caller answers 250 only when this returns `Ok`; any error
//! means 451 and at most an unreferenced blob, which the collector removes. Then a hint goes to
//! Redis (once per batch) so that a worker looks at the queue now rather than at its next poll.

use crate::Ctx;
use crate::message::{Body, Finished};
use mc_mailstore::blob::BlobKey;
use mc_queue::intake::{self, Intake, IntakeLimits, OnCommitted};
use mc_queue::{BodyLocation, NewRecipient};
use mc_smtp::Transaction;
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

pub struct Envelope<'a> {
    pub queue_id: Uuid,
    pub transaction: &'a Transaction,
    pub client_ip: IpAddr,
    pub helo: Option<&'a str>,
    pub auth_user: Option<&'a str>,
    pub junk: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob store: {0}")]
    Blob(#[from] mc_mailstore::blob::BlobError),
    #[error("queue: {0}")]
    Queue(#[from] mc_queue::QueueError),
    #[error("{0}")]
    Intake(#[from] intake::IntakeError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// The intake of this process, with its limits from `[smtp]`.
pub fn start_intake(
    config: &crate::config::SmtpSection,
    queue: mc_queue::Queue,
    blobs: std::sync::Arc<dyn mc_mailstore::blob::BlobStore>,
    on_committed: OnCommitted,
) -> Intake {
    let limits = IntakeLimits {
        max_batch_messages: config.commit_max_messages,
        max_pack_bytes: config.pack_max_bytes,
        concurrent_flushes: config.commit_concurrency,
    };
    Intake::start(queue, blobs, limits, on_committed)
}

pub async fn store(
    ctx: &Ctx,
    envelope: Envelope<'_>,
    message: Finished,
) -> Result<Uuid, StoreError> {
    let limit = Duration::from_secs(ctx.config.store_timeout_secs);
    tokio::time::timeout(limit, store_inner(ctx, envelope, message))
        .await
        .map_err(|_| StoreError::Timeout(limit))?
}

async fn store_inner(
    ctx: &Ctx,
    envelope: Envelope<'_>,
    message: Finished,
) -> Result<Uuid, StoreError> {
    let body = match message.body {
        Body::Memory(bytes) if bytes.len() <= ctx.config.pack_max_message_bytes => {
            intake::Body::Inline {
                bytes,
                sha256: message.sha256,
            }
        }
        body => {
            let key = BlobKey::from_sha256(&message.sha256);
            ctx.queue.reserve_blob(&key, message.size).await?;
            match &body {
                Body::Memory(bytes) => ctx.blobs.put(&key, bytes.clone()).await?,
                Body::File(path) => ctx.blobs.put_file(&key, path).await?,
            }
            intake::Body::Stored(BodyLocation::whole(key, message.size))
        }
    };
    let transaction = envelope.transaction;
    let mail = &transaction.mail;
    let queued = mc_queue::Envelope {
        id: envelope.queue_id,
        sender: mail
            .sender
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_ip: Some(envelope.client_ip),
        client_helo: envelope.helo.map(str::to_string),
        auth_user: envelope.auth_user.map(str::to_string),
        dsn_ret: mail.dsn_return.map(|r| r.as_str().to_string()),
        dsn_envid: mail.dsn_envid.clone(),
        recipients: transaction
            .recipients
            .iter()
            .map(|r| NewRecipient {
                address: r.recipient.to_string(),
                dsn_notify: r.notify.map(|n| n.to_param()),
                dsn_orcpt: r.orcpt.clone(),
            })
            .collect(),
        lifetime: Duration::from_secs(ctx.config.queue_lifetime_secs),
        junk: envelope.junk,
    };
    Ok(ctx.intake.commit(queued, body).await?)
}

/// Publishes the ids of a committed batch, separated by spaces, on `<prefix>queue:due`. Best
/// effort: the queue in PostgreSQL is the truth and workers poll it anyway.
pub fn hint(redis: &mc_runtime::stores::RedisStore, ids: &[Uuid]) {
    let ids = ids
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    redis.publish_hint("queue:due", ids);
}
