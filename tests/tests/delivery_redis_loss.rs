//! Redis losing everything (`FLUSHALL`) in the middle of a run loses no mail: Redis only carries
//! hints (new-mail wake-ups, change notices), the queue and its leases live in PostgreSQL.
//! Alone in its file because FLUSHALL empties the Redis every test shares.

use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox};
use mc_tests::smtp::{IngressProcess, RawClient, queued_id, seed_directory};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const MESSAGES: usize = 200;

fn flushall() {
    let url = mc_testkit::redis_url();
    let status = std::process::Command::new("redis-cli")
        .args(["-u", &url, "FLUSHALL"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "FLUSHALL failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn flushall_mid_run_loses_nothing() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let prefix = mc_testkit::unique_prefix("flush");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let ingress = IngressProcess::start(&db, &shared);
    // Slow polling: without the Redis hints the workers would only find new mail every 2 s.
    let env = [
        ("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str()),
        ("MAILCLUSTER_DELIVERY__POLL_INTERVAL_MS", "2000"),
    ];
    let workers = [
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
    ];
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    let mut sent = HashSet::new();
    for i in 0..MESSAGES {
        if i == MESSAGES / 2 {
            flushall();
        }
        assert_eq!(client.cmd("MAIL FROM:<sender@elsewhere.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
        assert_eq!(client.cmd("DATA").code, 354);
        let reply = client.cmd(&format!("Subject: {i}\r\n\r\nmessage {i}\r\n."));
        assert_eq!(reply.code, 250, "{reply:?}");
        sent.insert(queued_id(&reply.line()).unwrap());
    }
    flushall();
    let started = Instant::now();
    let mailbox = loop {
        let mailbox = inbox(&db, "alice@example.test").await;
        if mailbox.len() >= MESSAGES || started.elapsed() > Duration::from_secs(30) {
            break mailbox;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ids: HashSet<String> = mailbox.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(mailbox.len(), MESSAGES, "{}", workers[0].log_text());
    assert_eq!(ids, sent, "each message exactly once");
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM queue_recipients WHERE state <> 'delivered'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(waiting, 0);
}
