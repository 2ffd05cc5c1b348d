//! Migrations against a real PostgreSQL: empty database, re-run, concurrent runs, version checks.

use mc_schema::{SchemaError, check_current, expected_version, migrate};
use mc_testkit::TestDatabase;

const TABLES: &[&str] = &[
    "domains",
    "domain_aliases",
    "accounts",
    "aliases",
    "distribution_lists",
    "distribution_list_members",
    "ip_ranges",
    "settings",
    "messages",
    "mailboxes",
    "mailbox_messages",
    "mailbox_expunges",
    "queue_entries",
    "queue_recipients",
];

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerun_as_a_no_op() {
    let db = TestDatabase::empty().await;
    assert!(matches!(
        check_current(&db.pool).await,
        Err(SchemaError::Behind { found: None, .. })
    ));
    migrate(&db.pool).await.unwrap();
    check_current(&db.pool).await.unwrap();
    for table in TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("public.{table}"))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(exists, "table {table} missing");
    }
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM ip_ranges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    migrate(&db.pool).await.unwrap();
    let again: i64 = sqlx::query_scalar("SELECT count(*) FROM ip_ranges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((seeded, again), (4, 4), "a re-run applies nothing twice");
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(versions as usize, mc_schema::MIGRATOR.iter().count());
}

#[tokio::test]
async fn concurrent_migrations_from_several_replicas_are_serialised() {
    let db = TestDatabase::empty().await;
    let mut runs = Vec::new();
    for _ in 0..4 {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url)
            .await
            .unwrap();
        runs.push(tokio::spawn(async move { migrate(&pool).await }));
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    check_current(&db.pool).await.unwrap();
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM ip_ranges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(seeded, 4);
}

#[tokio::test]
async fn a_schema_from_a_newer_build_or_an_edited_migration_is_refused() {
    let db = TestDatabase::migrated().await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(matches!(
        check_current(&db.pool).await,
        Err(SchemaError::Modified { version: 1 })
    ));

    let db = TestDatabase::migrated().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'future', true, '\\x00', 0)",
    )
    .bind(expected_version() + 1)
    .execute(&db.pool)
    .await
    .unwrap();
    assert!(matches!(
        check_current(&db.pool).await,
        Err(SchemaError::Ahead { .. })
    ));
}
