//! Local delivery into a mailbox: one transaction that allocates the next UID, bumps the
//! mailbox's MODSEQ, inserts the mailbox row and charges the account's quota usage, keyed by a
//! delivery key (the delivery worker uses the queue entry's id), so that a retried delivery finds
//! its earlier copy instead of making a second one (exactly-once local delivery, RELIABILITY.md
//! R5).
//!
//! Concurrent deliveries into one mailbox serialise on the mailbox row (`FOR UPDATE`), which is
//! what keeps UIDs strictly ascending without gaps from rolled-back attempts (a UID is taken only
//! in the transaction that commits it). The idempotency check runs after that lock, in a fresh
//! statement, so it sees a copy committed by a delivery it waited for.

use sqlx::PgPool;

/// The canonical name of every account's first mailbox (IMAP: case-insensitive, stored so).
pub const INBOX: &str = "INBOX";

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("account {0} does not exist")]
    NoSuchAccount(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl mc_runtime::store_metrics::StoreOutcome for DeliverError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::NoSuchAccount(_) => mc_runtime::store_metrics::Outcome::Ok,
            Self::Database(error) => error.store_outcome(),
        }
    }
}

/// What to put where.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The account's address in lookup form (as recipient resolution returns it).
    pub account: &'a str,
    /// A mailbox of the account; created (subscribed) when missing.
    pub mailbox: &'a str,
    /// The stored message (`messages.id`).
    pub message_id: i64,
    pub size_bytes: i64,
    /// Unique per (mailbox, delivery): the delivery worker uses the queue entry's id, so one
    /// message reaches one mailbox once however many of its recipients lead there.
    pub delivery_key: &'a str,
    pub flags: &'a [&'a str],
}

/// Where the message is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub mailbox_id: i64,
    pub uid: i64,
    pub modseq: i64,
    /// False when this delivery key had already been delivered (a retry): nothing was written.
    pub new: bool,
}

/// The message store's index in PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailstore {
    pub(crate) pool: PgPool,
}

impl Mailstore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Delivers once, in a transaction of its own: see the module documentation.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Placed, DeliverError> {
        mc_runtime::store_metrics::db(
            mc_runtime::store_metrics::DbOp::MailboxDelivery,
            async move {
                let mut transaction = self.pool.begin().await?;
                let placed = Self::deliver_in(&mut transaction, delivery).await?;
                transaction.commit().await?;
                Ok(placed)
            },
        )
        .await
    }

    /// Delivers once inside the caller's transaction (the delivery worker's, which holds its
    /// queue lease for as long as it lasts); the copy exists when the caller commits.
    pub async fn deliver_in(
        connection: &mut sqlx::PgConnection,
        delivery: &Delivery<'_>,
    ) -> Result<Placed, DeliverError> {
        let (mailbox_id, account_id) =
            ensure_mailbox(&mut *connection, delivery.account, delivery.mailbox).await?;
        sqlx::query("SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE")
            .bind(mailbox_id)
            .execute(&mut *connection)
            .await?;
        let earlier: Option<(i64, i64)> = sqlx::query_as(
            "SELECT uid, modseq FROM mailbox_messages WHERE mailbox_id = $1 AND delivery_key = $2",
        )
        .bind(mailbox_id)
        .bind(delivery.delivery_key)
        .fetch_optional(&mut *connection)
        .await?;
        if let Some((uid, modseq)) = earlier {
            return Ok(Placed {
                mailbox_id,
                uid,
                modseq,
                new: false,
            });
        }
        let (uid, modseq): (i64, i64) = sqlx::query_as(
            "WITH next AS (
                 UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
                  WHERE id = $1
                 RETURNING uid_next - 1 AS uid, highest_modseq AS modseq
             ), placed AS (
                 INSERT INTO mailbox_messages
                     (mailbox_id, uid, message_id, flags, modseq, size_bytes, delivery_key)
                 SELECT $1, uid, $2, $3, modseq, $4, $5 FROM next
                 RETURNING uid, modseq
             ), charged AS (
                 UPDATE accounts SET used_bytes = used_bytes + $4 WHERE id = $6
             )
             SELECT uid, modseq FROM placed",
        )
        .bind(mailbox_id)
        .bind(delivery.message_id)
        .bind(delivery.flags)
        .bind(delivery.size_bytes)
        .bind(delivery.delivery_key)
        .bind(account_id)
        .fetch_one(&mut *connection)
        .await?;
        Ok(Placed {
            mailbox_id,
            uid,
            modseq,
            new: true,
        })
    }
}

