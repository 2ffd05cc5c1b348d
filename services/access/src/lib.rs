//! access: the IMAP4rev1 (143 STARTTLS / 993 TLS) and POP3 (110 STLS / 995 TLS) servers.
//!
//! Sessions read the mailbox index from PostgreSQL and bodies from the object store (ranged
//! reads for parts), write flags, copies, moves and expunges to PostgreSQL, and tell the other
//! replicas through Redis (`notify`). Nothing about a session lives anywhere but in the session
//! itself and PostgreSQL, so any replica can serve any client. It trusts its configuration,
//! PostgreSQL and the object store; it trusts nothing a client sends. It must never answer OK
//! to a change before PostgreSQL committed it, never accept a password without TLS unless the
//! configuration allows it for that client, and never log a password.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod imap;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod pop3;

use crate::config::{AccessConfig, AccessSection};
use crate::listener::Protocol;
use mc_directory::Directory;
use mc_mailstore::Mailstore;
use mc_mailstore::blob::BlobStore;
use mc_runtime::ops::Readiness;
use mc_runtime::proxy::ProxyProtocol;
use mc_runtime::stores::RedisStore;
use mc_runtime::tls::TlsReloader;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every session shares.
pub struct Ctx {
    pub config: AccessSection,
    pub directory: Directory,
    pub mailstore: Mailstore,
    pub blobs: Arc<dyn BlobStore>,
    pub redis: Option<RedisStore>,
    pub changes: notify::Changes,
    pub tls: Option<TlsReloader>,
    pub proxy: ProxyProtocol,
    pub metrics: metrics::Metrics,
    /// Who may connect (IP ranges, bans included).
    pub ip_ranges: mc_policy::IpRanges,
    pub bans: mc_policy::Bans,
    /// The shared anti-spam settings (auto-ban limits).
    pub antispam: mc_policy::SettingsCache,
    pub shutdown: CancellationToken,
}

pub async fn run(config: AccessConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tls = TlsReloader::load(&config.tls)?;
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
    mc_schema::check_current(&pool).await?;
    let blobs = config.blob.open()?;
    let redis = match RedisStore::connect(&config.redis).await {
        Ok(redis) => Some(redis),
        Err(error) => {
            // Redis carries change notices, POP3 locks and failure counts: sessions still work
            // (without auto-ban).
            tracing::warn!(%error, "Redis unavailable; change notices and POP3 locks are off");
            None
        }
    };

    let mut registry = mc_runtime::metrics::registry("access");
    registry.register_collector(mc_runtime::store_metrics::pool_collector(pool.clone()));
    if let Some(tls) = &tls {
        registry.register_collector(tls.expiry_collector());
    }
    let metrics = metrics::Metrics::register(&mut registry);
    let readiness = Readiness::new()
        .with("postgresql", mc_runtime::stores::pg_check(pool.clone()))
        .with("blob", mc_mailstore::blob::readiness_check(blobs.clone()));

    let access = config.access.clone();
    let mut bound = Vec::new();
    for (protocol, addresses) in [
        (Protocol::Imap, &access.imap_listen),
        (Protocol::Imaps, &access.imaps_listen),
        (Protocol::Pop3, &access.pop3_listen),
        (Protocol::Pop3s, &access.pop3s_listen),
    ] {
        for address in addresses {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {address} ({}): {e}", protocol.label())
            })?;
            tracing::info!(%address, listener = protocol.label(), "access listening");
            bound.push((protocol, listener));
        }
    }
    let ops_listener = TcpListener::bind(config.ops.listen).await?;

    let changes = notify::Changes::new(redis.clone());
    let follower = tokio::spawn(changes.clone().follow(metrics.clone(), shutdown.clone()));
    let ctx = Arc::new(Ctx {
        proxy: ProxyProtocol::new(
            access.proxy_protocol_trusted.clone(),
            Duration::from_secs(access.handshake_timeout_secs),
        ),
        config: access.clone(),
        directory: Directory::new(pool.clone()),
        mailstore: Mailstore::new(pool.clone()),
        blobs,
        redis,
        changes,
        tls: tls.clone(),
        metrics,
        ip_ranges: mc_policy::IpRanges::new(pool.clone()),
        bans: mc_policy::Bans::new(pool.clone()),
        antispam: mc_policy::SettingsCache::new(pool.clone(), Duration::from_secs(10)),
        shutdown: shutdown.clone(),
    });
    let watcher = tls.as_ref().map(|tls| tls.spawn_watcher(shutdown.clone()));
    let ops = tokio::spawn(mc_runtime::ops::serve(
        ops_listener,
        Arc::new(registry),
        readiness,
        shutdown.clone(),
    ));
    let limits =
        mc_runtime::connection::Limits::new(access.max_connections, access.max_connections_per_ip);
    let tasks = TaskTracker::new();
    let mut loops = Vec::new();
    for (protocol, listener) in bound {
        loops.push(tokio::spawn(listener::serve(
            ctx.clone(),
            listener,
            protocol,
            limits.clone(),
            tasks.clone(),
        )));
    }
    shutdown.cancelled().await;
    for handle in loops {
        let _ = handle.await;
    }
    tasks.close();
    // Open sessions may continue (or reach a safe point) for `ops.shutdown_grace_secs`; the
    // chart sets it below the pod's termination grace period.
    let grace = Duration::from_secs(config.ops.shutdown_grace_secs);
    let drained = tokio::time::timeout(grace, tasks.wait()).await.is_ok();
    if !drained {
        tracing::warn!("sessions still open after the shutdown grace period");
    }
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    follower.abort();
    ops.await??;
    mc_runtime::stores::close_after_drain(&pool, drained).await;
    Ok(())
}
