//! Submission listeners (STARTTLS and implicit TLS): AUTH is required for every message, offered
//! only inside TLS, checked against the directory (and again before every MAIL), and a submitted
//! message gets the `Message-ID`/`Date` it lacks.

use mc_directory::AccountUpdate;
use mc_tests::TestDatabase;
use mc_tests::smtp::{
    HOSTNAME, IngressProcess, PASSWORD, PythonSession, RawClient, Tls, count, disable_account,
    queued, queued_id, seed_directory, smtplib, swaks,
};
use mc_types::Secret;
use serde_json::json;

const MESSAGE: &str =
    "From: alice@example.test\r\nTo: friend@elsewhere.test\r\nSubject: submitted\r\n\r\nHi.\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn submission_without_auth_refuses_mail_with_530_5_7_0() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    for tls in [Tls::Plain, Tls::StartTls] {
        let run = smtplib(
            ingress.submission_port,
            tls,
            json!([["mail", "alice@example.test"], ["rcpt", "bob@example.test"]]),
        );
        assert_eq!(run.error, None);
        assert_eq!(
            run.steps,
            [
                "530 5.7.0 SMTP authentication is required",
                "503 5.5.1 Must have sender first",
            ],
            "{tls:?}"
        );
    }
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_is_not_offered_before_starttls_and_is_538_5_7_11() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    for port in [ingress.submission_port, ingress.mx_port] {
        let (mut client, banner) = RawClient::connect(port);
        assert_eq!(banner.line(), format!("220 {HOSTNAME} ESMTP ready"));
        let ehlo = client.cmd("EHLO client.test");
        assert_eq!(ehlo.code, 250);
        assert!(ehlo.lines.contains(&"STARTTLS".to_string()), "{ehlo:?}");
        assert!(
            !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
            "{ehlo:?}"
        );
        let refused = "538 5.7.11 Encryption required for requested authentication mechanism";
        // "\0alice@example.test\0correct horse battery"
        let plain = "AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=";
        assert_eq!(client.cmd(&format!("AUTH PLAIN {plain}")).line(), refused);
        assert_eq!(client.cmd("AUTH LOGIN").line(), refused);
        assert_eq!(client.cmd("QUIT").code, 221);
    }
    // smtplib sees no AUTH keyword either, and gets AUTH after STARTTLS.
    let run = smtplib(ingress.submission_port, Tls::Plain, json!([]));
    assert!(!run.ehlo.iter().any(|k| k.starts_with("AUTH")), "{run:?}");
    let run = smtplib(ingress.submission_port, Tls::StartTls, json!([]));
    assert!(
        run.ehlo.contains(&"AUTH PLAIN LOGIN".to_string()),
        "{run:?}"
    );
    assert!(!run.ehlo.contains(&"STARTTLS".to_string()), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_plain_and_login_after_starttls_are_235_with_smtplib_and_swaks() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let mut ids = Vec::new();
    for mechanism in ["PLAIN", "LOGIN"] {
        let run = smtplib(
            ingress.submission_port,
            Tls::StartTls,
            json!([
                ["auth", mechanism, "alice@example.test", PASSWORD],
                ["mail", "alice@example.test"],
                ["rcpt", "friend@elsewhere.test"],
                ["data", MESSAGE]
            ]),
        );
        assert_eq!(run.error, None);
        assert_eq!(run.steps[0], "235 2.7.0 Authentication successful");
        ids.push(queued_id(&run.steps[3]).expect("queued"));

        let run = swaks(
            ingress.submission_port,
            &[
                "--tls",
                "--auth",
                mechanism,
                "--auth-user",
                "bob@example.test",
                "--auth-password",
                PASSWORD,
                "--from",
                "bob@example.test",
                "--to",
                "friend@elsewhere.test",
            ],
        );
        assert_eq!(run.exit, Some(0), "{}", run.transcript);
        let finals = run.finals();
        assert!(
            finals.contains(&"220 2.0.0 Ready to start TLS"),
            "{finals:?}"
        );
        assert!(
            finals.contains(&"235 2.7.0 Authentication successful"),
            "{finals:?}"
        );
        let queued_line = finals.iter().find(|l| l.contains("queued as")).unwrap();
        ids.push(queued_id(queued_line).unwrap());
    }
    let entries = queued(&db).await;
    let users: Vec<_> = entries.iter().map(|e| e.auth_user.as_deref()).collect();
    assert_eq!(
        users,
        [
            Some("alice@example.test"),
            Some("bob@example.test"),
            Some("alice@example.test"),
            Some("bob@example.test")
        ]
    );
    let queued_ids: Vec<_> = entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(queued_ids, ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_or_unknown_login_is_535_5_7_8() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let failed = "535 5.7.8 Authentication failed. Restarting authentication process";
    let run = smtplib(
        ingress.submission_port,
        Tls::StartTls,
        json!([
            ["auth", "PLAIN", "alice@example.test", "wrong password"],
            ["auth", "LOGIN", "nobody@example.test", PASSWORD],
            ["mail", "alice@example.test"]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps,
        [failed, failed, "530 5.7.0 SMTP authentication is required"]
    );
    let run = swaks(
        ingress.submission_port,
        &[
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            "alice@example.test",
            "--auth-password",
            "wrong password",
            "--to",
            "friend@elsewhere.test",
        ],
    );
    assert!(run.finals().contains(&failed), "{}", run.transcript);
    // swaks exits 28 when authentication fails.
    assert_eq!(run.exit, Some(28), "{}", run.transcript);
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn implicit_tls_submission_is_queued_with_message_id_and_date_added() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let run = smtplib(
        ingress.submissions_port,
        Tls::Implicit,
        json!([
            ["auth", "LOGIN", "alice@example.test", PASSWORD],
            ["mail", "alice@example.test"],
            ["rcpt", "friend@elsewhere.test"],
            ["data", MESSAGE]
        ]),
    );
    assert_eq!(run.error, None);
    assert!(!run.ehlo.contains(&"STARTTLS".to_string()), "{run:?}");
    let id = queued_id(&run.steps[3]).expect("queued");
    let run = swaks(
        ingress.submissions_port,
        &[
            "--tls-on-connect",
            "--auth",
            "PLAIN",
            "--auth-user",
            "bob@example.test",
            "--auth-password",
            PASSWORD,
            "--from",
            "bob@example.test",
            "--to",
            "friend@elsewhere.test",
        ],
    );
    assert_eq!(run.exit, Some(0), "{}", run.transcript);
    let entries = queued(&db).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id, id);
    assert_eq!(entries[0].auth_user.as_deref(), Some("alice@example.test"));
    assert_eq!(entries[1].auth_user.as_deref(), Some("bob@example.test"));

    let body = String::from_utf8(ingress.body(&entries[0]).await).unwrap();
    assert!(body.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby mx.test.example (mailcluster) with ESMTPSA id "), "{body}");
    assert!(
        body.contains(&format!("\r\nMessage-ID: <{id}@{HOSTNAME}>\r\nDate: ")),
        "{body}"
    );
    assert!(body.ends_with(MESSAGE), "{body}");
    // swaks writes its own Message-Id and Date: none is added.
    let body = String::from_utf8(ingress.body(&entries[1]).await).unwrap();
    let header_count = |name: &str| {
        body.lines()
            .filter(|l| l.to_ascii_lowercase().starts_with(name))
            .count()
    };
    assert_eq!(header_count("message-id:"), 1, "{body}");
    assert_eq!(header_count("date:"), 1, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn account_disabled_mid_session_gets_550_5_7_8_on_the_next_mail() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let mut session = PythonSession::start(
        ingress.submission_port,
        Tls::StartTls,
        json!([
            ["auth", "PLAIN", "alice@example.test", PASSWORD],
            ["mail", "alice@example.test"],
            ["rcpt", "friend@elsewhere.test"],
            ["data", MESSAGE],
            ["pause"],
            ["mail", "alice@example.test"],
            ["rcpt", "friend@elsewhere.test"]
        ]),
    );
    session.wait_pause();
    disable_account(&directory, "alice@example.test").await;
    session.resume();
    let run = session.finish();
    assert_eq!(run.error, None);
    assert!(
        run.steps[3].starts_with("250 2.0.0 OK queued as "),
        "{run:?}"
    );
    assert_eq!(
        run.steps[4..],
        [
            "550 5.7.8 Login credentials no longer valid. Please re-authenticate",
            "503 5.5.1 Must have sender first",
        ]
    );
    assert_eq!(count(&db, "queue_entries").await, 1);

    // A password changed meanwhile ends the session's authentication the same way.
    let mut session = PythonSession::start(
        ingress.submissions_port,
        Tls::Implicit,
        json!([
            ["auth", "LOGIN", "bob@example.test", PASSWORD],
            ["pause"],
            ["mail", "bob@example.test"]
        ]),
    );
    session.wait_pause();
    let update = AccountUpdate {
        password: Some(Secret::new("a brand new password".to_string())),
        ..Default::default()
    };
    directory
        .update_account("bob@example.test", update)
        .await
        .unwrap();
    session.resume();
    let run = session.finish();
    assert_eq!(
        run.steps,
        [
            "235 2.7.0 Authentication successful",
            "550 5.7.8 Login credentials no longer valid. Please re-authenticate",
        ]
    );
}

/// Every inbound TLS handshake is counted by listener and result: implicit TLS on 465 and
/// STARTTLS on 587 (smtplib, TLS 1.3), a plaintext client on 465 (failed) and a client that opens
/// 465 and says nothing (timeout, after `handshake_timeout_secs`).
#[tokio::test(flavor = "multi_thread")]
async fn tls_handshakes_are_counted_by_listener_and_result() {
    use std::io::{Read, Write};
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__HANDSHAKE_TIMEOUT_SECS", "1")]);
    for (port, tls) in [
        (ingress.submissions_port, Tls::Implicit),
        (ingress.submission_port, Tls::StartTls),
    ] {
        let run = smtplib(port, tls, json!([["cmd", "NOOP"]]));
        assert_eq!(run.error, None, "{run:?}");
    }
    let connect = || {
        let stream = std::net::TcpStream::connect(("127.0.0.1", ingress.submissions_port))
            .expect("connect to 465");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        stream
    };
    let mut plaintext = connect();
    plaintext
        .write_all(b"EHLO client.test\r\n")
        .expect("write to 465");
    let mut rest = Vec::new();
    let _ = plaintext.read_to_end(&mut rest);
    let mut silent = connect();
    let started = std::time::Instant::now();
    let _ = silent.read_to_end(&mut rest);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a silent client was not cut at the handshake deadline"
    );
    let metrics = ingress.metrics();
    let handshakes = |listener: &str, result: &str| {
        mc_tests::sample(
            &metrics,
            &format!(
                "mailcluster_smtp_tls_handshakes_total{{listener=\"{listener}\",result=\"{result}\"}}"
            ),
        )
    };
    assert_eq!(handshakes("submissions", "tls1.3"), Some(1.0), "{metrics}");
    assert_eq!(handshakes("submission", "tls1.3"), Some(1.0), "{metrics}");
    assert_eq!(handshakes("submissions", "failed"), Some(1.0), "{metrics}");
    assert_eq!(handshakes("submissions", "timeout"), Some(1.0), "{metrics}");
}
