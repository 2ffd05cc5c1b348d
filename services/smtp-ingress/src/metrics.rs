//! Metrics of smtp-ingress, all `mailcluster_smtp_…`; labels are fixed vocabularies (listener,
//! command verb, outcome, reason), never an address or a client IP.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabels {
    pub listener: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TestLabels {
    pub test: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthResultLabels {
    pub method: &'static str,
    pub result: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    pub sessions: Family<ListenerLabels, Counter>,
    pub active_sessions: Gauge,
    pub refused_connections: Family<ReasonLabels, Counter>,
    pub commands: Family<CommandLabels, Counter>,
    pub messages_accepted: Counter,
    pub messages_rejected: Family<ReasonLabels, Counter>,
    pub recipients_rejected: Family<ReasonLabels, Counter>,
    pub received_bytes: Counter,
    pub accept_latency: Histogram,
    pub commit_batch_messages: Histogram,
    pub directory_cache: Family<ResultLabels, Counter>,
    pub auth: Family<ResultLabels, Counter>,
    pub spam_tests: Family<TestLabels, Counter>,
    pub spam_verdicts: Family<ResultLabels, Counter>,
    pub greylist: Family<ResultLabels, Counter>,
    pub auth_results: Family<AuthResultLabels, Counter>,
    pub bans: Counter,
    pub rate_limited: Family<ReasonLabels, Counter>,
    pub virus_scans: Family<ResultLabels, Counter>,
    pub attachments_blocked: Counter,
    pub tls_handshakes: Family<TlsLabels, Counter>,
}

impl Metrics {
    /// Counts one TLS handshake.
    pub fn tls_handshake(
        &self,
        listener: &'static str,
        handshake: mc_runtime::connection::Handshake,
    ) {
        self.tls_handshakes
            .get_or_create(&TlsLabels {
                listener,
                result: handshake.as_str(),
            })
            .inc();
    }

    pub fn register(root: &mut Registry) -> Self {
        let registry = mc_runtime::metrics::service(root, "smtp");
        let metrics = Self {
            sessions: Family::default(),
            active_sessions: Gauge::default(),
            refused_connections: Family::default(),
            commands: Family::default(),
            messages_accepted: Counter::default(),
            messages_rejected: Family::default(),
            recipients_rejected: Family::default(),
            received_bytes: Counter::default(),
            accept_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            commit_batch_messages: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            directory_cache: Family::default(),
            auth: Family::default(),
            spam_tests: Family::default(),
            spam_verdicts: Family::default(),
            greylist: Family::default(),
            auth_results: Family::default(),
            bans: Counter::default(),
            rate_limited: Family::default(),
            virus_scans: Family::default(),
            attachments_blocked: Counter::default(),
            tls_handshakes: Family::default(),
        };
        registry.register(
            "tls_handshakes",
            "TLS handshakes (465, and STARTTLS) by listener and result: the version, failed or timeout",
            metrics.tls_handshakes.clone(),
        );
        registry.register(
            "sessions",
            "SMTP sessions started, by listener",
            metrics.sessions.clone(),
        );
        registry.register(
            "active_sessions",
            "SMTP sessions open now",
            metrics.active_sessions.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused before the banner, by reason",
            metrics.refused_connections.clone(),
        );
        registry.register(
            "commands",
            "SMTP commands received, by verb",
            metrics.commands.clone(),
        );
        registry.register(
            "messages_accepted",
            "Messages accepted (queued and answered 250)",
            metrics.messages_accepted.clone(),
        );
        registry.register(
            "messages_rejected",
            "Messages refused after DATA/BDAT, by reason",
            metrics.messages_rejected.clone(),
        );
        registry.register(
            "recipients_rejected",
            "RCPT commands refused, by reason",
            metrics.recipients_rejected.clone(),
        );
        registry.register_with_unit(
            "received",
            "Message bytes received from clients",
            Unit::Bytes,
            metrics.received_bytes.clone(),
        );
        registry.register_with_unit(
            "accept_latency",
            "Time from the end of the message data to the committed queue entry",
            Unit::Seconds,
            metrics.accept_latency.clone(),
        );
        registry.register(
            "commit_batch_messages",
            "Messages queued by one group commit (one object upload, one PostgreSQL commit)",
            metrics.commit_batch_messages.clone(),
        );
        registry.register(
            "directory_cache_lookups",
            "Directory answers (hosted domain, recipient) asked of the cache, by hit or miss",
            metrics.directory_cache.clone(),
        );
        registry.register("auth", "AUTH attempts, by result", metrics.auth.clone());
        registry.register(
            "spam_tests",
            "Spam tests that fired (added points), by test",
            metrics.spam_tests.clone(),
        );
        registry.register(
            "spam_verdicts",
            "Spam verdicts of scanned transactions: clean, marked, rejected, dropped, whitelisted",
            metrics.spam_verdicts.clone(),
        );
        registry.register(
            "greylist",
            "Greylisting decisions per recipient, by result",
            metrics.greylist.clone(),
        );
        registry.register(
            "sender_auth_results",
            "Sender authentication results (SPF, DKIM, DMARC, ARC), by method and result",
            metrics.auth_results.clone(),
        );
        registry.register(
            "bans",
            "Client addresses banned after failed logins on this replica",
            metrics.bans.clone(),
        );
        registry.register(
            "rate_limited",
            "Messages refused by a rate limit, by limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "virus_scans",
            "Virus scans of received messages (anti-virus on), by result: clean, infected, error \
             (not scanned: the scanner failed), skipped (range without anti-virus, or too large)",
            metrics.virus_scans.clone(),
        );
        registry.register(
            "attachments_blocked",
            "Attachments replaced by a notice because of their file name extension",
            metrics.attachments_blocked.clone(),
        );
        metrics
    }
}
