//! What accounts do with mail at delivery, end to end (real ingress, real worker, real stores):
//! quota (a full mailbox bounces 5.2.2 to the sender; a full list member does not stop the
//! others), out-of-office replies (once per sender, never to automatic mail or `<>`), account
//! forwarding with a kept copy, and catch-all fan-out.

use mc_directory::{AccountUpdate, Directory, ListMode, NewList};
use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox, recipient_states, wait_for_inbox};
use mc_tests::smtp::{IngressProcess, RawClient, queued, queued_id, seed_directory};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Sends one message (`extra` header lines, then a body of `body_len` bytes); returns its id.
fn send(port: u16, sender: &str, recipients: &[&str], extra: &str, body_len: usize) -> String {
    let (mut client, _) = RawClient::connect(port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd(&format!("MAIL FROM:<{sender}>")).code, 250);
    for rcpt in recipients {
        let reply = client.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert_eq!(reply.code, 250, "{rcpt}: {reply:?}");
    }
    assert_eq!(client.cmd("DATA").code, 354);
    let body = "x".repeat(body_len);
    let reply = client.cmd(&format!(
        "From: <{sender}>\r\nSubject: hello\r\nMessage-ID: <m{body_len}@client.test>\r\n{extra}\r\n{body}\r\n."
    ));
    assert_eq!(reply.code, 250, "{reply:?}");
    queued_id(&reply.line()).expect("a queue id")
}

