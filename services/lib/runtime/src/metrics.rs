//! The Prometheus registry of a service. Every metric is named `mailcluster_<service>_<thing>_<unit>`
//! (counters end in `_total`), and no label ever carries a user, domain, address or client IP.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    role: String,
}

/// The root registry of a service: the standard `process_*` metrics, and
/// `mailcluster_build_info{version,role} 1`. Services add theirs under [`service`].
pub fn registry(role: &str) -> Registry {
    let mut root = Registry::default();
    root.register_collector(Box::new(crate::process::ProcessCollector));
    let registry = root.sub_registry_with_prefix("mailcluster");
    let build_info = Family::<BuildLabels, Gauge>::default();
    build_info
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: role.to_string(),
        })
        .set(1);
    registry.register(
        "build_info",
        "Build of the running binary (always 1)",
        build_info,
    );
    crate::store_metrics::register(registry);
    root
}

/// The sub-registry for a service's own metrics: `mailcluster_<service>_…`.
pub fn service<'a>(root: &'a mut Registry, service: &str) -> &'a mut Registry {
    root.sub_registry_with_prefix("mailcluster")
        .sub_registry_with_prefix(service)
}

/// The registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_info_is_exported_with_prefix_and_role() {
        let text = super::encode(&super::registry("admin"));
        assert!(
            text.contains("# TYPE mailcluster_build_info gauge"),
            "{text}"
        );
        assert!(text.contains("role=\"admin\""), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE process_resident_memory_bytes gauge"),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
        assert!(
            text.contains("# TYPE process_resident_memory_bytes gauge"),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
    }
}
