//! `mailcluster-smtp-ingress`: the SMTP server (`serve`, the default), `check-config` and
//! `healthcheck`.

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
    /// Probe this service's /readyz (ops.listen) and exit 0 when ready, 1 otherwise.
    Healthcheck(mc_runtime::healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck(args)) = cli.command {
        return args.run(cli.config, |c: &IngressConfig| c.ops.listen);
    }
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
