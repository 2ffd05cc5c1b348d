//! smtp-ingress group commit, end to end: messages finished at the same moment by different
//! sessions are queued together (one packed object, one commit), each one is answered 250 with
//! its own queue id, and each body reads back intact from its range of the shared object.

use mc_tests::TestDatabase;
use mc_tests::smtp::{IngressProcess, RawClient, count, queued, queued_id, seed_directory};
use std::sync::{Arc, Barrier};

const SESSIONS: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn messages_finished_together_share_objects_and_each_reads_back_intact() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    // One flush at a time, so that the messages arriving during a flush form the next batch.
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__COMMIT_CONCURRENCY", "1")]);
    let port = ingress.mx_port;
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let threads: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let (mut client, banner) = RawClient::connect(port);
                assert_eq!(banner.code, 220);
                assert_eq!(client.cmd("EHLO client.test").code, 250);
                assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
                assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
                assert_eq!(client.cmd("DATA").code, 354);
                let marker = format!("message number {i} {}", "z".repeat(i * 13));
                client.send(format!("Subject: {i}\r\n\r\n{marker}\r\n").as_bytes());
                // Every session ends its message at the same moment.
                barrier.wait();
                client.send(b".\r\n");
                let reply = client.reply().expect("a reply to the final dot");
                assert_eq!(reply.code, 250, "{reply:?}");
                let id = queued_id(&reply.line()).expect("a queue id");
                (id, marker)
            })
        })
        .collect();
    let sent: Vec<(String, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let entries = queued(&db).await;
    assert_eq!(entries.len(), SESSIONS);
    for (id, marker) in &sent {
        let entry = entries.iter().find(|e| &e.id == id).expect("queued");
        let body = String::from_utf8(ingress.body(entry).await).unwrap();
        assert!(body.starts_with("Received: "), "{body}");
        assert!(
            body.ends_with(&format!("\r\n\r\n{marker}\r\n")),
            "message {id} reads back intact: {body:?}"
        );
    }
    let blobs = count(&db, "blobs").await;
    assert!(
        blobs < SESSIONS as i64,
        "{blobs} objects for {SESSIONS} messages finished together: nothing was packed"
    );
    let metrics = ingress.metrics();
    let line = format!("mailcluster_smtp_commit_batch_messages_sum {SESSIONS}.0");
    assert!(metrics.contains(&line), "{metrics}");
}
