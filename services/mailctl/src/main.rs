//! `mailctl`: the command-line client of the mailcluster admin API.
//!
//! Commands are noun-verb (`mailctl account add alice@example.test --password …`). Output is a
//! readable table, or the API's JSON with `--json`. Exit status: 0 success; 1 the API refused or
//! failed; 2 bad usage or input (nothing was sent); 69 the API could not be reached.
#![forbid(unsafe_code)]

mod client;
mod commands;
mod output;
mod quota;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    mc_runtime::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mailctl: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("mailctl: error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
