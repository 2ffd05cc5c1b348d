//! delivery-worker: takes due recipients from the queue and delivers them.
//!
//! Claims are leases fenced by an epoch in PostgreSQL (`mc_queue::lease`): any number of workers
//! may run, a dead worker's recipients come back when its lease runs out, and a worker that lost
//! its lease changes nothing. Local recipients (aliases, lists, domain aliases and catch-all
//! resolved again at delivery time) are put into their accounts' INBOX exactly once
//! (`mc_mailstore::Mailstore::deliver_in`, keyed by the queue entry), each copy in a
//! transaction that holds the recipient's lease (`Queue::begin_fenced`).
//!
//! A recipient refused at delivery (the directory changed since it was accepted), or still
//! undelivered when its entry expires, fails with an RFC 3464 bounce to the sender, queued in the
//! same transaction that records the failure (`bounce`).
//!
//! Recipients not hosted here go to their domain's route, the relayer, or its MX hosts
//! (`remote`), DKIM-signed for our domains; the recipients of one message at one domain share
//! one transaction. Remote targets of hosted recipients (forwards, aliases, list members
//! elsewhere) are queued as a new entry in the transaction that marks the recipient delivered.
//!
//! A new copy over the account's (or its domain's) quota is not stored: the sender gets a 5.2.2
//! bounce. Out-of-office replies go out once per sender and interval (`autoreply`).
//!
//! It trusts its configuration and the stores; it must never mark a recipient delivered before
//! every local copy is committed, and never act on a recipient whose lease it lost.
#![forbid(unsafe_code)]

mod autoreply;
mod batch;
mod bounce;
pub mod config;
mod deliver;
mod metrics;
pub mod remote;

use crate::config::WorkerConfig;
use mc_directory::Directory;
use mc_queue::Queue;
use mc_queue::lease::Claimed;
use mc_runtime::ops::Readiness;
use mc_runtime::stores::RedisStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What every delivery shares.
pub struct Ctx {
    pub config: config::DeliverySection,
    pub queue: Queue,
    pub directory: Directory,
    pub blobs: Arc<dyn mc_mailstore::BlobStore>,
    pub redis: Option<RedisStore>,
    pub metrics: metrics::Metrics,
    pub remote: remote::Remote,
    /// Deliverable resolutions, while the directory's change notices are heard.
    pub cache: Arc<mc_directory::DirectoryCache>,
}

pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
    mc_schema::check_current(&pool).await?;
    let redis = match config.redis.url {
        None => None,
        Some(_) => match RedisStore::connect(&config.redis).await {
            Ok(redis) => Some(redis),
            Err(error) => {
                tracing::warn!(%error, "Redis unavailable; polling the queue");
                None
            }
        },
    };
    // Before readiness: loading the trust store and the DNS configuration takes a moment.
    let remote = remote::Remote::new(
        &config.delivery,
        mc_policy::DeliverySettings::new(pool.clone()),
        redis.clone(),
    )?;
    let mut registry = mc_runtime::metrics::registry("delivery-worker");
    registry.register_collector(mc_runtime::store_metrics::pool_collector(pool.clone()));
    let metrics = metrics::Metrics::register(&mut registry);
    let readiness = Readiness::new().with("postgresql", mc_runtime::stores::pg_check(pool.clone()));
    let ops_listener = TcpListener::bind(config.ops.listen).await?;
    let ops = tokio::spawn(mc_runtime::ops::serve(
        ops_listener,
        Arc::new(registry),
        readiness,
        shutdown.clone(),
    ));
    let cache = Arc::new(mc_directory::DirectoryCache::new(
        Duration::from_secs(config.delivery.directory_cache_secs),
        100_000,
    ));
    let ctx = Arc::new(Ctx {
        config: config.delivery.clone(),
        queue: Queue::new(pool.clone()),
        directory: Directory::new(pool.clone()),
        blobs: config.blob.open()?,
        redis: redis.clone(),
        metrics,
        remote,
        cache: cache.clone(),
    });
    let wake = Arc::new(Notify::new());
    let directory_changes = ctx.redis.clone().map(|redis| {
        tokio::spawn(mc_directory::follow_changes(
            redis,
            cache.clone(),
            shutdown.clone(),
        ))
    });
    let hints =
        redis.map(|redis| tokio::spawn(follow_hints(redis, wake.clone(), shutdown.clone())));
    let housekeeping = (ctx.config.housekeeping_interval_secs > 0)
        .then(|| tokio::spawn(housekeeping(ctx.clone(), shutdown.clone())));
    tracing::info!(ops = %config.ops.listen, "delivery worker running");
    let grace = Duration::from_secs(config.ops.shutdown_grace_secs);
    let drained = work(ctx, wake, shutdown.clone(), grace).await;
    if let Some(housekeeping) = housekeeping {
        housekeeping.abort();
    }
    if let Some(hints) = hints {
        hints.abort();
    }
    if let Some(changes) = directory_changes {
        changes.abort();
    }
    ops.await??;
    mc_runtime::stores::close_after_drain(&pool, drained).await;
    Ok(())
}

