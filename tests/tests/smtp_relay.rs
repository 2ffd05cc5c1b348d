//! The relay matrix of the IP range governing the client: external→external is refused outright
//! where the range forbids it and needs AUTH where the range allows it with AUTH; a client that
//! claims a hosted sender domain must authenticate where the range says so (no spoofing from
//! outside), and AUTH over STARTTLS on the MX listener satisfies that rule.

use mc_tests::TestDatabase;
use mc_tests::smtp::{
    IngressProcess, PASSWORD, Tls, count, loopback_is_internet, queued, queued_id, seed_directory,
    smtplib, swaks,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn external_to_external_from_an_internet_range_is_550_5_7_1() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_is_internet(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "someone@remote.test"],
            ["rcpt", "victim@elsewhere.test"],
            ["rcpt", "alice@example.test"]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps,
        [
            "250 2.1.0 Sender OK",
            "550 5.7.1 Delivery is not allowed to this address",
            // Delivery to a hosted account from outside needs no AUTH.
            "250 2.1.5 Recipient OK",
        ]
    );
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn external_to_external_from_localhost_without_auth_is_530_5_7_0() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let run = swaks(
        ingress.mx_port,
        &[
            "--from",
            "someone@remote.test",
            "--to",
            "victim@elsewhere.test",
        ],
    );
    assert_eq!(
        run.finals()[2..],
        [
            "250 2.1.0 Sender OK",
            "530 5.7.0 SMTP authentication is required",
            "221 2.0.0 mx.test.example closing connection",
        ],
        "{}",
        run.transcript
    );
    assert_eq!(run.exit, Some(24), "{}", run.transcript);
    // The seeded "My computer" range lets a local sender reach local and external recipients
    // without AUTH.
    let run = swaks(
        ingress.mx_port,
        &[
            "--from",
            "alice@example.test",
            "--to",
            "friend@elsewhere.test",
        ],
    );
    assert_eq!(run.exit, Some(0), "{}", run.transcript);
    let entries = queued(&db).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].recipients, ["friend@elsewhere.test"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_local_sender_from_an_internet_range_needs_auth_530_then_250() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_is_internet(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let message = "Subject: spoof\r\n\r\nx\r\n";
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "alice@example.test"],
            ["rcpt", "bob@example.test"],
            ["rcpt", "friend@elsewhere.test"],
            ["data", message]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps,
        [
            "250 2.1.0 Sender OK",
            "530 5.7.0 SMTP authentication is required",
            "530 5.7.0 SMTP authentication is required",
            "503 5.5.1 Must have sender and recipient first",
        ]
    );
    assert_eq!(count(&db, "queue_entries").await, 0);

    let run = smtplib(
        ingress.mx_port,
        Tls::StartTls,
        json!([
            ["auth", "PLAIN", "alice@example.test", PASSWORD],
            ["mail", "alice@example.test"],
            ["rcpt", "bob@example.test"],
            ["rcpt", "friend@elsewhere.test"],
            ["data", message]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps[..4],
        [
            "235 2.7.0 Authentication successful",
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
        ]
    );
    let id = queued_id(&run.steps[4]).expect("queued");
    let entries = queued(&db).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    assert_eq!(entries[0].auth_user.as_deref(), Some("alice@example.test"));
    assert_eq!(
        entries[0].recipients,
        ["bob@example.test", "friend@elsewhere.test"]
    );
}
