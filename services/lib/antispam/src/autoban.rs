//! Auto-ban (FEATURES.md BAN-01..05), shared by SMTP, IMAP and POP3 on every replica: each
//! failed login adds one to the address's count in Redis; the count lives
//! `autoban_window_minutes` from its first failure. The failure that reaches
//! `autoban_max_attempts` writes the ban to PostgreSQL (an expiring IP range, see
//! `mc_policy::Bans`), where every replica's connection check finds it.
//!
//! Exactly one failure sees the count equal the limit, so one ban is written however many
//! replicas count at once; the count is then cleared, so failures after the ban lapses start a
//! new round. Without Redis nothing is counted and nobody is banned: the
//! per-session limits still close a guessing session.

use mc_policy::{AntispamSettings, Ban, Bans, auth_failure_key};
use mc_runtime::stores::RedisStore;
use std::net::IpAddr;

/// Counts one failed login of `user` from `ip`; the ban, when this failure caused one.
pub async fn record_failure(
    redis: Option<&RedisStore>,
    bans: &Bans,
    settings: &AntispamSettings,
    ip: IpAddr,
    user: &str,
) -> Option<Ban> {
    let redis = redis?;
    let key = redis.key(&auth_failure_key(ip));
    let mut connection = redis.connection.clone();
    let window = u64::from(settings.autoban_window_minutes.max(1)) * 60;
    let counted: redis::RedisResult<(i64, i64)> = mc_runtime::store_metrics::redis(
        mc_runtime::store_metrics::RedisGroup::Autoban,
        redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window)
            .arg("NX")
            .query_async(&mut connection),
    )
    .await;
    let count = match counted {
        Ok((count, _)) => count,
        Err(error) => {
            tracing::debug!(%error, "login failure not counted");
            return None;
        }
    };
    if !settings.autoban_enabled || count != i64::from(settings.autoban_max_attempts) {
        return None;
    }
    match bans.auto_ban(ip, user, settings.autoban_minutes).await {
        Ok(ban) => {
            // The next round of failures (after the ban lapses or is lifted) counts from zero.
            let _: redis::RedisResult<i64> = mc_runtime::store_metrics::redis(
                mc_runtime::store_metrics::RedisGroup::Autoban,
                redis::cmd("DEL").arg(&key).query_async(&mut connection),
            )
            .await;
            tracing::warn!(%ip, user, failures = count, minutes = settings.autoban_minutes, name = %ban.name, "address banned after failed logins");
            Some(ban)
        }
        Err(error) => {
            tracing::error!(%error, %ip, "auto-ban not written");
            None
        }
    }
}
