//! smtp-ingress and delivery-worker together: mail accepted over SMTP lands in the local
//! mailboxes it resolves to (aliases and lists expanded at delivery time), once per mailbox even
//! when several recipients of the message reach the same account, and an alias of a remote
//! address is delivered by queueing a forward to that address.

use mc_directory::{ListMode, NewAlias, NewList};
use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox, recipient_states};
use mc_tests::smtp::{IngressProcess, RawClient, queued_id, seed_directory};
use std::time::{Duration, Instant};

/// Sends one message from the MX listener; returns its queue id.
fn send(port: u16, recipients: &[&str]) -> String {
    let (mut client, _) = RawClient::connect(port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    for rcpt in recipients {
        let reply = client.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert_eq!(reply.code, 250, "{rcpt}: {reply:?}");
    }
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd("Subject: delivery\r\n\r\nhello\r\n.");
    assert_eq!(reply.code, 250, "{reply:?}");
    queued_id(&reply.line()).expect("a queue id")
}

/// Waits (up to 15 s) until no recipient of entry `id` is waiting for its first attempt.
async fn settled(db: &TestDatabase, id: &str) -> Vec<(String, String, Option<String>)> {
    let started = Instant::now();
    loop {
        let states = recipient_states(db, id).await;
        let pending = states
            .iter()
            .any(|(_, state, error)| state == "queued" && error.is_none());
        if !pending || started.elapsed() > Duration::from_secs(15) {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_lands_once_in_every_local_mailbox_and_remote_waits_with_a_reason() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    directory
        .create_alias(&NewAlias {
            address: "info@example.test".into(),
            target: "team@example.test".into(),
        })
        .await
        .unwrap();
    directory
        .create_alias(&NewAlias {
            address: "away@example.test".into(),
            target: "someone@elsewhere.test".into(),
        })
        .await
        .unwrap();
    directory
        .create_list(&NewList {
            address: "team@example.test".into(),
            mode: ListMode::Public,
            announce_address: None,
            require_auth: false,
        })
        .await
        .unwrap();
    for member in ["alice@example.test", "bob@example.test"] {
        directory
            .add_list_member("team@example.test", member)
            .await
            .unwrap();
    }
    let prefix = mc_testkit::unique_prefix("delivery");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let ingress = IngressProcess::start(&db, &shared);
    let worker = WorkerProcess::start(&db, &ingress.s3_prefix, &shared);

    let direct = send(ingress.mx_port, &["alice@example.test"]);
    // info -> team -> alice and bob, and alice directly: one copy per mailbox all the same.
    let fanned = send(
        ingress.mx_port,
        &[
            "info@example.test",
            "alice@example.test",
            "away@example.test",
        ],
    );
    let direct_states = settled(&db, &direct).await;
    assert_eq!(
        direct_states,
        vec![("alice@example.test".into(), "delivered".into(), None)],
        "{}",
        worker.log_text()
    );
    let fanned_states = settled(&db, &fanned).await;
    assert_eq!(fanned_states[0].0, "alice@example.test");
    assert_eq!(fanned_states[0].1, "delivered");
    assert_eq!(fanned_states[2].0, "info@example.test");
    assert_eq!(fanned_states[2].1, "delivered");
    // away@ is an alias of a remote address: done by queueing a forward to it (delivered
    // remotely later; `delivery_remote` follows that part).
    let (address, state, _) = &fanned_states[1];
    assert_eq!(
        (address.as_str(), state.as_str()),
        ("away@example.test", "delivered")
    );
    let forward: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.sender, r.dsn_orcpt FROM queue_recipients r JOIN queue_entries e ON e.id = r.queue_id
          WHERE r.address = 'someone@elsewhere.test'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        forward,
        [(
            "sender@remote.test".to_string(),
            "rfc822;away@example.test".to_string()
        )]
    );

    let alice = inbox(&db, "alice@example.test").await;
    let bob = inbox(&db, "bob@example.test").await;
    assert_eq!(alice, vec![(1, direct.clone()), (2, fanned.clone())]);
    assert_eq!(bob, vec![(1, fanned.clone())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_removes_delivered_entries_and_keeps_the_mailbox_copy() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let _worker = WorkerProcess::start(
        &db,
        &ingress.s3_prefix,
        &[("MAILCLUSTER_DELIVERY__HOUSEKEEPING_INTERVAL_SECS", "1")],
    );
    send(ingress.mx_port, &["alice@example.test"]);
    let started = Instant::now();
    loop {
        let (entries, copies): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM queue_entries), (SELECT count(*) FROM mailbox_messages)",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if (entries, copies) == (0, 1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "entries {entries}, mailbox copies {copies}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(messages, 1, "the mailbox still references the message");
}
