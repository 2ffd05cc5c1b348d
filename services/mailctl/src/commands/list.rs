//! `mailctl list`: distribution lists, who may post to them, and their members.

use super::{done, show};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::{Subcommand, ValueEnum};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ListMode {
    Public,
    Membership,
    Announcement,
}

#[derive(Subcommand)]
pub(super) enum ListCmd {
    Add {
        address: String,
        /// Who may post: anyone, members only, or one announcer.
        #[arg(long, value_enum, default_value = "public")]
        mode: ListMode,
        /// The only sender allowed with --mode announcement.
        #[arg(long)]
        announce_from: Option<String>,
        /// Posting needs SMTP authentication.
        #[arg(long)]
        require_auth: bool,
    },
    Remove {
        address: String,
    },
    Show {
        address: String,
    },
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Subcommand)]
pub(super) enum MemberCmd {
    Add { list: String, address: String },
    Remove { list: String, address: String },
}

pub(super) async fn list(c: &Client, cmd: ListCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        ListCmd::Add {
            address,
            mode,
            announce_from,
            require_auth,
        } => {
            let mode = match mode {
                ListMode::Public => "public",
                ListMode::Membership => "membership",
                ListMode::Announcement => "announcement",
            };
            let body = json!({ "address": address, "mode": mode, "announce_address": announce_from,
                               "require_auth": require_auth });
            show(json, &c.post("/lists", &body).await?, output::list);
        }
        ListCmd::Remove { address } => {
            c.delete(&format!("/lists/{}", segment(&address))).await?;
            done(json, format!("list {address} removed"));
        }
        ListCmd::Show { address } => show(
            json,
            &c.get(&format!("/lists/{}", segment(&address))).await?,
            output::list,
        ),
        ListCmd::Member(MemberCmd::Add { list, address }) => {
            let value = c
                .post(
                    &format!("/lists/{}/members", segment(&list)),
                    &json!({ "address": address }),
                )
                .await?;
            show(json, &value, output::list);
        }
        ListCmd::Member(MemberCmd::Remove { list, address }) => {
            let value = c
                .delete(&format!(
                    "/lists/{}/members/{}",
                    segment(&list),
                    segment(&address)
                ))
                .await?;
            show(json, &value, output::list);
        }
    }
    Ok(())
}
