//! `mailcluster-admin`: the admin API service (`serve`, the default), `migrate`, `check-config`
//! and `healthcheck`.

use clap::{Parser, Subcommand};
use mc_admin::config::AdminConfig;
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
    /// Probe this service's /readyz (ops.listen) and exit 0 when ready, 1 otherwise.
    Healthcheck(mc_runtime::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck(args)) = cli.command {
        return args.run(cli.config, |c: &AdminConfig| c.ops.listen);
    }
    let check_only = matches!(cli.command, Some(Command::CheckConfig));
    let config: AdminConfig = match mc_runtime::service::load_config(cli.config, check_only) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let (log, telemetry) = (config.log.clone(), config.telemetry.clone());
    mc_runtime::service::run("admin", &log, &telemetry, |shutdown| async move {
        match cli.command {
            Some(Command::Migrate) => {
                let pool = mc_runtime::stores::pg_connect(&config.database, &shutdown).await?;
                mc_schema::migrate(&pool).await?;
                tracing::info!(version = mc_schema::expected_version(), "schema is current");
                Ok(())
            }
            _ => mc_admin::run(config, shutdown).await,
        }
    })
}
