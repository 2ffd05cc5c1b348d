//! Durable accept (ARCHITECTURE.md "A message's path", step 1): reserve the blob row, upload the
//! body under its sha256 key (idempotent), then queue the entry and all recipients in one
//! statement. The caller answers 250 only when this returns `Ok`; any error means 451 and at
//! most an unreferenced blob, which the collector removes. Then a hint goes to Redis so that a
//! worker looks at the queue now rather than at its next poll.

use crate::Ctx;
use crate::message::{Body, Finished};
use mc_mailstore::blob::BlobKey;
use mc_queue::{NewEntry, NewRecipient};
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
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob store: {0}")]
    Blob(#[from] mc_mailstore::blob::BlobError),
    #[error("queue: {0}")]
    Queue(#[from] mc_queue::QueueError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

pub async fn store(
    ctx: &Ctx,
    envelope: Envelope<'_>,
    message: Finished,
) -> Result<Uuid, StoreError> {
    let limit = Duration::from_secs(ctx.config.store_timeout_secs);
    let id = tokio::time::timeout(limit, store_inner(ctx, envelope, message))
        .await
        .map_err(|_| StoreError::Timeout(limit))??;
    hint(ctx, id);
    Ok(id)
}

async fn store_inner(
    ctx: &Ctx,
    envelope: Envelope<'_>,
    message: Finished,
) -> Result<Uuid, StoreError> {
    let key = BlobKey::from_sha256(&message.sha256);
    ctx.queue.reserve_blob(&key, message.size).await?;
    match &message.body {
        Body::Memory(bytes) => ctx.blobs.put(&key, bytes.clone()).await?,
        Body::File(path) => ctx.blobs.put_file(&key, path).await?,
    }
    let transaction = envelope.transaction;
    let mail = &transaction.mail;
    let entry = NewEntry {
        id: envelope.queue_id,
        blob_key: key,
        size_bytes: message.size,
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
    };
    Ok(ctx.queue.enqueue(&entry).await?)
}

/// Publishes the new entry's id on `<prefix>queue:due`. Best effort: the queue in PostgreSQL is
/// the truth and workers poll it anyway.
fn hint(ctx: &Ctx, id: Uuid) {
    let Some(redis) = ctx.redis.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut connection = redis.connection.clone();
        let channel = redis.key("queue:due");
        let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(id.to_string())
            .query_async(&mut connection)
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, "queue hint not published");
        }
    });
}
