//! `mailctl relay`: incoming relays, our own backup MX hosts. Mail they hand over is judged by
//! the address that handed it to them (from `Received:`), not by theirs.

use super::{done, ip_span, show};
use crate::client::{Client, Failure, segment};
use crate::output::{s, table, when};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum RelayCmd {
    Add {
        name: String,
        /// ADDRESS, LOW-HIGH or NETWORK/PREFIX.
        #[arg(value_name = "LOW[-HIGH]")]
        range: String,
    },
    List,
    Remove {
        name: String,
    },
}

fn relays(value: &Value) {
    let rows = value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                s(r, "name"),
                s(r, "lower"),
                s(r, "upper"),
                when(r, "created_at"),
            ]
        })
        .collect();
    table(&["NAME", "LOWER", "UPPER", "CREATED"], rows);
}

pub(super) async fn relay(c: &Client, cmd: RelayCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        RelayCmd::Add { name, range } => {
            let (lower, upper) = ip_span(&range)?;
            let body = json!({
                "name": name,
                "lower": lower.to_string(),
                "upper": upper.to_string(),
            });
            let value = c.post("/incoming-relays", &body).await?;
            show(json, &Value::Array(vec![value]), relays);
        }
        RelayCmd::List => show(json, &c.get("/incoming-relays").await?, relays),
        RelayCmd::Remove { name } => {
            c.delete(&format!("/incoming-relays/{}", segment(&name)))
                .await?;
            done(json, format!("incoming relay {name} removed"));
        }
    }
    Ok(())
}
