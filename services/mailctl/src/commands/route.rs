//! `mailctl route`: a fixed next hop for a destination domain (or `*.domain`, its subdomains)
//! instead of its MX. Adding a route for a domain that has one replaces it.

use super::next_hop::{HopArgs, host_port};
use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum RouteCmd {
    /// Add or replace the route of a domain.
    Add {
        /// `example.org`, or `*.example.org` for its subdomains.
        domain: String,
        /// The next hop: HOST[:PORT] (port 25 by default; IPv6 with a port as [ADDRESS]:PORT).
        #[arg(long, value_name = "HOST[:PORT]")]
        host: String,
        #[command(flatten)]
        hop: HopArgs,
        /// Retries after the first attempt before a bounce [default: the worker's].
        #[arg(long, value_name = "N")]
        retries: Option<u32>,
        /// Minutes before the first retry (later ones back off) [default: the worker's].
        #[arg(long, value_name = "M")]
        retry_minutes: Option<u32>,
    },
    /// List the routes (passwords are never shown).
    List,
    /// Remove the route of a domain (`*.example.org` for a wildcard route).
    Remove { domain: String },
}

pub(super) async fn route(c: &Client, cmd: RouteCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        RouteCmd::Add {
            domain,
            host,
            hop,
            retries,
            retry_minutes,
        } => {
            let (host, port) = host_port(&host)?;
            let mut body = Map::new();
            body.insert("domain".into(), json!(domain));
            body.insert("host".into(), json!(host));
            body.insert("port".into(), json!(port));
            hop.fill(&mut body)?;
            if let Some(retries) = retries {
                body.insert("retries".into(), json!(retries));
            }
            if let Some(minutes) = retry_minutes {
                body.insert("retry_minutes".into(), json!(minutes));
            }
            let value = c.post("/routes", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), output::routes);
        }
        RouteCmd::List => show(json, &c.get("/routes").await?, output::routes),
        RouteCmd::Remove { domain } => {
            c.delete(&format!("/routes/{}", segment(&domain))).await?;
            done(json, format!("route for {domain} removed"));
        }
    }
    Ok(())
}