/// Claims and delivers until shutdown. A full claim is followed by another at once; an empty
/// one waits for a hint or the poll interval. After shutdown the claim in hand may finish for
/// `grace` (`ops.shutdown_grace_secs`); past that it is abandoned: its leases expire after
/// `lease_secs` and another worker delivers it (a remote copy cut before its final reply may
/// then arrive twice, never not at all). Returns whether it drained (nothing was cut).
async fn work(
    ctx: Arc<Ctx>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    grace: Duration,
) -> bool {
    let lease = Duration::from_secs(ctx.config.lease_secs);
    let poll = Duration::from_millis(ctx.config.poll_interval_ms);
    while !shutdown.is_cancelled() {
        let claimed = match ctx.queue.claim_due(ctx.config.claim_batch, lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming due recipients failed");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                () = shutdown.cancelled() => {}
            }
            continue;
        }
        let count = claimed.len();
        ctx.metrics.claimed.inc_by(count as u64);
        // Work in hand is finished during shutdown (every copy is idempotent, and the leases
        // would only make the recipients wait for their expiry), within the grace period.
        tokio::select! {
            () = round(&ctx, claimed) => {}
            () = mc_runtime::shutdown::grace_over(&shutdown, grace) => {
                tracing::warn!(
                    recipients = count,
                    grace_secs = grace.as_secs(),
                    "shutdown grace period over with deliveries in flight: their leases expire and another worker retries them"
                );
                return false;
            }
        }
    }
    true
}

/// One claim's recipients: resolved; those that only reach local accounts go into one batch
/// transaction (`batch`) while the others are delivered per message and domain; what the batch
/// could not take follows.
async fn round(ctx: &Arc<Ctx>, claimed: Vec<Claimed>) {
    use futures::StreamExt;
    let resolved: Vec<(Claimed, deliver::Resolution)> = futures::stream::iter(claimed)
        .map(|recipient| {
            let ctx = ctx.clone();
            async move {
                let resolution = deliver::resolve(&ctx, &recipient.address).await;
                (recipient, resolution)
            }
        })
        .buffered(ctx.config.concurrency)
        .collect()
        .await;
    let mut candidates = Vec::new();
    let mut rest = Vec::new();
    for (recipient, resolution) in resolved {
        // A recipient who asked for a success report goes the careful way (it queues one).
        match batch::accounts(&resolution) {
            Some(accounts) if !bounce::wants_success(&recipient) => {
                candidates.push((recipient, resolution, accounts));
            }
            _ => rest.push((recipient, resolution)),
        }
    }
    let per_recipient = |rest: Vec<(Claimed, deliver::Resolution)>| {
        futures::stream::iter(groups(rest)).for_each_concurrent(ctx.config.concurrency, |group| {
            let ctx = ctx.clone();
            async move { deliver::group(&ctx, group).await }
        })
    };
    let (left, ()) = tokio::join!(batch::deliver(ctx, candidates), per_recipient(rest));
    per_recipient(left).await;
}

/// Claimed recipients grouped by message and domain, in claim order.
fn groups(
    claimed: Vec<(Claimed, deliver::Resolution)>,
) -> Vec<Vec<(Claimed, deliver::Resolution)>> {
    let mut index = std::collections::HashMap::new();
    let mut groups: Vec<Vec<(Claimed, deliver::Resolution)>> = Vec::new();
    for (recipient, resolution) in claimed {
        let key = (recipient.queue_id, deliver::domain_of(&recipient.address));
        let slot = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push((recipient, resolution));
    }
    groups
}

/// Every interval: removes finished queue entries, then collects what nothing references.
async fn housekeeping(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    const BATCH: usize = 1000;
    let interval = Duration::from_secs(ctx.config.housekeeping_interval_secs);
    let grace = Duration::from_secs(ctx.config.collect_grace_secs);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        match ctx.queue.remove_finished(BATCH).await {
            Ok(removed) => ctx.metrics.housekept("entries_removed", removed),
            Err(error) => tracing::warn!(%error, "removing finished queue entries failed"),
        }
        match ctx
            .queue
            .collect_garbage(ctx.blobs.as_ref(), grace, BATCH)
            .await
        {
            Ok(collected) => {
                ctx.metrics
                    .housekept("messages_collected", collected.messages);
                ctx.metrics.housekept("blobs_collected", collected.blobs);
            }
            Err(error) => tracing::warn!(%error, "collecting unreferenced bodies failed"),
        }
    }
}

/// Wakes the worker when the ingress announces new entries (`<prefix>queue:due`).
async fn follow_hints(redis: RedisStore, wake: Arc<Notify>, shutdown: CancellationToken) {
    use mc_runtime::stores::Followed;
    redis
        .follow("queue:due", &shutdown, |event| match event {
            Followed::Message(_) => wake.notify_one(),
            Followed::Live => {}
            Followed::Lost(reason) => {
                tracing::debug!(%reason, "not following queue hints; polling");
            }
        })
        .await;
}
