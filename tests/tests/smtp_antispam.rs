//! Sender authentication and spam scoring through the real ingress, with a real DNS server
//! (in-harness, authoritative) holding the SPF, DKIM, DMARC, MX and block-list records, and
//! messages signed by an independent signer (dkimpy). Every message comes from 127.0.0.1 over
//! the MX listener; the stored bytes and the queue rows are what is checked.

use mc_policy::AntispamSettings;
use mc_tests::TestDatabase;
use mc_tests::dns::{DnsServer, Zone};
use mc_tests::smtp::{IngressProcess, RawClient, Reply, queued, seed_directory};
use serde_json::json;
use std::net::Ipv4Addr;

/// A message from `from` (header and envelope) to alice.
fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender <{from}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\nHello Alice,\r\nthis is {subject}.\r\n"
    )
    .into_bytes()
}

struct Sent {
    mail: Reply,
    rcpt: Option<Reply>,
    data: Option<Reply>,
}

/// One transaction on a fresh connection: EHLO `helo`, MAIL, RCPT, DATA with `body` (which must
/// not hold a line starting with a dot).
fn send(port: u16, helo: &str, from: &str, body: &[u8]) -> Sent {
    let (mut client, banner) = RawClient::connect(port);
    assert_eq!(banner.code, 220);
    assert_eq!(client.cmd(&format!("EHLO {helo}")).code, 250);
    let mail = client.cmd(&format!("MAIL FROM:<{from}>"));
    if mail.code != 250 {
        return Sent {
            mail,
            rcpt: None,
            data: None,
        };
    }
    let rcpt = client.cmd("RCPT TO:<alice@example.test>");
    if rcpt.code != 250 {
        return Sent {
            mail,
            rcpt: Some(rcpt),
            data: None,
        };
    }
    assert_eq!(client.cmd("DATA").code, 354);
    client.send(body);
    let data = client.cmd(".");
    client.cmd("QUIT");
    Sent {
        mail,
        rcpt: Some(rcpt),
        data: Some(data),
    }
}

async fn set(db: &TestDatabase, name: &str, value: serde_json::Value) {
    AntispamSettings::set(&db.pool, name, value)
        .await
        .unwrap_or_else(|e| panic!("set {name}: {e}"));
}

/// The stored bytes and junk flag of the newest queued message.
async fn last_stored(db: &TestDatabase, ingress: &IngressProcess) -> (String, bool) {
    let all = queued(db).await;
    let last = all.last().expect("a queued message");
    let junk: bool = sqlx::query_scalar("SELECT junk FROM queue_entries WHERE id = $1::uuid")
        .bind(&last.id)
        .fetch_one(&db.pool)
        .await
        .expect("junk flag");
    (
        String::from_utf8_lossy(&ingress.body(last).await).into_owned(),
        junk,
    )
}

/// The header section of a stored message, unfolded into one line per field.
fn fields(stored: &str) -> Vec<String> {
    let head = stored.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            out.push(line.to_string());
        }
    }
    out
}

fn field<'a>(fields: &'a [String], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

/// SPF records for the sender domains of the tests; every domain has an MX unless named so.
fn base_zone() -> Zone {
    let mut zone = Zone::default();
    for domain in [
        "pass.test",
        "fail.test",
        "soft.test",
        "nospf.test",
        "signed.test",
        "quarantine.test",
    ] {
        zone.mx(domain, 10, &format!("mx.{domain}"));
        zone.a(&format!("mx.{domain}"), Ipv4Addr::new(192, 0, 2, 25));
    }
    zone.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all");
    zone.txt("fail.test", "v=spf1 ip4:192.0.2.0/24 -all");
    zone.txt("soft.test", "v=spf1 ~all");
    zone.txt("signed.test", "v=spf1 ip4:192.0.2.0/24 -all");
    zone.txt("_dmarc.signed.test", "v=DMARC1; p=reject");
    zone.txt("quarantine.test", "v=spf1 -all");
    zone.txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine");
    // nomx.test has no records at all.
    zone
}

