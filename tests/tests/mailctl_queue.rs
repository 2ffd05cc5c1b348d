//! `mailctl queue` (a process) against `mailcluster-admin` (a process), with entries queued by the
//! real ingress (a process) for remote recipients. No delivery worker runs, so they stay queued;
//! a worker's deferral and its claim are written as the worker writes them.

use mc_tests::smtp::{IngressProcess, RawClient, loopback_may_relay, queued_id, seed_directory};
use mc_tests::{AdminProcess, TestDatabase, http_get, stderr, stdout};
use serde_json::Value;
use std::process::Output;

/// Sends one message through the ingress; returns its queue id.
fn send(port: u16, sender: &str, recipients: &[&str], subject: &str) -> String {
    let (mut client, greeting) = RawClient::connect(port);
    assert_eq!(greeting.code, 220);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd(&format!("MAIL FROM:<{sender}>")).code, 250);
    for recipient in recipients {
        let reply = client.cmd(&format!("RCPT TO:<{recipient}>"));
        assert_eq!(reply.code, 250, "{recipient}: {reply:?}");
    }
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd(&format!(
        "From: <{sender}>\r\nTo: {}\r\nSubject: {subject}\r\n\r\nHello.\r\n.",
        recipients.join(", ")
    ));
    assert_eq!(reply.code, 250, "{reply:?}");
    let _ = client.cmd("QUIT");
    queued_id(&reply.line()).expect("a queue id")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mailctl failed: {}\n{}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).expect("--json prints JSON")
}

fn fails_with(output: &Output, code: i32, needle: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout {}\nstderr {}",
        stdout(output),
        stderr(output)
    );
    assert!(
        stderr(output).contains(needle),
        "stderr should mention {needle:?}: {}",
        stderr(output)
    );
}

fn ids(listed: &Value) -> Vec<&str> {
    listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["id"].as_str().expect("an id"))
        .collect()
}

async fn scalar(db: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&db.pool)
        .await
        .expect("query")
}

