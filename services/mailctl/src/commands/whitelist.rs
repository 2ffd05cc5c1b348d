//! `mailctl whitelist`: senders (client addresses and/or envelope-sender patterns) that skip
//! every anti-spam test, or with `--greylist` only greylisting.

use super::{done, ip_span, show};
use crate::client::{Client, Failure};
use crate::output::{s, table, when};
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum WhitelistCmd {
    /// Add an entry; with neither --ip nor --address it matches every sender.
    Add {
        /// Skip only greylisting, not the other tests.
        #[arg(long)]
        greylist: bool,
        /// Client addresses: ADDRESS, LOW-HIGH or NETWORK/PREFIX [default: any].
        #[arg(long, value_name = "RANGE")]
        ip: Option<String>,
        /// Envelope sender; `*` stands for any run of characters (`*@example.org`) [default: *].
        #[arg(long, value_name = "PATTERN")]
        address: Option<String>,
        /// Free text shown in the list (at most 200 characters).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List the anti-spam entries (--greylist: the greylisting ones; --all: both).
    List {
        #[arg(long, conflicts_with = "all")]
        greylist: bool,
        #[arg(long)]
        all: bool,
    },
    Remove {
        id: i64,
    },
}

fn span(entry: &Value) -> String {
    match (entry["lower"].as_str(), entry["upper"].as_str()) {
        (Some(lower), Some(upper)) if lower == upper => lower.to_string(),
        (Some(lower), Some(upper)) => format!("{lower}-{upper}"),
        _ => "any".to_string(),
    }
}

fn entries(value: &Value) {
    let rows = value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                s(e, "id"),
                s(e, "kind"),
                span(e),
                s(e, "address"),
                s(e, "description"),
                when(e, "created_at"),
            ]
        })
        .collect();
    table(
        &["ID", "KIND", "CLIENT", "SENDER", "DESCRIPTION", "CREATED"],
        rows,
    );
}

fn kind(greylist: bool) -> &'static str {
    if greylist { "greylist" } else { "antispam" }
}

pub(super) async fn whitelist(c: &Client, cmd: WhitelistCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        WhitelistCmd::Add {
            greylist,
            ip,
            address,
            description,
        } => {
            let mut body = Map::new();
            body.insert("kind".into(), json!(kind(greylist)));
            if let Some(ip) = ip {
                let (lower, upper) = ip_span(&ip)?;
                body.insert("lower".into(), json!(lower.to_string()));
                body.insert("upper".into(), json!(upper.to_string()));
            }
            if let Some(address) = address {
                body.insert("address".into(), json!(address));
            }
            if let Some(description) = description {
                body.insert("description".into(), json!(description));
            }
            let value = c.post("/whitelist", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), entries);
        }
        WhitelistCmd::List { greylist, all } => {
            let value = if all {
                c.get("/whitelist").await?
            } else {
                c.get_query("/whitelist", &[("kind", kind(greylist))])
                    .await?
            };
            show(json, &value, entries);
        }
        WhitelistCmd::Remove { id } => {
            c.delete(&format!("/whitelist/{id}")).await?;
            done(json, format!("whitelist entry {id} removed"));
        }
    }
    Ok(())
}
