//! `mailctl domain`: hosted domains, their extra names (domain aliases) and catch-all addresses.

use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub(super) enum DomainCmd {
    Add {
        name: String,
    },
    List,
    Show {
        name: String,
    },
    /// Remove a domain; refused while it holds accounts, aliases or lists unless --force.
    Remove {
        name: String,
        #[arg(long)]
        force: bool,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    /// Extra names of a domain.
    #[command(subcommand)]
    Alias(DomainAliasCmd),
    /// The address that receives mail for unknown local parts.
    #[command(subcommand, name = "catch-all")]
    CatchAll(CatchAllCmd),
}

#[derive(Subcommand)]
pub(super) enum DomainAliasCmd {
    Add { domain: String, alias: String },
    Remove { domain: String, alias: String },
}

#[derive(Subcommand)]
pub(super) enum CatchAllCmd {
    Set { domain: String, address: String },
    Clear { domain: String },
}

pub(super) async fn domain(c: &Client, cmd: DomainCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        DomainCmd::Add { name } => show(
            json,
            &c.post("/domains", &json!({ "name": name })).await?,
            output::domain,
        ),
        DomainCmd::List => show(json, &c.get("/domains").await?, output::domains),
        DomainCmd::Show { name } => show(
            json,
            &c.get(&format!("/domains/{}", segment(&name))).await?,
            output::domain,
        ),
        DomainCmd::Remove { name, force } => {
            let force = if force { "true" } else { "false" };
            c.delete_query(&format!("/domains/{}", segment(&name)), &[("force", force)])
                .await?;
            done(json, format!("domain {name} removed"));
        }
        DomainCmd::Enable { name } => show(
            json,
            &c.patch(
                &format!("/domains/{}", segment(&name)),
                &json!({ "active": true }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Disable { name } => show(
            json,
            &c.patch(
                &format!("/domains/{}", segment(&name)),
                &json!({ "active": false }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Alias(DomainAliasCmd::Add { domain, alias }) => show(
            json,
            &c.post(
                &format!("/domains/{}/aliases", segment(&domain)),
                &json!({ "name": alias }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::Alias(DomainAliasCmd::Remove { domain, alias }) => show(
            json,
            &c.delete(&format!(
                "/domains/{}/aliases/{}",
                segment(&domain),
                segment(&alias)
            ))
            .await?,
            output::domain,
        ),
        DomainCmd::CatchAll(CatchAllCmd::Set { domain, address }) => show(
            json,
            &c.put(
                &format!("/domains/{}/catch-all", segment(&domain)),
                &json!({ "address": address }),
            )
            .await?,
            output::domain,
        ),
        DomainCmd::CatchAll(CatchAllCmd::Clear { domain }) => show(
            json,
            &c.delete(&format!("/domains/{}/catch-all", segment(&domain)))
                .await?,
            output::domain,
        ),
    }
    Ok(())
}
