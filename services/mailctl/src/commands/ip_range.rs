//! `mailctl iprange`: IP ranges that decide who may connect, relay, and must authenticate.
//! The sender→recipient category flags map onto the API's `allow_*` / `require_auth_*` fields.

use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::net::IpAddr;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Category {
    #[value(name = "local-local")]
    LocalLocal,
    #[value(name = "local-external")]
    LocalExternal,
    #[value(name = "external-local")]
    ExternalLocal,
    #[value(name = "external-external")]
    ExternalExternal,
    /// No category.
    None,
}

impl Category {
    const ALL: [(Category, &'static str); 4] = [
        (Category::LocalLocal, "local_to_local"),
        (Category::LocalExternal, "local_to_external"),
        (Category::ExternalLocal, "external_to_local"),
        (Category::ExternalExternal, "external_to_external"),
    ];
}

#[derive(Subcommand)]
pub(super) enum IpRangeCmd {
    Add {
        name: String,
        /// First address of the range.
        #[arg(long)]
        lower: IpAddr,
        /// Last address of the range (default: the lower address).
        #[arg(long)]
        upper: Option<IpAddr>,
        /// 0–1000; the highest matching priority wins.
        #[arg(long, default_value_t = 20)]
        priority: i32,
        /// Refuse SMTP / POP3 / IMAP connections from the range.
        #[arg(long)]
        no_smtp: bool,
        #[arg(long)]
        no_pop3: bool,
        #[arg(long)]
        no_imap: bool,
        /// Sender→recipient categories that may be delivered (comma list; default: all but
        /// external-external).
        #[arg(long, value_enum, value_delimiter = ',')]
        allow: Option<Vec<Category>>,
        /// Categories that need SMTP authentication (default: all but external-local).
        #[arg(long, value_enum, value_delimiter = ',')]
        require_auth: Option<Vec<Category>>,
        #[arg(long)]
        no_antispam: bool,
        #[arg(long)]
        no_antivirus: bool,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    List,
    Remove {
        name: String,
    },
}

fn matrix(body: &mut serde_json::Map<String, Value>, prefix: &str, chosen: Option<Vec<Category>>) {
    let Some(chosen) = chosen else { return };
    for (category, key) in Category::ALL {
        body.insert(
            format!("{prefix}{key}"),
            Value::Bool(chosen.contains(&category)),
        );
    }
}

pub(super) async fn ip_range(c: &Client, cmd: IpRangeCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        IpRangeCmd::Add {
            name,
            lower,
            upper,
            priority,
            no_smtp,
            no_pop3,
            no_imap,
            allow,
            require_auth,
            no_antispam,
            no_antivirus,
            expires,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), json!(name));
            body.insert("priority".into(), json!(priority));
            body.insert("lower".into(), json!(lower.to_string()));
            body.insert("upper".into(), json!(upper.unwrap_or(lower).to_string()));
            body.insert("allow_smtp".into(), json!(!no_smtp));
            body.insert("allow_pop3".into(), json!(!no_pop3));
            body.insert("allow_imap".into(), json!(!no_imap));
            body.insert("antispam".into(), json!(!no_antispam));
            body.insert("antivirus".into(), json!(!no_antivirus));
            matrix(&mut body, "allow_", allow);
            matrix(&mut body, "require_auth_", require_auth);
            if let Some(expires) = expires {
                time::OffsetDateTime::parse(
                    &expires,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| {
                    Failure::Usage(format!("invalid --expires {expires:?}: {e} (use RFC 3339)"))
                })?;
                body.insert("expires_at".into(), json!(expires));
            }
            let value = c.post("/ip-ranges", &Value::Object(body)).await?;
            show(json, &Value::Array(vec![value]), output::ip_ranges);
        }
        IpRangeCmd::List => show(json, &c.get("/ip-ranges").await?, output::ip_ranges),
        IpRangeCmd::Remove { name } => {
            c.delete(&format!("/ip-ranges/{}", segment(&name))).await?;
            done(json, format!("IP range {name} removed"));
        }
    }
    Ok(())
}
