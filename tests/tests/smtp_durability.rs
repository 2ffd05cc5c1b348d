//! Durable accept: `250` only after the body is in the object store and the queue entry is
//! committed. A crash before that leaves no entry and sends no 250; a crash after it loses
//! nothing; an object store that cannot be reached gives 451 and no entry; SIGTERM ends open
//! sessions with 421 and the process exits cleanly.

use mc_tests::smtp::{
    HOSTNAME, IngressProcess, RawClient, Reply, Tls, count, queued, queued_id, seed_directory,
    smtplib,
};
use mc_tests::{TestDatabase, free_port, http_status};
use serde_json::json;
use std::process::{Command, ExitStatus};
use std::time::Duration;

const MESSAGE: &str = "Subject: durable\r\n\r\nkeep me\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_in_the_middle_of_data_queues_nothing_and_sends_no_250() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    client.send(b"Subject: half\r\n\r\nthe first half of a bo");
    std::thread::sleep(Duration::from_millis(200));
    ingress.kill();
    assert_eq!(client.reply(), None, "no reply at all, certainly no 250");
    assert_eq!(count(&db, "queue_entries").await, 0);
    assert_eq!(count(&db, "queue_recipients").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn message_acknowledged_before_sigkill_is_there_after_restart() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut first = IngressProcess::start(&db, &[]);
    let steps = json!([
        ["mail", "sender@remote.test"],
        ["rcpt", "alice@example.test"],
        ["data", MESSAGE]
    ]);
    let run = smtplib(first.mx_port, Tls::Plain, steps.clone());
    let id = queued_id(&run.steps[2]).unwrap_or_else(|| panic!("{run:?}"));
    // SIGKILL right after the 250: no graceful shutdown can finish anything for it.
    first.kill();
    let prefix = first.s3_prefix.clone();
    let second = IngressProcess::start(&db, &[("MAILCLUSTER_BLOB__S3__PREFIX", &prefix)]);
    let entries = queued(&db).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    assert_eq!(entries[0].recipients, ["alice@example.test"]);
    let body = second.body(&entries[0]).await;
    assert!(String::from_utf8(body).unwrap().ends_with(MESSAGE));
    // The restarted process accepts mail on the same queue.
    let run = smtplib(second.mx_port, Tls::Plain, steps);
    queued_id(&run.steps[2]).unwrap_or_else(|| panic!("{run:?}"));
    assert_eq!(count(&db, "queue_entries").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_object_store_gives_451_4_3_0_and_no_queue_entry() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let ingress = IngressProcess::start_unready(
        &db,
        &[
            ("MAILCLUSTER_BLOB__S3__ENDPOINT", &endpoint),
            ("MAILCLUSTER_BLOB__S3__MAX_ATTEMPTS", "1"),
            ("MAILCLUSTER_BLOB__S3__CONNECT_TIMEOUT_SECS", "1"),
            ("MAILCLUSTER_BLOB__S3__ATTEMPT_TIMEOUT_SECS", "2"),
            ("MAILCLUSTER_BLOB__S3__OPERATION_TIMEOUT_SECS", "3"),
            ("MAILCLUSTER_SMTP__STORE_TIMEOUT_SECS", "5"),
        ],
    );
    assert_eq!(
        http_status(&format!("{}/readyz", ingress.ops_url)),
        Some(503),
        "not ready without its object store"
    );
    let run = smtplib(
        ingress.mx_port,
        Tls::Plain,
        json!([
            ["mail", "sender@remote.test"],
            ["rcpt", "alice@example.test"],
            ["data", MESSAGE],
            ["cmd", "NOOP"]
        ]),
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.steps[2..],
        [
            "451 4.3.0 Requested action aborted: local error, please retry later",
            "250 2.0.0 OK"
        ]
    );
    assert_eq!(count(&db, "queue_entries").await, 0);
    assert_eq!(count(&db, "queue_recipients").await, 0);
    let metrics = ingress.metrics();
    assert!(
        metrics.contains("mailcluster_smtp_messages_rejected_total{reason=\"store_failed\"} 1\n"),
        "{metrics}"
    );
    // The failed upload is counted as an object storage error; the readiness probe is not.
    let put = |result: &str| {
        mc_tests::sample(
            &metrics,
            &format!("mailcluster_blob_operations_total{{op=\"put\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(put("error"), Some(1.0), "{metrics}");
    assert_eq!(put("ok"), Some(0.0), "{metrics}");
}

/// Opens an idle session and one in the middle of DATA, sends SIGTERM, and returns the reply each
/// got, and the exit status.
fn sigterm_with_open_sessions(
    ingress: &mut IngressProcess,
) -> (Option<Reply>, Option<Reply>, ExitStatus) {
    let (mut idle, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(idle.cmd("EHLO client.test").code, 250);
    let (mut sending, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(sending.cmd("EHLO client.test").code, 250);
    assert_eq!(sending.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(sending.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(sending.cmd("DATA").code, 354);
    sending.send(b"Subject: cut\r\n\r\nhalf a bo");
    std::thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(ingress.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    let replies = (idle.reply(), sending.reply());
    assert!(idle.is_closed() && sending.is_closed());
    let exit = ingress.child.wait().expect("exit status");
    (replies.0, replies.1, exit)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_open_sessions_with_421_4_3_2_and_exits_cleanly() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut ingress = IngressProcess::start(&db, &[]);
    let (idle, sending, exit) = sigterm_with_open_sessions(&mut ingress);
    for reply in [idle, sending] {
        let reply = reply.expect("a reply before the close");
        assert_eq!(reply.code, 421, "{reply:?}");
        assert!(reply.text().starts_with("4.3.2 "), "{reply:?}");
    }
    assert!(exit.success(), "{exit:?}\n{}", ingress.log_text());
    assert_eq!(count(&db, "queue_entries").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_reply_names_the_host() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut ingress = IngressProcess::start(&db, &[]);
    let (idle, sending, _) = sigterm_with_open_sessions(&mut ingress);
    let expected = format!("421 4.3.2 {HOSTNAME} service shutting down");
    assert_eq!(idle.map(|r| r.line()).as_deref(), Some(expected.as_str()));
    assert_eq!(
        sending.map(|r| r.line()).as_deref(),
        Some(expected.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_in_the_middle_of_its_data_may_finish_after_sigterm() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut ingress = IngressProcess::start(&db, &[]);
    let (mut sending, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(sending.cmd("EHLO client.test").code, 250);
    assert_eq!(sending.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(sending.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(sending.cmd("DATA").code, 354);
    sending.send(b"Subject: finished late\r\n\r\nthe first half, ");
    std::thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(ingress.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    // The client goes on within the drain window and gets its 250; the next command is refused.
    std::thread::sleep(Duration::from_millis(500));
    let reply = sending.cmd("the second half.\r\n.");
    assert_eq!(reply.code, 250, "{reply:?}");
    let next = sending.cmd("MAIL FROM:<sender@remote.test>");
    assert_eq!(next.code, 421, "{next:?}");
    let exit = ingress.child.wait().expect("exit status");
    assert!(exit.success(), "{exit:?}\n{}", ingress.log_text());
    assert_eq!(count(&db, "queue_entries").await, 1);
}