/// Is the recipient's next attempt due now?
async fn due(db: &TestDatabase, address: &str) -> bool {
    sqlx::query_scalar("SELECT next_attempt_at <= now() FROM queue_recipients WHERE address = $1")
        .bind(address)
        .fetch_one(&db.pool)
        .await
        .expect("the recipient")
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_mail_is_listed_shown_retried_removed_and_purged() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    let admin = AdminProcess::start(&db.url);
    let first = send(
        ingress.mx_port,
        "alice@example.test",
        &["one@remote.test", "two@other.test"],
        "first",
    );
    let second = send(
        ingress.mx_port,
        "bob@example.test",
        &["three@remote.test"],
        "second",
    );
    let third = send(
        ingress.mx_port,
        "news@elsewhere.test",
        &["four@faraway.test"],
        "third",
    );

    let table = ok(&admin.mailctl(&["queue", "list"]));
    assert!(table.starts_with("ID"), "a table by default: {table}");
    assert!(
        table.contains(&first) && table.contains("alice@example.test") && table.contains("2/2"),
        "{table}"
    );
    let listed = json(&admin.mailctl(&["queue", "list", "--json"]));
    assert_eq!(ids(&listed), [&third, &second, &first], "newest first");
    assert_eq!(listed[2]["recipients"]["queued"], 2);
    let listed =
        json(&admin.mailctl(&["queue", "list", "--oldest-first", "--limit", "1", "--json"]));
    assert_eq!(ids(&listed), [&first]);
    let listed = json(&admin.mailctl(&["queue", "list", "--domain", "Other.TEST", "--json"]));
    assert_eq!(ids(&listed), [&first]);
    let listed = json(&admin.mailctl(&["queue", "list", "--sender", "BOB@", "--json"]));
    assert_eq!(ids(&listed), [&second]);

    let shown = ok(&admin.mailctl(&["queue", "show", &first]));
    assert!(
        shown.contains("one@remote.test") && shown.contains("two@other.test"),
        "{shown}"
    );
    assert!(
        shown.contains("127.0.0.1") && shown.contains("queued"),
        "{shown}"
    );
    let shown = json(&admin.mailctl(&["queue", "show", &first, "--json"]));
    assert_eq!(shown["recipients"].as_array().map(Vec::len), Some(2));
    fails_with(
        &admin.mailctl(&["queue", "show", "01927f3c-5d2e-7a4b-9c1d-2e3f4a5b6c7d"]),
        1,
        "no queue entry",
    );
    fails_with(
        &admin.mailctl(&["queue", "show", "not-an-id"]),
        1,
        "a queue id is a UUID",
    );

    // As a worker leaves them: one@ deferred for an hour, two@ claimed and in flight.
    sqlx::query(
        "UPDATE queue_recipients
            SET attempts = 1, last_attempt_at = now(), next_attempt_at = now() + interval '1 hour',
                last_error = '451 4.4.1 remote.test: connection timed out'
          WHERE address = 'one@remote.test'",
    )
    .execute(&db.pool)
    .await
    .expect("defer");
    sqlx::query(
        "UPDATE queue_recipients
            SET epoch = epoch + 1, attempts = 1, last_attempt_at = now(),
                next_attempt_at = now() + interval '5 minutes',
                leased_until = now() + interval '5 minutes'
          WHERE address = 'two@other.test'",
    )
    .execute(&db.pool)
    .await
    .expect("claim");
    let table = ok(&admin.mailctl(&["queue", "list"]));
    assert!(table.contains("451 4.4.1 remote.test"), "{table}");
    let retried = ok(&admin.mailctl(&["queue", "retry", &first]));
    assert!(
        retried.contains("1 recipient made due now")
            && retried.contains("1 recipient in flight left to their worker"),
        "{retried}"
    );
    assert!(
        due(&db, "one@remote.test").await,
        "the deferred one is due now"
    );
    assert!(
        !due(&db, "two@other.test").await,
        "the one in flight keeps its lease"
    );
    let retried = json(&admin.mailctl(&["queue", "retry", "--all", "--json"]));
    assert_eq!(
        (
            &retried["rescheduled"],
            &retried["already_due"],
            &retried["in_flight"]
        ),
        (&Value::from(0), &Value::from(3), &Value::from(1))
    );
    fails_with(&admin.mailctl(&["queue", "retry"]), 2, "--all");

    let removed = ok(&admin.mailctl(&["queue", "remove", &second]));
    assert!(
        removed.contains("1 recipient (1 undelivered); no bounce sent"),
        "{removed}"
    );
    fails_with(
        &admin.mailctl(&["queue", "remove", &second]),
        1,
        "no queue entry",
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM queue_entries").await,
        2,
        "removed, and no bounce queued"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM messages").await,
        3,
        "the body is left to the collector"
    );

    fails_with(&admin.mailctl(&["queue", "purge"]), 2, "--yes");
    fails_with(
        &admin.mailctl(&["queue", "purge", "--domain", "remote.test"]),
        2,
        "--yes",
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM queue_entries").await, 2);
    let purged = json(&admin.mailctl(&[
        "queue",
        "purge",
        "--yes",
        "--domain",
        "remote.test",
        "--json",
    ]));
    assert_eq!(
        (
            &purged["entries"],
            &purged["recipients"],
            &purged["undelivered"]
        ),
        (&Value::from(1), &Value::from(2), &Value::from(2))
    );
    let listed = json(&admin.mailctl(&["queue", "list", "--json"]));
    assert_eq!(ids(&listed), [&third]);
    let stats = json(&admin.mailctl(&["queue", "stats", "--json"]));
    assert_eq!(stats["queued_recipients"], 1);
    let purged = ok(&admin.mailctl(&["queue", "purge", "--yes"]));
    assert!(purged.contains("1 entry removed"), "{purged}");
    let table = ok(&admin.mailctl(&["queue", "list"]));
    assert!(table.contains("(none)"), "{table}");
    let stats = ok(&admin.mailctl(&["queue", "stats"]));
    assert!(stats.contains("waiting recipients"), "{stats}");

    let metrics = http_get(&format!("{}/metrics", admin.ops_url)).expect("metrics");
    assert!(
        metrics.contains("mailcluster_admin_queue_recipients{state=\"queued\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailcluster_admin_queue_oldest_age_seconds"),
        "{metrics}"
    );
}
