//! Queue administration against a real PostgreSQL (and Garage for bodies): listings and their
//! filters, retries that leave recipients in flight to their worker, removals that fence the
//! worker and leave the body to the collector, purges by filter, and the counters.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use mc_mailstore::blob::{BlobKey, BlobStore, S3BlobConfig, S3BlobStore};
use mc_queue::admin::{
    AdminError, Filter, ListRequest, RecipientState, Removed, Retried, StateCounts,
};
use mc_queue::collector::Collected;
use mc_queue::lease::{Claimed, LeaseError};
use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient, Queue, QueueError};
use mc_testkit::{S3Settings, TestDatabase};
use mc_types::Secret;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(300);

fn entry(sender: &str, recipients: &[&str], body: &str) -> NewEntry {
    NewEntry {
        body: BodyLocation::whole(BlobKey::for_content(body.as_bytes()), body.len() as u64),
        envelope: Envelope {
            id: Envelope::new_id(),
            sender: sender.into(),
            client_ip: Some("192.0.2.9".parse().unwrap()),
            client_helo: Some("client.example".into()),
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
    }
}

async fn enqueue(queue: &Queue, sender: &str, recipients: &[&str]) -> Uuid {
    let body = format!("body {}", Uuid::new_v4());
    queue
        .enqueue(&entry(sender, recipients, &body))
        .await
        .unwrap()
}

/// Claims every due recipient; returns them by address.
async fn claim_all(queue: &Queue) -> Vec<Claimed> {
    queue.claim_due(1000, LEASE).await.unwrap()
}

fn claimed<'a>(all: &'a [Claimed], address: &str) -> &'a Claimed {
    all.iter().find(|c| c.address == address).unwrap()
}

async fn ids(queue: &Queue, request: ListRequest) -> Vec<Uuid> {
    let listed = queue.list(&request).await.unwrap();
    listed.iter().map(|s| s.id).collect()
}

fn by(sender: Option<&str>, domain: Option<&str>) -> Filter {
    Filter {
        sender: sender.map(str::to_string),
        domain: domain.map(str::to_string),
    }
}

