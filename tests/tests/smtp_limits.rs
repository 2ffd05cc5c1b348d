//! Limits and protocol errors: message size (announced and actual), recipients per message,
//! command order, command syntax, and the idle timeout.

use mc_tests::TestDatabase;
use mc_tests::smtp::{
    HOSTNAME, IngressProcess, RawClient, Tls, count, queued, queued_id, seed_directory, smtplib,
};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn mail_with_size_over_the_limit_is_552_5_3_4() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__MAX_MESSAGE_BYTES", "10240")]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    let ehlo = client.cmd("EHLO client.test");
    assert!(ehlo.lines.contains(&"SIZE 10240".to_string()), "{ehlo:?}");
    assert_eq!(
        client
            .cmd("MAIL FROM:<sender@remote.test> SIZE=20480")
            .line(),
        "552 5.3.4 Message size exceeds fixed maximum message size. Size: 20 KB, Max size: 10 KB"
    );
    assert_eq!(
        client
            .cmd("MAIL FROM:<sender@remote.test> SIZE=10240")
            .line(),
        "250 2.1.0 Sender OK"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn data_over_limit_is_552_and_session_survives() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__MAX_MESSAGE_BYTES", "10240")]);
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(76).repeat(200));
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "alice@example.test"],
            ["data", big],
            ["cmd", "RSET"],
            ["cmd", "NOOP"],
            ["mail", "sender@remote.test"],
            ["rcpt", "alice@example.test"],
            ["data", "Subject: small\r\n\r\nx\r\n"]
        ]),
    );
    assert_eq!(run.error, None);
    assert!(
        run.steps[2].starts_with("552 5.3.4 Message size exceeds fixed maximum message size."),
        "{run:?}"
    );
    assert_eq!(
        run.steps[3..7],
        [
            "250 2.0.0 Reset OK",
            "250 2.0.0 OK",
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK"
        ]
    );
    let id = queued_id(&run.steps[7]).expect("the next message is accepted");
    let entries = queued(&db).await;
    assert_eq!(entries.len(), 1, "the oversized message is not queued");
    assert_eq!(entries[0].id, id);
}

#[tokio::test(flavor = "multi_thread")]
async fn third_recipient_over_max_recipients_is_452_4_5_3() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__MAX_RECIPIENTS", "2")]);
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "alice@example.test"],
            ["rcpt", "bob@example.test"],
            ["rcpt", "alice@example.test"],
            ["rcpt", "carol@example.test"],
            ["data", "Subject: x\r\n\r\nx\r\n"]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps[..5],
        [
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            // A duplicate is acknowledged again and delivered once: not a third recipient.
            "250 2.1.5 Recipient OK",
            "452 4.5.3 Too many recipients",
        ]
    );
    queued_id(&run.steps[5]).expect("queued");
    let entries = queued(&db).await;
    assert_eq!(
        entries[0].recipients,
        ["alice@example.test", "bob@example.test"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_out_of_order_are_503_5_5_1() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(
        client.cmd("MAIL FROM:<sender@remote.test>").line(),
        "503 5.5.1 Use HELO/EHLO first"
    );
    assert_eq!(client.cmd("DATA").line(), "503 5.5.1 Use HELO/EHLO first");
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(
        client.cmd("RCPT TO:<alice@example.test>").line(),
        "503 5.5.1 Must have sender first"
    );
    assert_eq!(
        client.cmd("DATA").line(),
        "503 5.5.1 Must have sender and recipient first"
    );
    assert_eq!(
        client.cmd("MAIL FROM:<sender@remote.test>").line(),
        "250 2.1.0 Sender OK"
    );
    assert_eq!(
        client.cmd("DATA").line(),
        "503 5.5.1 Must have sender and recipient first"
    );
    assert_eq!(
        client.cmd("MAIL FROM:<sender@remote.test>").line(),
        "503 5.5.1 Issue a reset if you want to start over"
    );
    assert_eq!(client.cmd("RSET").line(), "250 2.0.0 Reset OK");
    assert_eq!(
        client.cmd("QUIT").line(),
        format!("221 2.0.0 {HOSTNAME} closing connection")
    );
    assert!(client.is_closed());
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn syntax_errors_are_500_501_and_550() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(
        client.cmd("FROB nicate").line(),
        "500 5.5.2 Syntax error, command unrecognized"
    );
    assert_eq!(
        client.cmd("EHLO").line(),
        "501 5.5.4 EHLO Invalid domain address"
    );
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(
        client.cmd("MAIL FROM:bad").line(),
        "550 5.5.4 Invalid syntax. Syntax should be MAIL FROM:<user@domain>"
    );
    assert_eq!(
        client.cmd("MAIL FROM:<sender@remote.test> BOGUS=1").line(),
        "555 5.5.4 Unsupported MAIL FROM or RCPT TO parameter"
    );
    assert_eq!(client.cmd("VRFY alice").line(), "502 5.5.1 VRFY disallowed");
    // The session still works.
    assert_eq!(
        client.cmd("MAIL FROM:<sender@remote.test>").line(),
        "250 2.1.0 Sender OK"
    );
}

/// Waits for the idle timeout's reply and the close that follows it; the client last sent at
/// `since`.
fn assert_timed_out(client: &mut RawClient, since: Instant) {
    let reply = client.reply().expect("a reply before the close");
    assert_eq!(reply.line(), "421 4.4.2 Connection timeout");
    assert!(client.is_closed(), "closed after the 421");
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_client_gets_421_4_4_2_and_is_disconnected() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__COMMAND_TIMEOUT_SECS", "1")]);
    let (mut idle, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(idle.cmd("EHLO client.test").code, 250);
    let idle_since = Instant::now();
    // A client that stalls inside DATA times out the same way, and nothing is queued.
    let (mut stalled, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(stalled.cmd("EHLO client.test").code, 250);
    assert_eq!(stalled.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(stalled.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(stalled.cmd("DATA").code, 354);
    stalled.send(b"Subject: stalled\r\n\r\nhalf a bo");
    let stalled_since = Instant::now();
    assert_timed_out(&mut idle, idle_since);
    assert_timed_out(&mut stalled, stalled_since);
    assert_eq!(count(&db, "queue_entries").await, 0);
}
