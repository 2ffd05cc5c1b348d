//! Remote delivery end to end: mail accepted by the real ingress is delivered by the real worker
//! to a real SMTP receiver on loopback (aiosmtpd, `mc_tests::sink`), found through a real DNS
//! server on loopback (`mc_tests::dns`): MX order, STARTTLS with the certificate verified, DKIM
//! signatures checked by an independent verifier (dkimpy), per-recipient 5xx bounces, 4xx
//! retries, routes with authentication, the relayer, null MX, unknown domains, the loop guard
//! and forwards of hosted addresses to remote ones.

use mc_directory::Directory;
use mc_policy::{DeliverySettings, NewRelayer, TlsMode};
use mc_tests::TestDatabase;
use mc_tests::delivery::{WorkerProcess, inbox, recipient_states, route, wait_for_inbox};
use mc_tests::dns::{DnsServer, Zone};
use mc_tests::sink::{SinkOptions, SinkProcess, dkim_verify};
use mc_tests::smtp::{IngressProcess, RawClient, loopback_may_relay, queued_id, seed_directory};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A CA and a certificate it issued for `names`, as PEM files in `dir`: (ca, cert, key).
fn certificates(dir: &std::path::Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

/// Sends one message from `sender` to `recipients` through the ingress; returns its queue id.
/// Its body has a line that starts with a dot (stuffed here as a client must).
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
        "From: Alice <{sender}>\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\r\nHello there.\r\n..leading dot line\r\n.",
        recipients.join(", ")
    ));
    assert_eq!(reply.code, 250, "{reply:?}");
    let _ = client.cmd("QUIT");
    queued_id(&reply.line()).expect("a queue id")
}

/// Waits until every recipient of `id` left the `queued` state (or was deferred at least once,
/// when `deferred` is set); returns the states.
async fn settled(
    db: &TestDatabase,
    id: &str,
    worker: &WorkerProcess,
    deferred: bool,
) -> Vec<(String, String, Option<String>)> {
    let started = Instant::now();
    loop {
        let states = recipient_states(db, id).await;
        let done = if deferred {
            states.iter().any(|s| s.1 == "queued" && s.2.is_some())
        } else {
            states.iter().all(|s| s.1 != "queued")
        };
        if done && !states.is_empty() {
            return states;
        }
        assert!(
            started.elapsed() < WAIT,
            "recipients of {id} did not settle: {states:?}\nworker log:\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The worker's environment for tests: our DNS server, MX hosts on the sink's port, nothing of
/// loopback counted as this cluster unless `own` says otherwise.
fn worker_env(
    dns: &DnsServer,
    mx_port: u16,
    ca: Option<&PathBuf>,
    own: &str,
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "MAILCLUSTER_DELIVERY__DNS_SERVERS".to_string(),
            format!("[\"{}\"]", dns.addr()),
        ),
        (
            "MAILCLUSTER_DELIVERY__REMOTE_PORT".into(),
            mx_port.to_string(),
        ),
        ("MAILCLUSTER_DELIVERY__OWN_NETWORKS".into(), own.to_string()),
        (
            "MAILCLUSTER_DELIVERY__HELO_NAME".into(),
            "out.example.test".into(),
        ),
    ];
    if let Some(ca) = ca {
        env.push((
            "MAILCLUSTER_DELIVERY__TLS_CA_FILE".into(),
            ca.display().to_string(),
        ));
    }
    env
}

fn start_worker(
    db: &TestDatabase,
    ingress: &IngressProcess,
    env: &[(String, String)],
) -> WorkerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    WorkerProcess::start(db, &ingress.s3_prefix, &env)
}

