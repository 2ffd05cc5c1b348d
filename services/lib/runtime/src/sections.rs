//! Configuration sections shared by several services. Each service's configuration struct embeds
//! the ones it uses; durations are whole seconds so that files and environment stay simple.

use crate::config::{ConfigError, require, resolve_secret};
use mc_types::Secret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[database]`: the PostgreSQL cluster holding all metadata and the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db` (contains the password: a secret).
    pub url: Option<Secret<String>>,
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout_secs: u64,
    pub acquire_timeout_secs: u64,
    /// Server-side `statement_timeout`; 0 disables it.
    pub statement_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// How long a starting service keeps retrying an unreachable database before giving up.
    pub startup_retry_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 16,
            min_connections: 0,
            connect_timeout_secs: 5,
            acquire_timeout_secs: 5,
            statement_timeout_secs: 30,
            idle_timeout_secs: 600,
            startup_retry_secs: 60,
        }
    }
}

impl DatabaseConfig {
    /// Resolves `url_file` and requires a URL.
    pub fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        resolve_secret("database.url", &mut self.url, &self.url_file, errors);
        require("database.url", &self.url, errors);
        if self.max_connections == 0 {
            errors.push(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.min_connections > self.max_connections {
            errors.push(ConfigError::new(
                "database.min_connections",
                "must not exceed database.max_connections",
            ));
        }
    }
}

/// `[redis]`: leases, counters and change notifications. Nothing in it is the only copy of a fact.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]` or `rediss://…` for TLS.
    pub url: Option<Secret<String>>,
    pub url_file: Option<PathBuf>,
    /// Prefix of every key and channel, so several clusters (or tests) can share one Redis.
    pub key_prefix: String,
    pub connect_timeout_secs: u64,
    pub response_timeout_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            key_prefix: "mc:".to_string(),
            connect_timeout_secs: 2,
            response_timeout_secs: 2,
        }
    }
}

impl RedisConfig {
    /// Resolves `url_file`; when `required`, a URL must be present.
    pub fn finish(&mut self, required: bool, errors: &mut Vec<ConfigError>) {
        resolve_secret("redis.url", &mut self.url, &self.url_file, errors);
        if required {
            require("redis.url", &self.url, errors);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// `[log]`: JSON lines by default (containers); `RUST_LOG` overrides `level`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `info,mc_directory=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".to_string(),
        }
    }
}

/// `[telemetry]`: OTLP trace export, off unless an endpoint is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// gRPC endpoint of an OpenTelemetry collector, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Option<String>,
    /// Service name reported in traces; defaults to `mailcluster-<service>`.
    pub service_name: Option<String>,
    /// Fraction of traces kept, 0.0 to 1.0.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: None,
            sample_ratio: 1.0,
        }
    }
}

impl LogConfig {
    pub fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            errors.push(ConfigError::new(
                "log.level",
                format!("not a valid filter: {error}"),
            ));
        }
    }
}

impl TelemetryConfig {
    pub fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        let bad_endpoint = self
            .otlp_endpoint
            .as_ref()
            .is_some_and(|e| !(e.starts_with("http://") || e.starts_with("https://")));
        if bad_endpoint {
            errors.push(ConfigError::new(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL of an OTLP gRPC collector",
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            errors.push(ConfigError::new(
                "telemetry.sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
    }
}

/// `[ops]`: the HTTP listener for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    pub listen: SocketAddr,
    /// How long a draining service waits for work in flight after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl OpsConfig {
    /// The defaults of a service whose ops port is `port` (see ARCHITECTURE.md "Ports").
    pub fn on_port(port: u16) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], port)),
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self::on_port(9100)
    }
}
