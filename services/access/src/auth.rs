//! Login for IMAP and POP3: the full address and its password, checked by the directory (argon2id
//! on a blocking thread). A disabled account or domain is refused like a wrong password, so the
//! client learns nothing; the reason goes to the log. Every failure is counted per client
//! address in Redis, shared by all replicas and protocols with SMTP; too many within the
//! anti-spam settings' window ban the address everywhere (`mc_antispam::autoban`).

use crate::Ctx;
use crate::metrics::ResultLabels;
use mc_directory::{AuthFailure, AuthOutcome};
use mc_types::Secret;
use std::net::IpAddr;

/// Who logged in.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub address: String,
}

#[derive(Debug)]
pub enum Login {
    Success(Account),
    /// Wrong address, password, or a disabled account (the client is not told which).
    Refused,
    /// The directory could not be asked.
    Unavailable,
}

pub async fn login(
    ctx: &Ctx,
    ip: IpAddr,
    protocol: &'static str,
    user: &str,
    password: Secret<String>,
) -> Login {
    let outcome = ctx.directory.authenticate(user, password).await;
    let (login, result) = match outcome {
        Ok(AuthOutcome::Success {
            account_id,
            address,
        }) => (
            Login::Success(Account {
                id: account_id,
                address,
            }),
            "success",
        ),
        Ok(AuthOutcome::Failure(reason)) => {
            let why = match reason {
                AuthFailure::UnknownAccount => "unknown account",
                AuthFailure::WrongPassword => "wrong password",
                AuthFailure::Disabled => "account or domain disabled",
            };
            tracing::info!(%ip, protocol, reason = why, "login failed");
            let settings = ctx.antispam.get().await;
            if mc_antispam::autoban::record_failure(
                ctx.redis.as_ref(),
                &ctx.bans,
                &settings,
                ip,
                user,
            )
            .await
            .is_some()
            {
                ctx.metrics.bans.inc();
            }
            (Login::Refused, "failure")
        }
        Err(error) => {
            tracing::warn!(%error, protocol, "login not checked: directory unavailable");
            (Login::Unavailable, "error")
        }
    };
    ctx.metrics
        .logins
        .get_or_create(&ResultLabels { protocol, result })
        .inc();
    login
}