#[tokio::test(flavor = "multi_thread")]
async fn mx_delivery_uses_preference_order_starttls_and_a_dkim_signature_that_verifies() {
    let db = TestDatabase::migrated().await;
    let _directory: Directory = seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let settings = DeliverySettings::new(db.pool.clone());
    let record = settings
        .generate_dkim("example.test", "sel1")
        .await
        .expect("generate a DKIM key");
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(certs.path(), &["mx1.remote.test"]);
    let sink = SinkProcess::start(SinkOptions {
        hostname: "mx1.remote.test".into(),
        tls: Some((cert, key)),
        ..Default::default()
    });
    let mut zone = Zone::default();
    // The preferred MX has no address: the worker must go on to the next one.
    zone.mx("remote.test", 5, "gone.remote.test")
        .mx("remote.test", 10, "mx1.remote.test")
        .mx("remote.test", 20, "mx2.remote.test")
        .a("mx1.remote.test", Ipv4Addr::LOCALHOST)
        .a("mx2.remote.test", Ipv4Addr::new(127, 0, 0, 9));
    let dns = DnsServer::start(zone);
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &[
            "one@remote.test",
            "two@remote.test",
            "reject-me@remote.test",
            "bob@example.test",
        ],
        "mx-delivery",
    );
    let worker = start_worker(
        &db,
        &ingress,
        &worker_env(&dns, sink.port(), Some(&ca), "[]"),
    );
    let states = settled(&db, &id, &worker, false).await;

    // One transaction for the three remote recipients; the refused one bounced.
    let received = sink.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    let delivered = &received[0];
    assert_eq!(delivered.mail_from, "alice@example.test");
    assert_eq!(delivered.rcpt_tos, ["one@remote.test", "two@remote.test"]);
    assert!(delivered.tls, "STARTTLS was offered and must be used");
    assert_eq!(delivered.helo, "out.example.test");
    let text = String::from_utf8_lossy(&delivered.data);
    assert!(
        text.contains("\r\n.leading dot line\r\n"),
        "dot-stuffing undone: {text}"
    );
    let verdict = dkim_verify(&delivered.data, &[(&record.txt_name, &record.txt_value)]);
    assert_eq!(
        verdict.as_deref(),
        Ok("pass d=example.test s=sel1"),
        "{text}"
    );
    // The signature covers the body: changed, it fails.
    let mut altered = delivered.data.clone();
    altered.extend_from_slice(b"appended\r\n");
    assert!(dkim_verify(&altered, &[(&record.txt_name, &record.txt_value)]).is_err());

    let by_address = |address: &str| {
        states
            .iter()
            .find(|s| s.0 == address)
            .unwrap_or_else(|| panic!("{address} in {states:?}"))
            .clone()
    };
    assert_eq!(by_address("one@remote.test").1, "delivered");
    assert_eq!(by_address("two@remote.test").1, "delivered");
    assert_eq!(by_address("bob@example.test").1, "delivered");
    let refused = by_address("reject-me@remote.test");
    assert_eq!(refused.1, "failed");
    assert_eq!(refused.2.as_deref(), Some("550 5.1.1 No such user here"));
    // The bounce reaches alice's INBOX (local), naming the remote server and its reply.
    wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
    let metrics = mc_tests::http_get(&format!("{}/metrics", worker.ops_url)).unwrap_or_default();
    assert!(
        metrics.contains("mailcluster_delivery_remote_tls_total{result=\"verified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailcluster_delivery_dkim_signed_total 1"),
        "{metrics}"
    );
    // The address-less preferred MX was looked up, and skipped.
    assert!(dns.queries("gone.remote.test") > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_failure_is_retried_later_and_then_delivered() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let sink = SinkProcess::start(SinkOptions {
        tempfail_times: 1,
        ..Default::default()
    });
    let mut zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test")
        .a("mx.remote.test", Ipv4Addr::LOCALHOST);
    let dns = DnsServer::start(zone);
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["tempfail-x@remote.test"],
        "retry",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, sink.port(), None, "[]"));
    let states = settled(&db, &id, &worker, true).await;
    assert_eq!(states[0].1, "queued");
    let error = states[0].2.clone().unwrap_or_default();
    assert!(error.starts_with("451 4.3.0 Try again later"), "{error}");
    let next: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM queue_recipients WHERE queue_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await
    .expect("next attempt");
    // retry_minutes defaults to 60 (the reference server's interval).
    assert!(
        (3500.0..=3600.0).contains(&next),
        "next attempt in {next} s"
    );
    assert!(sink.messages().is_empty());
    // Time passes (injected: the retry is made due now).
    sqlx::query("UPDATE queue_recipients SET next_attempt_at = now() WHERE queue_id = $1::uuid")
        .bind(&id)
        .execute(&db.pool)
        .await
        .expect("make the retry due");
    let states = settled(&db, &id, &worker, false).await;
    assert_eq!(states[0].1, "delivered", "{states:?}");
    let received = sink.wait_for(1, WAIT);
    assert_eq!(received[0].rcpt_tos, ["tempfail-x@remote.test"]);
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM queue_recipients WHERE queue_id = $1::uuid")
            .bind(&id)
            .fetch_one(&db.pool)
            .await
            .expect("attempts");
    assert_eq!(attempts, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_run_out_with_a_bounce_and_a_route_overrides_the_retry_count() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let sink = SinkProcess::start(SinkOptions {
        tempfail_times: 100,
        ..Default::default()
    });
    // A route with no retries: the first temporary failure is final.
    route(
        &db,
        "remote.test",
        "127.0.0.1",
        sink.port(),
        TlsMode::None,
        None,
        Some(0),
    )
    .await;
    let dns = DnsServer::start(Zone::default());
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["tempfail-y@remote.test"],
        "exhausted",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, 9, None, "[]"));
    let states = settled(&db, &id, &worker, false).await;
    assert_eq!(states[0].1, "failed");
    let error = states[0].2.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "4.4.7 delivery attempts exhausted after 1 attempt(s); last error: 451 4.3.0"
        ),
        "{error}"
    );
    wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_with_required_tls_and_authentication_is_used_instead_of_the_mx() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let certs = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(certs.path(), &["smarthost.partner.test"]);
    let routed = SinkProcess::start(SinkOptions {
        hostname: "smarthost.partner.test".into(),
        tls: Some((cert, key)),
        auth: Some(("relayuser".into(), "s3cret-pass".into())),
        ..Default::default()
    });
    let mut zone = Zone::default();
    zone.a("smarthost.partner.test", Ipv4Addr::LOCALHOST)
        // The MX must be ignored: the route wins.
        .mx("partner.test", 10, "mx.partner.test")
        .a("mx.partner.test", Ipv4Addr::new(127, 0, 0, 9));
    let dns = DnsServer::start(zone);
    route(
        &db,
        "*.partner.test",
        "smarthost.partner.test",
        routed.port(),
        TlsMode::Required,
        Some(("relayuser", "s3cret-pass")),
        None,
    )
    .await;
    route(
        &db,
        "partner.test",
        "smarthost.partner.test",
        routed.port(),
        TlsMode::Required,
        Some(("relayuser", "s3cret-pass")),
        None,
    )
    .await;
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["x@partner.test", "y@deep.sub.partner.test"],
        "routed",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, 9, Some(&ca), "[]"));
    let states = settled(&db, &id, &worker, false).await;
    assert!(
        states.iter().all(|s| s.1 == "delivered"),
        "{states:?}\n{}",
        worker.log_text()
    );
    let received = routed.wait_for(2, WAIT);
    for message in &received {
        assert!(message.tls);
        assert_eq!(message.auth_user.as_deref(), Some("relayuser"));
    }
    let mut recipients: Vec<String> = received.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["x@partner.test", "y@deep.sub.partner.test"]);
    assert_eq!(dns.queries("mx.partner.test"), 0, "the MX was looked at");
    assert!(
        !worker.log_text().contains("s3cret-pass"),
        "the password reached the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn required_tls_without_a_verified_certificate_defers() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let certs = tempfile::tempdir().expect("tempdir");
    // The certificate is for another name than the route's host.
    let (ca, cert, key) = certificates(certs.path(), &["someone-else.test"]);
    let sink = SinkProcess::start(SinkOptions {
        tls: Some((cert, key)),
        ..Default::default()
    });
    route(
        &db,
        "strict.test",
        "127.0.0.1",
        sink.port(),
        TlsMode::Required,
        None,
        None,
    )
    .await;
    let dns = DnsServer::start(Zone::default());
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["x@strict.test"],
        "strict",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, 9, Some(&ca), "[]"));
    let states = settled(&db, &id, &worker, true).await;
    let error = states[0].2.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "4.7.5 127.0.0.1: TLS is required but the server's certificate did not verify"
        ),
        "{error}"
    );
    assert!(
        sink.messages().is_empty(),
        "mail went out over unverified TLS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relayer_takes_everything_without_a_route_and_may_not_be_ourselves() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let relayer = SinkProcess::start(SinkOptions::default());
    let settings = DeliverySettings::new(db.pool.clone());
    settings
        .set_relayer(&NewRelayer {
            host: "127.0.0.1".into(),
            port: Some(relayer.port()),
            tls: Some(TlsMode::Optional),
            username: None,
            password: None,
        })
        .await
        .expect("relayer");
    // No DNS record at all: the relayer needs none.
    let dns = DnsServer::start(Zone::default());
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["far@away.test"],
        "relayed",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, 9, None, "[]"));
    let states = settled(&db, &id, &worker, false).await;
    assert_eq!(states[0].1, "delivered", "{states:?}");
    assert_eq!(relayer.wait_for(1, WAIT)[0].rcpt_tos, ["far@away.test"]);
    assert_eq!(dns.queries("away.test"), 0);
    drop(worker);

    // The same relayer counted as this cluster: a loop, bounced at once.
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &["far@away.test"],
        "looped",
    );
    let worker = start_worker(
        &db,
        &ingress,
        &worker_env(&dns, 9, None, "[\"127.0.0.0/8\"]"),
    );
    let states = settled(&db, &id, &worker, false).await;
    assert_eq!(states[0].1, "failed");
    let error = states[0].2.clone().unwrap_or_default();
    assert!(
        error.contains("tried to deliver e-mail to the local machine"),
        "{error}"
    );
    assert_eq!(relayer.messages().len(), 1, "the looping message went out");
}

