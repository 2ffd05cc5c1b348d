//! Metrics of the access service, all `mailcluster_access_…`; labels are fixed vocabularies
//! (protocol, session state, command name, result, reason), never an account or a client IP.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub protocol: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub protocol: &'static str,
    pub command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub protocol: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    pub sessions: Family<StateLabels, Gauge>,
    pub idle_sessions: Gauge,
    pub logins: Family<ResultLabels, Counter>,
    pub commands: Family<CommandLabels, Counter>,
    pub command_duration: Family<CommandLabels, Histogram>,
    pub sent_bytes: Family<ProtocolLabels, Counter>,
    pub refused_connections: Family<ReasonLabels, Counter>,
    pub notifications: Family<ReasonLabels, Counter>,
    pub bans: Counter,
    pub tls_handshakes: Family<ResultLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    /// Counts one TLS handshake.
    pub fn tls_handshake(
        &self,
        protocol: &'static str,
        handshake: mc_runtime::connection::Handshake,
    ) {
        self.tls_handshakes
            .get_or_create(&ResultLabels {
                protocol,
                result: handshake.as_str(),
            })
            .inc();
    }

    pub fn register(root: &mut Registry) -> Self {
        let registry = mc_runtime::metrics::service(root, "access");
        let metrics = Self {
            sessions: Family::default(),
            idle_sessions: Gauge::default(),
            logins: Family::default(),
            commands: Family::default(),
            command_duration: Family::new_with_constructor(latency_histogram),
            sent_bytes: Family::default(),
            refused_connections: Family::default(),
            notifications: Family::default(),
            bans: Counter::default(),
            tls_handshakes: Family::default(),
        };
        registry.register(
            "sessions",
            "Sessions open now, by protocol and state",
            metrics.sessions.clone(),
        );
        registry.register(
            "idle_sessions",
            "IMAP sessions in IDLE now",
            metrics.idle_sessions.clone(),
        );
        registry.register(
            "logins",
            "Login attempts, by protocol and result",
            metrics.logins.clone(),
        );
        registry.register(
            "commands",
            "Commands received, by protocol and name",
            metrics.commands.clone(),
        );
        registry.register_with_unit(
            "command_duration",
            "Time to answer a command, by protocol and name",
            prometheus_client::registry::Unit::Seconds,
            metrics.command_duration.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Bytes sent to clients, by protocol",
            prometheus_client::registry::Unit::Bytes,
            metrics.sent_bytes.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections refused before the greeting, by reason",
            metrics.refused_connections.clone(),
        );
        registry.register(
            "change_notifications",
            "Mailbox change notices, by source (redis, lagged)",
            metrics.notifications.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes by protocol (imaps and pop3s: implicit TLS; imap and pop3: STARTTLS and STLS) and result: the version, failed or timeout",
            metrics.tls_handshakes.clone(),
        );
        registry.register(
            "bans",
            "Client addresses banned after failed logins on this replica",
            metrics.bans.clone(),
        );
        metrics
    }

    /// Moves one session between states of the `sessions` gauge.
    pub fn transition(
        &self,
        protocol: &'static str,
        from: Option<&'static str>,
        to: Option<&'static str>,
    ) {
        if let Some(state) = from {
            self.sessions
                .get_or_create(&StateLabels { protocol, state })
                .dec();
        }
        if let Some(state) = to {
            self.sessions
                .get_or_create(&StateLabels { protocol, state })
                .inc();
        }
    }

    /// Counts one command and its latency.
    pub fn command(&self, protocol: &'static str, command: &'static str, seconds: f64) {
        let labels = CommandLabels { protocol, command };
        self.commands.get_or_create(&labels).inc();
        self.command_duration
            .get_or_create(&labels)
            .observe(seconds);
    }
}
