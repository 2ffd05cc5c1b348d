//! Enqueue against a real PostgreSQL: one statement writes message, entry and recipients.
#![allow(clippy::unwrap_used)]

use mc_mailstore::blob::BlobKey;
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient, Queue};
use mc_testkit::TestDatabase;
use std::time::Duration;

fn entry(body: &[u8], recipients: &[&str]) -> NewEntry {
    NewEntry {
        body: BodyLocation::whole(BlobKey::for_content(body), body.len() as u64),
        envelope: envelope(recipients),
    }
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        id: Envelope::new_id(),
        sender: "sender@example.com".into(),
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_helo: Some("client.example".into()),
        auth_user: None,
        dsn_ret: Some("HDRS".into()),
        dsn_envid: Some("env-1".into()),
        recipients: recipients
            .iter()
            .map(|a| NewRecipient {
                address: a.to_string(),
                dsn_notify: Some("FAILURE".into()),
                dsn_orcpt: None,
            })
            .collect(),
        lifetime: Duration::from_secs(3600),
        junk: false,
    }
}

#[tokio::test]
async fn enqueue_writes_entry_and_every_recipient() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let e = entry(b"hello", &["a@example.com", "b@example.org"]);
    queue
        .reserve_blob(&e.body.blob_key, e.body.size)
        .await
        .unwrap();
    let id = queue.enqueue(&e).await.unwrap();
    let (sender, ip, ret, envid, lifetime): (String, String, String, String, f64) = sqlx::query_as(
        "SELECT sender, host(client_ip), dsn_ret, dsn_envid,
                extract(epoch FROM expires_at - received_at)::float8
         FROM queue_entries WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (sender.as_str(), ip.as_str(), ret.as_str(), envid.as_str()),
        ("sender@example.com", "192.0.2.7", "HDRS", "env-1")
    );
    assert!((lifetime - 3600.0).abs() < 5.0, "lifetime {lifetime}");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT address, state, dsn_notify FROM queue_recipients WHERE queue_id = $1 ORDER BY address",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "a@example.com".into(),
                "queued".into(),
                Some("FAILURE".into())
            ),
            (
                "b@example.org".into(),
                "queued".into(),
                Some("FAILURE".into())
            ),
        ]
    );
    let (blob, size): (String, i64) = sqlx::query_as(
        "SELECT m.blob_key, m.size_bytes FROM queue_entries q JOIN messages m ON m.id = q.message_id WHERE q.id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((blob.as_str(), size), (e.body.blob_key.as_str(), 5));
}

#[tokio::test]
async fn duplicate_recipient_fails_the_whole_entry() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let e = entry(b"x", &["a@example.com", "a@example.com"]);
    assert!(queue.enqueue(&e).await.is_err());
    let count: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM queue_entries) + (SELECT count(*) FROM messages)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(count, 0, "nothing half-written");
}

#[tokio::test]
async fn entry_without_recipients_is_refused() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    assert!(queue.enqueue(&entry(b"x", &[])).await.is_err());
}

#[tokio::test]
async fn one_body_shared_by_two_entries_keeps_one_blob_row() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    queue
        .enqueue(&entry(b"same", &["a@example.com"]))
        .await
        .unwrap();
    queue
        .enqueue(&entry(b"same", &["b@example.com"]))
        .await
        .unwrap();
    let (blobs, messages): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM messages)")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((blobs, messages), (1, 2));
}