async fn next_attempt(db: &TestDatabase, address: &str) -> OffsetDateTime {
    sqlx::query_scalar("SELECT next_attempt_at FROM queue_recipients WHERE address = $1")
        .bind(address)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn count(db: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn listings_show_waiting_entries_in_order_with_counts_and_filters() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let a = enqueue(
        &queue,
        "Alice@Example.com",
        &["x@one.test", "y@Two.test", "z@one.test"],
    )
    .await;
    let b = enqueue(&queue, "", &["w@two.test"]).await;
    let c = enqueue(&queue, "bob@example.com", &["v@one.test"]).await;
    let all = claim_all(&queue).await;
    queue
        .defer(
            claimed(&all, "x@one.test").lease(),
            "451 4.7.1 try later",
            LEASE,
        )
        .await
        .unwrap();
    queue
        .delivered(claimed(&all, "y@Two.test").lease())
        .await
        .unwrap();
    // z@one.test stays in flight.
    queue
        .defer(claimed(&all, "w@two.test").lease(), "421 busy", LEASE)
        .await
        .unwrap();
    queue
        .delivered(claimed(&all, "v@one.test").lease())
        .await
        .unwrap();

    assert_eq!(
        ids(&queue, ListRequest::default()).await,
        vec![b, a],
        "waiting entries, newest first"
    );
    let oldest_first = ListRequest {
        oldest_first: true,
        ..Default::default()
    };
    assert_eq!(ids(&queue, oldest_first).await, vec![a, b]);
    let every = ListRequest {
        state: None,
        ..Default::default()
    };
    assert_eq!(ids(&queue, every).await, vec![c, b, a], "finished ones too");
    let delivered = ListRequest {
        state: Some(RecipientState::Delivered),
        ..Default::default()
    };
    assert_eq!(ids(&queue, delivered).await, vec![c, a]);

    let summary = queue.list(&ListRequest::default()).await.unwrap().remove(1);
    assert_eq!(summary.id, a);
    assert_eq!(summary.sender, "Alice@Example.com");
    assert_eq!(
        summary.recipients,
        StateCounts {
            queued: 2,
            delivered: 1,
            failed: 0,
            held: 0
        }
    );
    assert_eq!((summary.in_flight, summary.attempts), (1, 1));
    assert_eq!(summary.last_error.as_deref(), Some("451 4.7.1 try later"));
    assert!(summary.size_bytes > 0);
    assert!(summary.next_attempt_at.unwrap() > OffsetDateTime::now_utc());
    assert!(summary.expires_at > summary.received_at);

    let filtered = |sender, domain| ListRequest {
        filter: by(sender, domain),
        ..Default::default()
    };
    assert_eq!(
        ids(&queue, filtered(Some("alice@EXAMPLE"), None)).await,
        vec![a]
    );
    assert_eq!(
        ids(&queue, filtered(Some("<>"), None)).await,
        vec![b],
        "<> is the null sender"
    );
    assert_eq!(ids(&queue, filtered(None, Some("one.TEST"))).await, vec![a]);
    assert_eq!(
        ids(&queue, filtered(None, Some("@two.test"))).await,
        vec![b],
        "a's recipient in two.test is delivered, so a is not waiting for two.test"
    );
    assert!(
        ids(&queue, filtered(None, Some("ne.test")))
            .await
            .is_empty()
    );
    assert!(
        ids(&queue, filtered(Some("example.com"), Some("two.test")))
            .await
            .is_empty()
    );
    let one = ListRequest {
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(&queue, one).await, vec![b]);
    for limit in [0, 10_001] {
        let refused = queue
            .list(&ListRequest {
                limit: Some(limit),
                ..Default::default()
            })
            .await;
        assert!(matches!(refused, Err(QueueError::Invalid(_))), "{limit}");
    }
}

#[tokio::test]
async fn show_returns_the_entry_with_every_recipient_and_which_are_in_flight() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let id = enqueue(&queue, "alice@example.com", &["a@one.test", "b@one.test"]).await;
    let all = queue.claim_due(1, LEASE).await.unwrap();
    assert_eq!(all[0].address, "a@one.test");

    let detail = queue.show(id).await.unwrap().unwrap();
    assert_eq!(detail.id, id);
    assert_eq!(detail.sender, "alice@example.com");
    assert_eq!(detail.client_ip, Some("192.0.2.9".parse().unwrap()));
    assert_eq!(detail.client_helo.as_deref(), Some("client.example"));
    let states: Vec<_> = detail
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.state, r.attempts, r.in_flight))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a@one.test", RecipientState::Queued, 1, true),
            ("b@one.test", RecipientState::Queued, 0, false),
        ]
    );
    assert!(detail.recipients[0].last_attempt_at.is_some());
    assert!(detail.recipients[1].last_attempt_at.is_none());
    assert_eq!(queue.show(Uuid::now_v7()).await.unwrap(), None);
}

#[tokio::test]
async fn retry_makes_a_deferred_recipient_due_now_and_leaves_a_claimed_one_alone() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let id = enqueue(&queue, "alice@example.com", &["deferred@one.test"]).await;
    let deferred = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    queue
        .defer(deferred.lease(), "451 later", Duration::from_secs(3600))
        .await
        .unwrap();
    let other = enqueue(&queue, "alice@example.com", &["leased@one.test"]).await;
    let leased = queue.claim_due(1, LEASE).await.unwrap().remove(0);
    assert_eq!(leased.address, "leased@one.test");
    let leased_due = next_attempt(&db, "leased@one.test").await;

    assert_eq!(
        queue.retry(Some(other)).await.unwrap(),
        Retried {
            rescheduled: 0,
            already_due: 0,
            in_flight: 1
        }
    );
    assert_eq!(
        queue.retry(Some(id)).await.unwrap(),
        Retried {
            rescheduled: 1,
            already_due: 0,
            in_flight: 0
        }
    );
    assert_eq!(
        next_attempt(&db, "leased@one.test").await,
        leased_due,
        "the recipient in flight keeps its lease"
    );
    let again = queue.claim_due(10, LEASE).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "only the deferred recipient is due: {again:?}"
    );
    assert_eq!(
        (again[0].address.as_str(), again[0].attempts, again[0].epoch),
        ("deferred@one.test", 2, deferred.epoch + 1),
        "the retry changed neither attempts nor epoch"
    );
    // The worker in flight still holds its lease and records its outcome.
    queue.delivered(leased.lease()).await.unwrap();

    queue
        .defer(again[0].lease(), "451 later", Duration::from_secs(3600))
        .await
        .unwrap();
    let third = enqueue(&queue, "bob@example.com", &["fresh@two.test"]).await;
    assert_eq!(
        queue.retry(None).await.unwrap(),
        Retried {
            rescheduled: 1,
            already_due: 1,
            in_flight: 0
        },
        "all: the deferred one is made due, the fresh one was due already"
    );
    assert_eq!(queue.claim_due(10, LEASE).await.unwrap().len(), 2);
    assert!(queue.show(third).await.unwrap().is_some());
    let unknown = Uuid::now_v7();
    assert!(matches!(
        queue.retry(Some(unknown)).await,
        Err(AdminError::NotFound(id)) if id == unknown
    ));
}

