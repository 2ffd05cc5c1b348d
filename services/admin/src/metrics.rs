//! Metrics of the admin API: `mailcluster_admin_requests_total{method,route,status}`,
//! `mailcluster_admin_request_duration_seconds{method,route}` and
//! `mailcluster_admin_auth_failures_total`. Routes are the matched templates
//! (`/api/v1/accounts/{address}`), never concrete addresses.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

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
