//! Configuration of smtp-ingress: the shared store sections, `[tls]`, and `[smtp]` with the
//! listeners and every limit a session enforces (each a named key with a safe default).

use mc_mailstore::blob::BlobConfig;
use mc_runtime::config::{ConfigError, ServiceConfig};
use mc_runtime::sections::{DatabaseConfig, LogConfig, OpsConfig, RedisConfig, TelemetryConfig};
use mc_runtime::tls::TlsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub blob: BlobConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub ops: OpsConfig,
    pub tls: TlsConfig,
    pub smtp: SmtpSection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VrfyReply {
    /// 502 (the reference server).
    Disabled,
    /// 252: neither confirms nor denies.
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEndingPolicy {
    /// 554 5.6.0 for a message with a bare CR or LF (the default: no smuggling, no ambiguity).
    Reject,
    /// Store the message with each bare CR or LF replaced by CRLF.
    Normalize,
}

/// `[smtp]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// Name in the banner, EHLO reply and `Received:` headers; must resolve to this service.
    pub hostname: String,
    /// MX listeners (plain, STARTTLS offered when `[tls]` is set). Empty disables.
    pub mx_listen: Vec<SocketAddr>,
    /// Submission listeners (STARTTLS, AUTH required for every message).
    pub submission_listen: Vec<SocketAddr>,
    /// Submissions listeners (implicit TLS, AUTH required). Need `[tls]`.
    pub submissions_listen: Vec<SocketAddr>,
    /// Largest message in bytes, advertised with SIZE; 0 = unlimited (not recommended).
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    /// Longest command line in bytes (RFC 5321 requires at least 512).
    pub max_line_bytes: usize,
    /// Largest header section of a message in bytes.
    pub max_header_bytes: usize,
    /// `Received:` headers above which a message is refused as a loop (RFC 5321 section 6.3).
    pub max_received_headers: usize,
    /// Idle time allowed while waiting for a command or for DATA bytes.
    pub command_timeout_secs: u64,
    /// Whole-session limit.
    pub session_timeout_secs: u64,
    /// TLS handshake and PROXY header deadline.
    pub handshake_timeout_secs: u64,
    /// Connections served at once (all listeners of this process); 0 = unlimited.
    pub max_connections: usize,
    /// Connections from one client address at once; 0 = unlimited.
    pub max_connections_per_ip: usize,
    /// Refused commands before the client is disconnected.
    pub max_bad_commands: u32,
    /// Failed AUTH attempts before the client is disconnected.
    pub max_auth_failures: u32,
    pub vrfy: VrfyReply,
    /// Offer AUTH on connections without TLS (passwords cross in clear; off by default).
    pub allow_plaintext_auth: bool,
    /// Accept the null reverse-path `<>` (needed for bounces and sender verification).
    pub allow_empty_sender: bool,
    pub bare_line_endings: BareLineEndingPolicy,
    /// Networks (load balancers) whose connections must start with a PROXY v1/v2 header. Empty
    /// disables PROXY protocol.
    pub proxy_protocol_trusted: Vec<ipnet::IpNet>,
    /// Bodies up to this size are kept in memory while received; larger ones spill to a file.
    pub spool_memory_bytes: usize,
    /// Where large bodies spill; the system temporary directory by default.
    pub spool_dir: Option<PathBuf>,
    /// How long the queue keeps trying an accepted message before bouncing it.
    pub queue_lifetime_secs: u64,
    /// Deadline for storing an accepted message (blob upload and queue commit together).
    pub store_timeout_secs: u64,
    /// Where `RCPT TO:<Postmaster>` (no domain; RFC 5321 section 4.5.1) is delivered; by default
    /// `postmaster@<hostname>`. Make it (or an alias of it) a hosted address.
    pub postmaster_address: Option<String>,
    /// How long hosted domains and recipient resolutions are cached (the reference server's
    /// object cache). The cache is used only while Redis delivers the admin API's change
    /// notices, which empty it at once; the time bounds staleness from changes made by hand in
    /// SQL. 0 disables it.
    pub directory_cache_secs: u64,
    /// Most cached answers of each kind.
    pub directory_cache_entries: usize,
    /// Messages up to this size are packed with the others accepted at the same moment into one
    /// object (group commit); larger ones are uploaded alone by their session.
    pub pack_max_message_bytes: usize,
    /// Most bytes packed into one object.
    pub pack_max_bytes: usize,
    /// Most messages queued by one PostgreSQL commit.
    pub commit_max_messages: usize,
    /// Group commits in progress at once; messages arriving meanwhile form the next batch. One
    /// gives the largest batches and, measured on 2 cores, the most messages per second.
    pub commit_concurrency: usize,
    /// DNS servers for the sender checks (SPF, DKIM, DMARC, MX, block lists), `ip:port`;
    /// empty: the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// Deadline of one DNS query.
    pub dns_timeout_secs: u64,
    /// How old the anti-spam settings and lists (kept in PostgreSQL: `mailctl antispam`,
    /// `whitelist`, `relay`, `dnsbl`) may be when a transaction uses them.
    pub antispam_settings_secs: u64,
}

impl SmtpSection {
    /// The address `RCPT TO:<Postmaster>` stands for.
    pub fn postmaster(&self) -> Result<mc_types::EmailAddress, mc_types::AddressError> {
        match &self.postmaster_address {
            Some(address) => mc_types::EmailAddress::parse(address),
            None => mc_types::EmailAddress::parse(&format!("postmaster@{}", self.hostname)),
        }
    }
}

