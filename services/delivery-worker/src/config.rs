//! Configuration of the delivery worker: the shared store sections and `[delivery]`.

use mc_mailstore::blob::BlobConfig;
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
    /// Where message bodies are (read for bounces, written for the bounces themselves).
    pub blob: BlobConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub ops: OpsConfig,
    pub delivery: DeliverySection,
}

/// `[delivery]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// This server's name in bounces (`Reporting-MTA`, `MAILER-DAEMON@…`).
    pub hostname: String,
    /// How long a bounce stays queued before it is given up (bounces are never bounced).
    pub bounce_lifetime_secs: u64,
    /// How long a forward to a remote address (queued by the worker) keeps being tried.
    pub forward_lifetime_secs: u64,
    /// Largest original attached whole to a bounce when the sender asked for `RET=FULL`;
    /// above it (and by default) only the header section is attached.
    pub bounce_max_original_bytes: u64,
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
    /// How often finished queue entries are removed and unreferenced bodies collected (any
    /// number of workers may do it at once). 0 disables it.
    pub housekeeping_interval_secs: u64,
    /// How long a body stays after the last reference to it went (longer than any upload).
    pub collect_grace_secs: u64,
    /// How long deliverable recipient resolutions are cached; used only while Redis delivers
    /// the admin API's change notices (as in smtp-ingress).
    pub directory_cache_secs: u64,
    /// A sender hears an account's out-of-office reply at most once in this many hours (RFC 3834
    /// suggests 7 days). Switching the reply on again starts afresh.
    pub autoreply_interval_hours: u64,
    /// Retries of a remote recipient after its first attempt before it bounces (the
    /// reference server: 4, so 5 attempts); routes may set their own.
    pub retries: u32,
    /// Each retry waits `retry_minutes × retry_backoff^(retries so far)`, at most a day.
    pub retry_backoff: f64,
    /// The name given in EHLO to remote servers (default: `hostname`). It should resolve to
    /// the address the worker connects from.
    pub helo_name: Option<String>,
    /// TCP port of MX hosts (25; tests point it elsewhere). Routes and the relayer name their own.
    pub remote_port: u16,
    /// DNS servers for MX and address lookups (`ip:port`); empty: the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Addresses that are this cluster itself: an MX or relayer resolving into them is a mail
    /// loop and the recipient bounces (the reference server's loop guard). Routes are exempt.
    /// Default: the loopback networks.
    pub own_networks: Vec<ipnet::IpNet>,
    /// Extra PEM CA certificates trusted for remote servers' certificates, next to the
    /// system's trust store.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Most recipients in one outbound transaction (the reference server: 100); the rest go
    /// in further transactions.
    pub max_recipients_per_transaction: usize,
    /// Most transactions with one remote host at once, across all workers (counted in Redis;
    /// 0: no limit, as without Redis).
    pub max_connections_per_destination: usize,
    /// Seconds to wait for a free slot at a busy host before trying the next host (or deferring).
    pub destination_wait_secs: u64,
    /// Seconds to wait for a TCP connection to a remote server.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for each reply of a remote server (RFC 5321 4.5.3.2: 5 minutes; the
    /// reply after the message data gets twice as long).
    pub command_timeout_secs: u64,
    /// Seconds an idle connection to a remote server is kept for the next message to the same
    /// destination; 0 closes after every message.
    pub connection_idle_secs: u64,
    /// Messages with more `Received:` header fields than this bounce as a mail loop (5.4.6).
    pub max_received_headers: usize,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            bounce_lifetime_secs: 5 * 24 * 3600,
            forward_lifetime_secs: 5 * 24 * 3600,
            bounce_max_original_bytes: 1024 * 1024,
            claim_batch: 64,
            concurrency: 16,
            lease_secs: 300,
            poll_interval_ms: 1000,
            retry_minutes: 60,
            housekeeping_interval_secs: 60,
            collect_grace_secs: 3600,
            directory_cache_secs: 60,
            autoreply_interval_hours: 7 * 24,
            retries: 4,
            retry_backoff: 1.0,
            helo_name: None,
            remote_port: 25,
            dns_servers: Vec::new(),
            own_networks: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
            tls_ca_file: None,
            max_recipients_per_transaction: 100,
            max_connections_per_destination: 20,
            destination_wait_secs: 30,
            connect_timeout_secs: 30,
            command_timeout_secs: 300,
            connection_idle_secs: 10,
            max_received_headers: 50,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            blob: BlobConfig::default(),
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
        self.blob.finish(errors);
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
            (10..=86_400).contains(&delivery.lease_secs),
            "lease_secs",
            "must be between 10 and 86400",
        );
        check(
            (10..=3_600_000).contains(&delivery.poll_interval_ms),
            "poll_interval_ms",
            "must be between 10 and 3600000",
        );
        check(
            (60..=30 * 86_400).contains(&delivery.bounce_lifetime_secs),
            "bounce_lifetime_secs",
            "must be between 60 and 2592000 (30 days)",
        );
        check(
            delivery.housekeeping_interval_secs <= 86_400,
            "housekeeping_interval_secs",
            "must be at most 86400",
        );
        check(
            (600..=30 * 86_400).contains(&delivery.collect_grace_secs),
            "collect_grace_secs",
            "must be between 600 (longer than any upload) and 2592000",
        );
        check(delivery.retries <= 1000, "retries", "must be at most 1000");
        check(
            (1.0..=10.0).contains(&delivery.retry_backoff),
            "retry_backoff",
            "must be between 1.0 (fixed interval) and 10.0",
        );
        check(delivery.remote_port != 0, "remote_port", "must not be 0");
        check(
            (1..=1000).contains(&delivery.max_recipients_per_transaction),
            "max_recipients_per_transaction",
            "must be between 1 and 1000",
        );
        check(
            delivery.max_connections_per_destination <= 10_000,
            "max_connections_per_destination",
            "must be at most 10000",
        );
        check(
            delivery.destination_wait_secs <= 3600,
            "destination_wait_secs",
            "must be at most 3600",
        );
        check(
            (1..=600).contains(&delivery.connect_timeout_secs),
            "connect_timeout_secs",
            "must be between 1 and 600",
        );
        check(
            (1..=3600).contains(&delivery.command_timeout_secs),
            "command_timeout_secs",
            "must be between 1 and 3600",
        );
        check(
            delivery.connection_idle_secs <= 300,
            "connection_idle_secs",
            "must be at most 300",
        );
        check(
            (5..=1000).contains(&delivery.max_received_headers),
            "max_received_headers",
            "must be between 5 and 1000",
        );
        check(
            (1..=10_080).contains(&delivery.retry_minutes),
            "retry_minutes",
            "must be between 1 and 10080 (a week)",
        );
    }
}
