//! Test harness for mailcluster (a dev-dependency only).
//!
//! Tests run against the real PostgreSQL, Redis and S3-compatible store that `ops/test` starts.
//! `ops/test` exports their coordinates as `MAILCLUSTER_TEST_*` variables (see [`env`]); a test run
//! without them fails with a message naming the missing variable, because a test that silently
//! skips its store would prove nothing.
//!
//! Every test gets its own isolated slice of each store: a fresh database migrated to the current
//! schema ([`TestDatabase`]), a unique Redis key prefix ([`unique_prefix`]) and a unique object-key
//! prefix in the shared bucket ([`S3Settings::prefix`]).
#![forbid(unsafe_code)]

mod db;

pub use db::TestDatabase;

/// Names of the environment variables `ops/test` sets.
pub mod env {
    pub const DATABASE_URL: &str = "MAILCLUSTER_TEST_DATABASE_URL";
    pub const REDIS_URL: &str = "MAILCLUSTER_TEST_REDIS_URL";
    pub const S3_ENDPOINT: &str = "MAILCLUSTER_TEST_S3_ENDPOINT";
    pub const S3_REGION: &str = "MAILCLUSTER_TEST_S3_REGION";
    pub const S3_BUCKET: &str = "MAILCLUSTER_TEST_S3_BUCKET";
    pub const S3_ACCESS_KEY_ID: &str = "MAILCLUSTER_TEST_S3_ACCESS_KEY_ID";
    pub const S3_SECRET_ACCESS_KEY: &str = "MAILCLUSTER_TEST_S3_SECRET_ACCESS_KEY";
}

/// Reads a required variable; panics with instructions when it is missing.
pub fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: run the tests through `ops/test`, which starts PostgreSQL, Redis and \
             Garage and exports their addresses (or `source .state/test.env` after `ops/test` ran once)"
        ),
    }
}

/// A prefix no other test (or test run) uses, for Redis keys and object keys.
pub fn unique_prefix(label: &str) -> String {
    format!("t-{label}-{}/", uuid::Uuid::new_v4().simple())
}

/// Coordinates of the S3-compatible store started by `ops/test`.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Unique per call: every test writes under its own prefix.
    pub prefix: String,
}

impl S3Settings {
    pub fn from_env(label: &str) -> Self {
        Self {
            endpoint: required_env(env::S3_ENDPOINT),
            region: required_env(env::S3_REGION),
            bucket: required_env(env::S3_BUCKET),
            access_key_id: required_env(env::S3_ACCESS_KEY_ID),
            secret_access_key: required_env(env::S3_SECRET_ACCESS_KEY),
            prefix: unique_prefix(label),
        }
    }
}

/// URL of the Redis server started by `ops/test`.
pub fn redis_url() -> String {
    required_env(env::REDIS_URL)
}
