//! Distribution lists: an address whose mail goes to every member, with the reference's posting
//! modes (public, members only, announcements from one address).

use crate::Directory;
use crate::domains::Holding;
use crate::error::{DirectoryError, parse_address};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListMode {
    /// Anyone may post.
    #[default]
    Public,
    /// Only members may post.
    Membership,
    /// Only `announce_address` may post.
    Announcement,
}

impl ListMode {
    fn as_db(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Membership => "membership",
            Self::Announcement => "announcement",
        }
    }

    fn from_db(text: &str) -> Self {
        match text {
            "membership" => Self::Membership,
            "announcement" => Self::Announcement,
            _ => Self::Public,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DistributionList {
    pub address: String,
    pub active: bool,
    pub mode: ListMode,
    pub announce_address: Option<String>,
    pub require_auth: bool,
    pub members: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: i64,
    address: String,
    active: bool,
    mode: String,
    announce_address: Option<String>,
    require_auth: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewList {
    pub address: String,
    #[serde(default)]
    pub mode: ListMode,
    pub announce_address: Option<String>,
    #[serde(default)]
    pub require_auth: bool,
}

/// Most members a list may have: bounds the fan-out of one message.
pub const MAX_LIST_MEMBERS: i64 = 10_000;

impl Directory {
    pub async fn create_list(&self, new: &NewList) -> Result<DistributionList, DirectoryError> {
        let address = parse_address(&new.address)?;
        let key = address.lookup_key();
        let announce = new
            .announce_address
            .as_deref()
            .map(parse_address)
            .transpose()?
            .map(|a| a.to_string());
        if new.mode == ListMode::Announcement && announce.is_none() {
            return Err(DirectoryError::Invalid(
                "an announcement list needs an announce_address".to_string(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let domain_id = self
            .lock_domain_with_room(&mut tx, address.domain().as_str(), Holding::Lists)
            .await?;
        sqlx::query(
            "INSERT INTO distribution_lists (domain_id, address, mode, announce_address, require_auth)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(domain_id)
        .bind(&key)
        .bind(new.mode.as_db())
        .bind(announce)
        .bind(new.require_auth)
        .execute(&mut *tx)
        .await
        .map_err(|e| DirectoryError::from_insert(e, &key))?;
        tx.commit().await?;
        self.list(&key).await
    }

    pub async fn list(&self, address: &str) -> Result<DistributionList, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let row: ListRow = sqlx::query_as(
            "SELECT id, address, active, mode, announce_address, require_auth
               FROM distribution_lists WHERE address = $1",
        )
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| DirectoryError::not_found("distribution list", &key))?;
        let members = self.list_members(row.id).await?;
        Ok(DistributionList {
            address: row.address,
            active: row.active,
            mode: ListMode::from_db(&row.mode),
            announce_address: row.announce_address,
            require_auth: row.require_auth,
            members,
        })
    }

    pub async fn lists(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<DistributionList>, DirectoryError> {
        let addresses: Vec<String> = match domain {
            Some(domain) => {
                let domain = crate::error::parse_hosted_domain(domain)?;
                let id = self.domain_id(domain.as_str()).await?;
                sqlx::query_scalar(
                    "SELECT address FROM distribution_lists WHERE domain_id = $1 ORDER BY address",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_scalar("SELECT address FROM distribution_lists ORDER BY address")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut lists = Vec::with_capacity(addresses.len());
        for address in addresses {
            lists.push(self.list(&address).await?);
        }
        Ok(lists)
    }

    pub(crate) async fn list_members(&self, list_id: i64) -> Result<Vec<String>, DirectoryError> {
        Ok(sqlx::query_scalar(
            "SELECT address FROM distribution_list_members WHERE list_id = $1 ORDER BY address",
        )
        .bind(list_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_list_active(
        &self,
        address: &str,
        active: bool,
    ) -> Result<DistributionList, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let updated = sqlx::query(
            "UPDATE distribution_lists SET active = $2, updated_at = now() WHERE address = $1",
        )
        .bind(&key)
        .bind(active)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::not_found("distribution list", key));
        }
        self.list(&key).await
    }

    pub async fn remove_list(&self, address: &str) -> Result<(), DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let removed = sqlx::query("DELETE FROM distribution_lists WHERE address = $1")
            .bind(&key)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(DirectoryError::not_found("distribution list", key));
        }
        Ok(())
    }

    pub async fn add_list_member(
        &self,
        list: &str,
        member: &str,
    ) -> Result<DistributionList, DirectoryError> {
        let key = parse_address(list)?.lookup_key();
        let member = parse_address(member)?;
        if member.lookup_key() == key {
            return Err(DirectoryError::Invalid(
                "a list cannot be a member of itself".to_string(),
            ));
        }
        // Members keep their spelling: another host's local parts may be case-sensitive.
        let member = member.to_string();
        let mut tx = self.pool.begin().await?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM distribution_lists WHERE address = $1 FOR UPDATE")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| DirectoryError::not_found("distribution list", &key))?;
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM distribution_list_members WHERE list_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= MAX_LIST_MEMBERS {
            return Err(DirectoryError::Conflict(format!(
                "a list has at most {MAX_LIST_MEMBERS} members"
            )));
        }
        sqlx::query("INSERT INTO distribution_list_members (list_id, address) VALUES ($1, $2)")
            .bind(id)
            .bind(&member)
            .execute(&mut *tx)
            .await
            .map_err(|e| match DirectoryError::from_insert(e, &member) {
                DirectoryError::AlreadyExists(m) => {
                    DirectoryError::AlreadyExists(format!("{m} (as a member of {key})"))
                }
                other => other,
            })?;
        tx.commit().await?;
        self.list(&key).await
    }

    pub async fn remove_list_member(
        &self,
        list: &str,
        member: &str,
    ) -> Result<DistributionList, DirectoryError> {
        let key = parse_address(list)?.lookup_key();
        let member = parse_address(member)?.lookup_key();
        // Members keep the spelling they were added with; removal matches regardless of case.
        let removed = sqlx::query(
            "DELETE FROM distribution_list_members
              WHERE list_id = (SELECT id FROM distribution_lists WHERE address = $1) AND lower(address) = $2",
        )
        .bind(&key)
        .bind(&member)
        .execute(&self.pool)
        .await?;
        if removed.rows_affected() == 0 {
            // Say which of the two is missing.
            self.list(&key).await?;
            return Err(DirectoryError::not_found("list member", member));
        }
        self.list(&key).await
    }
}
