//! Claiming and fencing against a real PostgreSQL: concurrent workers never share a recipient, a
//! lease that ran out lets another worker claim, and the worker that lost it can change nothing.
#![allow(clippy::unwrap_used)]

use mc_mailstore::blob::BlobKey;
use mc_queue::lease::{Fenced, LeaseError};
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient, Queue};
use mc_testkit::TestDatabase;
use std::collections::HashSet;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(300);

async fn queue_with(db: &TestDatabase, recipients: &[&str]) -> Queue {
    let queue = Queue::new(db.pool.clone());
    let body = format!("body for {recipients:?}");
    let entry = NewEntry {
        body: BodyLocation::whole(BlobKey::for_content(body.as_bytes()), body.len() as u64),
        envelope: Envelope {
            id: Envelope::new_id(),
            sender: "sender@example.com".into(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: Some("HDRS".into()),
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
    queue.enqueue(&entry).await.unwrap();
    queue
}

/// Makes every lease run out now (what waiting out the lease time would do).
async fn expire_leases(db: &TestDatabase) {
    sqlx::query("UPDATE queue_recipients SET next_attempt_at = now() - interval '1 second'")
        .execute(&db.pool)
        .await
        .unwrap();
}

async fn state_of(db: &TestDatabase, id: i64) -> (String, Option<String>, i32) {
    sqlx::query_as("SELECT state, last_error, attempts FROM queue_recipients WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_claim_takes_due_recipients_with_their_message_and_hides_them_from_others() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org", "b@example.org"]).await;
    let claimed = queue.claim_due(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].address, "a@example.org");
    assert_eq!(
        (claimed[0].epoch, claimed[0].attempts),
        (1, 1),
        "first claim"
    );
    assert_eq!(claimed[0].sender, "sender@example.com");
    assert_eq!(claimed[0].dsn_ret.as_deref(), Some("HDRS"));
    assert!(claimed[0].blob_key.starts_with("blobs/"));
    assert!(!claimed[0].expired);
    assert!(
        queue.claim_due(10, LEASE).await.unwrap().is_empty(),
        "leased rows are not due"
    );
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_recipient() {
    let db = TestDatabase::migrated().await;
    let addresses: Vec<String> = (0..60).map(|i| format!("r{i}@example.org")).collect();
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let queue = queue_with(&db, &refs).await;
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = queue.claim_due(7, LEASE).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.recipient_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every recipient claimed");
    assert_eq!(unique.len(), 60, "no recipient claimed twice");
}

#[tokio::test]
async fn a_worker_whose_lease_ran_out_and_was_reclaimed_changes_nothing() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    let stale = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    expire_leases(&db).await;
    let fresh = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    assert_eq!(fresh.recipient_id, stale.recipient_id);
    assert_eq!((fresh.epoch, fresh.attempts), (2, 2));

    let fenced = Fenced {
        recipient_id: stale.recipient_id,
        epoch: stale.epoch,
    };
    for outcome in [
        queue.failed(stale.lease(), "550 stale bounce").await,
        queue.delivered(stale.lease()).await,
        queue.defer(stale.lease(), "451 stale", LEASE).await,
        queue.renew(stale.lease(), LEASE).await,
    ] {
        assert!(
            matches!(outcome, Err(LeaseError::Fenced(f)) if f == fenced),
            "{outcome:?}"
        );
    }
    assert_eq!(
        state_of(&db, fresh.recipient_id).await,
        ("queued".into(), None, 2),
        "the stale worker wrote nothing"
    );
    queue.delivered(fresh.lease()).await.unwrap();
    assert_eq!(state_of(&db, fresh.recipient_id).await.0, "delivered");
    assert!(
        matches!(
            queue.delivered(fresh.lease()).await,
            Err(LeaseError::Fenced(_))
        ),
        "a finished recipient cannot be finished twice"
    );
}

#[tokio::test]
async fn a_deferred_recipient_comes_back_when_due_with_its_error() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    let claimed = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    queue
        .defer(
            claimed.lease(),
            "451 4.3.0 try later",
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(
        queue.claim_due(1, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(
        state_of(&db, claimed.recipient_id).await,
        ("queued".into(), Some("451 4.3.0 try later".into()), 1)
    );
    expire_leases(&db).await;
    let again = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    assert_eq!(
        (again.recipient_id, again.attempts),
        (claimed.recipient_id, 2)
    );
}

#[tokio::test]
async fn a_failed_recipient_is_never_claimed_again() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    let claimed = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    queue
        .failed(claimed.lease(), "550 5.1.1 no such user")
        .await
        .unwrap();
    expire_leases(&db).await;
    assert!(queue.claim_due(1, LEASE).await.unwrap().is_empty());
    assert_eq!(
        state_of(&db, claimed.recipient_id).await,
        ("failed".into(), Some("550 5.1.1 no such user".into()), 1)
    );
}

#[tokio::test]
async fn an_entry_past_its_lifetime_is_claimed_as_expired() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    sqlx::query("UPDATE queue_entries SET expires_at = now() - interval '1 minute'")
        .execute(&db.pool)
        .await
        .unwrap();
    let claimed = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    assert!(claimed.expired);
}

#[tokio::test]
async fn a_bounce_is_queued_with_the_failure_and_never_by_a_fenced_worker() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    let stale = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    expire_leases(&db).await;
    let fresh = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    let bounce = |id| NewEntry {
        body: BodyLocation::whole(BlobKey::for_content(format!("bounce {id}").as_bytes()), 8),
        envelope: Envelope {
            id,
            sender: String::new(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: None,
            dsn_envid: None,
            recipients: vec![NewRecipient {
                address: "sender@example.com".into(),
                dsn_notify: None,
                dsn_orcpt: None,
            }],
            lifetime: Duration::from_secs(3600),
            junk: false,
        },
    };
    let refused = queue
        .failed_with_bounce(
            stale.lease(),
            "550 5.1.1 stale",
            &bounce(Envelope::new_id()),
        )
        .await;
    assert!(matches!(refused, Err(LeaseError::Fenced(_))), "{refused:?}");
    let entries = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM queue_entries")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    assert_eq!(entries().await, 1, "the fenced worker queued no bounce");
    let id = Envelope::new_id();
    queue
        .failed_with_bounce(fresh.lease(), "550 5.1.1 no such user", &bounce(id))
        .await
        .unwrap();
    assert_eq!(entries().await, 2);
    assert_eq!(state_of(&db, fresh.recipient_id).await.0, "failed");
    let to: String = sqlx::query_scalar(
        "SELECT r.address FROM queue_recipients r JOIN queue_entries e ON e.id = r.queue_id
          WHERE e.id = $1 AND e.sender = ''",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(to, "sender@example.com");
}

#[tokio::test]
async fn a_fenced_transaction_opens_only_under_a_held_lease_and_blocks_reclaims() {
    let db = TestDatabase::migrated().await;
    let queue = queue_with(&db, &["a@example.org"]).await;
    let stale = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    expire_leases(&db).await;
    let fresh = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    assert!(matches!(
        queue.begin_fenced(stale.lease()).await,
        Err(LeaseError::Fenced(_))
    ));
    // Even with its lease run out, the row cannot be claimed while the transaction holds it.
    expire_leases(&db).await;
    let transaction = queue.begin_fenced(fresh.lease()).await.unwrap();
    assert!(queue.claim_due(1, LEASE).await.unwrap().is_empty());
    transaction.commit().await.unwrap();
    assert_eq!(queue.claim_due(1, LEASE).await.unwrap().len(), 1);
}