impl Default for SmtpSection {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            mx_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2525))],
            submission_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2587))],
            submissions_listen: vec![SocketAddr::from(([0, 0, 0, 0], 2465))],
            max_message_bytes: 20 * 1024 * 1024,
            max_recipients: 100,
            max_line_bytes: 2048,
            max_header_bytes: 1024 * 1024,
            max_received_headers: 100,
            command_timeout_secs: 600,
            session_timeout_secs: 3600,
            handshake_timeout_secs: 30,
            max_connections: 5000,
            max_connections_per_ip: 50,
            max_bad_commands: 20,
            max_auth_failures: 3,
            vrfy: VrfyReply::Disabled,
            allow_plaintext_auth: false,
            allow_empty_sender: true,
            bare_line_endings: BareLineEndingPolicy::Reject,
            proxy_protocol_trusted: Vec::new(),
            spool_memory_bytes: 1024 * 1024,
            spool_dir: None,
            queue_lifetime_secs: 5 * 24 * 3600,
            store_timeout_secs: 60,
            postmaster_address: None,
            directory_cache_secs: 60,
            directory_cache_entries: 100_000,
            pack_max_message_bytes: 256 * 1024,
            pack_max_bytes: 4 * 1024 * 1024,
            commit_max_messages: 128,
            commit_concurrency: 1,
            dns_servers: Vec::new(),
            dns_timeout_secs: 5,
            antispam_settings_secs: 10,
        }
    }
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            blob: BlobConfig::default(),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            ops: OpsConfig::on_port(9101),
            tls: TlsConfig::default(),
            smtp: SmtpSection::default(),
        }
    }
}

impl ServiceConfig for IngressConfig {
    fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        self.database.finish(errors);
        self.redis.finish(true, errors);
        self.blob.finish(errors);
        self.log.finish(errors);
        self.telemetry.finish(errors);
        self.tls.finish("tls", errors);
        let smtp = &self.smtp;
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errors.push(ConfigError::new(format!("smtp.{key}"), message));
            }
        };
        check(
            mc_types::Domain::parse(&smtp.hostname).is_ok(),
            "hostname",
            "must be a domain name",
        );
        check(
            smtp.max_line_bytes >= 512,
            "max_line_bytes",
            "must be at least 512 (RFC 5321)",
        );
        check(
            smtp.max_recipients >= 1,
            "max_recipients",
            "must be at least 1",
        );
        check(
            smtp.max_header_bytes >= 4096,
            "max_header_bytes",
            "must be at least 4096",
        );
        check(
            smtp.command_timeout_secs >= 1,
            "command_timeout_secs",
            "must be at least 1",
        );
        check(
            smtp.session_timeout_secs >= 1,
            "session_timeout_secs",
            "must be at least 1",
        );
        check(
            smtp.handshake_timeout_secs >= 1,
            "handshake_timeout_secs",
            "must be at least 1",
        );
        check(
            smtp.store_timeout_secs >= 1,
            "store_timeout_secs",
            "must be at least 1",
        );
        check(
            smtp.directory_cache_secs <= 86_400,
            "directory_cache_secs",
            "must be at most 86400 (one day)",
        );
        check(
            (60..=30 * 86_400).contains(&smtp.queue_lifetime_secs),
            "queue_lifetime_secs",
            "must be between 60 and 2592000 (30 days)",
        );
        check(
            (1..=60).contains(&smtp.dns_timeout_secs),
            "dns_timeout_secs",
            "must be between 1 and 60",
        );
        check(
            smtp.antispam_settings_secs <= 3600,
            "antispam_settings_secs",
            "must be at most 3600",
        );
        check(
            smtp.store_timeout_secs <= 3600,
            "store_timeout_secs",
            "must be at most 3600",
        );
        check(
            smtp.postmaster().is_ok(),
            "postmaster_address",
            "must be an email address (the default postmaster@<hostname> needs a valid hostname)",
        );
        check(
            smtp.pack_max_message_bytes <= smtp.spool_memory_bytes,
            "pack_max_message_bytes",
            "must not exceed spool_memory_bytes (only bodies held in memory are packed)",
        );
        check(
            smtp.pack_max_bytes >= smtp.pack_max_message_bytes,
            "pack_max_bytes",
            "must be at least pack_max_message_bytes",
        );
        check(
            (1..=10_000).contains(&smtp.commit_max_messages),
            "commit_max_messages",
            "must be between 1 and 10000",
        );
        check(
            (1..=64).contains(&smtp.commit_concurrency),
            "commit_concurrency",
            "must be between 1 and 64",
        );
        check(
            smtp.max_auth_failures >= 1,
            "max_auth_failures",
            "must be at least 1",
        );
        check(
            smtp.submissions_listen.is_empty() || self.tls.is_enabled(),
            "submissions_listen",
            "implicit TLS needs [tls] cert_file and key_file (or set it to [])",
        );
        check(
            !(smtp.mx_listen.is_empty()
                && smtp.submission_listen.is_empty()
                && smtp.submissions_listen.is_empty()),
            "mx_listen",
            "at least one listener is needed",
        );
        let mut all: Vec<SocketAddr> = smtp
            .mx_listen
            .iter()
            .chain(&smtp.submission_listen)
            .chain(&smtp.submissions_listen)
            .copied()
            .collect();
        all.push(self.ops.listen);
        let count = all.len();
        all.sort();
        all.dedup();
        check(
            all.len() == count,
            "mx_listen",
            "every listener (and ops.listen) needs its own address",
        );
    }
}
