//! Anti-virus against the real clamd that `ops/test` starts (`ensure_clamd`: a private clamd on
//! 127.0.0.1, `MAILCLUSTER_TEST_CLAMD`, whose database holds only the EICAR test signatures).
//!
//! The first tests drive the clamd client and the attachment rewriting directly; the others send
//! EICAR through the real ingress over SMTP and check the reply, the queue and the stored bytes.
//!
//! The EICAR test file is built from two pieces so that this source file is not itself one.

use base64::Engine;
use mc_antispam::attachments::{block_extensions, strip_attachments};
use mc_antispam::clamd::{self, ScanVerdict};
use mc_policy::AntispamSettings;
use mc_tests::TestDatabase;
use mc_tests::smtp::{IngressProcess, RawClient, Reply, queued, seed_directory};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn eicar() -> Vec<u8> {
    [
        &b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"[..],
        b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ]
    .concat()
}

/// The test clamd's host and port.
fn clamd_address() -> (String, u16) {
    let address = std::env::var("MAILCLUSTER_TEST_CLAMD").unwrap_or_else(|_| {
        panic!(
            "MAILCLUSTER_TEST_CLAMD is not set: run the tests with ops/test, or run \
             `bash -c '. ops/lib.sh; ensure_stores; ensure_clamd'` and source .state/test.env"
        )
    });
    let (host, port) = address
        .rsplit_once(':')
        .expect("MAILCLUSTER_TEST_CLAMD is host:port");
    (host.to_string(), port.parse().expect("a port number"))
}

async fn scan(message: &[u8]) -> ScanVerdict {
    let (host, port) = clamd_address();
    clamd::scan(&host, port, message, TIMEOUT)
        .await
        .expect("clamd answers")
}

/// A message with a text part and one base64 attachment named `name`.
fn with_attachment(name: &str, content: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut lines = String::new();
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        lines.push_str("\r\n");
    }
    format!(
        "From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\nSubject: files\r\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{name}@remote.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello Alice,\r\nsee the file.\r\n\
         --sep\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n\
         {lines}--sep--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn clamd_answers_ping_finds_eicar_alone_and_in_a_mime_attachment() {
    let (host, port) = clamd_address();
    clamd::ping(&host, port, TIMEOUT).await.expect("PONG");
    match scan(&eicar()).await {
        ScanVerdict::Infected(name) => assert!(name.contains("Eicar"), "{name}"),
        ScanVerdict::Clean => panic!("EICAR not found"),
    }
    assert_eq!(
        scan(b"Subject: hi\r\n\r\nhello\r\n").await,
        ScanVerdict::Clean
    );
    // clamd decodes the base64 attachment itself.
    assert!(matches!(
        scan(&with_attachment("eicar.com", &eicar())).await,
        ScanVerdict::Infected(_)
    ));
    assert_eq!(
        scan(&with_attachment("notes.txt", b"just notes")).await,
        ScanVerdict::Clean
    );
}

#[tokio::test]
async fn stripping_removes_the_eicar_attachment_and_clamd_then_says_ok() {
    let infected = with_attachment("eicar.com", &eicar());
    let stripped = strip_attachments(&infected);
    assert_eq!(stripped.removed, ["eicar.com"]);
    assert_eq!(stripped.unreplaced, 0);
    let text = String::from_utf8(stripped.message.clone()).expect("ASCII");
    // Everything before the attachment is as sent; the structure stays.
    let cut = text
        .find("--sep\r\nContent-Type: text/plain; charset=utf-8")
        .unwrap();
    assert_eq!(&infected[..cut], &stripped.message[..cut]);
    assert!(text.contains("Hello Alice,\r\nsee the file.\r\n--sep\r\n"));
    assert!(text.contains("Virus found:"), "{text}");
    assert!(text.ends_with("\r\n--sep--\r\n"), "{text}");
    assert_eq!(text.matches("--sep").count(), 3);
    assert_eq!(scan(&stripped.message).await, ScanVerdict::Clean);
    assert!(!strip_attachments(&stripped.message).changed());
}

#[tokio::test]
async fn a_blocked_exe_becomes_an_exe_txt_notice() {
    let message = with_attachment("setup.exe", b"MZ\x90\x00 not really a program");
    let blocked = block_extensions(&message, &["exe".to_string()]);
    assert_eq!(blocked.removed, ["setup.exe"]);
    let text = String::from_utf8(blocked.message.clone()).expect("ASCII");
    assert!(text.contains("name=\"setup.exe.txt\""), "{text}");
    assert!(text.contains("filename=\"setup.exe.txt\""), "{text}");
    assert!(
        text.contains("The attachment setup.exe was blocked"),
        "{text}"
    );
    assert!(!text.contains("TVqQ") && !text.contains("TVqA"), "{text}");
    assert_eq!(scan(&blocked.message).await, ScanVerdict::Clean);
}

// ---------------------------------------------------------------------------------------------
// Through the ingress.

