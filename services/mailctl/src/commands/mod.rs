//! The command tree's root: global options, the noun dispatch, and the helpers every noun shares.
//! Each noun's verbs and the requests they send live in the file named after it.

mod account;
mod alias;
mod antispam;
mod ban;
mod dkim;
mod dnsbl;
mod domain;
mod greylist;
mod ip_range;
mod list;
mod migrate;
mod next_hop;
mod queue;
mod relay;
mod relayer;
mod route;
mod whitelist;

use crate::client::{Client, Failure};
use crate::quota::parse_size;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::net::IpAddr;
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
    /// Anti-spam settings: thresholds, scores, tests, greylisting, auto-ban, anti-virus.
    #[command(subcommand)]
    Antispam(antispam::AntispamCmd),
    /// Greylisting: switch it on or off and see its settings.
    #[command(subcommand)]
    Greylist(greylist::GreylistCmd),
    /// Senders that skip the anti-spam tests (or, with --greylist, only greylisting).
    #[command(subcommand)]
    Whitelist(whitelist::WhitelistCmd),
    /// DNS block lists (DNSBL, and SURBL with --surbl).
    #[command(subcommand)]
    Dnsbl(dnsbl::DnsblCmd),
    /// Banned addresses (automatic after failed logins, or added here).
    #[command(subcommand)]
    Ban(ban::BanCmd),
    /// Incoming relays: our own backup MX hosts, looked through for the real sender.
    #[command(subcommand)]
    Relay(relay::RelayCmd),
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
        Noun::Antispam(cmd) => antispam::antispam(&client, cmd, json).await,
        Noun::Greylist(cmd) => greylist::greylist(&client, cmd, json).await,
        Noun::Whitelist(cmd) => whitelist::whitelist(&client, cmd, json).await,
        Noun::Dnsbl(cmd) => dnsbl::dnsbl(&client, cmd, json).await,
        Noun::Ban(cmd) => ban::ban(&client, cmd, json).await,
        Noun::Relay(cmd) => relay::relay(&client, cmd, json).await,
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

/// An address range given as `ADDRESS`, `LOW-HIGH` or `NETWORK/PREFIX`: its first and last
/// address. The API checks the rest (same family, order).
fn ip_span(text: &str) -> Result<(IpAddr, IpAddr), Failure> {
    let invalid = || {
        Failure::Usage(format!(
            "invalid address range {text:?}: use ADDRESS, LOW-HIGH or NETWORK/PREFIX"
        ))
    };
    let address = |t: &str| t.trim().parse::<IpAddr>().map_err(|_| invalid());
    if let Some((network, prefix)) = text.split_once('/') {
        let network = address(network)?;
        let prefix: u32 = prefix.trim().parse().map_err(|_| invalid())?;
        return match network {
            IpAddr::V4(v4) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                let low = u32::from(v4) & mask;
                Ok((
                    IpAddr::from(low.to_be_bytes()),
                    IpAddr::from((low | !mask).to_be_bytes()),
                ))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                let low = u128::from(v6) & mask;
                Ok((
                    IpAddr::from(low.to_be_bytes()),
                    IpAddr::from((low | !mask).to_be_bytes()),
                ))
            }
            _ => Err(invalid()),
        };
    }
    match text.split_once('-') {
        Some((low, high)) => Ok((address(low)?, address(high)?)),
        None => address(text).map(|ip| (ip, ip)),
    }
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

#[cfg(test)]
mod tests {
    use super::ip_span;

    fn span(text: &str) -> (String, String) {
        let (low, high) = ip_span(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (low.to_string(), high.to_string())
    }

    #[test]
    fn address_ranges_are_single_dashed_or_cidr() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(span("192.0.2.7"), pair("192.0.2.7", "192.0.2.7"));
        assert_eq!(span("192.0.2.1-192.0.2.9"), pair("192.0.2.1", "192.0.2.9"));
        assert_eq!(span("192.0.2.77/24"), pair("192.0.2.0", "192.0.2.255"));
        assert_eq!(span("0.0.0.0/0"), pair("0.0.0.0", "255.255.255.255"));
        assert_eq!(span("10.1.2.3/32"), pair("10.1.2.3", "10.1.2.3"));
        assert_eq!(
            span("2001:db8::1/64"),
            pair("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            span("2001:db8::1-2001:db8::5"),
            pair("2001:db8::1", "2001:db8::5")
        );
        for bad in [
            "",
            "10.0.0.999",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1-",
            "a-b",
            "10.0.0.0/x",
        ] {
            assert!(ip_span(bad).is_err(), "{bad:?}");
        }
    }
}
