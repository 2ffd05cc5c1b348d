//! Local delivery against a real PostgreSQL: UIDs ascend without gaps under concurrency, a
//! retried delivery (same key) finds its earlier copy, and quota usage is charged once.
#![allow(clippy::unwrap_used)]

use mc_mailstore::{DeliverError, Delivery, INBOX, Mailstore, Placed};
use mc_testkit::TestDatabase;
use std::collections::HashSet;

/// An account and a stored message; returns (account id, message id).
async fn account_and_message(db: &TestDatabase) -> (i64, i64) {
    let account: i64 = sqlx::query_scalar(
        "WITH d AS (INSERT INTO domains (name) VALUES ('example.test') RETURNING id)
         INSERT INTO accounts (domain_id, address, password_hash)
         SELECT id, 'alice@example.test', 'x' FROM d RETURNING id",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let message: i64 = sqlx::query_scalar(
        "WITH b AS (INSERT INTO blobs (blob_key, size_bytes) VALUES ('blobs/test', 100) RETURNING blob_key)
         INSERT INTO messages (blob_key, size_bytes) SELECT blob_key, 100 FROM b RETURNING id",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    (account, message)
}

fn delivery(message_id: i64, key: &str) -> Delivery<'_> {
    Delivery {
        account: "alice@example.test",
        mailbox: INBOX,
        message_id,
        size_bytes: 100,
        delivery_key: key,
        flags: &[],
    }
}

async fn used_bytes(db: &TestDatabase, account: i64) -> i64 {
    sqlx::query_scalar("SELECT used_bytes FROM accounts WHERE id = $1")
        .bind(account)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_delivery_creates_the_inbox_and_uids_ascend() {
    let db = TestDatabase::migrated().await;
    let (account, message) = account_and_message(&db).await;
    let store = Mailstore::new(db.pool.clone());
    let first = store.deliver(&delivery(message, "r1")).await.unwrap();
    let second = store.deliver(&delivery(message, "r2")).await.unwrap();
    assert_eq!((first.uid, first.modseq, first.new), (1, 2, true));
    assert_eq!((second.uid, second.modseq), (2, 3));
    assert_eq!(first.mailbox_id, second.mailbox_id);
    let (name, uid_next): (String, i64) =
        sqlx::query_as("SELECT name, uid_next FROM mailboxes WHERE account_id = $1")
            .bind(account)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), uid_next), ("INBOX", 3));
    assert_eq!(used_bytes(&db, account).await, 200);
}

#[tokio::test]
async fn a_retried_delivery_finds_its_copy_and_writes_nothing() {
    let db = TestDatabase::migrated().await;
    let (account, message) = account_and_message(&db).await;
    let store = Mailstore::new(db.pool.clone());
    let first = store.deliver(&delivery(message, "r1")).await.unwrap();
    let again = store.deliver(&delivery(message, "r1")).await.unwrap();
    assert_eq!(
        again,
        Placed {
            new: false,
            ..first
        }
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox_messages")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(used_bytes(&db, account).await, 100, "charged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_get_distinct_gapless_uids_and_one_copy_per_key() {
    let db = TestDatabase::migrated().await;
    let (account, message) = account_and_message(&db).await;
    let store = Mailstore::new(db.pool.clone());
    // 30 deliveries over 10 keys, all at once: three attempts per key race each other.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("r{}", i % 10);
                store.deliver(&delivery(message, &key)).await
            })
        })
        .collect();
    let mut placed = Vec::new();
    for task in tasks {
        placed.push(task.await.unwrap().unwrap());
    }
    let new: Vec<i64> = placed.iter().filter(|p| p.new).map(|p| p.uid).collect();
    let mut sorted = new.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=10).collect::<Vec<i64>>(),
        "one new copy per key, UIDs 1..=10"
    );
    let uids: HashSet<i64> = placed.iter().map(|p| p.uid).collect();
    assert_eq!(uids.len(), 10, "retries report the copy that exists");
    assert_eq!(used_bytes(&db, account).await, 1000);
}

#[tokio::test]
async fn delivery_to_a_missing_account_is_refused() {
    let db = TestDatabase::migrated().await;
    let (_, message) = account_and_message(&db).await;
    let store = Mailstore::new(db.pool.clone());
    let missing = Delivery {
        account: "nobody@example.test",
        ..delivery(message, "r1")
    };
    let outcome = store.deliver(&missing).await;
    assert!(
        matches!(&outcome, Err(DeliverError::NoSuchAccount(a)) if a == "nobody@example.test"),
        "{outcome:?}"
    );
}
