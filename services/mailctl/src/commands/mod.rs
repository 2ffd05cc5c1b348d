//! The command tree's root: global options, the noun dispatch, and the helpers every noun shares.
//! Each noun's verbs and the requests they send live in the file named after it.

mod account;
mod alias;
mod dkim;
mod domain;
mod ip_range;
mod list;
mod migrate;
mod next_hop;
mod queue;
mod relayer;
mod route;

use crate::client::{Client, Failure};
use crate::quota::parse_size;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mailctl",
    version,
    about = "Manage a mailcluster through its admin API",
    after_help = "Exit status: 0 ok, 1 refused by the API, 2 bad usage or input, 69 API unreachable."
)]
pub struct Cli {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        env = "MAILCTL_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Admin API token.
    #[arg(long, global = true, env = "MAILCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin API token.
    #[arg(long, global = true, env = "MAILCTL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Noun,
}

#[derive(Subcommand)]
enum Noun {
    /// Hosted domains.
    #[command(subcommand)]
    Domain(domain::DomainCmd),
    /// Accounts (mailboxes that can log in).
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Aliases (one address redirected to one target).
    #[command(subcommand)]
    Alias(alias::AliasCmd),
    /// Distribution lists.
    #[command(subcommand)]
    List(list::ListCmd),
    /// IP ranges: who may connect, relay, and must authenticate.
    #[command(subcommand)]
    Iprange(ip_range::IpRangeCmd),
    /// Routes: a fixed next hop for a destination domain instead of its MX.
    #[command(subcommand)]
    Route(route::RouteCmd),
    /// The relayer (smarthost) for remote mail without a route.
    #[command(subcommand)]
    Relayer(relayer::RelayerCmd),
    /// DKIM signing keys of hosted domains and their DNS records.
    #[command(subcommand)]
    Dkim(dkim::DkimCmd),
    /// The delivery queue: list, show, retry, remove and purge entries.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Apply pending database migrations (connects to PostgreSQL directly: --config,
    /// MAILCLUSTER_CONFIG or MAILCLUSTER_DATABASE__URL).
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Noun::Migrate { config } = cli.command {
        return migrate::migrate(config).await;
    }
    let token = token(&cli)?;
    let client = Client::new(&cli.url, token)?;
    let json = cli.json;
    match cli.command {
        Noun::Domain(cmd) => domain::domain(&client, cmd, json).await,
        Noun::Account(cmd) => account::account(&client, cmd, json).await,
        Noun::Alias(cmd) => alias::alias(&client, cmd, json).await,
        Noun::List(cmd) => list::list(&client, cmd, json).await,
        Noun::Iprange(cmd) => ip_range::ip_range(&client, cmd, json).await,
        Noun::Route(cmd) => route::route(&client, cmd, json).await,
        Noun::Relayer(cmd) => relayer::relayer(&client, cmd, json).await,
        Noun::Dkim(cmd) => dkim::dkim(&client, cmd, json).await,
        Noun::Queue(cmd) => queue::queue(&client, cmd, json).await,
        Noun::Migrate { .. } => Ok(()),
    }
}

fn token(cli: &Cli) -> Result<String, Failure> {
    if let Some(token) = &cli.token {
        return Ok(token.clone());
    }
    if let Some(path) = &cli.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
        return Ok(text.trim().to_string());
    }
    Err(Failure::Usage(
        "no admin token: use --token, --token-file, MAILCTL_TOKEN or MAILCTL_TOKEN_FILE".into(),
    ))
}

fn size(text: &str) -> Result<i64, Failure> {
    parse_size(text).map_err(Failure::Usage)
}

/// Prints `value` as JSON, or with `table` otherwise.
fn show(json: bool, value: &Value, table: fn(&Value)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        table(value);
    }
}

fn done(json: bool, message: String) {
    if json {
        println!("{}", json!({ "ok": true, "message": message }));
    } else {
        println!("{message}");
    }
}
