//! Store clients against the real PostgreSQL and Redis that `ops/test` starts: timeouts, readiness
//! checks, key prefixes, and a clear error (not a hang) when a store is down.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_runtime::sections::{DatabaseConfig, RedisConfig};
use mc_runtime::stores::{RedisStore, StoreError, pg_check, pg_connect};
use mc_types::Secret;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn database(url: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: Some(Secret::new(url.to_string())),
        startup_retry_secs: 1,
        connect_timeout_secs: 1,
        ..Default::default()
    }
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn pool_connects_and_its_readiness_check_passes() {
    let db = mc_testkit::TestDatabase::empty().await;
    let pool = pg_connect(&database(&db.url), &CancellationToken::new())
        .await
        .unwrap();
    pg_check(pool.clone())().await.unwrap();
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        timeout, "30s",
        "the configured statement timeout is applied to every connection"
    );
    pool.close().await;
    assert!(
        pg_check(pool)().await.is_err(),
        "a closed pool is not ready"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_after_the_startup_retry_window() {
    let config = database(&format!(
        "postgres://postgres@127.0.0.1:{}/x",
        closed_port()
    ));
    let started = Instant::now();
    let error = pg_connect(&config, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up after {:?}",
        started.elapsed()
    );

    let shutdown = CancellationToken::new();
    let mut patient = config.clone();
    patient.startup_retry_secs = 60;
    shutdown.cancel();
    assert!(
        matches!(
            pg_connect(&patient, &shutdown).await,
            Err(StoreError::Shutdown)
        ),
        "shutdown interrupts the retries"
    );
    assert!(matches!(
        pg_connect(&database("not a url"), &shutdown).await,
        Err(StoreError::BadDatabaseUrl(_))
    ));
}

#[tokio::test]
async fn redis_keys_carry_the_prefix_and_ping_is_the_readiness_check() {
    let prefix = mc_testkit::unique_prefix("redis");
    let config = RedisConfig {
        url: Some(Secret::new(mc_testkit::redis_url())),
        key_prefix: prefix.clone(),
        ..Default::default()
    };
    let store = RedisStore::connect(&config).await.unwrap();
    assert_eq!(store.key("lease:1"), format!("{prefix}lease:1"));
    (store.check())().await.unwrap();
    let mut connection = store.connection.clone();
    let _: () = redis::cmd("SET")
        .arg(store.key("probe"))
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut connection)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{prefix}probe")]);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_within_the_connect_timeout() {
    let config = RedisConfig {
        url: Some(Secret::new(format!("redis://127.0.0.1:{}", closed_port()))),
        connect_timeout_secs: 1,
        ..Default::default()
    };
    let started = Instant::now();
    assert!(RedisStore::connect(&config).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
