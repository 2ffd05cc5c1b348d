//! The PostgreSQL schema of mailcluster.
//!
//! Migrations live in `migrations/` at the repository root, are forward-only (a release never
//! edits or removes an applied migration; it adds a new one) and are embedded into every binary
//! that links this crate.
//!
//! * [`migrate`] applies what is missing. sqlx takes a PostgreSQL advisory lock around the run, so
//!   several replicas that start together serialise instead of racing.
//! * [`check_current`] is what services call at start-up: they refuse to serve against a schema
//!   older than the one they were built for, and against one newer than they know (a rollback).
#![forbid(unsafe_code)]

use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// Every migration of this build, in order.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("reading the schema version failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the database schema is at version {found:?} but this build needs {expected}; run `mailctl migrate` \
         (or start the admin service, which migrates)"
    )]
    Behind { found: Option<i64>, expected: i64 },
    #[error(
        "the database schema is at version {found} but this build only knows up to {expected}; \
         run a newer build"
    )]
    Ahead { found: i64, expected: i64 },
    #[error("migration {version} was applied with different content than this build carries")]
    Modified { version: i64 },
}

/// Applies every pending migration. Safe to call from several processes at once.
pub async fn migrate(pool: &PgPool) -> Result<(), SchemaError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// The newest migration version this build carries.
pub fn expected_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Verifies that the database is exactly at this build's schema version, with identical content.
pub async fn check_current(pool: &PgPool) -> Result<(), SchemaError> {
    let expected = expected_version();
    let table_exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    if !table_exists {
        return Err(SchemaError::Behind {
            found: None,
            expected,
        });
    }
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await?;
    let found = applied.last().map(|(version, _)| *version);
    match found {
        Some(found) if found > expected => return Err(SchemaError::Ahead { found, expected }),
        Some(found) if found == expected => {}
        _ => return Err(SchemaError::Behind { found, expected }),
    }
    for (version, checksum) in &applied {
        let Some(migration) = MIGRATOR.iter().find(|m| m.version == *version) else {
            return Err(SchemaError::Modified { version: *version });
        };
        if migration.checksum.as_ref() != checksum.as_slice() {
            return Err(SchemaError::Modified { version: *version });
        }
    }
    Ok(())
}
