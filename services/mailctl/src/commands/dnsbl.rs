//! `mailctl dnsbl`: the DNS block lists asked about client addresses, and with `--surbl` those
//! asked about the domains of links in a message.

use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output::{s, table};
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum DnsblCmd {
    /// Add a list (active unless --inactive).
    Add {
        /// The list's DNS zone, e.g. zen.spamhaus.org.
        zone: String,
        /// A SURBL (asked about link domains) rather than a DNSBL.
        #[arg(long)]
        surbl: bool,
        /// Answers that count as listed: IPv4 patterns separated by |, each octet a number, *
        /// or a range a-b (e.g. 127.0.0.2-8|127.0.0.10) [default: 127.0.0.*].
        #[arg(long, value_name = "PATTERN")]
        expected: Option<String>,
        /// Points added when listed (0–1000) [default: 3].
        #[arg(long, value_name = "N")]
        score: Option<i32>,
        /// Text for the log and the refusal.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        #[arg(long)]
        inactive: bool,
    },
    /// List every DNSBL and SURBL.
    List,
    Remove {
        zone: String,
        #[arg(long)]
        surbl: bool,
    },
    Enable {
        zone: String,
        #[arg(long)]
        surbl: bool,
    },
    Disable {
        zone: String,
        #[arg(long)]
        surbl: bool,
    },
}

fn lists(value: &Value) {
    let rows = value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            vec![
                s(l, "kind"),
                s(l, "zone"),
                s(l, "expected"),
                s(l, "score"),
                s(l, "active"),
                s(l, "message"),
            ]
        })
        .collect();
    table(
        &["KIND", "ZONE", "EXPECTED", "SCORE", "ACTIVE", "MESSAGE"],
        rows,
    );
}

fn path(zone: &str, surbl: bool) -> String {
    let kind = if surbl { "surbl" } else { "dnsbl" };
    format!("/dnsbl/{kind}/{}", segment(zone))
}

async fn switch(
    c: &Client,
    zone: &str,
    surbl: bool,
    verb: &str,
    json: bool,
) -> Result<(), Failure> {
    let value = c
        .post(&format!("{}/{verb}", path(zone, surbl)), &json!({}))
        .await?;
    show(json, &Value::Array(vec![value]), lists);
    Ok(())
}

pub(super) async fn dnsbl(c: &Client, cmd: DnsblCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        DnsblCmd::Add {
            zone,
            surbl,
            expected,
            score,
            message,
            inactive,
        } => {
            let mut body = Map::new();
            body.insert("kind".into(), json!(if surbl { "surbl" } else { "dnsbl" }));
            body.insert("zone".into(), json!(zone));
            body.insert("active".into(), json!(!inactive));
            if let Some(expected) = expected {
                body.insert("expected".into(), json!(expected));
            }
            if let Some(score) = score {
                body.insert("score".into(), json!(score));
            }
            if let Some(message) = message {
                body.insert("message".into(), json!(message));
            }
            let value = c.post("/dnsbl", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), lists);
        }
        DnsblCmd::List => show(json, &c.get("/dnsbl").await?, lists),
        DnsblCmd::Remove { zone, surbl } => {
            c.delete(&path(&zone, surbl)).await?;
            done(json, format!("{zone} removed"));
        }
        DnsblCmd::Enable { zone, surbl } => switch(c, &zone, surbl, "enable", json).await?,
        DnsblCmd::Disable { zone, surbl } => switch(c, &zone, surbl, "disable", json).await?,
    }
    Ok(())
}
