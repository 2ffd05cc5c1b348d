//! Login: an account address (or the same local part at a domain alias) and its password.
//! Aliases and lists cannot log in. Every failure looks the same to the client; the reason is
//! returned for logs and auto-ban, never sent over the wire.

use crate::{Directory, DirectoryError, password};
use mc_types::{EmailAddress, Secret};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Success { account_id: i64, address: String },
    Failure(AuthFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No such account, or a login that is not an address.
    UnknownAccount,
    WrongPassword,
    /// The account or its domain is disabled.
    Disabled,
}

impl Directory {
    pub async fn authenticate(
        &self,
        login: &str,
        password: Secret<String>,
    ) -> Result<AuthOutcome, DirectoryError> {
        let found = match EmailAddress::parse(login.trim()) {
            Ok(address) => self.login_account(&address).await?,
            Err(_) => None,
        };
        let Some((account_id, address, hash, active)) = found else {
            // Spend the same time as a real verification: no enumeration by timing.
            password::verify(password, password::dummy_hash().await?).await;
            return Ok(AuthOutcome::Failure(AuthFailure::UnknownAccount));
        };
        if !password::verify(password, hash).await {
            return Ok(AuthOutcome::Failure(AuthFailure::WrongPassword));
        }
        if !active {
            return Ok(AuthOutcome::Failure(AuthFailure::Disabled));
        }
        sqlx::query("UPDATE accounts SET last_login_at = now() WHERE id = $1")
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(AuthOutcome::Success {
            account_id,
            address,
        })
    }

    /// A fingerprint of the account's current credentials, `None` when the account or its domain
    /// is disabled or gone. A session keeps the stamp from its login and compares it before every
    /// message, so a disabled account or a changed password ends what the session may do. The
    /// stamp is a digest of the stored hash, never the hash itself.
    pub async fn credentials_stamp(
        &self,
        account_id: i64,
    ) -> Result<Option<String>, DirectoryError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT a.password_hash FROM accounts a JOIN domains d ON d.id = a.domain_id
              WHERE a.id = $1 AND a.active AND d.active",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(hash,)| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(hash.as_bytes()))
        }))
    }

    /// `(id, address, hash, account and domain active)` of the account behind a login.
    async fn login_account(
        &self,
        login: &EmailAddress,
    ) -> Result<Option<(i64, String, String, bool)>, DirectoryError> {
        mc_runtime::store_metrics::db(mc_runtime::store_metrics::DbOp::Authenticate, async move {
            let Some(domain) = self.hosted_domain(login.domain().as_str()).await? else {
                return Ok(None);
            };
            let canonical = format!("{}@{}", login.local_part().to_lowercase(), domain.name);
            let row: Option<(i64, String, String, bool)> = sqlx::query_as(
                "SELECT id, address, password_hash, active FROM accounts WHERE address = $1",
            )
            .bind(&canonical)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|(id, address, hash, active)| (id, address, hash, active && domain.active)))
        })
        .await
    }
}
