//! The enqueue statement: any number of messages with their envelopes and recipients, written by
//! ONE statement (one round trip, one transaction, one commit), so that a batch is queued whole
//! or not at all and the commit's cost is shared by every message in it.

use crate::{NewEntry, QueueError, size};
use std::collections::HashMap;

/// Column arrays of the statement: one element per entry, per recipient or per distinct blob.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<uuid::Uuid>,
    blob_keys: Vec<&'a str>,
    offsets: Vec<i64>,
    sizes: Vec<i64>,
    senders: Vec<&'a str>,
    client_ips: Vec<Option<ipnet::IpNet>>,
    helos: Vec<Option<&'a str>>,
    auth_users: Vec<Option<&'a str>>,
    dsn_rets: Vec<Option<&'a str>>,
    dsn_envids: Vec<Option<&'a str>>,
    lifetimes: Vec<f64>,
    junk: Vec<bool>,
    rcpt_queue_ids: Vec<uuid::Uuid>,
    rcpt_addresses: Vec<&'a str>,
    rcpt_notify: Vec<Option<&'a str>>,
    rcpt_orcpt: Vec<Option<&'a str>>,
    distinct_blobs: HashMap<&'a str, i64>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, entry: &'a NewEntry) -> Result<(), QueueError> {
        let envelope = &entry.envelope;
        if envelope.recipients.is_empty() {
            return Err(QueueError::Invalid(
                "a queue entry needs a recipient".into(),
            ));
        }
        let body = &entry.body;
        if body
            .offset
            .checked_add(body.size)
            .is_none_or(|end| end > body.blob_size)
        {
            return Err(QueueError::Invalid(
                "the message lies outside its blob".into(),
            ));
        }
        let lifetime_secs = i64::try_from(envelope.lifetime.as_secs())
            .map_err(|_| QueueError::Invalid("lifetime out of range".into()))?;
        self.ids.push(envelope.id);
        self.blob_keys.push(body.blob_key.as_str());
        self.offsets.push(size(body.offset)?);
        self.sizes.push(size(body.size)?);
        self.senders.push(&envelope.sender);
        self.client_ips
            .push(envelope.client_ip.map(ipnet::IpNet::from));
        self.helos.push(envelope.client_helo.as_deref());
        self.auth_users.push(envelope.auth_user.as_deref());
        self.dsn_rets.push(envelope.dsn_ret.as_deref());
        self.dsn_envids.push(envelope.dsn_envid.as_deref());
        self.lifetimes.push(lifetime_secs as f64);
        self.junk.push(envelope.junk);
        for recipient in &envelope.recipients {
            self.rcpt_queue_ids.push(envelope.id);
            self.rcpt_addresses.push(&recipient.address);
            self.rcpt_notify.push(recipient.dsn_notify.as_deref());
            self.rcpt_orcpt.push(recipient.dsn_orcpt.as_deref());
        }
        self.distinct_blobs
            .insert(body.blob_key.as_str(), size(body.blob_size)?);
        Ok(())
    }
}

pub(crate) async fn enqueue<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    entries: &[NewEntry],
) -> Result<(), QueueError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut columns = Columns::default();
    for entry in entries {
        columns.push(entry)?;
    }
    // Sorted, so that concurrent batches sharing blobs lock their rows in one order.
    let mut blobs: Vec<(&str, i64)> = columns.distinct_blobs.drain().collect();
    blobs.sort_unstable();
    let (blob_keys, blob_sizes): (Vec<&str>, Vec<i64>) = blobs.into_iter().unzip();
    // Message ids are drawn up front (a MATERIALIZED CTE runs once) so that each entry can be
    // joined to its own message row. Recipients keep their RCPT order (identity order).
    let inserted: i64 = sqlx::query_scalar(
        "WITH input AS MATERIALIZED (
             SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS message_id, i.*
               FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[],
                           $6::inet[], $7::text[], $8::text[], $9::text[], $10::text[],
                           $11::float8[], $18::boolean[])
                    AS i(id, blob_key, blob_offset, size_bytes, sender, client_ip, client_helo,
                         auth_user, dsn_ret, dsn_envid, lifetime_secs, junk)
         ), blob AS (
             INSERT INTO blobs (blob_key, size_bytes)
             SELECT * FROM unnest($12::text[], $13::bigint[])
             ON CONFLICT (blob_key) DO UPDATE SET last_referenced_at = now()
             RETURNING blob_key
         ), message AS (
             INSERT INTO messages (id, blob_key, blob_offset, size_bytes) OVERRIDING SYSTEM VALUE
             SELECT i.message_id, i.blob_key, i.blob_offset, i.size_bytes
               FROM input i JOIN blob b ON b.blob_key = i.blob_key
             RETURNING id
         ), entry AS (
             INSERT INTO queue_entries
                 (id, message_id, sender, client_ip, client_helo, auth_user, dsn_ret, dsn_envid,
                  expires_at, junk)
             SELECT i.id, i.message_id, i.sender, i.client_ip, i.client_helo, i.auth_user,
                    i.dsn_ret, i.dsn_envid, now() + make_interval(secs => i.lifetime_secs), i.junk
               FROM input i JOIN message m ON m.id = i.message_id
             RETURNING id
         ), recipients AS (
             INSERT INTO queue_recipients (queue_id, address, dsn_notify, dsn_orcpt)
             SELECT e.id, r.address, r.notify, r.orcpt
               FROM unnest($14::uuid[], $15::text[], $16::text[], $17::text[])
                    WITH ORDINALITY AS r(queue_id, address, notify, orcpt, n)
               JOIN entry e ON e.id = r.queue_id
              ORDER BY r.n
             RETURNING 1
         )
         SELECT count(*) FROM recipients",
    )
    .bind(&columns.ids)
    .bind(&columns.blob_keys)
    .bind(&columns.offsets)
    .bind(&columns.sizes)
    .bind(&columns.senders)
    .bind(&columns.client_ips)
    .bind(&columns.helos)
    .bind(&columns.auth_users)
    .bind(&columns.dsn_rets)
    .bind(&columns.dsn_envids)
    .bind(&columns.lifetimes)
    .bind(&blob_keys)
    .bind(&blob_sizes)
    .bind(&columns.rcpt_queue_ids)
    .bind(&columns.rcpt_addresses)
    .bind(&columns.rcpt_notify)
    .bind(&columns.rcpt_orcpt)
    .bind(&columns.junk)
    .fetch_one(executor)
    .await?;
    if inserted as usize != columns.rcpt_addresses.len() {
        // Cannot happen without a schema change; the statement is atomic either way.
        return Err(QueueError::Invalid(format!(
            "queued {inserted} of {} recipients",
            columns.rcpt_addresses.len()
        )));
    }
    Ok(())
}
