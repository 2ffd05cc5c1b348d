//! Group commit against the real PostgreSQL and the real Garage started by `ops/test`: bodies
//! accepted together share one object and one commit, every message reads back from its range,
//! and one bad entry does not fail its neighbours.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use mc_mailstore::blob::{BlobKey, BlobStore, S3BlobConfig, S3BlobStore, S3Timeouts};
use mc_queue::intake::{Body, Intake, IntakeError, IntakeLimits, OnCommitted};
use mc_queue::{BodyLocation, Envelope, NewRecipient, Queue};
use mc_testkit::{S3Settings, TestDatabase};
use mc_types::Secret;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn s3_store(settings: &S3Settings) -> Arc<dyn BlobStore> {
    let mut config = S3BlobConfig::new(
        Some(settings.endpoint.clone()),
        &settings.region,
        &settings.bucket,
        &settings.access_key_id,
        Secret::new(settings.secret_access_key.clone()),
    );
    config.prefix = settings.prefix.clone();
    config.timeouts = S3Timeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(3),
        max_attempts: 1,
        ..S3Timeouts::default()
    };
    Arc::new(S3BlobStore::new(config).unwrap())
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        id: Envelope::new_id(),
        sender: "sender@example.com".into(),
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
    }
}

fn inline(text: &str) -> Body {
    Body::Inline {
        bytes: Bytes::copy_from_slice(text.as_bytes()),
        sha256: Sha256::digest(text.as_bytes()).into(),
    }
}

struct Setup {
    db: TestDatabase,
    blobs: Arc<dyn BlobStore>,
    intake: Intake,
    batches: Arc<Mutex<Vec<Vec<Uuid>>>>,
}

async fn setup(limits: IntakeLimits) -> Setup {
    let db = TestDatabase::migrated().await;
    let blobs = s3_store(&S3Settings::from_env("intake"));
    let batches = Arc::new(Mutex::new(Vec::new()));
    let seen = batches.clone();
    let on_committed: OnCommitted = Arc::new(move |ids: &[Uuid]| {
        seen.lock().unwrap().push(ids.to_vec());
    });
    let intake = Intake::start(
        Queue::new(db.pool.clone()),
        blobs.clone(),
        limits,
        on_committed,
    );
    Setup {
        db,
        blobs,
        intake,
        batches,
    }
}

/// The stored bytes of queued message `id`, read back through its blob range.
async fn stored_body(setup: &Setup, id: Uuid) -> (String, i64, Vec<u8>) {
    let (key, offset, size): (String, i64, i64) = sqlx::query_as(
        "SELECT m.blob_key, m.blob_offset, m.size_bytes
           FROM queue_entries e JOIN messages m ON m.id = e.message_id WHERE e.id = $1",
    )
    .bind(id)
    .fetch_one(&setup.db.pool)
    .await
    .unwrap();
    let range = offset as u64..(offset + size) as u64;
    let bytes = setup
        .blobs
        .get_range(&BlobKey::parse(&key).unwrap(), range)
        .await
        .unwrap();
    (key, offset, bytes.to_vec())
}

// The test runtime is single-threaded: every commit below is sent before the intake's task first
// runs, so they all reach it together and form one batch.
#[tokio::test]
async fn messages_arriving_together_share_one_blob_and_read_back_from_their_ranges() {
    let setup = setup(IntakeLimits::default()).await;
    let bodies: Vec<String> = (0..20)
        .map(|i| format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(i * 7)))
        .collect();
    let commits = bodies.iter().enumerate().map(|(i, body)| {
        let rcpt = format!("r{i}@example.com");
        setup.intake.commit(envelope(&[&rcpt]), inline(body))
    });
    let ids: Vec<Uuid> = futures_join_all(commits).await;

    let mut keys = std::collections::HashSet::new();
    for (id, body) in ids.iter().zip(&bodies) {
        let (key, _, stored) = stored_body(&setup, *id).await;
        assert_eq!(stored, body.as_bytes(), "message {id} reads back intact");
        keys.insert(key);
    }
    assert_eq!(keys.len(), 1, "one packed object for the batch");
    let batches = setup.batches.lock().unwrap().clone();
    assert_eq!(batches, vec![ids.clone()], "one commit, reported once");
    let (blobs, pack_size): (i64, i64) =
        sqlx::query_as("SELECT count(*), max(size_bytes) FROM blobs")
            .fetch_one(&setup.db.pool)
            .await
            .unwrap();
    let total: usize = bodies.iter().map(String::len).sum();
    assert_eq!((blobs, pack_size), (1, total as i64));
}

