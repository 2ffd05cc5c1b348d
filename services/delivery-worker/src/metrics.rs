//! Metrics of the delivery worker, all `mailcluster_delivery_…`; labels are fixed vocabularies.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
}

impl Metrics {
    pub fn register(root: &mut Registry) -> Self {
        let registry = mc_runtime::metrics::service(root, "delivery");
        let metrics = Self {
            housekeeping: Family::default(),
            claimed: Counter::default(),
            recipients: Family::default(),
            local_copies: Counter::default(),
        };
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

    pub fn outcome(&self, outcome: &'static str) {
        self.recipients
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}
