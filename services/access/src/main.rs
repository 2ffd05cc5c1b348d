//! `mailcluster-access`: the IMAP and POP3 servers (`serve`, the default), `check-config` and
//! `healthcheck`.

use clap::{Parser, Subcommand};
use mc_access::config::AccessConfig;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mailcluster-access",
    version,
    about = "mailcluster IMAP and POP3 access"
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
    /// Serve IMAP and POP3 (default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Probe this service's /readyz (ops.listen) and exit 0 when ready, 1 otherwise.
    Healthcheck(mc_runtime::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck(args)) = cli.command {
        return args.run(cli.config, |c: &AccessConfig| c.ops.listen);
    }
    let check_only = matches!(cli.command, Some(Command::CheckConfig));
    let config: AccessConfig = match mc_runtime::service::load_config(cli.config, check_only) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let (log, telemetry) = (config.log.clone(), config.telemetry.clone());
    mc_runtime::service::run("access", &log, &telemetry, |shutdown| {
        mc_access::run(config, shutdown)
    })
}
