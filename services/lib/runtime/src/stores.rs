//! Clients of the shared stores, configured with timeouts so that an unreachable store becomes an
//! error the caller can map (451 4.3.0, 503), never a hung session.

use crate::ops::Check;
use crate::sections::{DatabaseConfig, RedisConfig};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    BadDatabaseUrl(sqlx::Error),
    #[error("database.url is not set")]
    NoDatabaseUrl,
    #[error("cannot reach PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis.url is not set")]
    NoRedisUrl,
    #[error("cannot reach Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("interrupted by shutdown")]
    Shutdown,
}

/// Connection options from the configuration (SSL preferred when the server offers it).
pub fn pg_options(config: &DatabaseConfig) -> Result<PgConnectOptions, StoreError> {
    let url = config.url.as_ref().ok_or(StoreError::NoDatabaseUrl)?;
    let mut options = PgConnectOptions::from_str(url.expose())
        .map_err(StoreError::BadDatabaseUrl)?
        .application_name("mailcluster");
    if !url.expose().contains("sslmode=") {
        options = options.ssl_mode(PgSslMode::Prefer);
    }
    if config.statement_timeout_secs > 0 {
        options = options.options([(
            "statement_timeout",
            format!("{}s", config.statement_timeout_secs),
        )]);
    }
    Ok(options)
}

fn pg_pool_options(config: &DatabaseConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(config.min_connections)
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
        .idle_timeout(Duration::from_secs(config.idle_timeout_secs))
}

/// Connects a pool, retrying with backoff for up to `startup_retry_secs` (replicas often start
/// before their database is ready), or until `shutdown` fires.
pub async fn pg_connect(
    config: &DatabaseConfig,
    shutdown: &CancellationToken,
) -> Result<PgPool, StoreError> {
    let options = pg_options(config)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.startup_retry_secs);
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(config.connect_timeout_secs),
            pg_pool_options(config).connect_with(options.clone()),
        )
        .await;
        let error = match attempt {
            Ok(Ok(pool)) => return Ok(pool),
            Ok(Err(error)) => error,
            Err(_) => sqlx::Error::PoolTimedOut,
        };
        if tokio::time::Instant::now() + delay > deadline {
            return Err(StoreError::Database(error));
        }
        tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "PostgreSQL not reachable yet");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Err(StoreError::Shutdown),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Closes the pool at the end of a service's drain. After a drain cut by the end of its grace
/// period (`drained` false), work may still hold connections (a query waiting for a lock), and
/// closing would wait for it: the process exits instead, and PostgreSQL rolls the cut
/// transactions back.
pub async fn close_after_drain(pool: &PgPool, drained: bool) {
    if drained {
        pool.close().await;
    }
}

/// A `/readyz` check that runs `SELECT 1`.
pub fn pg_check(pool: PgPool) -> Check {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| short_error(&e))
        })
    })
}

/// What [`RedisStore::follow`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Subscribed: messages from now on will be heard.
    Live,
    /// A message arrived, with its payload (a hint; the facts are in PostgreSQL).
    Message(String),
    /// Not subscribed (why); messages meanwhile are missed.
    Lost(String),
}

/// A Redis connection (multiplexed, reconnecting) with the cluster's key prefix.
#[derive(Clone)]
pub struct RedisStore {
    pub connection: redis::aio::ConnectionManager,
    client: redis::Client,
    prefix: String,
}

impl RedisStore {
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let url = config.url.as_ref().ok_or(StoreError::NoRedisUrl)?;
        let client = redis::Client::open(url.expose().as_str())?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(config.connect_timeout_secs)))
            .set_response_timeout(Some(Duration::from_secs(config.response_timeout_secs)))
            .set_number_of_retries(3);
        let connection = client
            .get_connection_manager_with_config(manager_config)
            .await?;
        Ok(Self {
            connection,
            client,
            prefix: config.key_prefix.clone(),
        })
    }

    /// A dedicated connection subscribed to `<prefix><name>` (pub/sub needs its own connection).
    pub async fn subscribe(&self, name: &str) -> Result<redis::aio::PubSub, StoreError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.key(name)).await?;
        Ok(pubsub)
    }

    /// `PUBLISH <prefix><name> <message>`; returns the number of subscribers that received it.
    pub async fn publish(&self, name: &str, message: &str) -> redis::RedisResult<i64> {
        let mut connection = self.connection.clone();
        crate::store_metrics::redis(
            crate::store_metrics::RedisGroup::Notify,
            redis::cmd("PUBLISH")
                .arg(self.key(name))
                .arg(message)
                .query_async(&mut connection),
        )
        .await
    }

    /// Follows the channel `<prefix><name>` until `shutdown`: `on` hears when the subscription
    /// becomes live, each message, and each loss (a failed subscribe or a closed connection),
    /// after which it subscribes again a second later.
    pub async fn follow(
        &self,
        name: &str,
        shutdown: &tokio_util::sync::CancellationToken,
        mut on: impl FnMut(Followed),
    ) {
        use futures::StreamExt;
        loop {
            match self.subscribe(name).await {
                Ok(mut pubsub) => {
                    on(Followed::Live);
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            message = messages.next() => match message {
                                Some(message) => on(Followed::Message(
                                    message.get_payload::<String>().unwrap_or_default(),
                                )),
                                None => break,
                            },
                            () = shutdown.cancelled() => return,
                        }
                    }
                    on(Followed::Lost("the subscription connection closed".into()));
                }
                Err(error) => on(Followed::Lost(error.to_string())),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Best-effort `PUBLISH <prefix><name> <message>` in the background: for hints whose loss
    /// costs only latency (the fact itself is in PostgreSQL).
    pub fn publish_hint(&self, name: &str, message: String) {
        let mut connection = self.connection.clone();
        let channel = self.key(name);
        tokio::spawn(async move {
            let result: redis::RedisResult<i64> = crate::store_metrics::redis(
                crate::store_metrics::RedisGroup::Notify,
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(message)
                    .query_async(&mut connection),
            )
            .await;
            if let Err(error) = result {
                tracing::debug!(%error, channel, "hint not published");
            }
        });
    }

    /// `<prefix><name>`: every key and channel goes through here.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A `/readyz` check that sends PING.
    pub fn check(&self) -> Check {
        let connection = self.connection.clone();
        Arc::new(move || {
            let mut connection = connection.clone();
            Box::pin(async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    }
}

/// The first line of an error, which for sqlx never includes the connection password.
fn short_error(error: &sqlx::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or("error")
        .to_string()
}
