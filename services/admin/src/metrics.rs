//! Metrics of the admin API: `mailcluster_admin_requests_total{method,route,status}`,
//! `mailcluster_admin_request_duration_seconds{method,route}` and
//! `mailcluster_admin_auth_failures_total`. Routes are the matched templates
//! (`/api/v1/accounts/{address}`), never concrete addresses.
//!
//! The queue's counters, read from PostgreSQL every [`QUEUE_STATS_EVERY`]:
//! `mailcluster_admin_queue_recipients{state="queued|deferred|in_flight"}` and
//! `mailcluster_admin_queue_oldest_age_seconds`. Every admin replica reports the same cluster-wide
//! values (aggregate with `max`, not `sum`). So does `mailcluster_admin_bans_active`, the bans in
//! force.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the queue's counters are read.
pub const QUEUE_STATS_EVERY: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    pub auth_failures: Counter,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let admin = mc_runtime::metrics::service(registry, "admin");
        let requests = Family::<RequestLabels, Counter>::default();
        admin.register(
            "requests",
            "Admin API requests by route and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        admin.register_with_unit(
            "request_duration",
            "Admin API request latency",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let auth_failures = Counter::default();
        admin.register(
            "auth_failures",
            "Admin API requests with a missing or wrong token",
            auth_failures.clone(),
        );
        Self {
            requests,
            duration,
            auth_failures,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    state: String,
}

/// Gauges of the delivery queue, set from [`mc_queue::Queue::stats`].
#[derive(Clone)]
pub struct QueueGauges {
    recipients: Family<QueueLabels, Gauge>,
    oldest_age: Gauge,
    bans_active: Gauge,
}

impl QueueGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let queue =
            mc_runtime::metrics::service(registry, "admin").sub_registry_with_prefix("queue");
        let recipients = Family::<QueueLabels, Gauge>::default();
        queue.register(
            "recipients",
            "Waiting recipients: all queued, deferred (tried, waiting for the next attempt), in flight",
            recipients.clone(),
        );
        let oldest_age = Gauge::default();
        queue.register_with_unit(
            "oldest_age",
            "Age of the oldest entry with a waiting recipient (0 when none waits)",
            prometheus_client::registry::Unit::Seconds,
            oldest_age.clone(),
        );
        let bans_active = Gauge::default();
        mc_runtime::metrics::service(registry, "admin").register(
            "bans_active",
            "Client addresses banned now (automatic and administrator bans, cluster-wide)",
            bans_active.clone(),
        );
        Self {
            recipients,
            oldest_age,
            bans_active,
        }
    }

    pub fn set(&self, stats: &mc_queue::admin::QueueStats) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (state, value) in [
            ("queued", stats.queued_recipients),
            ("deferred", stats.deferred_recipients),
            ("in_flight", stats.in_flight),
        ] {
            self.recipients
                .get_or_create(&QueueLabels {
                    state: state.to_string(),
                })
                .set(gauge(value));
        }
        self.oldest_age
            .set(gauge(stats.oldest_queued_age_secs.unwrap_or(0)));
    }

    /// Reads the counters (and the bans in force) now and every [`QUEUE_STATS_EVERY`] until
    /// `shutdown`.
    pub async fn refresh(
        self,
        queue: mc_queue::Queue,
        bans: mc_policy::Bans,
        shutdown: CancellationToken,
    ) {
        loop {
            match queue.stats().await {
                Ok(stats) => self.set(&stats),
                Err(error) => tracing::warn!(%error, "queue counters not read"),
            }
            match bans.list(time::OffsetDateTime::now_utc()).await {
                Ok(active) => {
                    self.bans_active
                        .set(i64::try_from(active.len()).unwrap_or(i64::MAX));
                }
                Err(error) => tracing::warn!(%error, "bans not counted"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(QUEUE_STATS_EVERY) => {}
            }
        }
    }
}
