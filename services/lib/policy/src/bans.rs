//! Bans: IP ranges with every protocol off, an expiry and the `ban` flag (the reference's
//! auto-ban model, FEATURES.md BAN-01..04). Every replica looks up the governing range of a new
//! connection in PostgreSQL, so a ban written here refuses the address everywhere at once.
//!
//! Automatic bans get priority 20, so an administrator's range at a higher priority (a webmail
//! front end, an office) overrides them; bans an administrator adds get priority 900.

use crate::PolicyError;
use crate::ip_ranges::canonical_ip;
use ipnet::IpNet;
use serde::Serialize;
use sqlx::PgPool;
use std::net::IpAddr;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Priority of automatic bans (the reference's).
pub const AUTO_BAN_PRIORITY: i32 = 20;
/// Priority of bans added by an administrator: above every range but the most deliberate ones.
pub const ADMIN_BAN_PRIORITY: i32 = 900;

/// The Redis key (before the deployment's prefix) counting failed logins of one address,
/// shared by SMTP, IMAP and POP3 on every replica.
pub fn auth_failure_key(ip: IpAddr) -> String {
    format!("authfail:{}", canonical_ip(ip))
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Ban {
    pub name: String,
    #[schema(value_type = String)]
    pub ip: IpAddr,
    pub priority: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Bans {
    pool: PgPool,
}

impl Bans {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Bans in force at `now`, newest first.
    pub async fn list(&self, now: OffsetDateTime) -> Result<Vec<Ban>, PolicyError> {
        let rows: Vec<(String, IpNet, i32, Option<OffsetDateTime>, OffsetDateTime)> =
            sqlx::query_as(
                "SELECT name, lower_ip, priority, expires_at, created_at FROM ip_ranges
                  WHERE ban AND (expires_at IS NULL OR expires_at > $1)
                  ORDER BY created_at DESC, name",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, ip, priority, expires_at, created_at)| Ban {
                name,
                ip: ip.addr(),
                priority,
                expires_at,
                created_at,
            })
            .collect())
    }

    /// The automatic ban after too many failed logins: `Auto-ban: <user> <9 random>`.
    pub async fn auto_ban(
        &self,
        ip: IpAddr,
        username: &str,
        minutes: u32,
    ) -> Result<Ban, PolicyError> {
        // The name column holds 40 characters: "Auto-ban: " + user (≤ 20) + " " + 9.
        let user: String = username
            .chars()
            .filter(|c| !c.is_control())
            .take(20)
            .collect();
        let name = format!("Auto-ban: {user} {}", random_tag());
        self.insert(&name, ip, AUTO_BAN_PRIORITY, Some(minutes))
            .await
    }

    /// A ban added by an administrator; `minutes: None` bans until removed.
    pub async fn add(&self, ip: IpAddr, minutes: Option<u32>) -> Result<Ban, PolicyError> {
        let name = format!("Ban: {} {}", canonical_ip(ip), random_tag());
        self.insert(&name, ip, ADMIN_BAN_PRIORITY, minutes).await
    }

    /// Lifts every ban of `ip` (automatic or not); how many there were. `NotFound` if none.
    pub async fn remove(&self, ip: IpAddr) -> Result<u64, PolicyError> {
        let ip = IpNet::from(canonical_ip(ip));
        let removed =
            sqlx::query("DELETE FROM ip_ranges WHERE ban AND lower_ip = $1 AND upper_ip = $1")
                .bind(ip)
                .execute(&self.pool)
                .await?
                .rows_affected();
        if removed == 0 {
            return Err(PolicyError::NotFound(format!("a ban of {}", ip.addr())));
        }
        Ok(removed)
    }

    async fn insert(
        &self,
        name: &str,
        ip: IpAddr,
        priority: i32,
        minutes: Option<u32>,
    ) -> Result<Ban, PolicyError> {
        if matches!(minutes, Some(0)) {
            return Err(PolicyError::Invalid(
                "a ban lasts at least one minute".into(),
            ));
        }
        let ip = IpNet::from(canonical_ip(ip));
        let mut tx = self.pool.begin().await?;
        // Expired bans are kept a day for the record, then swept by the next ban.
        sqlx::query("DELETE FROM ip_ranges WHERE ban AND expires_at < now() - interval '1 day'")
            .execute(&mut *tx)
            .await?;
        let row: (String, IpNet, i32, Option<OffsetDateTime>, OffsetDateTime) = sqlx::query_as(
            "INSERT INTO ip_ranges (name, priority, lower_ip, upper_ip, allow_smtp, allow_pop3,
                 allow_imap, allow_local_to_local, allow_local_to_external, allow_external_to_local,
                 allow_external_to_external, antispam, antivirus, ban, expires_at)
             VALUES ($1, $2, $3, $3, false, false, false, false, false, false, false, true, true,
                 true, CASE WHEN $4::integer IS NULL THEN NULL
                            ELSE now() + make_interval(mins => $4::integer) END)
             RETURNING name, lower_ip, priority, expires_at, created_at",
        )
        .bind(name)
        .bind(priority)
        .bind(ip)
        .bind(minutes.map(|m| m.min(i32::MAX as u32) as i32))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ban {
            name: row.0,
            ip: row.1.addr(),
            priority: row.2,
            expires_at: row.3,
            created_at: row.4,
        })
    }
}

/// Nine random letters and digits: range names are unique, and one address may be banned twice.
fn random_tag() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 9];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