#[tokio::test(flavor = "multi_thread")]
async fn null_mx_unknown_domains_and_an_mx_pointing_at_us_bounce_at_once() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    let mut zone = Zone::default();
    zone.null_mx("nomail.test")
        .mx("loop.test", 10, "mx.loop.test")
        .a("mx.loop.test", Ipv4Addr::new(127, 0, 0, 1))
        .mx("down.test", 10, "mx.down.test")
        .servfail("mx.down.test");
    let dns = DnsServer::start(zone);
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "alice@example.test",
        &[
            "a@nomail.test",
            "b@nowhere.test",
            "c@loop.test",
            "d@down.test",
        ],
        "doomed",
    );
    let worker = start_worker(
        &db,
        &ingress,
        &worker_env(&dns, 9, None, "[\"127.0.0.1/32\"]"),
    );
    let started = Instant::now();
    let states = loop {
        let states = recipient_states(&db, &id).await;
        if states.iter().filter(|s| s.1 == "failed").count() == 3
            && states.iter().any(|s| s.2.is_some() && s.1 == "queued")
        {
            break states;
        }
        assert!(
            started.elapsed() < WAIT,
            "{states:?}\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = |address: &str| {
        states
            .iter()
            .find(|s| s.0 == address)
            .and_then(|s| s.2.clone())
            .unwrap_or_default()
    };
    assert!(
        error("a@nomail.test").starts_with("550 5.1.10 nomail.test accepts no mail (null MX"),
        "{states:?}"
    );
    assert!(
        error("b@nowhere.test").starts_with("550 5.1.2 the domain nowhere.test does not exist"),
        "{states:?}"
    );
    assert!(
        error("c@loop.test").contains(
            "5.4.6 The mail server software tried to deliver e-mail to the local machine"
        ),
        "{states:?}"
    );
    // A DNS failure is temporary: that recipient waits.
    assert!(
        error("d@down.test").starts_with("4.4.4 no address found for the mail hosts of down.test"),
        "{states:?}"
    );
    // The failures bounce to alice (one notification per failed recipient).
    wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosted_alias_pointing_elsewhere_is_forwarded_as_a_new_entry() {
    let db = TestDatabase::migrated().await;
    let directory = seed_directory(&db).await;
    loopback_may_relay(&db).await;
    directory
        .create_alias(&mc_directory::NewAlias {
            address: "fwd@example.test".into(),
            target: "friend@remote.test".into(),
        })
        .await
        .expect("alias");
    let sink = SinkProcess::start(SinkOptions::default());
    let mut zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test")
        .a("mx.remote.test", Ipv4Addr::LOCALHOST);
    let dns = DnsServer::start(zone);
    let ingress = IngressProcess::start(&db, &[]);
    let id = send(
        ingress.mx_port,
        "bob@example.test",
        &["fwd@example.test"],
        "forwarded",
    );
    let worker = start_worker(&db, &ingress, &worker_env(&dns, sink.port(), None, "[]"));
    let states = settled(&db, &id, &worker, false).await;
    assert_eq!(states[0].1, "delivered");
    let received = sink.wait_for(1, WAIT);
    assert_eq!(received[0].mail_from, "bob@example.test");
    assert_eq!(received[0].rcpt_tos, ["friend@remote.test"]);
    assert!(String::from_utf8_lossy(&received[0].data).contains("Subject: forwarded"));
    // The forward is an entry of its own, from the original sender.
    let forwards: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.sender, r.state FROM queue_entries e JOIN queue_recipients r ON r.queue_id = e.id
          WHERE r.address = 'friend@remote.test'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("forward entries");
    assert_eq!(
        forwards,
        [("bob@example.test".to_string(), "delivered".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_transactions_per_host_are_limited_across_the_cluster() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    // A host that accepts connections and never says a word: a transaction with it lasts.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    route(
        &db,
        "slow.test",
        "127.0.0.1",
        silent_port,
        TlsMode::None,
        None,
        None,
    )
    .await;
    let dns = DnsServer::start(Zone::default());
    let prefix = mc_testkit::unique_prefix("limits");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let ingress = IngressProcess::start(&db, &shared);
    let first = send(
        ingress.mx_port,
        "alice@example.test",
        &["x@slow.test"],
        "first",
    );
    let second = send(
        ingress.mx_port,
        "alice@example.test",
        &["y@slow.test"],
        "second",
    );
    let mut env = worker_env(&dns, 9, None, "[]");
    env.push(("MAILCLUSTER_REDIS__KEY_PREFIX".into(), prefix.clone()));
    env.push((
        "MAILCLUSTER_DELIVERY__MAX_CONNECTIONS_PER_DESTINATION".into(),
        "1".into(),
    ));
    env.push((
        "MAILCLUSTER_DELIVERY__DESTINATION_WAIT_SECS".into(),
        "1".into(),
    ));
    // Two workers: the limit holds across processes.
    let workers = [
        start_worker(&db, &ingress, &env),
        start_worker(&db, &ingress, &env),
    ];
    let started = Instant::now();
    let limited = loop {
        let mut errors = Vec::new();
        for id in [&first, &second] {
            errors.extend(
                recipient_states(&db, id)
                    .await
                    .into_iter()
                    .filter_map(|s| s.2),
            );
        }
        if let Some(error) = errors.into_iter().find(|e| e.starts_with("4.4.5")) {
            break error;
        }
        assert!(
            started.elapsed() < WAIT,
            "no recipient was held back\n{}\n{}",
            workers[0].log_text(),
            workers[1].log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        limited.contains("the limit of 1 concurrent deliveries to this host is reached"),
        "{limited}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_success_reports_local_delivery_and_relaying_to_a_server_without_dsn() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    loopback_may_relay(&db).await;
    // aiosmtpd offers no DSN: mail relayed there gets a "relayed" report from us.
    let sink = SinkProcess::start(SinkOptions::default());
    let mut zone = Zone::default();
    zone.mx("remote.test", 10, "mx.remote.test")
        .a("mx.remote.test", Ipv4Addr::LOCALHOST);
    let dns = DnsServer::start(zone);
    let ingress = IngressProcess::start(&db, &[]);
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(
        client.cmd("MAIL FROM:<alice@example.test> ENVID=E77").code,
        250
    );
    for rcpt in [
        "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE",
        "RCPT TO:<far@remote.test> NOTIFY=SUCCESS",
        "RCPT TO:<quiet@remote.test>",
    ] {
        assert_eq!(client.cmd(rcpt).code, 250, "{rcpt}");
    }
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd("Subject: tell me\r\n\r\nbody\r\n.");
    let id = queued_id(&reply.line()).expect("queue id");
    let worker = start_worker(&db, &ingress, &worker_env(&dns, sink.port(), None, "[]"));
    let states = settled(&db, &id, &worker, false).await;
    assert!(states.iter().all(|s| s.1 == "delivered"), "{states:?}");
    // Two reports (bob delivered, far relayed), none for quiet@ (no NOTIFY: failures only).
    let alice = wait_for_inbox(&db, "alice@example.test", 2, &worker).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(inbox(&db, "alice@example.test").await.len(), 2);
    let entries = mc_tests::smtp::queued(&db).await;
    let mut texts = Vec::new();
    for id in &alice {
        let entry = entries.iter().find(|e| &e.id == id).expect("report entry");
        assert_eq!(entry.sender, "");
        texts.push(String::from_utf8_lossy(&ingress.body(entry).await).to_string());
    }
    texts.sort();
    let delivered = texts
        .iter()
        .find(|t| t.contains("Action: delivered"))
        .expect("a delivered report");
    assert!(
        delivered.contains("Final-Recipient: rfc822; bob@example.test"),
        "{delivered}"
    );
    assert!(
        delivered.contains("Subject: Successful Mail Delivery Report"),
        "{delivered}"
    );
    assert!(
        delivered.contains("Original-Envelope-Id: E77"),
        "{delivered}"
    );
    let relayed = texts
        .iter()
        .find(|t| t.contains("Action: relayed"))
        .expect("a relayed report");
    assert!(
        relayed.contains("Final-Recipient: rfc822; far@remote.test"),
        "{relayed}"
    );
    assert!(
        relayed.contains("Remote-MTA: dns; mx.remote.test"),
        "{relayed}"
    );
    assert_eq!(
        sink.messages()[0].rcpt_tos,
        ["far@remote.test", "quiet@remote.test"]
    );
}
