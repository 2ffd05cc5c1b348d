//! IP ranges in PostgreSQL: administration and lookup of the range that governs a client.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::net::IpAddr;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IpRange {
    pub name: String,
    pub priority: i32,
    #[schema(value_type = String)]
    pub lower: IpAddr,
    #[schema(value_type = String)]
    pub upper: IpAddr,
    pub allow_smtp: bool,
    pub allow_pop3: bool,
    pub allow_imap: bool,
    pub allow_local_to_local: bool,
    pub allow_local_to_external: bool,
    pub allow_external_to_local: bool,
    pub allow_external_to_external: bool,
    pub require_auth_local_to_local: bool,
    pub require_auth_local_to_external: bool,
    pub require_auth_external_to_local: bool,
    pub require_auth_external_to_external: bool,
    pub antispam: bool,
    pub antivirus: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A new range. Switches left out take the safe defaults of the schema: every protocol allowed,
/// external→external relaying refused, authentication required for every category but
/// external→local (other servers delivering to us never authenticate).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIpRange {
    pub name: String,
    pub priority: i32,
    #[schema(value_type = String)]
    pub lower: IpAddr,
    #[schema(value_type = String)]
    pub upper: IpAddr,
    pub allow_smtp: Option<bool>,
    pub allow_pop3: Option<bool>,
    pub allow_imap: Option<bool>,
    pub allow_local_to_local: Option<bool>,
    pub allow_local_to_external: Option<bool>,
    pub allow_external_to_local: Option<bool>,
    pub allow_external_to_external: Option<bool>,
    pub require_auth_local_to_local: Option<bool>,
    pub require_auth_local_to_external: Option<bool>,
    pub require_auth_external_to_local: Option<bool>,
    pub require_auth_external_to_external: Option<bool>,
    pub antispam: Option<bool>,
    pub antivirus: Option<bool>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    priority: i32,
    lower_ip: IpNet,
    upper_ip: IpNet,
    allow_smtp: bool,
    allow_pop3: bool,
    allow_imap: bool,
    allow_local_to_local: bool,
    allow_local_to_external: bool,
    allow_external_to_local: bool,
    allow_external_to_external: bool,
    require_auth_local_to_local: bool,
    require_auth_local_to_external: bool,
    require_auth_external_to_local: bool,
    require_auth_external_to_external: bool,
    antispam: bool,
    antivirus: bool,
    expires_at: Option<OffsetDateTime>,
}

impl From<Row> for IpRange {
    fn from(r: Row) -> Self {
        Self {
            name: r.name,
            priority: r.priority,
            lower: r.lower_ip.addr(),
            upper: r.upper_ip.addr(),
            allow_smtp: r.allow_smtp,
            allow_pop3: r.allow_pop3,
            allow_imap: r.allow_imap,
            allow_local_to_local: r.allow_local_to_local,
            allow_local_to_external: r.allow_local_to_external,
            allow_external_to_local: r.allow_external_to_local,
            allow_external_to_external: r.allow_external_to_external,
            require_auth_local_to_local: r.require_auth_local_to_local,
            require_auth_local_to_external: r.require_auth_local_to_external,
            require_auth_external_to_local: r.require_auth_external_to_local,
            require_auth_external_to_external: r.require_auth_external_to_external,
            antispam: r.antispam,
            antivirus: r.antivirus,
            expires_at: r.expires_at,
        }
    }
}

const SELECT: &str = "SELECT name, priority, lower_ip, upper_ip, allow_smtp, allow_pop3, allow_imap,
    allow_local_to_local, allow_local_to_external, allow_external_to_local, allow_external_to_external,
    require_auth_local_to_local, require_auth_local_to_external, require_auth_external_to_local,
    require_auth_external_to_external, antispam, antivirus, expires_at FROM ip_ranges";

/// IP-range administration and lookup over one PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct IpRanges {
    pool: PgPool,
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) are treated
/// as the IPv4 address they carry, so IPv4 ranges govern them.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

