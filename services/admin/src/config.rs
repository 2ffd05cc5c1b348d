//! Configuration of the admin service.

use mc_runtime::config::{ConfigError, ServiceConfig, resolve_secret};
use mc_runtime::sections::{DatabaseConfig, LogConfig, OpsConfig, RedisConfig, TelemetryConfig};
use mc_types::Secret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Shortest admin token accepted: a guessable token would open the whole directory.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub database: DatabaseConfig,
    /// Optional: directory changes are announced there so that other services' caches drop
    /// stale answers at once.
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub ops: OpsConfig,
    pub admin: AdminSection,
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Where the HTTP API listens. Loopback by default; containers set `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Bearer token every API request must carry.
    pub token: Option<Secret<String>>,
    pub token_file: Option<PathBuf>,
    /// Apply pending migrations at start-up (safe with several replicas: an advisory lock
    /// serialises them).
    pub migrate_on_start: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            token_file: None,
            migrate_on_start: true,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            ops: OpsConfig::on_port(9104),
            admin: AdminSection::default(),
        }
    }
}

impl ServiceConfig for AdminConfig {
    fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        self.database.finish(errors);
        self.redis.finish(false, errors);
        self.log.finish(errors);
        self.telemetry.finish(errors);
        resolve_secret(
            "admin.token",
            &mut self.admin.token,
            &self.admin.token_file,
            errors,
        );
        match &self.admin.token {
            None => errors.push(ConfigError::new(
                "admin.token",
                "is required (or admin.token_file)",
            )),
            Some(token) if token.expose().len() < MIN_TOKEN_LEN => errors.push(ConfigError::new(
                "admin.token",
                format!("must have at least {MIN_TOKEN_LEN} characters"),
            )),
            Some(_) => {}
        }
        if self.admin.listen == self.ops.listen {
            errors.push(ConfigError::new(
                "admin.listen",
                "must differ from ops.listen",
            ));
        }
    }
}
