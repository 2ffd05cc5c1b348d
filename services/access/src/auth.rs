//! Login for IMAP and POP3: the full address and its password, checked by the directory (argon2id
//! on a blocking thread). A disabled account or domain is refused like a wrong password, so the
//! client learns nothing; the reason goes to the log. Every failure is counted per client
//! address in Redis over `auth_failure_window_secs`, shared by all replicas and protocols
//! (auto-ban builds on this count).

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

/// The Redis key counting failures of one client address.
pub fn failure_key(ip: IpAddr) -> String {
    format!("authfail:{ip}")
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
            count_failure(ctx, ip).await;
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

/// Adds one failure to the address's count in the shared window (best effort).
async fn count_failure(ctx: &Ctx, ip: IpAddr) {
    let Some(redis) = &ctx.redis else {
        return;
    };
    let key = redis.key(&failure_key(ip));
    let mut connection = redis.connection.clone();
    let result: redis::RedisResult<(i64, i64)> = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(ctx.config.auth_failure_window_secs)
        .arg("NX")
        .query_async(&mut connection)
        .await;
    if let Err(error) = result {
        tracing::debug!(%error, "login failure not counted");
    }
}
