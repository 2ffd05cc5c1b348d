//! Hosted domains, their alias names and catch-all addresses.

use crate::Directory;
use crate::error::{DirectoryError, parse_address, parse_hosted_domain};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A hosted domain. Limits of 0 mean "no limit of its own".
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Domain {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub max_message_size_bytes: i64,
    pub max_size_bytes: i64,
    pub max_account_size_bytes: i64,
    pub max_accounts: i32,
    pub max_aliases: i32,
    pub max_lists: i32,
    pub catch_all: Option<String>,
    pub plus_addressing: bool,
    pub plus_separator: String,
    pub greylisting: bool,
    /// Extra names that reach the same accounts (`user@alias` = `user@name`).
    pub aliases: Vec<String>,
    /// Counts of what the domain holds.
    pub accounts: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Changes to a domain's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainUpdate {
    pub active: Option<bool>,
    pub max_message_size_bytes: Option<i64>,
    pub max_size_bytes: Option<i64>,
    pub max_account_size_bytes: Option<i64>,
    pub max_accounts: Option<i32>,
    pub max_aliases: Option<i32>,
    pub max_lists: Option<i32>,
    pub plus_addressing: Option<bool>,
    pub plus_separator: Option<String>,
    pub greylisting: Option<bool>,
}

const SELECT_DOMAIN: &str = "
    SELECT d.id, d.name, d.active, d.max_message_size_bytes, d.max_size_bytes,
           d.max_account_size_bytes, d.max_accounts, d.max_aliases, d.max_lists, d.catch_all,
           d.plus_addressing, d.plus_separator, d.greylisting, d.created_at,
           COALESCE((SELECT array_agg(a.name ORDER BY a.name) FROM domain_aliases a WHERE a.domain_id = d.id),
                    '{}') AS aliases,
           (SELECT count(*) FROM accounts c WHERE c.domain_id = d.id) AS accounts
      FROM domains d";

