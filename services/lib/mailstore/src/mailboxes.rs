//! An account's mailboxes as IMAP sees them (RFC 3501 section 6.3, RFC 6154 SPECIAL-USE): the
//! special mailboxes every account gets at first login, CREATE/DELETE/RENAME/SUBSCRIBE and the
//! counters STATUS reports.
//!
//! Names are stored as the client sent them (modified UTF-7), with `/` as the hierarchy
//! separator and `INBOX` in its canonical spelling. A deleted or renamed name gets a new
//! UIDVALIDITY when it is created again (from the global sequence), so a client never mixes the
//! UIDs of two different mailboxes.

use crate::{INBOX, Mailstore};

/// The hierarchy separator.
pub const DELIMITER: char = '/';

/// The mailboxes created at first login, with their RFC 6154 attribute.
pub const SPECIAL_MAILBOXES: [(&str, Option<&str>); 5] = [
    (INBOX, None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailboxInfo {
    pub id: i64,
    pub name: String,
    pub uid_validity: i64,
    pub uid_next: i64,
    pub highest_modseq: i64,
    pub special_use: Option<String>,
    pub subscribed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxCounts {
    pub messages: i64,
    pub unseen: i64,
    pub size_bytes: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("mailbox already exists")]
    Exists,
    #[error("no such mailbox")]
    NotFound,
    #[error("that mailbox cannot be changed so")]
    NotAllowed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl mc_runtime::store_metrics::StoreOutcome for MailboxError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::Database(error) => error.store_outcome(),
            _ => mc_runtime::store_metrics::Outcome::Ok,
        }
    }
}

const COLUMNS: &str = "id, name, uid_validity, uid_next, highest_modseq, special_use, subscribed";

/// The Redis key (before the cluster prefix) of the lock a POP3 session holds on an account's
/// maildrop: the access service takes it, the admin API clears it (`mailctl account unlock`).
pub fn pop3_lock_key(account_id: i64) -> String {
    format!("pop3lock:{account_id}")
}

/// The stored spelling of a client's mailbox name: INBOX in any case is INBOX.
pub fn canonical_name(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) {
        return INBOX.to_string();
    }
    if let Some((first, rest)) = name.split_once(DELIMITER)
        && first.eq_ignore_ascii_case(INBOX)
    {
        return format!("{INBOX}{DELIMITER}{rest}");
    }
    name.to_string()
}

