//! Configuration of the delivery worker: the shared store sections and `[delivery]`.

use mc_runtime::config::{ConfigError, ServiceConfig};
use mc_runtime::sections::{DatabaseConfig, LogConfig, OpsConfig, RedisConfig, TelemetryConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    pub database: DatabaseConfig,
    /// Optional: new-mail hints (`queue:due`) wake the worker at once, and mailbox change
    /// notices go out; without Redis the worker polls.
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub ops: OpsConfig,
    pub delivery: DeliverySection,
}

/// `[delivery]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Most recipients claimed at once.
    pub claim_batch: usize,
    /// Deliveries in progress at once in this process.
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the recipient.
    pub lease_secs: u64,
    /// How often the queue is looked at when no hint arrives.
    pub poll_interval_ms: u64,
    /// Delay before a temporarily failed recipient is tried again (the reference server: 60).
    pub retry_minutes: u64,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            claim_batch: 64,
            concurrency: 16,
            lease_secs: 300,
            poll_interval_ms: 1000,
            retry_minutes: 60,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            ops: OpsConfig::on_port(9103),
            delivery: DeliverySection::default(),
        }
    }
}

impl ServiceConfig for WorkerConfig {
    fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        self.database.finish(errors);
        self.redis.finish(false, errors);
        self.log.finish(errors);
        self.telemetry.finish(errors);
        let delivery = &self.delivery;
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errors.push(ConfigError::new(format!("delivery.{key}"), message));
            }
        };
        check(
            (1..=10_000).contains(&delivery.claim_batch),
            "claim_batch",
            "must be between 1 and 10000",
        );
        check(
            (1..=1_000).contains(&delivery.concurrency),
            "concurrency",
            "must be between 1 and 1000",
        );
        check(
            delivery.lease_secs >= 10,
            "lease_secs",
            "must be at least 10",
        );
        check(
            delivery.poll_interval_ms >= 10,
            "poll_interval_ms",
            "must be at least 10",
        );
        check(
            delivery.retry_minutes >= 1,
            "retry_minutes",
            "must be at least 1",
        );
    }
}
