//! SIGTERM in the middle of traffic, as rolling updates send it (issue 7): the ingress answers
//! every client 250 (then the message is queued) or a 4xx (then the client keeps it), and a
//! delivery worker stops claiming, finishes what it holds and exits; another worker delivers the
//! rest, each message exactly once. A delivery that outlasts the grace period is abandoned, not
//! lost: the worker exits on time and the recipient stays queued for another worker. IMAP clients
//! get BYE, POP3 clients an error with their deletions not applied; the admin API answers the
//! requests it started and stores exactly what it reported.

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

/// A remote server that accepts the connection and never says a word holds a delivery far longer
/// than the grace period (the greeting timeout is minutes). SIGTERM: the worker exits after
/// `ops.shutdown_grace_secs` (2 s), not after the delivery, and the recipient is still queued
/// under its lease (neither delivered nor failed), for another worker once the lease expires.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_outlasting_the_grace_period_is_abandoned_not_lost() {
    use std::io::Read;
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    mc_tests::smtp::loopback_may_relay(&db).await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the silent server");
    let port = silent.local_addr().expect("address").port();
    mc_tests::delivery::route(
        &db,
        "remote.test",
        "127.0.0.1",
        port,
        mc_policy::TlsMode::None,
        None,
        None,
    )
    .await;
    let dns = mc_tests::dns::DnsServer::start(mc_tests::dns::Zone::default());
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<someone@remote.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    assert_eq!(client.cmd("Subject: stuck\r\n\r\nHello.\r\n.").code, 250);
    let dns_servers = format!("[\"{}\"]", dns.addr());
    let mut worker = WorkerProcess::start(
        &db,
        &ingress.s3_prefix,
        &[
            ("MAILCLUSTER_OPS__SHUTDOWN_GRACE_SECS", "2"),
            ("MAILCLUSTER_DELIVERY__DNS_SERVERS", dns_servers.as_str()),
            ("MAILCLUSTER_DELIVERY__OWN_NETWORKS", "[]"),
        ],
    );
    // The worker is connected and waits for a greeting that never comes.
    let (accepted, waiting) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let accepted_connection = silent.accept();
        let _ = accepted.send(accepted_connection.is_ok());
        if let Ok((mut connection, _)) = accepted_connection {
            let mut sink = Vec::new();
            let _ = connection.read_to_end(&mut sink);
        }
    });
    assert_eq!(
        waiting.recv_timeout(Duration::from_secs(30)),
        Ok(true),
        "the worker never connected:\n{}",
        worker.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    sigterm(worker.child.id());
    let started = Instant::now();
    let exit = worker.child.wait().expect("worker exit");
    let took = started.elapsed();
    assert!(exit.success(), "{exit:?}\n{}", worker.log_text());
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "exited after {took:?}, with a grace period of 2 s"
    );
    assert!(
        worker.log_text().contains("shutdown grace period over"),
        "{}",
        worker.log_text()
    );
    let (state, leased): (String, bool) = sqlx::query_as(
        "SELECT state, leased_until > now() FROM queue_recipients WHERE address = 'someone@remote.test'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the recipient row");
    assert_eq!(state, "queued", "abandoned, not finished");
    assert!(leased, "still under the lease another worker waits out");

    // Once the lease has run out (moved into the past here; lease_secs is 300 s), another worker
    // delivers it: to a receiver that answers this time.
    let sink = mc_tests::sink::SinkProcess::start(mc_tests::sink::SinkOptions::default());
    mc_tests::delivery::route(
        &db,
        "remote.test",
        "127.0.0.1",
        sink.port(),
        mc_policy::TlsMode::None,
        None,
        None,
    )
    .await;
    sqlx::query(
        "UPDATE queue_recipients SET leased_until = now() - interval '1 second',
                next_attempt_at = now() - interval '1 second'",
    )
    .execute(&db.pool)
    .await
    .expect("expire the lease");
    let _second = WorkerProcess::start(
        &db,
        &ingress.s3_prefix,
        &[
            ("MAILCLUSTER_DELIVERY__DNS_SERVERS", dns_servers.as_str()),
            ("MAILCLUSTER_DELIVERY__OWN_NETWORKS", "[]"),
        ],
    );
    let received = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(received.len(), 1, "the abandoned message was not delivered");
}

/// The admin API gets SIGTERM while four clients add domains (mailctl, one request per process):
/// the service exits cleanly, every domain mailctl reported added is stored, and no other is (a
/// request is answered in full or refused before it started: nothing half-done).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_requests_leaves_the_admin_api_consistent() {
    let db = TestDatabase::migrated().await;
    let mut admin = mc_tests::AdminProcess::start(&db.url);
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let api = admin.api_url.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for i in 0..1000 {
                    let name = format!("d{client}-{i}.test");
                    let out = mc_tests::mailctl(
                        &api,
                        Some(mc_tests::ADMIN_TOKEN),
                        &["domain", "add", &name],
                        None,
                    );
                    let added = out.status.success();
                    results.push((name, added));
                    if !added {
                        break;
                    }
                }
                results
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    sigterm(admin.child.id());
    let started = Instant::now();
    let exit = admin.child.wait().expect("admin exit");
    assert!(exit.success(), "{exit:?}\n{}", admin.log_text());
    assert!(started.elapsed() < Duration::from_secs(30));
    let results: Vec<(String, bool)> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("client thread"))
        .collect();
    let added: HashSet<String> = results
        .iter()
        .filter(|(_, added)| *added)
        .map(|(name, _)| name.clone())
        .collect();
    assert!(added.len() > 4, "too little traffic to mean anything");
    assert!(
        results.iter().filter(|(_, added)| !added).count() == 4,
        "each client ends with one refused request"
    );
    let stored: HashSet<String> = sqlx::query_scalar("SELECT name FROM domains")
        .fetch_all(&db.pool)
        .await
        .expect("domains")
        .into_iter()
        .collect();
    assert_eq!(stored, added, "stored exactly what was reported added");
}

/// A request that cannot finish (its query waits for a table lock the test holds; the statement
/// timeout is 30 s) holds the admin API's drain only for `ops.shutdown_grace_secs` (2 s here);
/// the client sees its connection cut, not an answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_admin_request_holds_the_drain_only_for_the_grace_period() {
    let db = TestDatabase::migrated().await;
    let mut admin = mc_tests::AdminProcess::start_with(
        &db.url,
        &[("MAILCLUSTER_OPS__SHUTDOWN_GRACE_SECS", "2")],
    );
    let mut lock = db.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE domains IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock the domains");
    let api = admin.api_url.clone();
    let request = std::thread::spawn(move || {
        mc_tests::mailctl(&api, Some(mc_tests::ADMIN_TOKEN), &["domain", "list"], None)
    });
    // The request reaches its query and waits for the lock.
    let started = Instant::now();
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the request never waited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(admin.child.id());
    let started = Instant::now();
    let exit = admin.child.wait().expect("admin exit");
    let took = started.elapsed();
    assert!(exit.success(), "{exit:?}\n{}", admin.log_text());
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "exited after {took:?}, with a grace period of 2 s\n{}",
        admin.log_text()
    );
    let out = request.join().expect("mailctl thread");
    assert!(!out.status.success(), "{}", mc_tests::stdout(&out));
    lock.rollback().await.expect("release the lock");
}
