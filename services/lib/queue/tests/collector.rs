//! Body garbage collection against the real PostgreSQL and Garage: only what nothing references
//! and has been unreferenced for longer than the grace period goes, row and object together.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use mc_mailstore::blob::{BlobKey, BlobStore, S3BlobConfig, S3BlobStore};
use mc_queue::collector::Collected;
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient, Queue};
use mc_testkit::{S3Settings, TestDatabase};
use mc_types::Secret;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(3600);

fn s3_store() -> S3BlobStore {
    let settings = S3Settings::from_env("collector");
    let mut config = S3BlobConfig::new(
        Some(settings.endpoint.clone()),
        &settings.region,
        &settings.bucket,
        &settings.access_key_id,
        Secret::new(settings.secret_access_key.clone()),
    );
    config.prefix = settings.prefix.clone();
    S3BlobStore::new(config).unwrap()
}

/// Stores `content` with its row, last referenced `age_secs` ago.
async fn stored_blob(
    db: &TestDatabase,
    store: &S3BlobStore,
    content: &str,
    age_secs: i64,
) -> BlobKey {
    let key = BlobKey::for_content(content.as_bytes());
    store
        .put(&key, Bytes::from(content.to_string()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO blobs (blob_key, size_bytes, last_referenced_at)
         VALUES ($1, $2, now() - make_interval(secs => $3))",
    )
    .bind(key.as_str())
    .bind(content.len() as i64)
    .bind(age_secs as f64)
    .execute(&db.pool)
    .await
    .unwrap();
    key
}

async fn exists(store: &S3BlobStore, db: &TestDatabase, key: &BlobKey) -> (bool, bool) {
    let object = store.head(key).await.unwrap().is_some();
    let row: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM blobs WHERE blob_key = $1)")
        .bind(key.as_str())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    (object, row)
}

#[tokio::test]
async fn only_old_unreferenced_messages_and_bodies_are_collected() {
    let db = TestDatabase::migrated().await;
    let store = s3_store();
    let queue = Queue::new(db.pool.clone());

    // Queued: referenced by its entry, however old.
    let queued = stored_blob(&db, &store, "queued body", 7200).await;
    queue
        .enqueue(&NewEntry {
            body: BodyLocation::whole(queued.clone(), 11),
            envelope: Envelope {
                id: Envelope::new_id(),
                sender: String::new(),
                client_ip: None,
                client_helo: None,
                auth_user: None,
                dsn_ret: None,
                dsn_envid: None,
                recipients: vec![NewRecipient {
                    address: "a@example.org".into(),
                    dsn_notify: None,
                    dsn_orcpt: None,
                }],
                lifetime: Duration::from_secs(3600),
                junk: false,
            },
        })
        .await
        .unwrap();
    sqlx::query("UPDATE blobs SET last_referenced_at = now() - interval '2 hours'")
        .execute(&db.pool)
        .await
        .unwrap();
    // Unreferenced for two hours: goes.
    let old = stored_blob(&db, &store, "old orphan", 7200).await;
    // Unreferenced, but reserved a minute ago (an upload in progress): stays.
    let fresh = stored_blob(&db, &store, "fresh orphan", 60).await;
    // A message whose entry is gone and that no mailbox holds: goes, and its body with it.
    let done = stored_blob(&db, &store, "finished body", 7200).await;
    sqlx::query(
        "INSERT INTO messages (blob_key, size_bytes, created_at)
         VALUES ($1, 13, now() - interval '2 hours')",
    )
    .bind(done.as_str())
    .execute(&db.pool)
    .await
    .unwrap();

    let collected = queue.collect_garbage(&store, GRACE, 100).await.unwrap();
    assert_eq!(
        collected,
        Collected {
            messages: 1,
            blobs: 2
        }
    );
    assert_eq!(exists(&store, &db, &queued).await, (true, true));
    assert_eq!(exists(&store, &db, &fresh).await, (true, true));
    assert_eq!(exists(&store, &db, &old).await, (false, false));
    assert_eq!(exists(&store, &db, &done).await, (false, false));
    let again = queue.collect_garbage(&store, GRACE, 100).await.unwrap();
    assert_eq!(again, Collected::default(), "nothing left to collect");
}

#[tokio::test]
async fn finished_entries_are_removed_and_waiting_ones_kept() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let entry = |recipients: &[&str]| NewEntry {
        body: BodyLocation::whole(BlobKey::for_content(b"x"), 1),
        envelope: Envelope {
            id: Envelope::new_id(),
            sender: String::new(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: None,
            dsn_envid: None,
            recipients: recipients
                .iter()
                .map(|a| NewRecipient {
                    address: a.to_string(),
                    dsn_notify: None,
                    dsn_orcpt: None,
                })
                .collect(),
            lifetime: Duration::from_secs(3600),
            junk: false,
        },
    };
    let done = entry(&["a@example.org", "b@example.org"]);
    let half = entry(&["c@example.org", "d@example.org"]);
    queue.enqueue(&done).await.unwrap();
    queue.enqueue(&half).await.unwrap();
    for claimed in queue.claim_due(10, GRACE).await.unwrap() {
        match claimed.address.as_str() {
            "a@example.org" | "c@example.org" => queue.delivered(claimed.lease()).await.unwrap(),
            "b@example.org" => queue.failed(claimed.lease(), "550").await.unwrap(),
            _ => queue
                .defer(claimed.lease(), "451", Duration::from_secs(60))
                .await
                .unwrap(),
        }
    }
    assert_eq!(queue.remove_finished(100).await.unwrap(), 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT id::text FROM queue_entries")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![half.envelope.id.to_string()]);
    let recipients: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_recipients")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        recipients, 2,
        "the removed entry's recipient rows went with it"
    );
}
