//! `mailctl queue`: the delivery queue. Safe while workers run: a retry leaves recipients in
//! flight to their worker, and a removal makes the worker delivering it record nothing.
//! Removing and purging are silent: no bounce goes to the sender.

use super::show;
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::{ArgGroup, Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum State {
    Queued,
    Delivered,
    Failed,
    Held,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Held => "held",
        }
    }
}

#[derive(Subcommand)]
pub(super) enum QueueCmd {
    /// List entries with a recipient still waiting, newest first.
    List {
        /// Every entry, also finished ones not yet cleaned up.
        #[arg(long, conflicts_with = "state")]
        all: bool,
        /// Entries with a recipient in this state instead of a waiting one.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Part of the sender address (case-insensitive); `<>` for the null sender.
        #[arg(long, value_name = "TEXT")]
        sender: Option<String>,
        /// Entries with a recipient in this domain.
        #[arg(long)]
        domain: Option<String>,
        /// At most this many entries (1–10000).
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Oldest first.
        #[arg(long)]
        oldest_first: bool,
    },
    /// Show an entry with every recipient.
    Show { id: String },
    /// Make waiting recipients due now (recipients in flight are left to their worker).
    #[command(group(ArgGroup::new("target").required(true).args(["id", "all"])))]
    Retry {
        id: Option<String>,
        /// Every entry.
        #[arg(long)]
        all: bool,
    },
    /// Remove an entry, silently (no bounce).
    Remove { id: String },
    /// Remove every waiting entry that matches (all of them without a filter), silently.
    Purge {
        /// Required: nothing is removed without it.
        #[arg(long)]
        yes: bool,
        /// Part of the sender address (case-insensitive); `<>` for the null sender.
        #[arg(long, value_name = "TEXT")]
        sender: Option<String>,
        /// Entries with a waiting recipient in this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Counters: waiting, deferred and in-flight recipients, age of the oldest entry.
    Stats,
}

/// The API's JSON with `--json`, otherwise one line of text.
fn report(json: bool, value: &Value, line: String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        println!("{line}");
    }
}

fn number(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `key` of `value` as a count of `one`s: `1 entry`, `3 entries`.
fn count(value: &Value, key: &str, one: &str, many: &str) -> String {
    match number(value, key) {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

pub(super) async fn queue(c: &Client, cmd: QueueCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        QueueCmd::List {
            all,
            state,
            sender,
            domain,
            limit,
            oldest_first,
        } => {
            let state = match (all, state) {
                (true, _) => "all",
                (false, state) => state.unwrap_or(State::Queued).as_str(),
            };
            let limit = limit.to_string();
            let mut query = vec![("state", state), ("limit", limit.as_str())];
            if let Some(sender) = &sender {
                query.push(("sender", sender));
            }
            if let Some(domain) = &domain {
                query.push(("domain", domain));
            }
            if oldest_first {
                query.push(("oldest_first", "true"));
            }
            show(json, &c.get_query("/queue", &query).await?, output::queue);
        }
        QueueCmd::Show { id } => show(
            json,
            &c.get(&format!("/queue/{}", segment(&id))).await?,
            output::queue_entry,
        ),
        QueueCmd::Retry { id, all } => {
            let (path, what) = match (id, all) {
                (Some(id), false) => (format!("/queue/{}/retry", segment(&id)), id),
                _ => ("/queue/retry".to_string(), "the queue".to_string()),
            };
            let value = c.post(&path, &json!({})).await?;
            let line = format!(
                "{what}: {} made due now, {} already due, {} in flight left to their worker",
                count(&value, "rescheduled", "recipient", "recipients"),
                count(&value, "already_due", "recipient", "recipients"),
                count(&value, "in_flight", "recipient", "recipients"),
            );
            report(json, &value, line);
        }
        QueueCmd::Remove { id } => {
            let value = c.delete(&format!("/queue/{}", segment(&id))).await?;
            let line = format!(
                "entry {id} removed with {} ({} undelivered); no bounce sent",
                count(&value, "recipients", "recipient", "recipients"),
                number(&value, "undelivered"),
            );
            report(json, &value, line);
        }
        QueueCmd::Purge {
            yes,
            sender,
            domain,
        } => {
            if !yes {
                return Err(Failure::Usage(
                    "purge removes every matching waiting entry without a bounce \
                     (every one without --sender/--domain): add --yes"
                        .into(),
                ));
            }
            let body = json!({ "sender": sender, "domain": domain, "confirm": true });
            let value = c.post("/queue/purge", &body).await?;
            let line = format!(
                "{} removed with {} ({} undelivered); no bounce sent",
                count(&value, "entries", "entry", "entries"),
                count(&value, "recipients", "recipient", "recipients"),
                number(&value, "undelivered"),
            );
            report(json, &value, line);
        }
        QueueCmd::Stats => show(json, &c.get("/queue/stats").await?, output::queue_stats),
    }
    Ok(())
}
