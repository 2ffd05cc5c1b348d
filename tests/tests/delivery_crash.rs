//! Delivery workers killed with SIGKILL while they hold claimed recipients: every recipient is
//! still delivered, each message is in the mailbox exactly once, and UIDs stay gapless
//! (RELIABILITY.md R4/R5).

use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox};
use mc_tests::smtp::{IngressProcess, RawClient, queued_id, seed_directory};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const MESSAGES: usize = 300;

#[tokio::test(flavor = "multi_thread")]
async fn killed_workers_lose_nothing_and_deliver_each_message_once() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    let mut sent = HashSet::new();
    for i in 0..MESSAGES {
        assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
        assert_eq!(client.cmd("DATA").code, 354);
        let reply = client.cmd(&format!("Subject: {i}\r\n\r\nmessage {i}\r\n."));
        assert_eq!(reply.code, 250, "{reply:?}");
        sent.insert(queued_id(&reply.line()).unwrap());
    }

    // Slow workers (one delivery at a time, large claims) with the shortest lease, killed soon
    // after they claimed: their recipients come back when the lease runs out.
    let env = [
        ("MAILCLUSTER_DELIVERY__LEASE_SECS", "10"),
        ("MAILCLUSTER_DELIVERY__CLAIM_BATCH", "100"),
        ("MAILCLUSTER_DELIVERY__CONCURRENCY", "1"),
    ];
    for _ in 0..2 {
        let mut doomed = WorkerProcess::start(&db, &ingress.s3_prefix, &env);
        std::thread::sleep(Duration::from_millis(60));
        doomed.child.kill().unwrap();
        doomed.child.wait().unwrap();
    }
    let survivors = [
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
    ];

    let started = Instant::now();
    let delivered = loop {
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM queue_recipients WHERE state = 'delivered'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if delivered as usize == MESSAGES || started.elapsed() > Duration::from_secs(60) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        delivered as usize,
        MESSAGES,
        "every recipient delivered; worker log:\n{}",
        survivors[0].log_text()
    );
    let reclaimed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM queue_recipients WHERE attempts > 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        reclaimed > 0,
        "the killed workers held claims that others had to take over"
    );
    let mailbox = inbox(&db, "alice@example.test").await;
    let uids: Vec<i64> = mailbox.iter().map(|(uid, _)| *uid).collect();
    assert_eq!(
        uids,
        (1..=MESSAGES as i64).collect::<Vec<_>>(),
        "gapless UIDs"
    );
    let ids: HashSet<String> = mailbox.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, sent, "each message exactly once");
}
