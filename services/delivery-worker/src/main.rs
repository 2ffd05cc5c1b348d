//! `mailcluster-delivery-worker`: the delivery worker (`serve`, the default), `check-config` and
//! `healthcheck`.

use clap::{Parser, Subcommand};
use mc_delivery_worker::config::WorkerConfig;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mailcluster-delivery-worker",
    version,
    about = "mailcluster delivery worker"
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
    /// Deliver queued mail (default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Probe this service's /readyz (ops.listen) and exit 0 when ready, 1 otherwise.
    Healthcheck(mc_runtime::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck(args)) = cli.command {
        return args.run(cli.config, |c: &WorkerConfig| c.ops.listen);
    }
    let check_only = matches!(cli.command, Some(Command::CheckConfig));
    let config: WorkerConfig = match mc_runtime::service::load_config(cli.config, check_only) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let (log, telemetry) = (config.log.clone(), config.telemetry.clone());
    mc_runtime::service::run("delivery-worker", &log, &telemetry, |shutdown| {
        mc_delivery_worker::run(config, shutdown)
    })
}
