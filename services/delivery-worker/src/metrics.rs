//! Metrics of the delivery worker, all `mailcluster_delivery_…`; labels are fixed vocabularies.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    pub housekeeping: Family<KindLabels, Counter>,
    pub claimed: Counter,
    pub recipients: Family<OutcomeLabels, Counter>,
    pub local_copies: Counter,
    pub remote_connections: Family<ResultLabels, Counter>,
    pub remote_tls: Family<ResultLabels, Counter>,
    pub dkim_signed: Counter,
    pub autoreplies: Counter,
    pub attempt_seconds: Histogram,
    pub batch_recipients: Histogram,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

impl Metrics {
    pub fn register(root: &mut Registry) -> Self {
        let registry = mc_runtime::metrics::service(root, "delivery");
        let metrics = Self {
            housekeeping: Family::default(),
            claimed: Counter::default(),
            recipients: Family::default(),
            local_copies: Counter::default(),
            remote_connections: Family::default(),
            remote_tls: Family::default(),
            dkim_signed: Counter::default(),
            autoreplies: Counter::default(),
            batch_recipients: Histogram::new([1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]),
            attempt_seconds: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        };
        registry.register(
            "remote_connections",
            "Connections to remote servers by result (opened, reused, refused)",
            metrics.remote_connections.clone(),
        );
        registry.register(
            "remote_tls",
            "New remote connections by TLS result (none, verified, unverified)",
            metrics.remote_tls.clone(),
        );
        registry.register(
            "dkim_signed",
            "Outbound messages signed with DKIM",
            metrics.dkim_signed.clone(),
        );
        registry.register(
            "batch_recipients",
            "Recipients delivered locally by one batch transaction",
            metrics.batch_recipients.clone(),
        );
        registry.register(
            "autoreplies",
            "Out-of-office replies queued",
            metrics.autoreplies.clone(),
        );
        registry.register(
            "remote_attempt_duration_seconds",
            "Time of one remote delivery attempt to one address (connect to last reply)",
            metrics.attempt_seconds.clone(),
        );
        registry.register(
            "claimed",
            "Recipients claimed from the queue",
            metrics.claimed.clone(),
        );
        registry.register(
            "recipients",
            "Recipient attempts by outcome (delivered, deferred, fenced, unrecorded)",
            metrics.recipients.clone(),
        );
        registry.register(
            "local_copies",
            "Messages placed into local mailboxes",
            metrics.local_copies.clone(),
        );
        registry.register(
            "housekeeping",
            "Rows and objects removed by housekeeping, by kind",
            metrics.housekeeping.clone(),
        );
        metrics
    }

    pub fn housekept(&self, kind: &'static str, count: u64) {
        self.housekeeping
            .get_or_create(&KindLabels { kind })
            .inc_by(count);
    }

    pub fn connections(&self, result: &'static str) {
        self.remote_connections
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn tls(&self, result: &'static str) {
        self.remote_tls
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn outcomes(&self, outcome: &'static str, count: u64) {
        if count > 0 {
            self.recipients
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(count);
        }
    }

    pub fn outcome(&self, outcome: &'static str) {
        self.recipients
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}
