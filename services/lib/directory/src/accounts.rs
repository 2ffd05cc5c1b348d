//! Accounts: the only objects that own mailboxes and may log in.

use crate::domains::Holding;
use crate::error::{DirectoryError, parse_address};
use crate::{Directory, password};
use mc_types::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// What an account may administer (the reference's user / domain / server levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdminLevel {
    #[default]
    User,
    Domain,
    Server,
}

impl AdminLevel {
    fn to_db(self) -> i16 {
        match self {
            Self::User => 0,
            Self::Domain => 1,
            Self::Server => 2,
        }
    }

    fn from_db(value: i16) -> Self {
        match value {
            1 => Self::Domain,
            2 => Self::Server,
            _ => Self::User,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Account {
    pub address: String,
    pub domain: String,
    pub active: bool,
    /// 0 = unlimited.
    pub quota_bytes: i64,
    pub used_bytes: i64,
    pub admin_level: AdminLevel,
    pub first_name: String,
    pub last_name: String,
    pub forward_enabled: bool,
    pub forward_address: Option<String>,
    pub forward_keep_copy: bool,
    pub autoreply_enabled: bool,
    pub autoreply_subject: String,
    pub autoreply_body: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub autoreply_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    address: String,
    domain: String,
    active: bool,
    quota_bytes: i64,
    used_bytes: i64,
    admin_level: i16,
    first_name: String,
    last_name: String,
    forward_enabled: bool,
    forward_address: Option<String>,
    forward_keep_copy: bool,
    autoreply_enabled: bool,
    autoreply_subject: String,
    autoreply_body: String,
    autoreply_expires_at: Option<OffsetDateTime>,
    last_login_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Self {
            address: r.address,
            domain: r.domain,
            active: r.active,
            quota_bytes: r.quota_bytes,
            used_bytes: r.used_bytes,
            admin_level: AdminLevel::from_db(r.admin_level),
            first_name: r.first_name,
            last_name: r.last_name,
            forward_enabled: r.forward_enabled,
            forward_address: r.forward_address,
            forward_keep_copy: r.forward_keep_copy,
            autoreply_enabled: r.autoreply_enabled,
            autoreply_subject: r.autoreply_subject,
            autoreply_body: r.autoreply_body,
            autoreply_expires_at: r.autoreply_expires_at,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
        }
    }
}

const SELECT_ACCOUNT: &str = "
    SELECT a.address, d.name AS domain, a.active, a.quota_bytes, a.used_bytes, a.admin_level,
           a.first_name, a.last_name, a.forward_enabled, a.forward_address, a.forward_keep_copy,
           a.autoreply_enabled, a.autoreply_subject, a.autoreply_body, a.autoreply_expires_at,
           a.last_login_at, a.created_at
      FROM accounts a JOIN domains d ON d.id = a.domain_id";

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub address: String,
    #[schema(value_type = String)]
    pub password: Secret<String>,
    #[serde(default)]
    pub quota_bytes: i64,
    #[serde(default)]
    pub admin_level: AdminLevel,
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// Changes to an account; `None` leaves a field as it is. `forward_address` and
/// `autoreply_expires_at` are cleared by the matching `clear_*` flag.
/// An account as delivery sees it (`Directory::delivery_profile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryProfile {
    pub account_id: i64,
    /// 0: no limit.
    pub quota_bytes: i64,
    pub used_bytes: i64,
    /// The domain's limit on the size of all its mailboxes together; 0: none.
    pub domain_max_bytes: i64,
    pub domain_used_bytes: i64,
    /// Set when the auto-reply is on and not expired.
    pub autoreply: Option<AutoReply>,
}

impl DeliveryProfile {
    /// Whether `size` more bytes would exceed the account's quota or its domain's limit.
    pub fn over_quota(&self, size: i64) -> bool {
        (self.quota_bytes > 0 && self.used_bytes + size > self.quota_bytes)
            || (self.domain_max_bytes > 0 && self.domain_used_bytes + size > self.domain_max_bytes)
    }
}

/// An account's out-of-office reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    #[schema(value_type = Option<String>)]
    pub password: Option<Secret<String>>,
    pub quota_bytes: Option<i64>,
    pub active: Option<bool>,
    pub admin_level: Option<AdminLevel>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub forward_enabled: Option<bool>,
    pub forward_address: Option<String>,
    pub forward_keep_copy: Option<bool>,
    pub autoreply_enabled: Option<bool>,
    pub autoreply_subject: Option<String>,
    pub autoreply_body: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub autoreply_expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub clear_autoreply_expiry: bool,
}

impl Directory {
    /// Creates an account in a hosted domain (by its primary name), enforcing the domain's
    /// account-count and total-quota limits under a lock on the domain row.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, DirectoryError> {
        let address = parse_address(&new.address)?;
        password::check_policy(&new.password)?;
        check_quota(new.quota_bytes)?;
        let key = address.lookup_key();
        let hash = password::hash(new.password).await?;

