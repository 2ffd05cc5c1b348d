//! `mailctl relayer`: the one smarthost that takes every remote recipient without a route. With
//! none set, remote mail goes to each domain's MX.

use super::next_hop::{HopArgs, host_port};
use super::{done, show};
use crate::client::{Client, Failure};
use crate::output;
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum RelayerCmd {
    /// Set (or replace) the relayer.
    Set {
        /// HOST[:PORT] (port 25 by default; IPv6 with a port as [ADDRESS]:PORT).
        #[arg(value_name = "HOST[:PORT]")]
        host: String,
        #[command(flatten)]
        hop: HopArgs,
    },
    /// Show the relayer (the password is never shown).
    Show,
    /// Remove the relayer: remote mail goes to each domain's MX again.
    Clear,
}

pub(super) async fn relayer(c: &Client, cmd: RelayerCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        RelayerCmd::Set { host, hop } => {
            let (host, port) = host_port(&host)?;
            let mut body = Map::new();
            body.insert("host".into(), json!(host));
            body.insert("port".into(), json!(port));
            hop.fill(&mut body)?;
            show(
                json,
                &c.put("/relayer", &Value::Object(body)).await?,
                output::relayer,
            );
        }
        RelayerCmd::Show => show(json, &c.get("/relayer").await?, output::relayer),
        RelayerCmd::Clear => {
            c.delete("/relayer").await?;
            done(
                json,
                "relayer cleared; remote mail goes to each domain's MX".into(),
            );
        }
    }
    Ok(())
}