async fn settled(
    db: &TestDatabase,
    id: &str,
    worker: &WorkerProcess,
) -> Vec<(String, String, Option<String>)> {
    let started = Instant::now();
    loop {
        let states = recipient_states(db, id).await;
        if !states.is_empty() && states.iter().all(|s| s.1 != "queued") {
            return states;
        }
        assert!(
            started.elapsed() < WAIT,
            "{states:?}\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn update(directory: &Directory, address: &str, update: AccountUpdate) {
    directory
        .update_account(address, update)
        .await
        .expect("update the account");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_mailbox_bounces_with_5_2_2_and_a_full_list_member_does_not_stop_the_others() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    update(
        &directory,
        "bob@example.test",
        AccountUpdate {
            quota_bytes: Some(2000),
            ..Default::default()
        },
    )
    .await;
    directory
        .create_list(&NewList {
            address: "team@example.test".into(),
            mode: ListMode::Public,
            announce_address: None,
            require_auth: false,
        })
        .await
        .expect("list");
    for member in ["alice@example.test", "bob@example.test"] {
        directory
            .add_list_member("team@example.test", member)
            .await
            .expect("member");
    }
    let ingress = IngressProcess::start(&db, &[]);
    let worker = WorkerProcess::start(&db, &ingress.s3_prefix, &[]);

    // Fits: delivered, and it counts toward the quota.
    let small = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "",
        500,
    );
    assert_eq!(settled(&db, &small, &worker).await[0].1, "delivered");
    // Does not fit any more: failed with 5.2.2, bounced to alice.
    let large = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "",
        1800,
    );
    let states = settled(&db, &large, &worker).await;
    assert_eq!(states[0].1, "failed");
    assert_eq!(
        states[0].2.as_deref(),
        Some("552 5.2.2 Mailbox full: bob@example.test is over its quota")
    );
    assert_eq!(inbox(&db, "bob@example.test").await.len(), 1);
    let alice = wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
    let entries = queued(&db).await;
    let bounce = entries
        .iter()
        .find(|e| e.id == alice[0])
        .expect("the bounce entry");
    assert_eq!(bounce.sender, "");
    let text = String::from_utf8_lossy(&ingress.body(bounce).await).to_string();
    assert!(text.contains("Status: 5.2.2"), "{text}");

    // Through the list: alice gets her copy, bob's part bounces to the sender.
    let listed = send(
        ingress.mx_port,
        "carol-outside@remote.test",
        &["team@example.test"],
        "",
        1800,
    );
    let states = settled(&db, &listed, &worker).await;
    assert_eq!(states[0].1, "delivered", "{states:?}");
    let alice = wait_for_inbox(&db, "alice@example.test", 2, &worker).await;
    assert!(alice.contains(&listed));
    assert_eq!(inbox(&db, "bob@example.test").await.len(), 1);
    let entries = queued(&db).await;
    let bounce = entries
        .iter()
        .find(|e| e.sender.is_empty() && e.recipients == ["carol-outside@remote.test"])
        .expect("a bounce for the list member over quota");
    let text = String::from_utf8_lossy(&ingress.body(bounce).await).to_string();
    assert!(
        text.contains("Final-Recipient: rfc822; bob@example.test"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_office_reply_goes_once_per_sender_and_never_to_automatic_mail() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    update(
        &directory,
        "bob@example.test",
        AccountUpdate {
            autoreply_enabled: Some(true),
            autoreply_subject: Some("Away: %SUBJECT%".into()),
            autoreply_body: Some("I am away; your message \"%SUBJECT%\" will wait.".into()),
            ..Default::default()
        },
    )
    .await;
    let ingress = IngressProcess::start(&db, &[]);
    let worker = WorkerProcess::start(&db, &ingress.s3_prefix, &[]);

    let first = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "",
        10,
    );
    let second = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "",
        11,
    );
    let bulk = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "Precedence: bulk\r\n",
        12,
    );
    let auto = send(
        ingress.mx_port,
        "robot@remote.test",
        &["bob@example.test"],
        "Auto-Submitted: auto-generated\r\n",
        13,
    );
    let null = send(ingress.mx_port, "", &["bob@example.test"], "", 14);
    for id in [&first, &second, &bulk, &auto, &null] {
        assert_eq!(settled(&db, id, &worker).await[0].1, "delivered");
    }
    assert_eq!(inbox(&db, "bob@example.test").await.len(), 5);
    // Exactly one reply, to alice, from <>.
    let alice = wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies: Vec<_> = queued(&db)
        .await
        .into_iter()
        .filter(|e| e.sender.is_empty() && e.recipients.iter().any(|r| r != "bob@example.test"))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].recipients, ["alice@example.test"]);
    assert_eq!(alice, [replies[0].id.clone()]);
    let text = String::from_utf8_lossy(&ingress.body(&replies[0]).await).to_string();
    assert!(text.contains("Subject: Away: hello\r\n"), "{text}");
    assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
    // It answers whichever of alice's two messages was delivered first (they may be delivered
    // at the same moment).
    assert!(
        text.contains("In-Reply-To: <m10@client.test>\r\n")
            || text.contains("In-Reply-To: <m11@client.test>\r\n"),
        "{text}"
    );
    assert!(text.contains("your message \"hello\" will wait."), "{text}");

    // Switched on again: the same sender hears it once more.
    update(
        &directory,
        "bob@example.test",
        AccountUpdate {
            autoreply_enabled: Some(true),
            ..Default::default()
        },
    )
    .await;
    let third = send(
        ingress.mx_port,
        "alice@example.test",
        &["bob@example.test"],
        "",
        15,
    );
    settled(&db, &third, &worker).await;
    wait_for_inbox(&db, "alice@example.test", 2, &worker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_with_a_kept_copy_and_catch_all_fan_out() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    update(
        &directory,
        "alice@example.test",
        AccountUpdate {
            forward_enabled: Some(true),
            forward_address: Some("bob@example.test".into()),
            forward_keep_copy: Some(true),
            ..Default::default()
        },
    )
    .await;
    directory
        .set_catch_all("example.test", Some("alice@example.test"))
        .await
        .expect("catch-all");
    let ingress = IngressProcess::start(&db, &[]);
    let worker = WorkerProcess::start(&db, &ingress.s3_prefix, &[]);
    let direct = send(
        ingress.mx_port,
        "someone@remote.test",
        &["alice@example.test"],
        "",
        20,
    );
    let caught = send(
        ingress.mx_port,
        "someone@remote.test",
        &["nobody@example.test"],
        "",
        21,
    );
    for id in [&direct, &caught] {
        assert_eq!(settled(&db, id, &worker).await[0].1, "delivered");
    }
    // Each message once in alice's INBOX (kept copy) and once in bob's (forward).
    let mut alice = wait_for_inbox(&db, "alice@example.test", 2, &worker).await;
    let mut bob = wait_for_inbox(&db, "bob@example.test", 2, &worker).await;
    alice.sort();
    bob.sort();
    let mut expected = vec![direct, caught];
    expected.sort();
    assert_eq!(alice, expected);
    assert_eq!(bob, expected);
}