        let mut tx = self.pool.begin().await?;
        let domain_id = self
            .lock_domain_with_room(&mut tx, address.domain().as_str(), Holding::Accounts)
            .await?;
        let (max_account_size, quota_sum): (i64, i64) = sqlx::query_as(
            "SELECT max_account_size_bytes,
                    (SELECT COALESCE(sum(quota_bytes), 0)::bigint FROM accounts WHERE domain_id = $1)
               FROM domains WHERE id = $1",
        )
        .bind(domain_id)
        .fetch_one(&mut *tx)
        .await?;
        check_domain_quota_total(max_account_size, quota_sum, new.quota_bytes)?;
        sqlx::query(
            "INSERT INTO accounts (domain_id, address, password_hash, quota_bytes, admin_level, active)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(domain_id)
        .bind(&key)
        .bind(&hash)
        .bind(new.quota_bytes)
        .bind(new.admin_level.to_db())
        .bind(new.active)
        .execute(&mut *tx)
        .await
        .map_err(|e| DirectoryError::from_insert(e, &key))?;
        tx.commit().await?;
        self.account(&key).await
    }

    pub async fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>, DirectoryError> {
        let rows: Vec<AccountRow> = match domain {
            Some(domain) => {
                let domain = crate::error::parse_hosted_domain(domain)?;
                self.domain_id(domain.as_str()).await?;
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_ACCOUNT} WHERE d.name = $1 ORDER BY a.address"
                )))
                .bind(domain.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_ACCOUNT} ORDER BY a.address"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.into_iter().map(Account::from).collect())
    }

    pub async fn account(&self, address: &str) -> Result<Account, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_ACCOUNT} WHERE a.address = $1"
        )))
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Account::from)
            .ok_or_else(|| DirectoryError::not_found("account", key))
    }

    pub async fn update_account(
        &self,
        address: &str,
        update: AccountUpdate,
    ) -> Result<Account, DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        if let Some(password) = &update.password {
            password::check_policy(password)?;
        }
        if let Some(quota) = update.quota_bytes {
            check_quota(quota)?;
        }
        let forward_address = update
            .forward_address
            .as_deref()
            .map(parse_address)
            .transpose()?;
        let forwards_to_itself = forward_address
            .as_ref()
            .is_some_and(|a| a.lookup_key() == key);
        let forward_address = forward_address.map(|a| a.to_string());
        let hash = match update.password {
            Some(password) => Some(password::hash(password).await?),
            None => None,
        };

        // Lock order everywhere: the domain row first, then what it holds (as create_account and
        // remove_domain do), so concurrent changes serialise instead of deadlocking.
        let mut tx = self.pool.begin().await?;
        let domain: Option<(i64, i64)> = sqlx::query_as(
            "SELECT d.id, d.max_account_size_bytes FROM domains d
              WHERE d.id = (SELECT domain_id FROM accounts WHERE address = $1) FOR UPDATE",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((domain_id, max_account_size)) = domain else {
            return Err(DirectoryError::not_found("account", key));
        };
        let current: Option<(i64, bool, Option<String>)> = sqlx::query_as(
            "SELECT quota_bytes, forward_enabled, forward_address FROM accounts WHERE address = $1 FOR UPDATE",
        )
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old_quota, old_forward_enabled, old_forward_address)) = current else {
            return Err(DirectoryError::not_found("account", key));
        };
        if let Some(quota) = update.quota_bytes {
            // A new statement after the lock: it sees every change committed before we got it.
            let quota_sum: i64 = sqlx::query_scalar(
                "SELECT COALESCE(sum(quota_bytes), 0)::bigint FROM accounts WHERE domain_id = $1",
            )
            .bind(domain_id)
            .fetch_one(&mut *tx)
            .await?;
            check_domain_quota_total(max_account_size, quota_sum - old_quota, quota)?;
        }
        let forward_enabled = update.forward_enabled.unwrap_or(old_forward_enabled);
        if forward_enabled && forward_address.is_none() && old_forward_address.is_none() {
            return Err(DirectoryError::Invalid(
                "forwarding needs a forward_address".to_string(),
            ));
        }
        if forwards_to_itself {
            return Err(DirectoryError::Invalid(
                "an account cannot forward to itself".to_string(),
            ));
        }
        sqlx::query(
            "UPDATE accounts SET
                 password_hash = COALESCE($2, password_hash),
                 quota_bytes = COALESCE($3, quota_bytes),
                 active = COALESCE($4, active),
                 admin_level = COALESCE($5, admin_level),
                 first_name = COALESCE($6, first_name),
                 last_name = COALESCE($7, last_name),
                 forward_enabled = $8,
                 forward_address = COALESCE($9, forward_address),
                 forward_keep_copy = COALESCE($10, forward_keep_copy),
                 autoreply_enabled = COALESCE($11, autoreply_enabled),
                 autoreply_subject = COALESCE($12, autoreply_subject),
                 autoreply_body = COALESCE($13, autoreply_body),
                 autoreply_expires_at = CASE WHEN $15 THEN NULL ELSE COALESCE($14, autoreply_expires_at) END,
                 updated_at = now()
             WHERE address = $1",
        )
        .bind(&key)
        .bind(hash)
        .bind(update.quota_bytes)
        .bind(update.active)
        .bind(update.admin_level.map(AdminLevel::to_db))
        .bind(update.first_name)
        .bind(update.last_name)
        .bind(forward_enabled)
        .bind(forward_address)
        .bind(update.forward_keep_copy)
        .bind(update.autoreply_enabled)
        .bind(update.autoreply_subject)
        .bind(update.autoreply_body)
        .bind(update.autoreply_expires_at)
        .bind(update.clear_autoreply_expiry)
        .execute(&mut *tx)
        .await?;
        if update.autoreply_enabled == Some(true) {
            // Switched on (again): every sender hears the new message once.
            sqlx::query(
                "DELETE FROM autoreply_sent WHERE account_id = (SELECT id FROM accounts WHERE address = $1)",
            )
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.account(&key).await
    }

    /// What delivery needs to know about an account (lookup form): its quota and use, its
    /// domain's total size limit and use, and its auto-reply if one is on and unexpired.
    pub async fn delivery_profile(
        &self,
        key: &str,
    ) -> Result<Option<DeliveryProfile>, DirectoryError> {
        Ok(self.delivery_profiles(&[key]).await?.remove(key))
    }

    /// [`Directory::delivery_profile`] for many accounts in one query, by address.
    pub async fn delivery_profiles(
        &self,
        keys: &[&str],
    ) -> Result<std::collections::HashMap<String, DeliveryProfile>, DirectoryError> {
        type Row = (String, i64, i64, i64, i64, i64, bool, String, String);
        let rows: Vec<Row> = sqlx::query_as(
            "WITH wanted AS (
                 SELECT a.*, d.max_size_bytes AS domain_max
                   FROM accounts a JOIN domains d ON d.id = a.domain_id
                  WHERE a.address = ANY($1)
             ), domain_use AS (
                 -- Summed only for domains with a limit: a large domain without one costs nothing.
                 SELECT o.domain_id, sum(o.used_bytes)::bigint AS used
                   FROM accounts o
                  WHERE o.domain_id IN (SELECT domain_id FROM wanted WHERE domain_max > 0)
                  GROUP BY o.domain_id
             )
             SELECT w.address, w.id, w.quota_bytes, w.used_bytes, w.domain_max,
                    coalesce(u.used, 0)::bigint,
                    w.autoreply_enabled
                        AND (w.autoreply_expires_at IS NULL OR w.autoreply_expires_at > now()),
                    w.autoreply_subject, w.autoreply_body
               FROM wanted w LEFT JOIN domain_use u ON u.domain_id = w.domain_id",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(address, id, quota, used, domain_max, domain_used, autoreply, subject, body)| {
                    let profile = DeliveryProfile {
                        account_id: id,
                        quota_bytes: quota,
                        used_bytes: used,
                        domain_max_bytes: domain_max,
                        domain_used_bytes: domain_used,
                        autoreply: autoreply.then_some(AutoReply { subject, body }),
                    };
                    (address, profile)
                },
            )
            .collect())
    }

    /// Removes an account with its mailboxes. Message bodies stay in the object store until the
    /// collector finds them unreferenced.
    pub async fn remove_account(&self, address: &str) -> Result<(), DirectoryError> {
        let key = parse_address(address)?.lookup_key();
        let removed = sqlx::query("DELETE FROM accounts WHERE address = $1")
            .bind(&key)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(DirectoryError::not_found("account", key));
        }
        Ok(())
    }

    /// The error for an address whose domain is not a primary hosted domain: an alias name gets a
    /// hint to use the primary name.
    pub(crate) async fn unknown_domain_error(&self, name: &str) -> DirectoryError {
        match sqlx::query_scalar::<_, String>(
            "SELECT d.name FROM domain_aliases a JOIN domains d ON d.id = a.domain_id WHERE a.name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        {
            Ok(Some(primary)) => DirectoryError::Invalid(format!(
                "{name} is an alias of the domain {primary}; create the object under {primary}"
            )),
            Ok(None) => DirectoryError::UnknownDomain(name.to_string()),
            Err(e) => DirectoryError::Database(e),
        }
    }
}

fn check_quota(quota: i64) -> Result<(), DirectoryError> {
    if quota < 0 {
        return Err(DirectoryError::Invalid(
            "the quota must not be negative".to_string(),
        ));
    }
    Ok(())
}

/// The domain's "max size of accounts": the quotas of its accounts may not add up to more.
fn check_domain_quota_total(limit: i64, others: i64, quota: i64) -> Result<(), DirectoryError> {
    if limit > 0 && (quota == 0 || others.saturating_add(quota) > limit) {
        return Err(DirectoryError::Conflict(format!(
            "the domain's account quotas may add up to {limit} bytes; {others} are allocated, so this \
             account can have at most {} (and not unlimited)",
            (limit - others).max(0)
        )));
    }
    Ok(())
}