impl IpRanges {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list(&self) -> Result<Vec<IpRange>, PolicyError> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} ORDER BY priority DESC, name"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(IpRange::from).collect())
    }

    pub async fn get(&self, name: &str) -> Result<IpRange, PolicyError> {
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE name = $1")))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.map(IpRange::from)
            .ok_or_else(|| PolicyError::NotFound(format!("IP range {name}")))
    }

    pub async fn create(&self, new: &NewIpRange) -> Result<IpRange, PolicyError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 40 {
            return Err(PolicyError::Invalid(
                "the name must have 1 to 40 characters".into(),
            ));
        }
        if !(0..=1000).contains(&new.priority) {
            return Err(PolicyError::Invalid(
                "the priority must be between 0 and 1000".into(),
            ));
        }
        let (lower, upper) = (canonical_ip(new.lower), canonical_ip(new.upper));
        if lower.is_ipv4() != upper.is_ipv4() {
            return Err(PolicyError::Invalid(
                "lower and upper must be of the same address family".into(),
            ));
        }
        if lower > upper {
            return Err(PolicyError::Invalid("lower must not be above upper".into()));
        }
        sqlx::query(
            "INSERT INTO ip_ranges (name, priority, lower_ip, upper_ip,
                 allow_smtp, allow_pop3, allow_imap,
                 allow_local_to_local, allow_local_to_external, allow_external_to_local, allow_external_to_external,
                 require_auth_local_to_local, require_auth_local_to_external, require_auth_external_to_local,
                 require_auth_external_to_external, antispam, antivirus, expires_at)
             VALUES ($1, $2, $3, $4, COALESCE($5, true), COALESCE($6, true), COALESCE($7, true),
                 COALESCE($8, true), COALESCE($9, true), COALESCE($10, true), COALESCE($11, false),
                 COALESCE($12, true), COALESCE($13, true), COALESCE($14, false), COALESCE($15, true),
                 COALESCE($16, true), COALESCE($17, true), $18)",
        )
        .bind(name)
        .bind(new.priority)
        .bind(host_net(lower))
        .bind(host_net(upper))
        .bind(new.allow_smtp)
        .bind(new.allow_pop3)
        .bind(new.allow_imap)
        .bind(new.allow_local_to_local)
        .bind(new.allow_local_to_external)
        .bind(new.allow_external_to_local)
        .bind(new.allow_external_to_external)
        .bind(new.require_auth_local_to_local)
        .bind(new.require_auth_local_to_external)
        .bind(new.require_auth_external_to_local)
        .bind(new.require_auth_external_to_external)
        .bind(new.antispam)
        .bind(new.antivirus)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => PolicyError::AlreadyExists(format!("an IP range named {name}")),
            _ => PolicyError::Database(e),
        })?;
        self.get(name).await
    }

    pub async fn remove(&self, name: &str) -> Result<(), PolicyError> {
        let removed = sqlx::query("DELETE FROM ip_ranges WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(PolicyError::NotFound(format!("IP range {name}")));
        }
        Ok(())
    }

    /// The range that governs `ip` at `now`: the matching, unexpired range with the highest
    /// priority (ties broken by name, so every replica picks the same one). `None`: no service.
    pub async fn governing(
        &self,
        ip: IpAddr,
        now: OffsetDateTime,
    ) -> Result<Option<IpRange>, PolicyError> {
        let ip = host_net(canonical_ip(ip));
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE lower_ip <= $1 AND upper_ip >= $1 AND family(lower_ip) = family($1)
                        AND (expires_at IS NULL OR expires_at > $2)
              ORDER BY priority DESC, name LIMIT 1"
        )))
        .bind(ip)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(IpRange::from))
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_ip;

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        assert_eq!(
            canonical_ip("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            canonical_ip("2001:db8::1".parse().unwrap()),
            "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
