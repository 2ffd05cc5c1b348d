//! smtp-ingress on the MX listener: a message to a local account is queued durably (queue row,
//! recipient row, body in the object store); recipients the directory refuses get the reference
//! server's replies; the ops port counts both.

use mc_tests::smtp::{
    HOSTNAME, IngressProcess, QueuedMessage, Tls, count, queued, queued_id, seed_directory,
    smtplib, swaks,
};
use mc_tests::{TestDatabase, http_status};
use serde_json::json;

/// Checks the queue holds exactly the message `id` from `sender` to `recipients`, and that its
/// body is in the object store with the recorded size; returns the stored body.
async fn assert_queued(
    db: &TestDatabase,
    ingress: &IngressProcess,
    id: &str,
    sender: &str,
    recipients: &[&str],
) -> (QueuedMessage, String) {
    let uuid = uuid_version(id);
    assert_eq!(uuid, Some('7'), "queue ids are UUIDv7: {id}");
    let mut entries = queued(db).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries.remove(0);
    assert_eq!(entry.id, id);
    assert_eq!(entry.sender, sender);
    assert_eq!(entry.recipients, recipients);
    assert_eq!(entry.auth_user, None);
    let blob_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM blobs WHERE blob_key = $1 AND size_bytes = $2")
            .bind(&entry.blob_key)
            .bind(entry.size_bytes)
            .fetch_one(&db.pool)
            .await
            .expect("blob row");
    assert_eq!(blob_rows, 1);
    let body = ingress.body(&entry).await;
    assert_eq!(body.len() as i64, entry.size_bytes);
    let body = String::from_utf8(body).expect("a text message");
    let trace = format!(
        "Received: from client.test ([127.0.0.1])\r\n\tby {HOSTNAME} (mailcluster) with ESMTP id {id}\r\n\tfor <{}>;",
        recipients[0]
    );
    assert!(body.starts_with(&trace), "{body}");
    (entry, body)
}

/// The version nibble of a textual UUID.
fn uuid_version(id: &str) -> Option<char> {
    (id.len() == 36).then(|| id.chars().nth(14)).flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn smtplib_message_to_a_local_account_is_queued_with_its_body() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let message = "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: e2e\r\n\r\nHello Alice.\r\n.leading dot\r\n";
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "alice@example.test"],
            ["data", message]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps[..2],
        ["250 2.1.0 Sender OK", "250 2.1.5 Recipient OK"]
    );
    assert!(
        run.steps[2].starts_with("250 2.0.0 OK queued as "),
        "{:?}",
        run.steps
    );
    let id = queued_id(&run.steps[2]).unwrap();
    let (_, body) = assert_queued(
        &db,
        &ingress,
        &id,
        "sender@remote.test",
        &["alice@example.test"],
    )
    .await;
    // The client's message follows the trace header unchanged (dot-stuffing removed), and an
    // unauthenticated MX message gets no Message-ID or Date added.
    assert!(body.ends_with(message), "{body}");
    assert!(!body.to_ascii_lowercase().contains("message-id:"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn swaks_message_to_a_local_account_is_queued_with_its_body() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let run = swaks(
        ingress.mx_port,
        &[
            "--from",
            "sender@remote.test",
            "--to",
            "Bob@Example.TEST",
            "--header",
            "Subject: swaks e2e",
            "--body",
            "Hello Bob.",
        ],
    );
    assert_eq!(run.exit, Some(0), "{}", run.transcript);
    let finals = run.finals();
    assert_eq!(finals[0], "220 mx.test.example ESMTP ready");
    assert_eq!(
        finals[2..5],
        [
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK",
            "354 End data with <CR><LF>.<CR><LF>"
        ]
    );
    assert!(
        finals[5].starts_with("250 2.0.0 OK queued as "),
        "{finals:?}"
    );
    assert_eq!(finals[6], "221 2.0.0 mx.test.example closing connection");
    let id = queued_id(finals[5]).unwrap();
    // The envelope recipient is queued as given (after validation), not rewritten.
    let (_, body) = assert_queued(
        &db,
        &ingress,
        &id,
        "sender@remote.test",
        &["Bob@example.test"],
    )
    .await;
    assert!(body.contains("Subject: swaks e2e\r\n"), "{body}");
    assert!(body.contains("\r\n\r\nHello Bob.\r\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_disabled_recipients_are_550_with_the_reference_texts() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "nobody@example.test"],
            ["rcpt", "carol@example.test"],
            ["rcpt", "dave@closed.test"],
            ["data", "Subject: x\r\n\r\nx\r\n"]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps,
        [
            "250 2.1.0 Sender OK",
            "550 5.1.1 Unknown user",
            "550 5.2.1 Account is not active",
            "550 5.2.1 Domain has been disabled",
            "503 5.5.1 Must have sender and recipient first",
        ]
    );
    let run = swaks(
        ingress.mx_port,
        &[
            "--from",
            "sender@remote.test",
            "--to",
            "nobody@example.test",
            "--quit-after",
            "RCPT",
        ],
    );
    assert!(
        run.replies.contains(&"550 5.1.1 Unknown user".to_string()),
        "{}",
        run.transcript
    );
    // swaks exits 24 when no recipient was accepted.
    assert_eq!(run.exit, Some(24), "{}", run.transcript);
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_accepted_messages_and_rejected_recipients() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    assert_eq!(
        http_status(&format!("{}/healthz", ingress.ops_url)),
        Some(200)
    );
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "nobody@example.test"],
            ["rcpt", "alice@example.test"],
            ["data", "Subject: metrics\r\n\r\nx\r\n"]
        ]),
    );
    assert!(
        run.steps[3].starts_with("250 2.0.0 OK queued as "),
        "{run:?}"
    );
    let metrics = ingress.metrics();
    for expected in [
        "mailcluster_smtp_messages_accepted_total 1\n",
        "mailcluster_smtp_recipients_rejected_total{reason=\"unknown_user\"} 1\n",
        "mailcluster_smtp_sessions_total{listener=\"mx\"} 1\n",
        "mailcluster_smtp_commands_total{command=\"RCPT\"} 2\n",
        "mailcluster_smtp_accept_latency_seconds_count 1\n",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
}
