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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_continues_the_uid_sequence_skips_earlier_copies_and_shares_repeated_keys() {
    use mc_mailstore::BatchCopy;
    let db = TestDatabase::migrated().await;
    let (alice, message) = account_and_message(&db).await;
    let bob: i64 = sqlx::query_scalar(
        "INSERT INTO accounts (domain_id, address, password_hash)
         SELECT id, 'bob@example.test', 'x' FROM domains WHERE name = 'example.test' RETURNING id",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let store = Mailstore::new(db.pool.clone());
    // One earlier copy for alice, delivered the single way.
    let earlier = store.deliver(&delivery(message, "k1")).await.unwrap();
    let copy = |account, key| BatchCopy {
        mailbox: mc_mailstore::INBOX,
        account,
        message_id: message,
        size_bytes: 100,
        delivery_key: key,
    };
    let copies = [
        copy("alice@example.test", "k1"), // already there
        copy("alice@example.test", "k2"),
        copy("bob@example.test", "k2"),
        copy("alice@example.test", "k2"), // same mailbox and key: the same copy
        copy("alice@example.test", "k3"),
    ];
    let mut transaction = db.pool.begin().await.unwrap();
    let placed = Mailstore::deliver_batch_in(&mut transaction, &copies)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    let summary: Vec<(i64, bool)> = placed.iter().map(|p| (p.uid, p.new)).collect();
    assert_eq!(
        summary,
        [(1, false), (2, true), (1, true), (2, false), (3, true)]
    );
    assert_eq!(
        placed[0],
        Placed {
            new: false,
            ..earlier
        }
    );
    assert_eq!(placed[1].mailbox_id, placed[4].mailbox_id);
    assert_ne!(placed[1].mailbox_id, placed[2].mailbox_id);
    // MODSEQs continue per mailbox and every new copy has its own.
    assert!(placed[1].modseq > earlier.modseq && placed[4].modseq > placed[1].modseq);
    assert_eq!(used_bytes(&db, alice).await, 300);
    assert_eq!(used_bytes(&db, bob).await, 100);
    // The same batch again (a retry) writes nothing.
    let mut transaction = db.pool.begin().await.unwrap();
    let again = Mailstore::deliver_batch_in(&mut transaction, &copies)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert!(again.iter().all(|p| !p.new));
    assert_eq!(
        again.iter().map(|p| p.uid).collect::<Vec<_>>(),
        [1, 2, 1, 2, 3]
    );
    assert_eq!(used_bytes(&db, alice).await, 300);
    // Concurrent batches and single deliveries into the same mailboxes: gapless, no deadlock.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let pool = db.pool.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..5 {
                let keys: Vec<String> = (0..4).map(|i| format!("c{t}-{round}-{i}")).collect();
                let batch: Vec<BatchCopy> = keys
                    .iter()
                    .flat_map(|key| {
                        // Alternate the order of the accounts between tasks.
                        let (first, second) = if t % 2 == 0 {
                            ("alice@example.test", "bob@example.test")
                        } else {
                            ("bob@example.test", "alice@example.test")
                        };
                        [first, second].map(|account| BatchCopy {
                            mailbox: mc_mailstore::INBOX,
                            account,
                            message_id: message,
                            size_bytes: 1,
                            delivery_key: key,
                        })
                    })
                    .collect();
                let mut transaction = pool.begin().await.unwrap();
                Mailstore::deliver_batch_in(&mut transaction, &batch)
                    .await
                    .unwrap();
                transaction.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for account in [alice, bob] {
        let uids: Vec<i64> = sqlx::query_scalar(
            "SELECT mm.uid FROM mailbox_messages mm JOIN mailboxes m ON m.id = mm.mailbox_id
              WHERE m.account_id = $1 ORDER BY mm.uid",
        )
        .bind(account)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let expected = if account == alice { 3 + 160 } else { 1 + 160 };
        assert_eq!(uids, (1..=expected).collect::<Vec<i64>>());
    }
}
