//! Configuration of the access service: the shared store sections, `[tls]`, and `[access]` with
//! the IMAP and POP3 listeners and every limit a session enforces (each a named key with a safe
//! default).

use mc_mailstore::blob::BlobConfig;
use mc_runtime::config::{ConfigError, ServiceConfig};
use mc_runtime::sections::{DatabaseConfig, LogConfig, OpsConfig, RedisConfig, TelemetryConfig};
use mc_runtime::tls::TlsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub blob: BlobConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub ops: OpsConfig,
    pub tls: TlsConfig,
    pub access: AccessSection,
}

/// `[access]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    /// Name in greetings.
    pub hostname: String,
    /// IMAP listeners (STARTTLS offered when `[tls]` is set). Empty disables.
    pub imap_listen: Vec<SocketAddr>,
    /// IMAPS listeners (implicit TLS). Need `[tls]`.
    pub imaps_listen: Vec<SocketAddr>,
    /// POP3 listeners (STLS offered when `[tls]` is set).
    pub pop3_listen: Vec<SocketAddr>,
    /// POP3S listeners (implicit TLS). Need `[tls]`.
    pub pop3s_listen: Vec<SocketAddr>,
    /// Allow passwords on connections without TLS (everywhere; off by default).
    pub allow_plaintext_auth: bool,
    /// Networks where passwords may cross without TLS even when `allow_plaintext_auth` is off
    /// (a trusted LAN, the load balancer's health checks).
    pub plaintext_auth_networks: Vec<ipnet::IpNet>,
    /// Longest command line in bytes, literals excluded.
    pub max_line_bytes: u32,
    /// Largest literal in a command other than APPEND.
    pub max_literal_bytes: u32,
    /// Largest message APPEND accepts.
    pub max_append_bytes: u32,
    /// Idle time allowed before login.
    pub login_timeout_secs: u64,
    /// Idle time allowed after login (RFC 3501: at least 30 minutes); IDLE is exempt.
    pub idle_timeout_secs: u64,
    /// How long one IDLE may last before the server ends it (clients re-issue it).
    pub idle_max_secs: u64,
    /// How often an IDLE session looks in PostgreSQL even without a notification (the
    /// notification may be lost: Redis down or restarted).
    pub idle_poll_secs: u64,
    /// TLS handshake and PROXY header deadline.
    pub handshake_timeout_secs: u64,
    /// Connections served at once (all listeners of this process); 0 = unlimited.
    pub max_connections: usize,
    /// Connections from one client address at once; 0 = unlimited.
    pub max_connections_per_ip: usize,
    /// Refused commands before the client is disconnected.
    pub max_bad_commands: u32,
    /// Failed logins in one session before the client is disconnected.
    pub max_auth_failures: u32,
    /// How long a POP3 session holds its maildrop lock without renewing it (a crashed replica's
    /// lock frees itself after this).
    pub pop3_lock_secs: u64,
    /// Networks (load balancers) whose connections must start with a PROXY v1/v2 header.
    pub proxy_protocol_trusted: Vec<ipnet::IpNet>,
}

impl Default for AccessSection {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            imap_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2143))],
            imaps_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2993))],
            pop3_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2110))],
            pop3s_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2995))],
            allow_plaintext_auth: false,
            plaintext_auth_networks: Vec::new(),
            max_line_bytes: 64 * 1024,
            max_literal_bytes: 64 * 1024,
            max_append_bytes: 50 * 1024 * 1024,
            login_timeout_secs: 60,
            idle_timeout_secs: 30 * 60,
            idle_max_secs: 29 * 60,
            idle_poll_secs: 30,
            handshake_timeout_secs: 30,
            max_connections: 20_000,
            max_connections_per_ip: 50,
            max_bad_commands: 20,
            max_auth_failures: 3,
            pop3_lock_secs: 300,
            proxy_protocol_trusted: Vec::new(),
        }
    }
}

impl AccessSection {
    /// The bounds on IMAP client input.
    pub fn imap_limits(&self) -> mc_imap::framing::Limits {
        mc_imap::framing::Limits {
            line_bytes: self.max_line_bytes,
            literal_bytes: self.max_literal_bytes,
            append_bytes: self.max_append_bytes,
        }
    }

    /// May a client at `ip` send a password without TLS?
    pub fn plaintext_auth_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.allow_plaintext_auth || self.plaintext_auth_networks.iter().any(|n| n.contains(&ip))
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            blob: BlobConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            ops: OpsConfig::on_port(9102),
            tls: TlsConfig::default(),
            access: AccessSection::default(),
        }
    }
}

impl ServiceConfig for AccessConfig {
    fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        self.database.finish(errors);
        self.redis.finish(true, errors);
        self.blob.finish(errors);
        self.log.finish(errors);
        self.telemetry.finish(errors);
        self.tls.finish("tls", errors);
        let access = &self.access;
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errors.push(ConfigError::new(format!("access.{key}"), message));
            }
        };
        check(
            mc_types::Domain::parse(&access.hostname).is_ok(),
            "hostname",
            "must be a domain name",
        );
        check(
            access.max_line_bytes >= 1024,
            "max_line_bytes",
            "must be at least 1024",
        );
        check(
            access.max_literal_bytes >= 1024,
            "max_literal_bytes",
            "must be at least 1024",
        );
        check(
            access.max_append_bytes >= 64 * 1024,
            "max_append_bytes",
            "must be at least 65536",
        );
        check(
            access.idle_timeout_secs >= 60,
            "idle_timeout_secs",
            "must be at least 60",
        );
        check(
            (1..=access.idle_timeout_secs.max(1)).contains(&access.idle_max_secs),
            "idle_max_secs",
            "must be between 1 and idle_timeout_secs",
        );
        check(
            (1..=3600).contains(&access.idle_poll_secs),
            "idle_poll_secs",
            "must be between 1 and 3600",
        );
        for (key, value) in [
            ("login_timeout_secs", access.login_timeout_secs),
            ("handshake_timeout_secs", access.handshake_timeout_secs),
            ("pop3_lock_secs", access.pop3_lock_secs),
        ] {
            check(value >= 1, key, "must be at least 1");
        }
        check(
            access.max_auth_failures >= 1,
            "max_auth_failures",
            "must be at least 1",
        );
        let implicit = !access.imaps_listen.is_empty() || !access.pop3s_listen.is_empty();
        check(
            !implicit || self.tls.is_enabled(),
            "imaps_listen",
            "implicit TLS (imaps_listen, pop3s_listen) needs [tls] cert_file and key_file (or set them to [])",
        );
        let mut all: Vec<SocketAddr> = access
            .imap_listen
            .iter()
            .chain(&access.imaps_listen)
            .chain(&access.pop3_listen)
            .chain(&access.pop3s_listen)
            .copied()
            .collect();
        check(
            !all.is_empty(),
            "imap_listen",
            "at least one listener is needed",
        );
        all.push(self.ops.listen);
        let count = all.len();
        all.sort();
        all.dedup();
        check(
            all.len() == count,
            "imap_listen",
            "every listener (and ops.listen) needs its own address",
        );
    }
}
