//! Service plumbing shared by every mailcluster binary: configuration (figment, validated before
//! any port is bound), telemetry (JSON logs, OTLP traces), the ops HTTP endpoint (`/metrics`,
//! `/healthz`, `/readyz`), clients of PostgreSQL and Redis with timeouts, shutdown on SIGTERM, server
//! TLS from reloadable PEM files, and the PROXY protocol from trusted load balancers.
//!
//! This crate is plumbing only: it never learns what a mailbox, a queue entry or an account is.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod healthcheck;
pub mod metrics;
pub mod ops;
pub mod process;
pub mod proxy;
pub mod sections;
pub mod service;
pub mod shutdown;
pub mod store_metrics;
pub mod stores;
pub mod telemetry;
pub mod tls;

/// Installs aws-lc-rs as the process-wide rustls provider. Call first thing in every `main` and
/// test harness: with no default provider rustls panics at the first TLS connection.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
