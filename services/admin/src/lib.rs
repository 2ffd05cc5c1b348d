//! The admin service: an HTTP API (JSON, bearer token, OpenAPI document at `/openapi.json`) over
//! the directory and the policy tables, plus schema migrations at start-up. `mailctl` is its
//! client.
//!
//! It trusts its configuration and the holder of the admin token; everything in a request body or
//! path is validated by the library it reaches. It must never return or log a password, a hash or
//! the token, and never answer with internal error text.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;

use crate::api::AppState;
use crate::config::AdminConfig;
use mc_directory::Directory;
use mc_policy::{Bans, DeliverySettings, DnsBlacklists, IncomingRelays, IpRanges, Whitelist};
use mc_queue::Queue;
use mc_runtime::ops::Readiness;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connects the stores, migrates if configured, binds both listeners and serves until `shutdown`.
pub async fn run(config: AdminConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
    if config.admin.migrate_on_start {
        mc_schema::migrate(&pool).await?;
        tracing::info!(version = mc_schema::expected_version(), "schema migrated");
    }
    mc_schema::check_current(&pool).await?;

    let mut registry = mc_runtime::metrics::registry("admin");
    registry.register_collector(mc_runtime::store_metrics::pool_collector(pool.clone()));
    let metrics = metrics::ApiMetrics::register(&mut registry);
    let queue_gauges = metrics::QueueGauges::register(&mut registry);
    let token = config
        .admin
        .token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("admin.token is required"))?;
    let redis = match config.redis.url {
        None => None,
        Some(_) => match mc_runtime::stores::RedisStore::connect(&config.redis).await {
            Ok(redis) => Some(redis),
            Err(error) => {
                // Other services then keep their directory caches dark: slower, never stale.
                tracing::warn!(%error, "Redis unavailable; directory changes are not announced");
                None
            }
        },
    };
    let state = AppState {
        redis,
        directory: Directory::new(pool.clone()),
        ip_ranges: IpRanges::new(pool.clone()),
        delivery: DeliverySettings::new(pool.clone()),
        queue: Queue::new(pool.clone()),
        pool: pool.clone(),
        whitelist: Whitelist::new(pool.clone()),
        blacklists: DnsBlacklists::new(pool.clone()),
        incoming_relays: IncomingRelays::new(pool.clone()),
        bans: Bans::new(pool.clone()),
        token: Arc::new(token),
        metrics,
    };
    let readiness = Readiness::new().with("postgresql", mc_runtime::stores::pg_check(pool.clone()));

    let ops_listener = TcpListener::bind(config.ops.listen).await?;
    let api_listener = TcpListener::bind(config.admin.listen).await?;
    tracing::info!(api = %config.admin.listen, ops = %config.ops.listen, "admin service listening");

    let queue_counters = tokio::spawn(queue_gauges.refresh(
        state.queue.clone(),
        state.bans.clone(),
        shutdown.clone(),
    ));
    let ops = tokio::spawn(mc_runtime::ops::serve(
        ops_listener,
        Arc::new(registry),
        readiness,
        shutdown.clone(),
    ));
    // Requests in flight at SIGTERM may finish within `ops.shutdown_grace_secs`.
    let grace = Duration::from_secs(config.ops.shutdown_grace_secs);
    let out_of_grace = {
        let shutdown = shutdown.clone();
        async move { mc_runtime::shutdown::grace_over(&shutdown, grace).await }
    };
    let drained = tokio::select! {
        served = serve(api_listener, state, config.admin.max_body_bytes, shutdown) => {
            served?;
            true
        }
        () = out_of_grace => {
            tracing::warn!("requests still open after the shutdown grace period");
            false
        }
    };
    ops.await??;
    queue_counters.await?;
    mc_runtime::stores::close_after_drain(&pool, drained).await;
    Ok(())
}

/// Serves the API on a bound listener until `shutdown` (tests call this directly).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    max_body_bytes: usize,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, api::router(state, max_body_bytes))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
