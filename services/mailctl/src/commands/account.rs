//! `mailctl account`: accounts (mailboxes that can log in), their passwords, quotas and state.
//! Passwords come from a flag or the first line of standard input, never from a prompt.

use super::{done, show, size};
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::io::BufRead;

#[derive(Args)]
pub(super) struct PasswordArgs {
    /// The password (visible in the process list; prefer --password-stdin on shared hosts).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum AdminLevel {
    User,
    Domain,
    Server,
}

#[derive(Subcommand)]
pub(super) enum AccountCmd {
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Mailbox quota: bytes, or with K/M/G/T (binary units); 0 = unlimited.
        #[arg(long, default_value = "0")]
        quota: String,
        #[arg(long, value_enum, default_value = "user")]
        admin_level: AdminLevel,
        /// Create the account disabled.
        #[arg(long)]
        disabled: bool,
    },
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    Show {
        address: String,
    },
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set the quota: bytes, or with K/M/G/T; 0 or "unlimited" for none.
    Quota {
        address: String,
        quota: String,
    },
    Enable {
        address: String,
    },
    Disable {
        address: String,
    },
    Remove {
        address: String,
    },
    /// Clear the POP3 maildrop lock (a session that is stuck or a replica that died holds it).
    Unlock {
        address: String,
    },
}

fn password(args: &PasswordArgs) -> Result<String, Failure> {
    if let Some(password) = &args.password {
        return Ok(password.clone());
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::Usage(format!("cannot read the password from standard input: {e}"))
        })?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Err(Failure::Usage(
                "the password read from standard input is empty".into(),
            ));
        }
        return Ok(line);
    }
    Err(Failure::Usage(
        "give the password with --password or --password-stdin".into(),
    ))
}

pub(super) async fn account(c: &Client, cmd: AccountCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        AccountCmd::Add {
            address,
            password: pw,
            quota,
            admin_level,
            disabled,
        } => {
            let quota = size(&quota)?;
            let password = password(&pw)?;
            let level = match admin_level {
                AdminLevel::User => "user",
                AdminLevel::Domain => "domain",
                AdminLevel::Server => "server",
            };
            let body = json!({ "address": address, "password": password, "quota_bytes": quota,
                               "admin_level": level, "active": !disabled });
            show(json, &c.post("/accounts", &body).await?, output::account);
        }
        AccountCmd::List { domain } => {
            let value = match &domain {
                Some(domain) => c.get_query("/accounts", &[("domain", domain)]).await?,
                None => c.get("/accounts").await?,
            };
            show(json, &value, output::accounts);
        }
        AccountCmd::Show { address } => show(
            json,
            &c.get(&format!("/accounts/{}", segment(&address))).await?,
            output::account,
        ),
        AccountCmd::Passwd {
            address,
            password: pw,
        } => {
            let password = password(&pw)?;
            c.patch(
                &format!("/accounts/{}", segment(&address)),
                &json!({ "password": password }),
            )
            .await?;
            done(json, format!("password of {address} changed"));
        }
        AccountCmd::Quota { address, quota } => {
            let quota = size(&quota)?;
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "quota_bytes": quota }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Enable { address } => {
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "active": true }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Disable { address } => {
            let value = c
                .patch(
                    &format!("/accounts/{}", segment(&address)),
                    &json!({ "active": false }),
                )
                .await?;
            show(json, &value, output::account);
        }
        AccountCmd::Remove { address } => {
            c.delete(&format!("/accounts/{}", segment(&address)))
                .await?;
            done(json, format!("account {address} removed"));
        }
        AccountCmd::Unlock { address } => {
            let value = c
                .post(
                    &format!("/accounts/{}/unlock", segment(&address)),
                    &json!({}),
                )
                .await?;
            let message = if value["unlocked"].as_bool() == Some(true) {
                format!("POP3 lock of {address} cleared")
            } else {
                format!("{address} had no POP3 lock")
            };
            done(json, message);
        }
    }
    Ok(())
}