impl Mailstore {
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Creates the special mailboxes an account lacks (idempotent, safe to race).
    pub async fn ensure_special_mailboxes(&self, account_id: i64) -> Result<(), MailboxError> {
        let names: Vec<&str> = SPECIAL_MAILBOXES.iter().map(|(name, _)| *name).collect();
        let uses: Vec<Option<&str>> = SPECIAL_MAILBOXES.iter().map(|(_, use_)| *use_).collect();
        sqlx::query(
            "INSERT INTO mailboxes (account_id, name, special_use)
             SELECT $1, name, special_use FROM unnest($2::text[], $3::text[]) AS s(name, special_use)
             ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(account_id)
        .bind(&names)
        .bind(&uses)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every mailbox of the account, by name.
    pub async fn mailboxes(&self, account_id: i64) -> Result<Vec<MailboxInfo>, MailboxError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name"
        )))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn mailbox(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<MailboxInfo>, MailboxError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(canonical_name(name))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// CREATE: the mailbox and any missing superior names (RFC 3501: a server creates them).
    pub async fn create_mailbox(&self, account_id: i64, name: &str) -> Result<(), MailboxError> {
        let name = canonical_name(name.trim_end_matches(DELIMITER));
        if name.is_empty() || name.split(DELIMITER).any(str::is_empty) {
            return Err(MailboxError::NotAllowed);
        }
        let mut transaction = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO mailboxes (account_id, name) VALUES ($1, $2)
             ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(account_id)
        .bind(&name)
        .execute(&mut *transaction)
        .await?;
        if created.rows_affected() == 0 {
            return Err(MailboxError::Exists);
        }
        let mut superior = name.as_str();
        while let Some((parent, _)) = superior.rsplit_once(DELIMITER) {
            sqlx::query(
                "INSERT INTO mailboxes (account_id, name) VALUES ($1, $2)
                 ON CONFLICT (account_id, name) DO NOTHING",
            )
            .bind(account_id)
            .bind(parent)
            .execute(&mut *transaction)
            .await?;
            superior = parent;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// DELETE: the mailbox and its messages (their quota is given back). INBOX cannot go.
    /// Inferior mailboxes stay (RFC 3501 allows refusing; keeping them is what clients expect).
    pub async fn delete_mailbox(&self, account_id: i64, name: &str) -> Result<(), MailboxError> {
        let name = canonical_name(name);
        if name == INBOX {
            return Err(MailboxError::NotAllowed);
        }
        let mut transaction = self.pool.begin().await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(account_id)
        .bind(&name)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some((mailbox_id,)) = row else {
            return Err(MailboxError::NotFound);
        };
        sqlx::query(
            "WITH gone AS (
                 DELETE FROM mailbox_messages WHERE mailbox_id = $1 RETURNING size_bytes
             )
             UPDATE accounts SET used_bytes = greatest(0, used_bytes - (SELECT coalesce(sum(size_bytes), 0) FROM gone))
              WHERE id = $2",
        )
        .bind(mailbox_id)
        .bind(account_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(mailbox_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// RENAME, with every inferior name. Renaming INBOX moves its messages into a new mailbox
    /// and leaves INBOX empty (RFC 3501 section 6.3.5).
    pub async fn rename_mailbox(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<(), MailboxError> {
        let (from, to) = (
            canonical_name(from),
            canonical_name(to.trim_end_matches(DELIMITER)),
        );
        if to == INBOX || to.is_empty() || to.split(DELIMITER).any(str::is_empty) {
            return Err(MailboxError::NotAllowed);
        }
        let mut transaction = self.pool.begin().await?;
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(&to)
                .fetch_optional(&mut *transaction)
                .await?;
        if exists.is_some() {
            return Err(MailboxError::Exists);
        }
        let source: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2 FOR UPDATE",
        )
        .bind(account_id)
        .bind(&from)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some((source_id,)) = source else {
            return Err(MailboxError::NotFound);
        };
        if from == INBOX {
            crate::messages::move_all_in(&mut transaction, account_id, source_id, &to).await?;
        } else {
            sqlx::query(
                "UPDATE mailboxes
                    SET name = $3 || substr(name, length($2) + 1),
                        uid_validity = nextval('mailbox_uid_validity_seq')
                  WHERE account_id = $1 AND (name = $2 OR left(name, length($2) + 1) = $2 || '/')",
            )
            .bind(account_id)
            .bind(&from)
            .bind(&to)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE. Subscribing to a name that does not exist is refused.
    pub async fn set_subscribed(
        &self,
        account_id: i64,
        name: &str,
        subscribed: bool,
    ) -> Result<(), MailboxError> {
        let done =
            sqlx::query("UPDATE mailboxes SET subscribed = $3 WHERE account_id = $1 AND name = $2")
                .bind(account_id)
                .bind(canonical_name(name))
                .bind(subscribed)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(MailboxError::NotFound);
        }
        Ok(())
    }

    /// The account's `(used_bytes, quota_bytes)`; a quota of 0 means none.
    pub async fn usage(&self, account_id: i64) -> Result<(i64, i64), MailboxError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT used_bytes, quota_bytes FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or(MailboxError::NotFound)
    }

    /// The counters STATUS reports.
    pub async fn counts(&self, mailbox_id: i64) -> Result<MailboxCounts, MailboxError> {
        let (messages, unseen, size_bytes): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE NOT flags @> ARRAY['\\Seen']),
                    coalesce(sum(size_bytes), 0)::bigint
               FROM mailbox_messages WHERE mailbox_id = $1",
        )
        .bind(mailbox_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(MailboxCounts {
            messages,
            unseen,
            size_bytes,
        })
    }
}
