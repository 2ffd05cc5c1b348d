//! The start-up and exit path every service binary shares: load and validate the configuration
//! (exit 64 with every problem listed), `check-config`, the crypto provider, the async runtime,
//! telemetry, shutdown on signals, and one way of reporting a fatal error.

use crate::config::{EXIT_CONFIG, ServiceConfig, Sources};
use crate::sections::{LogConfig, TelemetryConfig};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Loads the configuration from `--config`/`MAILCLUSTER_CONFIG` and the environment. On errors
/// (or when `check_only`, after reporting success) returns the exit code to end with.
pub fn load_config<C: ServiceConfig>(
    file: Option<PathBuf>,
    check_only: bool,
) -> Result<C, ExitCode> {
    match crate::config::load(&Sources::from_process(file)) {
        Ok(_) if check_only => {
            println!("configuration is valid");
            Err(ExitCode::SUCCESS)
        }
        Ok(config) => Ok(config),
        Err(errors) => {
            eprint!("{errors}");
            Err(ExitCode::from(EXIT_CONFIG as u8))
        }
    }
}

/// Runs `body` on a multi-threaded runtime with telemetry installed and a token cancelled on
/// SIGTERM/SIGINT; a returned error is logged and printed, and the process exits with failure.
pub fn run<F, Fut>(role: &str, log: &LogConfig, telemetry: &TelemetryConfig, body: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let _telemetry = crate::telemetry::init(role, log, telemetry)?;
        body(crate::shutdown::on_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "{role} failed");
            eprintln!("mailcluster-{role}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
