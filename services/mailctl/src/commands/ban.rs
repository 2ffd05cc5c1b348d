//! `mailctl ban`: addresses refused on every protocol. Automatic bans follow too many failed
//! logins; removing a ban also forgets the address's failed-login count.

use super::show;
use crate::client::{Client, Failure, segment};
use crate::output::{s, table, when};
use clap::Subcommand;
use serde_json::{Map, Value, json};
use std::net::IpAddr;

#[derive(Subcommand)]
pub(super) enum BanCmd {
    /// The bans in force, newest first.
    List,
    /// Ban an address (until removed unless --minutes).
    Add {
        ip: IpAddr,
        #[arg(long, value_name = "N")]
        minutes: Option<u32>,
    },
    /// Lift every ban of an address and clear its failed-login count.
    Remove { ip: IpAddr },
}

fn bans(value: &Value) {
    let rows = value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|b| {
            let expires = match b.get("expires_at") {
                Some(Value::String(_)) => when(b, "expires_at"),
                _ => "never".to_string(),
            };
            vec![s(b, "ip"), expires, s(b, "name"), when(b, "created_at")]
        })
        .collect();
    table(&["IP", "EXPIRES", "NAME", "CREATED"], rows);
}

fn lifted(value: &Value) {
    let counter = if value["failures_cleared"] == Value::Bool(true) {
        "failed-login count cleared"
    } else {
        "no failed-login count cleared"
    };
    println!(
        "ban of {} lifted ({} removed; {counter})",
        s(value, "ip"),
        s(value, "removed")
    );
}

pub(super) async fn ban(c: &Client, cmd: BanCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        BanCmd::List => show(json, &c.get("/bans").await?, bans),
        BanCmd::Add { ip, minutes } => {
            let mut body = Map::new();
            body.insert("ip".into(), json!(ip.to_string()));
            if let Some(minutes) = minutes {
                body.insert("minutes".into(), json!(minutes));
            }
            let value = c.post("/bans", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), bans);
        }
        BanCmd::Remove { ip } => {
            let value = c
                .delete(&format!("/bans/{}", segment(&ip.to_string())))
                .await?;
            show(json, &value, lifted);
        }
    }
    Ok(())
}
