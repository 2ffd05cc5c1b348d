//! The ops HTTP endpoint every service serves: `/metrics` (Prometheus text), `/healthz` (the
//! process is alive) and `/readyz` (its stores answer). It carries no secrets and needs no auth;
//! bind it where only the cluster's monitoring reaches it.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long one readiness check may take before it counts as failed.
pub const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// An async probe of one dependency; `Err` carries a short reason (never a secret).
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The named checks `/readyz` runs.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Check)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, check: Check) -> Self {
        self.checks.push((name.to_string(), check));
        self
    }

    /// Runs every check concurrently; returns each name with its outcome.
    pub async fn run(&self) -> Vec<(String, Result<(), String>)> {
        let runs = self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let outcome = match tokio::time::timeout(READINESS_CHECK_TIMEOUT, fut).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err("timed out".to_string()),
                };
                (name.clone(), outcome)
            }
        });
        futures::future::join_all(runs).await
    }
}

struct OpsState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// Serves the ops endpoint on an already bound listener until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = Arc::new(OpsState {
        registry,
        readiness,
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::encode(&state.registry),
    )
}

async fn readyz(State(state): State<Arc<OpsState>>) -> impl IntoResponse {
    let results = state.readiness.run().await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| {
            (
                name,
                serde_json::Value::String(r.err().unwrap_or_else(|| "ok".into())),
            )
        })
        .collect();
    let body = serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