#[tokio::test]
async fn a_removed_entry_fences_its_worker_which_then_queues_no_bounce() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let id = enqueue(&queue, "alice@example.com", &["a@one.test", "b@one.test"]).await;
    let kept = enqueue(&queue, "alice@example.com", &["c@one.test"]).await;
    let all = claim_all(&queue).await;
    queue
        .delivered(claimed(&all, "b@one.test").lease())
        .await
        .unwrap();

    assert_eq!(
        queue.remove(id).await.unwrap(),
        Removed {
            entries: 1,
            recipients: 2,
            undelivered: 1
        }
    );
    let lease = claimed(&all, "a@one.test").lease();
    let outcome = queue.delivered(lease).await;
    assert!(matches!(outcome, Err(LeaseError::Fenced(_))), "{outcome:?}");
    let bounce = entry("", &["alice@example.com"], "bounce body");
    let outcome = queue
        .failed_with_bounce(lease, "550 5.1.1 gone", &bounce)
        .await;
    assert!(matches!(outcome, Err(LeaseError::Fenced(_))), "{outcome:?}");
    assert_eq!(count(&db, "queue_entries").await, 1, "no bounce was queued");
    assert_eq!(queue.show(id).await.unwrap(), None);
    assert!(queue.show(kept).await.unwrap().is_some());
    assert!(matches!(
        queue.remove(id).await,
        Err(AdminError::NotFound(gone)) if gone == id
    ));
}

#[tokio::test]
async fn a_removal_waits_for_a_mailbox_copy_holding_the_recipient_and_then_goes_ahead() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let id = enqueue(&queue, "alice@example.com", &["a@one.test"]).await;
    let lease = queue.claim_due(1, LEASE).await.unwrap().remove(0).lease();
    let copy = queue.begin_fenced(lease).await.unwrap();
    let removal = tokio::spawn({
        let queue = queue.clone();
        async move { queue.remove(id).await }
    });
    // Waits until the removal is blocked on the copy's row lock (what a sleep would guess).
    let started = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never blocked");
        tokio::task::yield_now().await;
    }
    assert!(!removal.is_finished());
    copy.commit().await.unwrap();
    assert_eq!(
        removal.await.unwrap().unwrap(),
        Removed {
            entries: 1,
            recipients: 1,
            undelivered: 1
        }
    );
    assert!(matches!(
        queue.delivered(lease).await,
        Err(LeaseError::Fenced(_))
    ));
}