/// The ids of the account's mailbox `name` (created when missing) and of the account.
async fn ensure_mailbox(
    connection: &mut sqlx::PgConnection,
    account: &str,
    name: &str,
) -> Result<(i64, i64), DeliverError> {
    // A second look, in a new statement, sees a mailbox another delivery created after the
    // first statement's snapshot (its INSERT then did nothing and its SELECT saw nothing).
    for _ in 0..2 {
        if let Some(ids) = create_or_find_mailbox(&mut *connection, account, name).await? {
            return Ok(ids);
        }
    }
    Err(DeliverError::NoSuchAccount(account.to_string()))
}

async fn create_or_find_mailbox(
    connection: &mut sqlx::PgConnection,
    account: &str,
    name: &str,
) -> Result<Option<(i64, i64)>, DeliverError> {
    // A special mailbox (Junk, for spam) made by delivery before the first login gets its
    // RFC 6154 attribute like the ones made at login.
    let special_use = crate::mailboxes::SPECIAL_MAILBOXES
        .iter()
        .find(|(special, _)| *special == name)
        .and_then(|(_, attribute)| *attribute);
    Ok(sqlx::query_as(
        "WITH created AS (
             INSERT INTO mailboxes (account_id, name, special_use)
             SELECT id, $2, $3 FROM accounts WHERE address = $1
             ON CONFLICT (account_id, name) DO NOTHING
             RETURNING id, account_id
         )
         SELECT id, account_id FROM created
         UNION ALL
         SELECT m.id, m.account_id FROM mailboxes m JOIN accounts a ON a.id = m.account_id
          WHERE a.address = $1 AND m.name = $2
         LIMIT 1",
    )
    .bind(account)
    .bind(name)
    .bind(special_use)
    .fetch_optional(connection)
    .await?)
}

/// One copy of a batch (`Mailstore::deliver_batch_in`): into the account's INBOX, or Junk for
/// mail scored as spam.
#[derive(Debug, Clone)]
pub struct BatchCopy<'a> {
    pub account: &'a str,
    pub mailbox: &'a str,
    pub message_id: i64,
    pub size_bytes: i64,
    pub delivery_key: &'a str,
}

