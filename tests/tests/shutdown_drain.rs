//! SIGTERM in the middle of traffic, as rolling updates send it (issue 7): the ingress answers
//! every client 250 (then the message is queued) or a 4xx (then the client keeps it), and a
//! delivery worker stops claiming, finishes what it holds and exits; another worker delivers the
//! rest, each message exactly once.

use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox};
use mc_tests::smtp::{IngressProcess, RawClient, queued, queued_id, seed_directory};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_traffic_loses_no_accepted_message() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut ingress = IngressProcess::start(&db, &[]);
    let port = ingress.mx_port;
    // Four clients sending as fast as they can; each remembers what got a 250.
    let senders: Vec<_> = (0..4)
        .map(|client| {
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut refused = 0;
                let (mut session, _) = RawClient::connect(port);
                if session.cmd("EHLO client.test").code != 250 {
                    return (accepted, refused);
                }
                for i in 0.. {
                    let steps = [
                        "MAIL FROM:<sender@remote.test>".to_string(),
                        "RCPT TO:<alice@example.test>".to_string(),
                        "DATA".to_string(),
                        format!("Subject: {client}-{i}\r\n\r\nbody {client} {i}\r\n."),
                    ];
                    let mut last = None;
                    for step in &steps {
                        let reply = session.cmd(step);
                        let expected = if step == "DATA" { 354 } else { 250 };
                        if reply.code != expected {
                            last = Some(reply);
                            break;
                        }
                        last = Some(reply);
                    }
                    match last {
                        Some(reply) if reply.code == 250 => {
                            accepted.push(queued_id(&reply.line()).expect("queue id"));
                        }
                        Some(reply) => {
                            // The only acceptable refusal during shutdown is temporary.
                            assert!(
                                (400..500).contains(&reply.code),
                                "client {client}: {reply:?}"
                            );
                            refused += 1;
                            break;
                        }
                        None => break,
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    sigterm(ingress.child.id());
    let exit = ingress.child.wait().expect("exit status");
    assert!(exit.success(), "{exit:?}\n{}", ingress.log_text());
    let mut accepted = HashSet::new();
    let mut refused = 0;
    for sender in senders {
        let (ids, no) = sender.join().expect("client thread");
        accepted.extend(ids);
        refused += no;
    }
    assert!(accepted.len() > 10, "too little traffic to mean anything");
    assert!(refused > 0, "no client was in a transaction at the SIGTERM");
    // Every 250 is a queued entry.
    let queued_ids: HashSet<String> = queued(&db).await.into_iter().map(|e| e.id).collect();
    assert!(
        accepted.is_subset(&queued_ids),
        "a 250 without a queue entry"
    );

    // A worker that gets SIGTERM while delivering exits cleanly; a second one finishes the rest.
    let env = [
        ("MAILCLUSTER_DELIVERY__CLAIM_BATCH", "16"),
        ("MAILCLUSTER_DELIVERY__CONCURRENCY", "1"),
    ];
    let mut first = WorkerProcess::start(&db, &ingress.s3_prefix, &env);
    std::thread::sleep(Duration::from_millis(100));
    sigterm(first.child.id());
    let started = Instant::now();
    let exit = first.child.wait().expect("worker exit");
    assert!(exit.success(), "{exit:?}\n{}", first.log_text());
    assert!(started.elapsed() < Duration::from_secs(30));
    let _second = WorkerProcess::start(&db, &ingress.s3_prefix, &[]);
    let started = Instant::now();
    let mailbox = loop {
        let mailbox = inbox(&db, "alice@example.test").await;
        if mailbox.len() >= queued_ids.len() || started.elapsed() > Duration::from_secs(30) {
            break mailbox;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivered: Vec<String> = mailbox.into_iter().map(|(_, id)| id).collect();
    let unique: HashSet<String> = delivered.iter().cloned().collect();
    assert_eq!(delivered.len(), unique.len(), "a message delivered twice");
    assert_eq!(unique, queued_ids, "every queued message delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_imap_clients_bye_and_releases_pop3_locks_without_deleting() {
    use mc_tests::access::AccessProcess;
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut access = AccessProcess::start(&db, &mc_testkit::unique_prefix("drain"), &[]);
    let mut clients = access.python_spawn(
        r#"
import json, os, poplib, socket, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
def imap():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(os.environ["IMAPS_PORT"])), timeout=20))
    f = s.makefile("rb")
    f.readline()
    s.sendall(('a LOGIN alice@example.test "%s"\r\n' % os.environ["PASSWORD"]).encode())
    f.readline()
    s.sendall(b"b APPEND INBOX {20}\r\n")
    f.readline()
    s.sendall(b"Subject: m\r\n\r\nbody\r\n\r\n")
    f.readline()
    s.sendall(b"c SELECT INBOX\r\n")
    while not f.readline().startswith(b"c "):
        pass
    return s, f
idler, idler_f = imap()
idler.sendall(b"d IDLE\r\n")
idler_f.readline()
busy, busy_f = imap()
pop = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx)
pop.user("alice@example.test")
pop.pass_(os.environ["PASSWORD"])
pop.dele(1)
print("READY")
def rest(f):
    lines = []
    while True:
        try:
            l = f.readline()
        except Exception as e:
            lines.append("error: %s" % e)
            break
        if not l:
            break
        lines.append(l.decode().rstrip())
    return lines
out = {"idler": rest(idler_f), "busy": rest(busy_f)}
try:
    out["pop"] = pop.file.readline().decode().rstrip()
except Exception as e:
    out["pop"] = "error: %s" % e
print(json.dumps(out))
"#,
        &[],
    );
    assert_eq!(clients.line(), "READY");
    let started = Instant::now();
    sigterm(access.child.id());
    let out = clients.finish();
    let status = access.child.wait().expect("wait for access");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    for who in ["idler", "busy"] {
        let lines = out[who].to_string();
        assert!(lines.contains("* BYE"), "{who}: {out}");
    }
    assert!(
        out["pop"]
            .as_str()
            .unwrap_or("")
            .starts_with("-ERR [SYS/TEMP]"),
        "{out}"
    );
    // The DELE before the shutdown was not applied: no QUIT, no deletion (RFC 1939 section 6).
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM mailbox_messages")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 2, "both appended messages are still there");
}
