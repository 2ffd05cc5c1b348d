//! `mailctl greylist`: the greylisting switch and a summary of its settings. The delay and
//! lifetimes are `greylist_*` knobs (`mailctl antispam set`); senders that skip it are
//! `mailctl whitelist add --greylist`.

use super::antispam::{knob_text, set};
use super::{done, show};
use crate::client::{Client, Failure};
use crate::output::record;
use clap::Subcommand;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum GreylistCmd {
    Enable,
    Disable,
    /// Whether greylisting is on, its delay, lifetimes and bypasses, and how many senders skip it.
    Status,
}

fn status(value: &Value) {
    let fields: Vec<(&str, String)> = value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| (key.as_str(), knob_text(value)))
                .collect()
        })
        .unwrap_or_default();
    record(fields);
}

pub(super) async fn greylist(c: &Client, cmd: GreylistCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        GreylistCmd::Enable | GreylistCmd::Disable => {
            let on = matches!(cmd, GreylistCmd::Enable);
            set(c, "greylist_enabled", Value::Bool(on)).await?;
            let state = if on { "enabled" } else { "disabled" };
            done(json, format!("greylisting {state}"));
        }
        GreylistCmd::Status => {
            let knobs = c.get("/antispam").await?;
            let mut summary = Map::new();
            for knob in knobs.as_array().map(Vec::as_slice).unwrap_or_default() {
                let name = knob["name"].as_str().unwrap_or_default();
                if let Some(short) = name.strip_prefix("greylist_") {
                    summary.insert(short.to_string(), knob["value"].clone());
                }
            }
            let entries = c.get_query("/whitelist", &[("kind", "greylist")]).await?;
            let count = entries.as_array().map(Vec::len).unwrap_or(0);
            summary.insert("whitelist_entries".into(), json!(count));
            show(json, &Value::Object(summary), status);
        }
    }
    Ok(())
}