impl Directory {
    pub async fn create_domain(&self, name: &str) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        sqlx::query("INSERT INTO domains (name) VALUES ($1)")
            .bind(domain.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| DirectoryError::from_insert(e, domain.as_str()))?;
        self.domain(domain.as_str()).await
    }

    pub async fn domains(&self) -> Result<Vec<Domain>, DirectoryError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_DOMAIN} ORDER BY d.name"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A domain by its primary name.
    pub async fn domain(&self, name: &str) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_DOMAIN} WHERE d.name = $1"
        )))
        .bind(domain.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| DirectoryError::not_found("domain", domain.as_str()))
    }

    pub async fn update_domain(
        &self,
        name: &str,
        update: &DomainUpdate,
    ) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        for (field, value) in [
            ("max_message_size_bytes", update.max_message_size_bytes),
            ("max_size_bytes", update.max_size_bytes),
            ("max_account_size_bytes", update.max_account_size_bytes),
            ("max_accounts", update.max_accounts.map(i64::from)),
            ("max_aliases", update.max_aliases.map(i64::from)),
            ("max_lists", update.max_lists.map(i64::from)),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(DirectoryError::Invalid(format!(
                    "{field} must not be negative"
                )));
            }
        }
        if let Some(separator) = &update.plus_separator
            && !["+", "-", "_", "=", "#", "%"].contains(&separator.as_str())
        {
            return Err(DirectoryError::Invalid(
                "plus_separator must be one of + - _ = # %".to_string(),
            ));
        }
        let updated = sqlx::query(
            "UPDATE domains SET
                 active = COALESCE($2, active),
                 max_message_size_bytes = COALESCE($3, max_message_size_bytes),
                 max_size_bytes = COALESCE($4, max_size_bytes),
                 max_account_size_bytes = COALESCE($5, max_account_size_bytes),
                 max_accounts = COALESCE($6, max_accounts),
                 max_aliases = COALESCE($7, max_aliases),
                 max_lists = COALESCE($8, max_lists),
                 plus_addressing = COALESCE($9, plus_addressing),
                 plus_separator = COALESCE($10, plus_separator),
                 greylisting = COALESCE($11, greylisting),
                 updated_at = now()
             WHERE name = $1",
        )
        .bind(domain.as_str())
        .bind(update.active)
        .bind(update.max_message_size_bytes)
        .bind(update.max_size_bytes)
        .bind(update.max_account_size_bytes)
        .bind(update.max_accounts)
        .bind(update.max_aliases)
        .bind(update.max_lists)
        .bind(update.plus_addressing)
        .bind(&update.plus_separator)
        .bind(update.greylisting)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::not_found("domain", domain.as_str()));
        }
        self.domain(domain.as_str()).await
    }

    /// Removes a domain. Without `force` a domain that still holds accounts, aliases or lists is
    /// refused; with it, everything in the domain goes too (mailboxes included).
    pub async fn remove_domain(&self, name: &str, force: bool) -> Result<(), DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM domains WHERE name = $1 FOR UPDATE")
            .bind(domain.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| DirectoryError::not_found("domain", domain.as_str()))?;
        let (accounts, aliases, lists): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM accounts WHERE domain_id = $1),
                    (SELECT count(*) FROM aliases WHERE domain_id = $1),
                    (SELECT count(*) FROM distribution_lists WHERE domain_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if accounts + aliases + lists > 0 && !force {
            return Err(DirectoryError::Conflict(format!(
                "the domain {domain} still holds {accounts} account(s), {aliases} alias(es) and \
                 {lists} list(s); remove them first or force the removal"
            )));
        }
        for table in ["accounts", "aliases", "distribution_lists"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE domain_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM domains WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_domain_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        let alias = parse_hosted_domain(alias)?;
        let id = self.domain_id(domain.as_str()).await?;
        sqlx::query("INSERT INTO domain_aliases (domain_id, name) VALUES ($1, $2)")
            .bind(id)
            .bind(alias.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| DirectoryError::from_insert(e, alias.as_str()))?;
        self.domain(domain.as_str()).await
    }

    pub async fn remove_domain_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        let alias = parse_hosted_domain(alias)?;
        let id = self.domain_id(domain.as_str()).await?;
        let removed = sqlx::query("DELETE FROM domain_aliases WHERE domain_id = $1 AND name = $2")
            .bind(id)
            .bind(alias.as_str())
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(DirectoryError::not_found("domain alias", alias.as_str()));
        }
        self.domain(domain.as_str()).await
    }

    /// Sets or clears the catch-all address, which may be local or external. A catch-all whose
    /// target does not exist is accepted here and refused at delivery time, as the reference does.
    pub async fn set_catch_all(
        &self,
        name: &str,
        target: Option<&str>,
    ) -> Result<Domain, DirectoryError> {
        let domain = parse_hosted_domain(name)?;
        let target = target
            .map(parse_address)
            .transpose()?
            .map(|a| a.to_string());
        let updated =
            sqlx::query("UPDATE domains SET catch_all = $2, updated_at = now() WHERE name = $1")
                .bind(domain.as_str())
                .bind(target)
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::not_found("domain", domain.as_str()));
        }
        self.domain(domain.as_str()).await
    }

    pub(crate) async fn domain_id(&self, name: &str) -> Result<i64, DirectoryError> {
        sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DirectoryError::not_found("domain", name))
    }

    /// Whether `name` is a hosted domain or domain alias (active or not): the test of the relay
    /// rules for "local sender" and "local recipient". Names that are not valid domains are not
    /// hosted.
    pub async fn is_hosted(&self, name: &str) -> Result<bool, DirectoryError> {
        let Ok(domain) = mc_types::Domain::parse(name) else {
            return Ok(false);
        };
        Ok(self.hosted_domain(domain.as_str()).await?.is_some())
    }

    /// The primary domain behind a name that is a domain or a domain alias; `None` when the name
    /// is not hosted here.
    pub(crate) async fn hosted_domain(
        &self,
        name: &str,
    ) -> Result<Option<HostedDomain>, DirectoryError> {
        Ok(sqlx::query_as(
            "SELECT d.name, d.active, d.catch_all, d.plus_addressing, d.plus_separator
               FROM domains d
              WHERE d.name = $1
                 OR d.id = (SELECT domain_id FROM domain_aliases WHERE name = $1)",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HostedDomain {
    pub name: String,
    pub active: bool,
    pub catch_all: Option<String>,
    pub plus_addressing: bool,
    pub plus_separator: String,
}

/// What a domain holds and may limit the number of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holding {
    Accounts,
    Aliases,
    Lists,
}

impl Holding {
    /// (table, limit column, noun for messages): constants, never user input.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Accounts => ("accounts", "max_accounts", "account(s)"),
            Self::Aliases => ("aliases", "max_aliases", "alias(es)"),
            Self::Lists => ("distribution_lists", "max_lists", "list(s)"),
        }
    }
}

impl Directory {
    /// Locks the row of the hosted domain `name` for the rest of `tx` (creations in one domain
    /// serialise, so the count check stays true until commit) and checks that it has room for one
    /// more of `what`. Returns the domain id.
    pub(crate) async fn lock_domain_with_room(
        &self,
        tx: &mut sqlx::PgConnection,
        name: &str,
        what: Holding,
    ) -> Result<i64, DirectoryError> {
        let (table, limit_column, noun) = what.sql();
        let domain: Option<(i64, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, {limit_column} FROM domains WHERE name = $1 FOR UPDATE"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((domain_id, limit)) = domain else {
            return Err(self.unknown_domain_error(name).await);
        };
        if limit > 0 {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE domain_id = $1"
            )))
            .bind(domain_id)
            .fetch_one(&mut *tx)
            .await?;
            if count >= i64::from(limit) {
                return Err(DirectoryError::Conflict(format!(
                    "the domain {name} allows at most {limit} {noun}"
                )));
            }
        }
        Ok(domain_id)
    }
}
