//! Logs and traces: JSON lines (or text) on stdout, levels from `RUST_LOG` or `[log] level`, and
//! optional OTLP trace export over gRPC.
//!
//! Log fields never carry secrets: credentials are `mc_types::Secret`, which prints `[redacted]`.

use crate::sections::{LogConfig, LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace exporter alive; flushes it when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Call once, early in `main`, inside the tokio runtime (the OTLP
/// exporter runs on it).
pub fn init(
    service: &str,
    log: &LogConfig,
    telemetry: &TelemetryConfig,
) -> anyhow::Result<TelemetryGuard> {
    let filter = || EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&log.level));
    let fmt_layer = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .with_filter(filter()?)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_filter(filter()?)
            .boxed(),
    };

    let mut provider = None;
    let otel_layer = match &telemetry.otlp_endpoint {
        Some(endpoint) => {
            let name = telemetry
                .service_name
                .clone()
                .unwrap_or_else(|| format!("mailcluster-{service}"));
            let tracer_provider = otlp_provider(endpoint, &name, telemetry.sample_ratio)?;
            let tracer = tracer_provider.tracer(name);
            provider = Some(tracer_provider);
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(filter()?),
            )
        }
        None => None,
    };

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(endpoint: &str, service: &str, ratio: f64) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(3))
        .build()?;
    // The async-runtime batch processor exports on tokio tasks; the default one blocks an OS
    // thread on the exporter future, which panics or deadlocks with tonic (CRATES.md).
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}