impl Mailstore {
    /// Delivers many copies in the caller's transaction with a handful of statements whatever
    /// their number: mailboxes are locked in id order (so concurrent batches cannot deadlock),
    /// copies already there (same mailbox and delivery key) are found and left alone, and each
    /// mailbox takes its new UIDs and MODSEQs in one step. Returns one `Placed` per input, in
    /// order; two inputs with the same account and key share one copy (`new` on the first only).
    pub async fn deliver_batch_in(
        connection: &mut sqlx::PgConnection,
        copies: &[BatchCopy<'_>],
    ) -> Result<Vec<Placed>, DeliverError> {
        use std::collections::HashMap;
        let mut mailboxes: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
        for copy in copies {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                mailboxes.entry((copy.account, copy.mailbox))
            {
                slot.insert(ensure_mailbox(&mut *connection, copy.account, copy.mailbox).await?);
            }
        }
        let mut ids: Vec<i64> = mailboxes.values().map(|(mailbox, _)| *mailbox).collect();
        ids.sort_unstable();
        ids.dedup();
        sqlx::query("SELECT id FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *connection)
            .await?;
        let keys: Vec<&str> = copies.iter().map(|c| c.delivery_key).collect();
        let mailbox_of: Vec<i64> = copies
            .iter()
            .map(|c| mailboxes[&(c.account, c.mailbox)].0)
            .collect();
        let earlier: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT mm.mailbox_id, mm.delivery_key, mm.uid, mm.modseq
               FROM mailbox_messages mm
               JOIN unnest($1::bigint[], $2::text[]) AS w(mailbox_id, delivery_key)
                 ON mm.mailbox_id = w.mailbox_id AND mm.delivery_key = w.delivery_key",
        )
        .bind(&mailbox_of)
        .bind(&keys)
        .fetch_all(&mut *connection)
        .await?;
        let mut done: HashMap<(i64, &str), Placed> = HashMap::new();
        for (mailbox_id, key, uid, modseq) in &earlier {
            if let Some(copy) = copies.iter().find(|c| c.delivery_key == key) {
                done.insert(
                    (*mailbox_id, copy.delivery_key),
                    Placed {
                        mailbox_id: *mailbox_id,
                        uid: *uid,
                        modseq: *modseq,
                        new: false,
                    },
                );
            }
        }
        // The new copies, first occurrence of each (mailbox, key), counted per mailbox.
        let mut fresh: Vec<usize> = Vec::new();
        let mut seen: std::collections::HashSet<(i64, &str)> = std::collections::HashSet::new();
        let mut per_mailbox: HashMap<i64, i64> = HashMap::new();
        for (i, copy) in copies.iter().enumerate() {
            let slot = (mailbox_of[i], copy.delivery_key);
            if done.contains_key(&slot) || !seen.insert(slot) {
                continue;
            }
            fresh.push(i);
            *per_mailbox.entry(mailbox_of[i]).or_default() += 1;
        }
        if !fresh.is_empty() {
            let (counted, counts): (Vec<i64>, Vec<i64>) =
                per_mailbox.iter().map(|(m, n)| (*m, *n)).unzip();
            let firsts: Vec<(i64, i64, i64)> = sqlx::query_as(
                "UPDATE mailboxes m
                    SET uid_next = m.uid_next + c.n, highest_modseq = m.highest_modseq + c.n
                   FROM unnest($1::bigint[], $2::bigint[]) AS c(id, n)
                  WHERE m.id = c.id
                 RETURNING m.id, m.uid_next - c.n, m.highest_modseq - c.n + 1",
            )
            .bind(&counted)
            .bind(&counts)
            .fetch_all(&mut *connection)
            .await?;
            let mut next: HashMap<i64, (i64, i64)> = firsts
                .into_iter()
                .map(|(m, uid, modseq)| (m, (uid, modseq)))
                .collect();
            let mut rows = (
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            );
            let mut charge: HashMap<i64, i64> = HashMap::new();
            for &i in &fresh {
                let copy = &copies[i];
                let mailbox_id = mailbox_of[i];
                let Some(slot) = next.get_mut(&mailbox_id) else {
                    return Err(DeliverError::Database(sqlx::Error::RowNotFound));
                };
                let (uid, modseq) = *slot;
                *slot = (uid + 1, modseq + 1);
                rows.0.push(mailbox_id);
                rows.1.push(uid);
                rows.2.push(copy.message_id);
                rows.3.push(modseq);
                rows.4.push(copy.size_bytes);
                rows.5.push(copy.delivery_key);
                *charge
                    .entry(mailboxes[&(copy.account, copy.mailbox)].1)
                    .or_default() += copy.size_bytes;
                done.insert(
                    (mailbox_id, copy.delivery_key),
                    Placed {
                        mailbox_id,
                        uid,
                        modseq,
                        new: true,
                    },
                );
            }
            sqlx::query(
                "INSERT INTO mailbox_messages
                     (mailbox_id, uid, message_id, flags, modseq, size_bytes, delivery_key)
                 SELECT mailbox_id, uid, message_id, '{}'::text[], modseq, size_bytes, delivery_key
                   FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
                     AS r(mailbox_id, uid, message_id, modseq, size_bytes, delivery_key)",
            )
            .bind(&rows.0)
            .bind(&rows.1)
            .bind(&rows.2)
            .bind(&rows.3)
            .bind(&rows.4)
            .bind(&rows.5)
            .execute(&mut *connection)
            .await?;
            let (accounts, bytes): (Vec<i64>, Vec<i64>) = charge.into_iter().unzip();
            sqlx::query(
                "UPDATE accounts a SET used_bytes = a.used_bytes + c.bytes
                   FROM unnest($1::bigint[], $2::bigint[]) AS c(id, bytes) WHERE a.id = c.id",
            )
            .bind(&accounts)
            .bind(&bytes)
            .execute(&mut *connection)
            .await?;
        }
        // In input order; a repeated (mailbox, key) reports the shared copy as not new.
        let mut reported: std::collections::HashSet<(i64, &str)> = std::collections::HashSet::new();
        copies
            .iter()
            .enumerate()
            .map(|(i, copy)| {
                let slot = (mailbox_of[i], copy.delivery_key);
                let mut placed = *done
                    .get(&slot)
                    .ok_or(DeliverError::Database(sqlx::Error::RowNotFound))?;
                if !reported.insert(slot) {
                    placed.new = false;
                }
                Ok(placed)
            })
            .collect()
    }
}