fn start(db: &TestDatabase, dns: &DnsServer) -> IngressProcess {
    let servers = format!("[\"{}\"]", dns.addr());
    IngressProcess::start(
        db,
        &[
            ("MAILCLUSTER_SMTP__DNS_SERVERS", servers.as_str()),
            ("MAILCLUSTER_SMTP__ANTISPAM_SETTINGS_SECS", "0"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_results_are_reported_and_scored() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(base_zone());
    let ingress = start(&db, &dns);
    // Mark at 2: every firing test shows in the stored headers with its points.
    set(&db, "mark_threshold", json!(2)).await;

    let sent = send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "pass"),
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{stored}");
    assert!(ar[0].starts_with("mx.test.example;"), "{}", ar[0]);
    assert!(ar[0].contains("spf=pass"), "{}", ar[0]);
    assert!(ar[0].contains("smtp.mailfrom=a@pass.test"), "{}", ar[0]);
    assert!(field(&f, "X-Spam-Flag").is_empty() && !junk, "{stored}");
    // Our Received comes first, Authentication-Results right after it.
    assert!(
        f[0].starts_with("Received: from client.pass.test"),
        "{}",
        f[0]
    );
    assert!(f[1].starts_with("Authentication-Results:"), "{}", f[1]);

    send(
        ingress.mx_port,
        "client.fail.test",
        "b@fail.test",
        &message("b@fail.test", "fail"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert!(
        field(&f, "Authentication-Results")[0].contains("spf=fail"),
        "{stored}"
    );
    assert_eq!(field(&f, "X-Spam-Flag"), ["YES"]);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=3 required=2 tests=spf"]
    );
    assert!(junk);

    send(
        ingress.mx_port,
        "client.soft.test",
        "c@soft.test",
        &message("c@soft.test", "soft"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert!(
        field(&f, "Authentication-Results")[0].contains("spf=softfail"),
        "{stored}"
    );
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=2 required=2 tests=spf"]
    );
    assert!(junk);

    send(
        ingress.mx_port,
        "client.nospf.test",
        "d@nospf.test",
        &message("d@nospf.test", "none"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert!(
        field(&f, "Authentication-Results")[0].contains("spf=none"),
        "{stored}"
    );
    assert!(field(&f, "X-Spam-Flag").is_empty() && !junk, "{stored}");

    // No MX and no address: the MX test fires (2 points), SPF has nothing to say.
    send(
        ingress.mx_port,
        "client.nomx.test",
        "e@nomx.test",
        &message("e@nomx.test", "nomx"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=2 required=2 tests=mx"]
    );
    assert_eq!(
        field(&f, "X-Spam-Reason"),
        ["Sender domain does not have any MX records - (Score: 2)"]
    );
    assert!(junk);

    // Reject on SPF fail: refused at MAIL FROM, nothing queued.
    set(&db, "spf_reject_on_fail", json!(true)).await;
    let before = queued(&db).await.len();
    let sent = send(
        ingress.mx_port,
        "client.fail.test",
        "b@fail.test",
        &message("b@fail.test", "x"),
    );
    assert_eq!(sent.mail.code, 550, "{:?}", sent.mail);
    assert!(
        sent.mail.text().starts_with("5.7.23 Blocked by SPF"),
        "{:?}",
        sent.mail
    );
    assert_eq!(queued(&db).await.len(), before);

    let metrics = ingress.metrics();
    for line in [
        "mailcluster_smtp_sender_auth_results_total{method=\"spf\",result=\"pass\"} 1",
        "mailcluster_smtp_sender_auth_results_total{method=\"spf\",result=\"softfail\"} 1",
        "mailcluster_smtp_spam_tests_total{test=\"mx\"} 1",
        "mailcluster_smtp_spam_verdicts_total{result=\"marked\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

/// An RSA-2048 key: (PKCS#8 PEM, the `p=` value of its DKIM record).
fn dkim_key() -> (String, String) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
    let private: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().expect("pkcs8");
    let public: aws_lc_rs::encoding::PublicKeyX509Der = pair.public_key().as_der().expect("spki");
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.encode(private.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64"))
        .collect();
    (
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ),
        b64.encode(public.as_ref()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_and_dmarc_pass_fail_reject_and_quarantine() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let (key, public) = dkim_key();
    let mut zone = base_zone();
    zone.txt(
        "sel._domainkey.signed.test",
        &format!("v=DKIM1; k=rsa; p={public}"),
    );
    let dns = DnsServer::start(zone);
    let ingress = start(&db, &dns);

    // Signed by dkimpy: DKIM passes and aligns, so DMARC passes although SPF fails.
    let signed = mc_tests::sink::dkim_sign(
        &message("news@signed.test", "signed"),
        &key,
        "signed.test",
        "sel",
    );
    let sent = send(
        ingress.mx_port,
        "out.signed.test",
        "news@signed.test",
        &signed,
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{stored}");
    assert!(ar[0].contains("spf=fail"), "{}", ar[0]);
    assert!(
        ar[0].contains("dkim=pass header.i=@signed.test header.s=sel"),
        "{}",
        ar[0]
    );
    assert!(
        ar[0].contains("dmarc=pass header.from=signed.test policy.dmarc=reject"),
        "{}",
        ar[0]
    );
    // SPF fail alone (3) stays under the mark threshold (5).
    assert!(field(&f, "X-Spam-Flag").is_empty() && !junk, "{stored}");
    // The stored message still verifies with dkimpy (our headers are above the signed ones).
    mc_tests::sink::dkim_verify(
        stored.as_bytes(),
        &[(
            "sel._domainkey.signed.test",
            &format!("v=DKIM1; k=rsa; p={public}"),
        )],
    )
    .expect("the stored copy verifies");

    // The body changed after signing: DKIM fails (5 points), and DMARC p=reject refuses it.
    let mut tampered = signed.clone();
    let at = tampered.len() - 3;
    tampered.splice(at..at, b"!!".iter().copied());
    let before = queued(&db).await.len();
    let sent = send(
        ingress.mx_port,
        "out.signed.test",
        "news@signed.test",
        &tampered,
    );
    let data = sent.data.expect("data");
    assert_eq!(
        data.line(),
        "550 5.7.1 Rejected by the DMARC policy of signed.test"
    );
    assert_eq!(queued(&db).await.len(), before);

    // Without honouring p=reject the same message is accepted and marked: DKIM 5 + SPF 3.
    set(&db, "dmarc_honor_reject", json!(false)).await;
    let sent = send(
        ingress.mx_port,
        "out.signed.test",
        "news@signed.test",
        &tampered,
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results");
    assert!(
        ar[0].contains("dkim=neutral (body hash did not verify)"),
        "{}",
        ar[0]
    );
    assert!(ar[0].contains("dmarc=fail"), "{}", ar[0]);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=8 required=5 tests=spf,dkim"]
    );
    assert!(junk);

    // DMARC p=quarantine: unsigned mail failing SPF is marked whatever its score.
    let sent = send(
        ingress.mx_port,
        "x.quarantine.test",
        "q@quarantine.test",
        &message("q@quarantine.test", "q"),
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert!(
        field(&f, "Authentication-Results")[0].contains("dmarc=fail"),
        "{stored}"
    );
    assert_eq!(field(&f, "X-Spam-Flag"), ["YES"]);
    assert!(
        field(&f, "X-Spam-Reason")
            .contains(&"Quarantined by the DMARC policy of quarantine.test - (Score: 0)"),
        "{stored}"
    );
    assert!(junk);

    // A message without any signature: dkim=none, nothing scored for DKIM.
    send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "plain"),
    );
    let (stored, _) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert!(
        field(&f, "Authentication-Results")[0].contains("dkim=none"),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_results_and_spam_headers_are_removed_and_the_subject_prefixed() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(base_zone());
    let ingress = start(&db, &dns);
    set(&db, "subject_prefix_enabled", json!(true)).await;
    let forged = b"Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=b@fail.test\r\nAuthentication-Results: other.example; dkim=pass\r\nX-Spam-Flag: NO\r\nX-Spam-Status: No, score=-100\r\nFrom: b@fail.test\r\nTo: alice@example.test\r\nSubject: cheap\r\n\r\nbuy now\r\n";
    // SPF fail (3) + DNSBL-free, no MX problem: clean at the default mark (5)...
    send(ingress.mx_port, "h.fail.test", "b@fail.test", forged);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results");
    assert_eq!(ar.len(), 2, "{stored}");
    assert!(ar[0].contains("spf=fail"), "ours first: {}", ar[0]);
    assert_eq!(
        ar[1], "other.example; dkim=pass",
        "another host's results stay"
    );
    assert!(
        field(&f, "X-Spam-Flag").is_empty(),
        "forged spam flag removed: {stored}"
    );
    assert!(field(&f, "X-Spam-Status").is_empty(), "{stored}");
    assert_eq!(field(&f, "Subject"), ["cheap"]);
    assert!(!junk);
    // ...and marked at 3, with the subject prefixed.
    set(&db, "mark_threshold", json!(3)).await;
    send(ingress.mx_port, "h.fail.test", "b@fail.test", forged);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert_eq!(field(&f, "Subject"), ["[SPAM] cheap"]);
    assert_eq!(field(&f, "X-Spam-Flag"), ["YES"]);
    assert!(junk);
    assert!(
        stored.ends_with("\r\n\r\nbuy now\r\n"),
        "body unchanged: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dnsbl_listings_score_reject_and_spare_whitelisted_and_authenticated_senders() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut zone = base_zone();
    // 127.0.0.1 is listed by bl.test with 127.0.0.2, and by other.test with 127.0.0.1 (which
    // that list's pattern does not count).
    zone.a("1.0.0.127.bl.test", Ipv4Addr::new(127, 0, 0, 2));
    zone.a("1.0.0.127.other.test", Ipv4Addr::new(127, 0, 0, 1));
    let dns = DnsServer::start(zone);
    let ingress = start(&db, &dns);
    let lists = mc_policy::DnsBlacklists::new(db.pool.clone());
    for (zone, score) in [("bl.test", 20), ("other.test", 20)] {
        lists
            .add(&mc_policy::NewBlacklist {
                kind: mc_policy::BlacklistKind::Dnsbl,
                zone: zone.into(),
                expected: Some("127.0.0.2-8|127.0.0.10-11".into()),
                score: Some(score),
                message: Some(format!("Rejected by {zone}")),
                active: Some(true),
            })
            .await
            .expect("add list");
    }
    let sent = send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "x"),
    );
    assert_eq!(sent.mail.line(), "550 5.7.1 Rejected by bl.test");

    // After RCPT instead of MAIL FROM: the recipient is refused.
    set(&db, "dnsbl_after_mail_from", json!(false)).await;
    let sent = send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "x"),
    );
    assert_eq!(sent.mail.code, 250);
    assert_eq!(
        sent.rcpt.expect("rcpt").line(),
        "550 5.7.1 Rejected by bl.test"
    );

    // An authenticated submission skips every test (and gets no Authentication-Results).
    let run = mc_tests::smtp::smtplib(
        ingress.submission_port,
        mc_tests::smtp::Tls::StartTls,
        json!([
            [
                "auth",
                "PLAIN",
                "alice@example.test",
                mc_tests::smtp::PASSWORD
            ],
            ["mail", "alice@example.test"],
            ["rcpt", "bob@example.test"],
            ["data", "Subject: from alice\r\n\r\nhi\r\n"]
        ]),
    );
    assert_eq!(run.error, None);
    assert!(run.steps[3].starts_with("250 "), "{run:?}");
    let (stored, junk) = last_stored(&db, &ingress).await;
    assert!(
        field(&fields(&stored), "Authentication-Results").is_empty(),
        "{stored}"
    );
    assert!(!junk);

    // A whitelisted sender skips every test.
    mc_policy::Whitelist::new(db.pool.clone())
        .add(&mc_policy::NewWhitelistEntry {
            kind: mc_policy::WhitelistKind::Antispam,
            description: "partner".into(),
            lower: Some("127.0.0.1".parse().expect("ip")),
            upper: Some("127.0.0.1".parse().expect("ip")),
            address: Some("*@pass.test".into()),
        })
        .await
        .expect("whitelist");
    let sent = send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "wl"),
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    assert!(
        field(&fields(&stored), "Authentication-Results").is_empty(),
        "{stored}"
    );
    assert!(!junk);

    // A lower score only marks (and names the list).
    set(&db, "dnsbl_after_mail_from", json!(true)).await;
    sqlx::query("UPDATE dns_blacklists SET score = 6 WHERE zone = 'bl.test'")
        .execute(&db.pool)
        .await
        .expect("update");
    let sent = send(
        ingress.mx_port,
        "client.soft.test",
        "c@soft.test",
        &message("c@soft.test", "listed"),
    );
    assert_eq!(sent.data.expect("data").code, 250);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=8 required=5 tests=spf,dnsbl"]
    );
    assert!(field(&f, "X-Spam-Reason").contains(&"Rejected by bl.test - (Score: 6)"));
    assert!(junk);
    assert!(dns.queries("1.0.0.127.other.test.") >= 1 || dns.queries("1.0.0.127.other.test") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn helo_check_surbl_and_max_scan_size() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut zone = base_zone();
    zone.a("good-helo.pass.test", Ipv4Addr::new(127, 0, 0, 1));
    zone.a("bad-helo.pass.test", Ipv4Addr::new(192, 0, 2, 99));
    // spammy.example is listed by the SURBL-style zone.
    zone.a("spammy.example.uribl.test", Ipv4Addr::new(127, 0, 0, 2));
    let dns = DnsServer::start(zone);
    let ingress = start(&db, &dns);
    set(&db, "mark_threshold", json!(2)).await;
    set(&db, "helo_check_enabled", json!(true)).await;

    send(
        ingress.mx_port,
        "good-helo.pass.test",
        "a@pass.test",
        &message("a@pass.test", "h1"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    assert!(
        field(&fields(&stored), "X-Spam-Flag").is_empty() && !junk,
        "{stored}"
    );
    send(
        ingress.mx_port,
        "bad-helo.pass.test",
        "a@pass.test",
        &message("a@pass.test", "h2"),
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=2 required=2 tests=helo"]
    );
    assert!(junk);
    // A HELO address literal must be the client's own address.
    send(
        ingress.mx_port,
        "[127.0.0.1]",
        "a@pass.test",
        &message("a@pass.test", "h3"),
    );
    let (stored, _) = last_stored(&db, &ingress).await;
    assert!(
        field(&fields(&stored), "X-Spam-Flag").is_empty(),
        "{stored}"
    );
    set(&db, "helo_check_enabled", json!(false)).await;

    mc_policy::DnsBlacklists::new(db.pool.clone())
        .add(&mc_policy::NewBlacklist {
            kind: mc_policy::BlacklistKind::Surbl,
            zone: "uribl.test".into(),
            expected: None,
            score: Some(4),
            message: Some("Links to a listed site".into()),
            active: Some(true),
        })
        .await
        .expect("add SURBL");
    let linked = b"From: a@pass.test\r\nTo: alice@example.test\r\nSubject: offer\r\nContent-Type: text/html\r\n\r\n<p><a href=\"https://www.spammy.example/buy\">buy</a> or http://fine.example/</p>\r\n";
    send(
        ingress.mx_port,
        "good-helo.pass.test",
        "a@pass.test",
        linked,
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=4 required=2 tests=surbl"]
    );
    assert!(
        field(&f, "X-Spam-Reason")
            .contains(&"Links to a listed site (spammy.example) - (Score: 4)")
    );
    assert!(junk);

    // Larger than max_scan_kb: the content tests do not run (SPF still does).
    set(&db, "max_scan_kb", json!(1)).await;
    let mut big = linked.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2000));
    big.extend_from_slice(b"\r\n");
    send(ingress.mx_port, "good-helo.pass.test", "a@pass.test", &big);
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results");
    assert!(
        ar[0].contains("spf=pass") && !ar[0].contains("dkim="),
        "{}",
        ar[0]
    );
    assert!(field(&f, "X-Spam-Flag").is_empty() && !junk, "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_through_an_incoming_relay_is_judged_on_the_original_client() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut zone = base_zone();
    // 198.51.100.7, the original client, is listed; our backup MX (127.0.0.1) is not.
    zone.a("7.100.51.198.bl.test", Ipv4Addr::new(127, 0, 0, 2));
    let dns = DnsServer::start(zone);
    let ingress = start(&db, &dns);
    mc_policy::DnsBlacklists::new(db.pool.clone())
        .add(&mc_policy::NewBlacklist {
            kind: mc_policy::BlacklistKind::Dnsbl,
            zone: "bl.test".into(),
            expected: None,
            score: Some(3),
            message: Some("Listed by bl.test".into()),
            active: Some(true),
        })
        .await
        .expect("add list");
    let relayed = b"Received: from relay.example.test ([127.0.0.1]) by backup.example.test; Sun, 29 Nov 2026 10:00:00 +0000\r\nReceived: from mail.pass.test (mail.pass.test [198.51.100.7])\r\n\tby relay.example.test with ESMTP; Sun, 29 Nov 2026 09:59:00 +0000\r\nFrom: a@pass.test\r\nTo: alice@example.test\r\nSubject: relayed\r\n\r\nhello\r\n";
    // Not a relay: 127.0.0.1 is judged itself (SPF passes, not listed).
    send(
        ingress.mx_port,
        "backup.example.test",
        "a@pass.test",
        relayed,
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let ar = field(&fields(&stored), "Authentication-Results")[0].to_string();
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(!junk);

    mc_policy::IncomingRelays::new(db.pool.clone())
        .add(
            "backup MX",
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.1".parse().expect("ip"),
        )
        .await
        .expect("add relay");
    // A relay: SPF and the block list look at 198.51.100.7 (SPF fail 3 + listed 3 = 6).
    send(
        ingress.mx_port,
        "backup.example.test",
        "a@pass.test",
        relayed,
    );
    let (stored, junk) = last_stored(&db, &ingress).await;
    let f = fields(&stored);
    let ar = field(&f, "Authentication-Results")[0];
    assert!(
        ar.contains("spf=fail") && ar.contains("198.51.100.7"),
        "{ar}"
    );
    assert_eq!(
        field(&f, "X-Spam-Status"),
        ["Yes, score=6 required=5 tests=spf,dnsbl"]
    );
    assert!(junk);
}

#[tokio::test(flavor = "multi_thread")]
async fn hourly_rate_limit_per_client_address() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(base_zone());
    let ingress = start(&db, &dns);
    set(&db, "rate_ip_per_hour", json!(2)).await;
    for n in 0..2 {
        let sent = send(
            ingress.mx_port,
            "client.pass.test",
            "a@pass.test",
            &message("a@pass.test", &format!("r{n}")),
        );
        assert_eq!(sent.data.expect("data").code, 250);
    }
    let sent = send(
        ingress.mx_port,
        "client.pass.test",
        "a@pass.test",
        &message("a@pass.test", "r3"),
    );
    assert_eq!(
        sent.mail.line(),
        "451 4.7.0 Too many messages this hour; try again later"
    );
    assert!(
        ingress
            .metrics()
            .contains("mailcluster_smtp_rate_limited_total{reason=\"ip\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn marked_mail_is_delivered_into_junk_and_clean_mail_into_the_inbox() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(base_zone());
    let servers = format!("[\"{}\"]", dns.addr());
    let prefix = mc_testkit::unique_prefix("junk");
    let ingress = IngressProcess::start(
        &db,
        &[
            ("MAILCLUSTER_SMTP__DNS_SERVERS", servers.as_str()),
            ("MAILCLUSTER_SMTP__ANTISPAM_SETTINGS_SECS", "0"),
            ("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str()),
        ],
    );
    let worker = mc_tests::delivery::WorkerProcess::start(
        &db,
        &ingress.s3_prefix,
        &[("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())],
    );
    set(&db, "mark_threshold", json!(3)).await;
    send(
        ingress.mx_port,
        "c.fail.test",
        "b@fail.test",
        &message("b@fail.test", "spam"),
    );
    send(
        ingress.mx_port,
        "c.pass.test",
        "a@pass.test",
        &message("a@pass.test", "ham"),
    );
    mc_tests::delivery::wait_for_inbox(&db, "alice@example.test", 1, &worker).await;
    let started = std::time::Instant::now();
    let placed: Vec<(String, Option<String>, String)> = loop {
        let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT mb.name, mb.special_use, e.sender
               FROM mailbox_messages mm
               JOIN mailboxes mb ON mb.id = mm.mailbox_id
               JOIN accounts a ON a.id = mb.account_id
               JOIN queue_entries e ON e.message_id = mm.message_id
              WHERE a.address = 'alice@example.test' ORDER BY mb.name",
        )
        .fetch_all(&db.pool)
        .await
        .expect("mailboxes");
        if rows.len() == 2 || started.elapsed() > std::time::Duration::from_secs(20) {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        placed,
        [
            ("INBOX".to_string(), None, "a@pass.test".to_string()),
            (
                "Junk".to_string(),
                Some("\\Junk".to_string()),
                "b@fail.test".to_string()
            ),
        ],
        "{}",
        worker.log_text()
    );
}