fn s3_store() -> S3BlobStore {
    let settings = S3Settings::from_env("queue-admin");
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

#[tokio::test]
async fn a_removed_entrys_message_and_body_are_left_to_the_collector_which_takes_them() {
    let db = TestDatabase::migrated().await;
    let store = s3_store();
    let queue = Queue::new(db.pool.clone());
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for content in ["removed body", "kept body"] {
        let key = BlobKey::for_content(content.as_bytes());
        queue
            .reserve_blob(&key, content.len() as u64)
            .await
            .unwrap();
        store
            .put(&key, Bytes::from(content.to_string()))
            .await
            .unwrap();
        let mut new = entry("alice@example.com", &["a@one.test"], content);
        new.body = BodyLocation::whole(key.clone(), content.len() as u64);
        ids.push(queue.enqueue(&new).await.unwrap());
        keys.push(key);
    }
    queue.remove(ids[0]).await.unwrap();
    assert_eq!(
        (count(&db, "messages").await, count(&db, "blobs").await),
        (2, 2),
        "a removal deletes no message and no body itself"
    );
    assert!(store.head(&keys[0]).await.unwrap().is_some());

    // Once the grace period has passed (here: moved back past it), the collector takes them.
    sqlx::query("UPDATE messages SET created_at = now() - interval '2 hours'")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE blobs SET last_referenced_at = now() - interval '2 hours'")
        .execute(&db.pool)
        .await
        .unwrap();
    let grace = Duration::from_secs(3600);
    assert_eq!(
        queue.collect_garbage(&store, grace, 100).await.unwrap(),
        Collected {
            messages: 1,
            blobs: 1
        }
    );
    assert!(store.head(&keys[0]).await.unwrap().is_none());
    assert!(
        store.head(&keys[1]).await.unwrap().is_some(),
        "the waiting entry keeps its body"
    );
    assert!(queue.show(ids[1]).await.unwrap().is_some());
}

#[tokio::test]
async fn purge_removes_waiting_entries_matching_the_filter_and_nothing_else() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let finished = enqueue(&queue, "alice@example.com", &["done@two.test"]).await;
    let claimed = claim_all(&queue).await;
    queue.delivered(claimed[0].lease()).await.unwrap();
    let alice_one = enqueue(&queue, "alice@example.com", &["a@one.test"]).await;
    let bob_two = enqueue(&queue, "bob@example.com", &["b@two.test", "c@three.test"]).await;
    let alice_two = enqueue(&queue, "alice@example.com", &["d@TWO.test"]).await;

    let removed = queue
        .purge(&by(Some("alice"), Some("two.test")))
        .await
        .unwrap();
    assert_eq!(
        removed,
        Removed {
            entries: 1,
            recipients: 1,
            undelivered: 1
        }
    );
    assert!(queue.show(alice_two).await.unwrap().is_none());
    assert!(
        queue.show(finished).await.unwrap().is_some(),
        "finished entries are housekeeping's"
    );
    assert_eq!(
        queue.purge(&by(None, Some("two.test"))).await.unwrap(),
        Removed {
            entries: 1,
            recipients: 2,
            undelivered: 2
        }
    );
    assert!(queue.show(bob_two).await.unwrap().is_none());
    assert!(queue.show(alice_one).await.unwrap().is_some());

    // More than one chunk, with an empty filter: everything that waits.
    let many: Vec<NewEntry> = (0..1203)
        .map(|i| entry("bulk@example.com", &["x@one.test"], &format!("bulk {i}")))
        .collect();
    queue.enqueue_batch(&many).await.unwrap();
    assert_eq!(
        queue.purge(&Filter::default()).await.unwrap(),
        Removed {
            entries: 1204,
            recipients: 1204,
            undelivered: 1204
        }
    );
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM queue_entries")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![finished]);
    assert_eq!(
        queue.purge(&Filter::default()).await.unwrap(),
        Removed::default()
    );
}

#[tokio::test]
async fn stats_count_waiting_deferred_and_in_flight_recipients_and_the_oldest_age() {
    let db = TestDatabase::migrated().await;
    let queue = Queue::new(db.pool.clone());
    let empty = queue.stats().await.unwrap();
    assert_eq!(
        (empty.queued_recipients, empty.oldest_queued_age_secs),
        (0, None)
    );
    enqueue(
        &queue,
        "alice@example.com",
        &["deferred@one.test", "leased@one.test", "done@one.test"],
    )
    .await;
    let all = claim_all(&queue).await;
    queue
        .defer(claimed(&all, "deferred@one.test").lease(), "451", LEASE)
        .await
        .unwrap();
    queue
        .delivered(claimed(&all, "done@one.test").lease())
        .await
        .unwrap();
    enqueue(&queue, "bob@example.com", &["fresh@two.test"]).await;
    sqlx::query("UPDATE queue_entries SET received_at = received_at - interval '1 hour'")
        .execute(&db.pool)
        .await
        .unwrap();

    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (
            stats.queued_recipients,
            stats.deferred_recipients,
            stats.in_flight
        ),
        (3, 1, 1)
    );
    let age = stats.oldest_queued_age_secs.unwrap();
    assert!((3600..3660).contains(&age), "{age}");
}
