//! Bounces end to end: a recipient refused at delivery time (disabled after its message was
//! accepted) fails with one RFC 3464 notification to the sender, which the worker then delivers
//! like any message; NOTIFY=NEVER and the null sender get none.

use mc_directory::Directory;
use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox, recipient_states};
use mc_tests::smtp::{
    IngressProcess, RawClient, disable_account, queued, queued_id, seed_directory,
};
use std::time::{Duration, Instant};

/// Sends one message with the given MAIL and RCPT lines; returns its queue id.
fn send(client: &mut RawClient, mail: &str, rcpt: &str, subject: &str) -> String {
    assert_eq!(client.cmd(mail).code, 250, "{mail}");
    assert_eq!(client.cmd(rcpt).code, 250, "{rcpt}");
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd(&format!("Subject: {subject}\r\n\r\nthe original body\r\n."));
    assert_eq!(reply.code, 250, "{reply:?}");
    queued_id(&reply.line()).expect("a queue id")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recipient_refused_at_delivery_bounces_once_to_the_sender() {
    let db = TestDatabase::migrated().await;
    let directory: Directory = seed_directory(&db).await;
    let prefix = mc_testkit::unique_prefix("bounce");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let ingress = IngressProcess::start(&db, &shared);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    let bounced = send(
        &mut client,
        "MAIL FROM:<bob@example.test> RET=FULL ENVID=ENV42",
        "RCPT TO:<alice@example.test> NOTIFY=FAILURE ORCPT=rfc822;Alice@example.test",
        "first",
    );
    let never = send(
        &mut client,
        "MAIL FROM:<bob@example.test>",
        "RCPT TO:<alice@example.test> NOTIFY=NEVER",
        "second",
    );
    let null_sender = send(
        &mut client,
        "MAIL FROM:<>",
        "RCPT TO:<alice@example.test>",
        "third",
    );
    // Accepted while alice was active; refused by the time the worker gets to it.
    disable_account(&directory, "alice@example.test").await;
    let worker = WorkerProcess::start(&db, &ingress.s3_prefix, &shared);

    let started = Instant::now();
    while inbox(&db, "bob@example.test").await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no bounce reached bob; worker log:\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in [&bounced, &never, &null_sender] {
        let states = recipient_states(&db, id).await;
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].1, "failed", "{id}: {states:?}");
        assert_eq!(
            states[0].2.as_deref(),
            Some("550 5.2.1 Account is not active")
        );
    }
    let entries = queued(&db).await;
    let bounces: Vec<_> = entries.iter().filter(|e| e.sender.is_empty()).collect();
    // The null-sender message itself, and one bounce (for the first message only).
    assert_eq!(bounces.len(), 2, "{entries:?}");
    let bounce = bounces
        .iter()
        .find(|e| e.id != null_sender)
        .expect("the bounce");
    assert_eq!(bounce.recipients, ["bob@example.test"]);
    assert_eq!(
        recipient_states(&db, &bounce.id).await[0].1,
        "delivered",
        "the bounce was delivered to bob"
    );
    assert_eq!(inbox(&db, "bob@example.test").await.len(), 1);
    let body = String::from_utf8(ingress.body(bounce).await).unwrap();
    for expected in [
        "From: Mail Delivery System <MAILER-DAEMON@mx.test.example>\r\n",
        "To: <bob@example.test>\r\n",
        "Subject: Undelivered Mail Returned to Sender\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Reporting-MTA: dns; mx.test.example\r\n",
        "Original-Envelope-Id: ENV42\r\n",
        "Final-Recipient: rfc822; alice@example.test\r\n",
        "Original-Recipient: rfc822;Alice@example.test\r\n",
        "Action: failed\r\nStatus: 5.2.1\r\n",
        "Diagnostic-Code: smtp; 550 5.2.1 Account is not active\r\n",
        "Content-Type: message/rfc822\r\n",
        "Subject: first\r\n\r\nthe original body\r\n",
    ] {
        assert!(
            body.contains(expected),
            "{expected:?} missing from:\n{body}"
        );
    }
}
