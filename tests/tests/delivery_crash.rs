//! Delivery workers killed with SIGKILL while they hold claimed recipients, local and remote:
//! every recipient is still delivered, each message is in the local mailbox exactly once with
//! gapless UIDs, and every remote recipient reaches the remote server at least once
//! (RELIABILITY.md R4/R5). And a worker paused (SIGSTOP) in the middle of a delivery, whose lease
//! ran out and was taken over, can neither record an outcome nor send a bounce when it wakes.

use mc_policy::TlsMode;
use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox, route};
use mc_tests::sink::{SinkOptions, SinkProcess};
use mc_tests::smtp::{
    IngressProcess, RawClient, loopback_may_relay, queued, queued_id, seed_directory,
};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const MESSAGES: usize = 300;

#[tokio::test(flavor = "multi_thread")]
async fn killed_workers_lose_nothing_and_deliver_local_copies_once() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let sink = SinkProcess::start(SinkOptions::default());
    route(
        &db,
        "remote.test",
        "127.0.0.1",
        sink.port(),
        TlsMode::None,
        None,
        None,
    )
    .await;
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    let mut sent = HashSet::new();
    for i in 0..MESSAGES {
        assert_eq!(client.cmd("MAIL FROM:<sender@elsewhere.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
        if i % 3 == 0 {
            assert_eq!(client.cmd(&format!("RCPT TO:<r{i}@remote.test>")).code, 250);
        }
        assert_eq!(client.cmd("DATA").code, 354);
        let reply = client.cmd(&format!("Subject: {i}\r\n\r\nmessage {i}\r\n."));
        assert_eq!(reply.code, 250, "{reply:?}");
        sent.insert(queued_id(&reply.line()).unwrap());
    }
    let remote_recipients = MESSAGES.div_ceil(3);

    // Slow workers (one delivery at a time, large claims) with the shortest lease, killed soon
    // after they claimed: their recipients come back when the lease runs out.
    let env = [
        ("MAILCLUSTER_DELIVERY__LEASE_SECS", "10"),
        ("MAILCLUSTER_DELIVERY__CLAIM_BATCH", "100"),
        ("MAILCLUSTER_DELIVERY__CONCURRENCY", "1"),
    ];
    for _ in 0..3 {
        let mut doomed = WorkerProcess::start(&db, &ingress.s3_prefix, &env);
        std::thread::sleep(Duration::from_millis(60));
        doomed.child.kill().unwrap();
        doomed.child.wait().unwrap();
    }
    let survivors = [
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
        WorkerProcess::start(&db, &ingress.s3_prefix, &env),
    ];

    let total = MESSAGES + remote_recipients;
    let started = Instant::now();
    let delivered = loop {
        let delivered: i64 =
            sqlx::query_scalar("SELECT count(*) FROM queue_recipients WHERE state = 'delivered'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if delivered as usize == total || started.elapsed() > Duration::from_secs(60) {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        delivered as usize,
        total,
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
    // Remote: at least once each (a worker killed after the remote server's 250 but before
    // recording it makes a duplicate, which SMTP allows).
    let received: HashSet<String> = sink
        .messages()
        .into_iter()
        .flat_map(|m| m.rcpt_tos)
        .collect();
    let expected: HashSet<String> = (0..MESSAGES)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("r{i}@remote.test"))
        .collect();
    assert_eq!(received, expected);
}

/// A remote server that accepts connections and stays silent until `release` is written to,
/// then refuses every recipient with 550 (a bounce, if the worker may still send one).
fn silent_then_refusing() -> (u16, std::sync::mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = released.recv();
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let _ = writer.write_all(b"220 silent.test\r\n");
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                "EHLO" | "HELO" | "MAIL" | "RSET" => b"250 ok\r\n",
                "RCPT" => b"550 5.1.1 no such user\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"500 what\r\n",
            };
            if writer.write_all(reply).is_err() {
                return;
            }
            line.clear();
        }
    });
    (port, release)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_worker_whose_lease_ran_out_can_neither_record_nor_bounce() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let (silent_port, release) = silent_then_refusing();
    route(
        &db,
        "remote.test",
        "127.0.0.1",
        silent_port,
        TlsMode::None,
        None,
        None,
    )
    .await;
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<nobody@remote.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd("Subject: paused\r\n\r\nbody\r\n.");
    let id = queued_id(&reply.line()).unwrap();

    // Worker A claims the recipient and waits for the silent server's greeting.
    let env = [("MAILCLUSTER_DELIVERY__LEASE_SECS", "10")];
    let paused = WorkerProcess::start(&db, &ingress.s3_prefix, &env);
    let started = Instant::now();
    loop {
        let epoch: i64 =
            sqlx::query_scalar("SELECT epoch FROM queue_recipients WHERE queue_id = $1::uuid")
                .bind(&id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if epoch == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            paused.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = paused.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );

    // Its lease runs out (time injected) and worker B takes over, through a server that answers
    // at once: B's 550 fails the recipient with one bounce.
    let (refusing_port, release_b) = silent_then_refusing();
    release_b.send(()).unwrap();
    route(
        &db,
        "remote.test",
        "127.0.0.1",
        refusing_port,
        TlsMode::None,
        None,
        None,
    )
    .await;
    sqlx::query("UPDATE queue_recipients SET next_attempt_at = now() WHERE queue_id = $1::uuid")
        .bind(&id)
        .execute(&db.pool)
        .await
        .unwrap();
    let taker = WorkerProcess::start(&db, &ingress.s3_prefix, &env);
    let started = Instant::now();
    loop {
        let (state, epoch): (String, i64) =
            sqlx::query_as("SELECT state, epoch FROM queue_recipients WHERE queue_id = $1::uuid")
                .bind(&id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if state == "failed" {
            assert_eq!(epoch, 2);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}",
            taker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bounces = |entries: Vec<mc_tests::smtp::QueuedMessage>| {
        entries.into_iter().filter(|e| e.sender.is_empty()).count()
    };
    assert_eq!(bounces(queued(&db).await), 1);

    // A wakes up, hears its 550 and tries to fail the recipient with a bounce: fenced.
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    release.send(()).unwrap();
    let started = Instant::now();
    while !paused.log_text().contains("lease lost") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}",
            paused.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        bounces(queued(&db).await),
        1,
        "the paused worker sent a second bounce"
    );
    let (state, epoch, error): (String, i64, Option<String>) = sqlx::query_as(
        "SELECT state, epoch, last_error FROM queue_recipients WHERE queue_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), epoch), ("failed", 2));
    assert_eq!(error.as_deref(), Some("550 5.1.1 no such user"));
}