#[tokio::test]
async fn a_lone_message_is_stored_alone_under_its_own_digest() {
    let setup = setup(IntakeLimits::default()).await;
    let body = "Subject: alone\r\n\r\nhello\r\n";
    let id = setup
        .intake
        .commit(envelope(&["a@example.com"]), inline(body))
        .await
        .unwrap();
    let (key, offset, stored) = stored_body(&setup, id).await;
    assert_eq!(key, BlobKey::for_content(body.as_bytes()).as_str());
    assert_eq!((offset, stored.as_slice()), (0, body.as_bytes()));
}

#[tokio::test]
async fn batch_limit_splits_arrivals_into_several_commits() {
    let limits = IntakeLimits {
        max_batch_messages: 4,
        concurrent_flushes: 1,
        ..IntakeLimits::default()
    };
    let setup = setup(limits).await;
    let commits = (0..10).map(|i| {
        let rcpt = format!("r{i}@example.com");
        setup
            .intake
            .commit(envelope(&[&rcpt]), inline(&format!("body {i}\r\n")))
    });
    let ids = futures_join_all(commits).await;
    let batches = setup.batches.lock().unwrap().clone();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(
        batches.concat(),
        ids,
        "every message committed once, in arrival order"
    );
}

#[tokio::test]
async fn a_stored_body_joins_the_batch_without_being_packed() {
    let setup = setup(IntakeLimits::default()).await;
    let queue = Queue::new(setup.db.pool.clone());
    let large = "L".repeat(10_000);
    let key = BlobKey::for_content(large.as_bytes());
    queue.reserve_blob(&key, large.len() as u64).await.unwrap();
    setup
        .blobs
        .put(&key, Bytes::from(large.clone()))
        .await
        .unwrap();
    let stored = Body::Stored(BodyLocation::whole(key.clone(), large.len() as u64));
    let (a, b, c) = tokio::join!(
        setup
            .intake
            .commit(envelope(&["a@example.com"]), inline("small a\r\n")),
        setup.intake.commit(envelope(&["b@example.com"]), stored),
        setup
            .intake
            .commit(envelope(&["c@example.com"]), inline("small c\r\n")),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let (key_a, _, body_a) = stored_body(&setup, a).await;
    let (key_b, offset_b, body_b) = stored_body(&setup, b).await;
    let (key_c, offset_c, body_c) = stored_body(&setup, c).await;
    assert_eq!(body_a, b"small a\r\n");
    assert_eq!((key_b.as_str(), offset_b), (key.as_str(), 0));
    assert_eq!(body_b, large.as_bytes());
    assert_eq!(body_c, b"small c\r\n");
    assert_eq!(key_a, key_c, "the two small bodies share the pack");
    assert_eq!(offset_c, "small a\r\n".len() as i64);
}

#[tokio::test]
async fn one_bad_entry_is_refused_alone_and_its_neighbours_are_queued() {
    let setup = setup(IntakeLimits::default()).await;
    let (good, bad, other) = tokio::join!(
        setup
            .intake
            .commit(envelope(&["a@example.com"]), inline("good\r\n")),
        // The same recipient twice breaks the queue's uniqueness rule.
        setup.intake.commit(
            envelope(&["x@example.com", "x@example.com"]),
            inline("bad\r\n")
        ),
        setup
            .intake
            .commit(envelope(&["b@example.com"]), inline("other\r\n")),
    );
    assert!(matches!(bad, Err(IntakeError::Queue(_))), "{bad:?}");
    let (good, other) = (good.unwrap(), other.unwrap());
    assert_eq!(stored_body(&setup, good).await.2, b"good\r\n");
    assert_eq!(stored_body(&setup, other).await.2, b"other\r\n");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_entries")
        .fetch_one(&setup.db.pool)
        .await
        .unwrap();
    assert_eq!(entries, 2);
}

#[tokio::test]
async fn an_unreachable_object_store_fails_the_batch_and_queues_nothing() {
    let db = TestDatabase::migrated().await;
    let mut settings = S3Settings::from_env("intake-down");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    settings.endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let intake = Intake::start(
        Queue::new(db.pool.clone()),
        s3_store(&settings),
        IntakeLimits::default(),
        Arc::new(|_: &[Uuid]| {}),
    );
    let (a, b) = tokio::join!(
        intake.commit(envelope(&["a@example.com"]), inline("a\r\n")),
        intake.commit(envelope(&["b@example.com"]), inline("b\r\n")),
    );
    assert!(matches!(a, Err(IntakeError::Blob(_))), "{a:?}");
    assert!(matches!(b, Err(IntakeError::Blob(_))), "{b:?}");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM queue_entries) + (SELECT count(*) FROM messages)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0, "nothing queued");
}

/// Awaits every commit, polled together (so they are all sent before any is answered).
async fn futures_join_all<F>(commits: impl Iterator<Item = F>) -> Vec<Uuid>
where
    F: std::future::Future<Output = Result<Uuid, IntakeError>>,
{
    futures::future::join_all(commits)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}
