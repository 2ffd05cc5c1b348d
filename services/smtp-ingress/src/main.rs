//! `mailcluster-smtp-ingress`: the SMTP server (`serve`, the default) and `check-config`.

use clap::{Parser, Subcommand};
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
    let check_only = matches!(cli.command, Some(Command::CheckConfig));
    let config: IngressConfig = match mc_runtime::service::load_config(cli.config, check_only) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let (log, telemetry) = (config.log.clone(), config.telemetry.clone());
    mc_runtime::service::run("smtp-ingress", &log, &telemetry, |shutdown| {
        mc_smtp_ingress::run(config, shutdown)
    })
}
