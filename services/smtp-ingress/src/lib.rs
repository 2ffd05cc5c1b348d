//! smtp-ingress: the MX (25) and submission (587 STARTTLS, 465 implicit TLS) SMTP server.
//!
//! It accepts mail durably: a `250` after DATA/BDAT means the body is in the object store and
//! the queue entry with every recipient is committed in PostgreSQL (`accept`). It enforces the
//! IP ranges and relay matrix (`policy`), AUTH over TLS, and the limits of `[smtp]`. It trusts
//! its configuration, PostgreSQL and the object store; it trusts nothing a client sends,
//! including a PROXY header from a network not listed as trusted. It must never answer 250 before
//! the commit, never relay for an unauthenticated client against the matrix, and never log a
//! password.
#![forbid(unsafe_code)]

pub mod accept;
pub mod antispam;
pub mod antivirus;
pub mod config;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod policy;
pub mod session;

use crate::config::{IngressConfig, SmtpSection};
use crate::session::ListenerKind;
use mc_directory::{Directory, DirectoryCache};
use mc_mailstore::blob::BlobStore;
use mc_policy::IpRanges;
use mc_queue::Queue;
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
    pub config: SmtpSection,
    /// `RCPT TO:<Postmaster>` stands for this address.
    pub postmaster: mc_types::EmailAddress,
    pub policy: policy::Policy,
    pub queue: Queue,
    pub intake: mc_queue::intake::Intake,
    pub blobs: Arc<dyn BlobStore>,
    pub redis: Option<RedisStore>,
    pub tls: Option<TlsReloader>,
    pub proxy: ProxyProtocol,
    pub metrics: metrics::Metrics,
    pub antispam: antispam::Antispam,
    pub shutdown: CancellationToken,
}

pub async fn run(config: IngressConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let tls = TlsReloader::load(&config.tls)?;
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
    mc_schema::check_current(&pool).await?;
    let blobs = config.blob.open()?;
    let redis = match RedisStore::connect(&config.redis).await {
        Ok(redis) => Some(redis),
        Err(error) => {
            // Redis carries hints, greylisting, failed-login counts and rate counters here: the
            // service works without it (greylisting fails open by default, nobody is banned).
            tracing::warn!(%error, "Redis unavailable; queue hints, greylisting, auto-ban and rate limits are off");
            None
        }
    };

    let mut registry = mc_runtime::metrics::registry("smtp-ingress");
    registry.register_collector(mc_runtime::store_metrics::pool_collector(pool.clone()));
    if let Some(tls) = &tls {
        registry.register_collector(tls.expiry_collector());
    }
    let metrics = metrics::Metrics::register(&mut registry);
    let readiness = Readiness::new()
        .with("postgresql", mc_runtime::stores::pg_check(pool.clone()))
        .with("blob", mc_mailstore::blob::readiness_check(blobs.clone()));

    let smtp = config.smtp.clone();
    let mut bound = Vec::new();
    for (kind, addresses) in [
        (ListenerKind::Mx, &smtp.mx_listen),
        (ListenerKind::Submission, &smtp.submission_listen),
        (ListenerKind::Submissions, &smtp.submissions_listen),
    ] {
        for address in addresses {
            let listener = TcpListener::bind(address).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {address} ({}): {e}", kind.label())
            })?;
            tracing::info!(%address, listener = kind.label(), "SMTP listening");
            bound.push((kind, listener));
        }
    }
    let ops_listener = TcpListener::bind(config.ops.listen).await?;

    let queue = Queue::new(pool.clone());
    let on_committed: mc_queue::intake::OnCommitted = {
        let redis = redis.clone();
        let batch_sizes = metrics.commit_batch_messages.clone();
        Arc::new(move |ids: &[uuid::Uuid]| {
            batch_sizes.observe(ids.len() as f64);
            if let Some(redis) = &redis {
                accept::hint(redis, ids);
            }
        })
    };
    let intake = accept::start_intake(&smtp, queue.clone(), blobs.clone(), on_committed);
    let cache = Arc::new(DirectoryCache::new(
        Duration::from_secs(smtp.directory_cache_secs),
        smtp.directory_cache_entries,
    ));
    let follower = redis.clone().map(|redis| {
        tokio::spawn(mc_directory::follow_changes(
            redis,
            cache.clone(),
            shutdown.clone(),
        ))
    });
    let ctx = Arc::new(Ctx {
        proxy: ProxyProtocol::new(
            smtp.proxy_protocol_trusted.clone(),
            Duration::from_secs(smtp.handshake_timeout_secs),
        ),
        postmaster: smtp.postmaster()?,
        config: smtp.clone(),
        policy: policy::Policy {
            directory: Directory::new(pool.clone()),
            ip_ranges: IpRanges::new(pool.clone()),
            cache: cache.clone(),
            metrics: metrics.clone(),
        },
        queue,
        intake,
        blobs,
        redis,
        tls: tls.clone(),
        antispam: antispam::Antispam {
            settings: mc_policy::SettingsCache::new(
                pool.clone(),
                Duration::from_secs(smtp.antispam_settings_secs),
            ),
            lists: antispam::ListsCache::new(Duration::from_secs(smtp.antispam_settings_secs)),
            auth: mc_antispam::auth::SenderAuth::new(
                mc_antispam::resolver::build(
                    &smtp.dns_servers,
                    Duration::from_secs(smtp.dns_timeout_secs),
                )?,
                &smtp.hostname,
            ),
            whitelist: mc_policy::Whitelist::new(pool.clone()),
            blacklists: mc_policy::DnsBlacklists::new(pool.clone()),
            relays: mc_policy::IncomingRelays::new(pool.clone()),
            bans: mc_policy::Bans::new(pool.clone()),
            pool: pool.clone(),
            metrics: metrics.clone(),
        },
        metrics,
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
        mc_runtime::connection::Limits::new(smtp.max_connections, smtp.max_connections_per_ip);
    let tasks = TaskTracker::new();
    let mut loops = Vec::new();
    for (kind, listener) in bound {
        loops.push(tokio::spawn(listener::serve(
            ctx.clone(),
            listener,
            kind,
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
    if let Some(follower) = follower {
        follower.abort();
    }
    ops.await??;
    mc_runtime::stores::close_after_drain(&pool, drained).await;
    Ok(())
}
