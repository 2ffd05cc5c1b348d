//! `mailctl migrate`: applies pending schema migrations by connecting to PostgreSQL directly,
//! so it needs only the database section of the configuration, not an admin token.

use crate::client::Failure;
use std::path::PathBuf;

/// Configuration `mailctl migrate` reads: only the database.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MigrateConfig {
    database: mc_runtime::sections::DatabaseConfig,
}

impl mc_runtime::config::ServiceConfig for MigrateConfig {
    fn finish(&mut self, errors: &mut Vec<mc_runtime::config::ConfigError>) {
        self.database.finish(errors);
    }
}

pub(super) async fn migrate(config: Option<PathBuf>) -> Result<(), Failure> {
    let sources = mc_runtime::config::Sources::from_process(config);
    let config: MigrateConfig =
        mc_runtime::config::load(&sources).map_err(|e| Failure::Usage(e.to_string()))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown)
        .await
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    mc_schema::migrate(&pool)
        .await
        .map_err(|e| Failure::Other(e.to_string()))?;
    println!("schema is at version {}", mc_schema::expected_version());
    Ok(())
}
