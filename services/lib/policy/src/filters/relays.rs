//! Incoming relays: our own backup MX hosts. Mail they hand over is judged by the address that
//! handed it to them, read from `Received:`.

use super::{checked_range, unique};
use crate::PolicyError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::net::IpAddr;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IncomingRelay {
    pub name: String,
    #[schema(value_type = String)]
    pub lower: IpAddr,
    #[schema(value_type = String)]
    pub upper: IpAddr,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncomingRelay {
    pub name: String,
    #[schema(value_type = String)]
    pub lower: IpAddr,
    #[schema(value_type = String)]
    pub upper: IpAddr,
}

#[derive(Debug, Clone)]
pub struct IncomingRelays {
    pool: PgPool,
}

impl IncomingRelays {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list(&self) -> Result<Vec<IncomingRelay>, PolicyError> {
        let rows: Vec<(String, IpNet, IpNet, OffsetDateTime)> = sqlx::query_as(
            "SELECT name, lower_ip, upper_ip, created_at FROM incoming_relays ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, lower, upper, created_at)| IncomingRelay {
                name,
                lower: lower.addr(),
                upper: upper.addr(),
                created_at,
            })
            .collect())
    }

    pub async fn add(
        &self,
        name: &str,
        lower: IpAddr,
        upper: IpAddr,
    ) -> Result<IncomingRelay, PolicyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(PolicyError::Invalid(
                "the name must have 1 to 100 characters".into(),
            ));
        }
        let (lower, upper) = checked_range(lower, upper)?;
        let created_at: OffsetDateTime = sqlx::query_scalar(
            "INSERT INTO incoming_relays (name, lower_ip, upper_ip) VALUES ($1, $2, $3)
             RETURNING created_at",
        )
        .bind(name)
        .bind(lower)
        .bind(upper)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique(e, format!("an incoming relay named {name}")))?;
        Ok(IncomingRelay {
            name: name.to_string(),
            lower: lower.addr(),
            upper: upper.addr(),
            created_at,
        })
    }

    pub async fn remove(&self, name: &str) -> Result<(), PolicyError> {
        let removed = sqlx::query("DELETE FROM incoming_relays WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(PolicyError::NotFound(format!("incoming relay {name}")));
        }
        Ok(())
    }

    /// Whether `ip` is one of our own backup MX hosts.
    pub async fn contains(&self, ip: IpAddr) -> Result<bool, PolicyError> {
        Ok(self.list().await?.iter().any(|relay| relay.contains(ip)))
    }
}

impl IncomingRelay {
    /// Whether `ip` is one of this relay's addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        super::in_range(ip, self.lower, self.upper)
    }
}
