//! `mailcluster-smtp-ingress`: the SMTP server (`serve`, the default) and `check-config`.

use clap::{Parser, Subcommand};
use mc_runtime::config::{EXIT_CONFIG, Sources};
use mc_smtp_ingress::config::IngressConfig;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mailcluster-smtp-ingress",
    version,
    about = "mailcluster SMTP ingress (MX and submission)"
)]
struct Cli {
    /// Configuration file (TOML); also MAILCLUSTER_CONFIG.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SMTP (default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config: IngressConfig = match mc_runtime::config::load(&Sources::from_process(cli.config)) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if matches!(cli.command, Some(Command::CheckConfig)) {
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    mc_runtime::install_crypto_provider();
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
        let _telemetry =
            mc_runtime::telemetry::init("smtp-ingress", &config.log, &config.telemetry)?;
        let shutdown = mc_runtime::shutdown::on_signal();
        mc_smtp_ingress::run(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "smtp-ingress failed");
            eprintln!("mailcluster-smtp-ingress: {error:#}");
            ExitCode::FAILURE
        }
    }
}