/// What the ingress answered to the end of DATA (`None`: refused earlier).
fn send(port: u16, body: &[u8]) -> Option<Reply> {
    let (mut client, banner) = RawClient::connect(port);
    assert_eq!(banner.code, 220);
    assert_eq!(client.cmd("EHLO client.remote.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    let rcpt = client.cmd("RCPT TO:<alice@example.test>");
    if rcpt.code != 250 {
        return None;
    }
    assert_eq!(client.cmd("DATA").code, 354);
    client.send(body);
    let reply = client.cmd(".");
    client.cmd("QUIT");
    Some(reply)
}

async fn set(db: &TestDatabase, name: &str, value: serde_json::Value) {
    AntispamSettings::set(&db.pool, name, value)
        .await
        .unwrap_or_else(|e| panic!("set {name}: {e}"));
}

/// A database with the test directory and anti-virus on against the test clamd.
async fn antivirus_database(action: &str) -> TestDatabase {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let (host, port) = clamd_address();
    set(&db, "antivirus_enabled", json!(true)).await;
    set(&db, "clamd_host", json!(host)).await;
    set(&db, "clamd_port", json!(port)).await;
    set(&db, "antivirus_action", json!(action)).await;
    db
}

/// The ingress, re-reading the anti-spam settings for every message.
fn start(db: &TestDatabase) -> IngressProcess {
    IngressProcess::start(db, &[("MAILCLUSTER_SMTP__ANTISPAM_SETTINGS_SECS", "0")])
}

async fn antivirus_ingress(action: &str) -> (TestDatabase, IngressProcess) {
    let db = antivirus_database(action).await;
    let ingress = start(&db);
    (db, ingress)
}

async fn stored_messages(db: &TestDatabase, ingress: &IngressProcess) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for message in queued(db).await {
        out.push(ingress.body(&message).await);
    }
    out
}

const WIRED: &str = "needs antivirus::check called from the session (see the anti-virus hand-off)";

#[tokio::test(flavor = "multi_thread")]
async fn eicar_is_refused_with_554_and_nothing_is_queued() {
    let (db, ingress) = antivirus_ingress("delete").await;
    let reply = send(ingress.mx_port, &with_attachment("eicar.com", &eicar())).expect(WIRED);
    assert_eq!(reply.code, 554, "{reply:?}");
    assert!(
        reply
            .text()
            .starts_with("5.7.0 Message contains a virus (Eicar-Test-Signature"),
        "{reply:?}"
    );
    assert!(queued(&db).await.is_empty());
    // Clean mail still passes, and both are counted.
    let reply = send(ingress.mx_port, &with_attachment("notes.txt", b"notes")).expect(WIRED);
    assert_eq!(reply.code, 250, "{reply:?}");
    let metrics = ingress.metrics();
    for line in [
        "mailcluster_smtp_virus_scans_total{result=\"infected\"} 1",
        "mailcluster_smtp_virus_scans_total{result=\"clean\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn strip_delivers_the_message_without_the_infected_attachment() {
    let (db, ingress) = antivirus_ingress("strip").await;
    let reply = send(ingress.mx_port, &with_attachment("eicar.com", &eicar())).expect(WIRED);
    assert_eq!(reply.code, 250, "{reply:?}");
    let stored = stored_messages(&db, &ingress).await;
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8_lossy(&stored[0]).into_owned();
    assert!(text.starts_with("Received: "), "{text}");
    assert!(text.contains("Subject: files\r\n"), "{text}");
    assert!(text.contains("Hello Alice,\r\nsee the file.\r\n"), "{text}");
    assert!(text.contains("Virus found:"), "{text}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(eicar());
    assert!(!text.contains(&encoded[..40]), "{text}");
    assert_eq!(scan(&stored[0]).await, ScanVerdict::Clean);
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_extensions_are_replaced_without_the_scanner() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    set(&db, "block_attachments", json!(true)).await;
    let ingress = start(&db);
    let reply = send(
        ingress.mx_port,
        &with_attachment("setup.exe", b"MZ program"),
    )
    .expect(WIRED);
    assert_eq!(reply.code, 250, "{reply:?}");
    let stored = stored_messages(&db, &ingress).await;
    let text = String::from_utf8_lossy(&stored[0]).into_owned();
    assert!(text.contains("filename=\"setup.exe.txt\""), "{text}");
    assert!(
        text.contains("The attachment setup.exe was blocked"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scanner_that_is_down_does_not_lose_mail() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    set(&db, "antivirus_enabled", json!(true)).await;
    set(&db, "clamd_port", json!(mc_tests::free_port())).await;
    let ingress = start(&db);
    let reply = send(ingress.mx_port, &with_attachment("eicar.com", &eicar())).expect(WIRED);
    assert_eq!(reply.code, 250, "{reply:?}");
    assert_eq!(queued(&db).await.len(), 1);
    let metrics = ingress.metrics();
    assert!(
        metrics.contains("mailcluster_smtp_virus_scans_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_with_antivirus_off_is_not_scanned() {
    let db = antivirus_database("delete").await;
    mc_policy::IpRanges::new(db.pool.clone())
        .create(&mc_policy::NewIpRange {
            name: "LAN without anti-virus".into(),
            antivirus: Some(false),
            ..mc_tests::smtp::internet_like_loopback()
        })
        .await
        .expect("create the IP range");
    let ingress = start(&db);
    let reply = send(ingress.mx_port, &with_attachment("eicar.com", &eicar())).expect(WIRED);
    assert_eq!(reply.code, 250, "{reply:?}");
    let metrics = ingress.metrics();
    assert!(
        metrics.contains("mailcluster_smtp_virus_scans_total{result=\"skipped\"} 1"),
        "{metrics}"
    );
}
