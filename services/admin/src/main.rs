//! `mailcluster-admin`: the admin API service (`serve`, the default) and `migrate`.

use clap::{Parser, Subcommand};
use mc_admin::config::AdminConfig;
use mc_runtime::config::{EXIT_CONFIG, Sources};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mailcluster-admin",
    version,
    about = "mailcluster admin API service"
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
    /// Serve the admin API (default).
    Serve,
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Validate the configuration and exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config: AdminConfig = match mc_runtime::config::load(&Sources::from_process(cli.config)) {
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
        let _telemetry = mc_runtime::telemetry::init("admin", &config.log, &config.telemetry)?;
        let shutdown = mc_runtime::shutdown::on_signal();
        match cli.command {
            Some(Command::Migrate) => {
                let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
                mc_schema::migrate(&pool).await?;
                tracing::info!(version = mc_schema::expected_version(), "schema is current");
                Ok(())
            }
            _ => mc_admin::run(config, shutdown).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "admin service failed");
            eprintln!("mailcluster-admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}
