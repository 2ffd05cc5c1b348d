//! Aliases: an address with no mailbox that redirects to exactly one target (an account, another
//! alias, a list, or an external address). Several targets need a distribution list.

use crate::Directory;
use crate::domains::Holding;
use crate::error::{DirectoryError, parse_address};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Alias {
    pub address: String,
    pub target: String,
    pub active: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlias {
    pub address: String,
    pub target: String,
}

impl Directory {
    pub async fn create_alias(&self, new: &NewAlias) -> Result<Alias, DirectoryError> {
        let address = parse_address(&new.address)?;
        let target = parse_address(&new.target)?;
        let key = address.lookup_key();
        if key == target.lookup_key() {
            return Err(DirectoryError::Invalid(
                "an alias cannot point at itself".to_string(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let domain_id = self
            .lock_domain_with_room(&mut tx, address.domain().as_str(), Holding::Aliases)
            .await?;
        sqlx::query("INSERT INTO aliases (domain_id, address, target) VALUES ($1, $2, $3)")
            .bind(domain_id)
            .bind(&key)
            // The target keeps its spelling: another host's local parts may be case-sensitive.
            .bind(target.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| DirectoryError::from_insert(e, &key))?;
        tx.commit().await?;
        self.alias(&key).await
    }

    pub async fn alias(&self, address: &str) -> Result<Alias, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        sqlx::query_as("SELECT address, target, active FROM aliases WHERE address = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("alias", key))
    }

    pub async fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, DirectoryError> {
        Ok(match domain {
            Some(domain) => {
                let domain = crate::error::parse_hosted_domain(domain)?;
                let id = self.domain_id(domain.as_str()).await?;
                sqlx::query_as(
                    "SELECT address, target, active FROM aliases WHERE domain_id = $1 ORDER BY address",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT address, target, active FROM aliases ORDER BY address")
                    .fetch_all(&self.pool)
                    .await?
            }
        })
    }

    pub async fn set_alias_active(
        &self,
        address: &str,
        active: bool,
    ) -> Result<Alias, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let updated =
            sqlx::query("UPDATE aliases SET active = $2, updated_at = now() WHERE address = $1")
                .bind(&key)
                .bind(active)
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::not_found("alias", key));
        }
        self.alias(&key).await
    }

    pub async fn remove_alias(&self, address: &str) -> Result<(), DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let removed = sqlx::query("DELETE FROM aliases WHERE address = $1")
            .bind(&key)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(DirectoryError::not_found("alias", key));
        }
        Ok(())
    }
}
