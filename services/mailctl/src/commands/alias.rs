//! `mailctl alias`: aliases, each redirecting one address to one target.

use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum AliasCmd {
    Add {
        address: String,
        target: String,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Remove {
        address: String,
    },
}

pub(super) async fn alias(c: &Client, cmd: AliasCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        AliasCmd::Add { address, target } => {
            let value = c
                .post("/aliases", &json!({ "address": address, "target": target }))
                .await?;
            show(json, &Value::Array(vec![value]), output::aliases);
        }
        AliasCmd::List { domain } => {
            let value = match &domain {
                Some(domain) => c.get_query("/aliases", &[("domain", domain)]).await?,
                None => c.get("/aliases").await?,
            };
            show(json, &value, output::aliases);
        }
        AliasCmd::Remove { address } => {
            c.delete(&format!("/aliases/{}", segment(&address))).await?;
            done(json, format!("alias {address} removed"));
        }
    }
    Ok(())
}
