//! Greylisting through the real ingress and a real Redis: the first attempt of a triplet is
//! deferred with 451 4.7.1, a retry after the delay passes, and records expire. Time is injected
//! by moving the stored record back (the decision reads the times it holds), not by sleeping.
//! A Redis that stops answering fails open (the default) or closed, as configured.

use mc_policy::AntispamSettings;
use mc_tests::TestDatabase;
use mc_tests::dns::{DnsServer, Zone};
use mc_tests::smtp::{IngressProcess, RawClient, Reply, count, seed_directory};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One transaction from `from` to `to`; the RCPT reply, and the DATA reply when RCPT passed.
fn attempt(port: u16, from: &str, to: &str) -> (Reply, Option<Reply>) {
    let (mut client, _) = RawClient::connect(port);
    assert_eq!(client.cmd("EHLO client.example.net").code, 250);
    assert_eq!(client.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
    let rcpt = client.cmd(&format!("RCPT TO:<{to}>"));
    if rcpt.code != 250 {
        client.cmd("QUIT");
        return (rcpt, None);
    }
    assert_eq!(client.cmd("DATA").code, 354);
    client.send(b"Subject: grey\r\n\r\nhello\r\n");
    let data = client.cmd(".");
    client.cmd("QUIT");
    (rcpt, Some(data))
}

async fn set(db: &TestDatabase, name: &str, value: serde_json::Value) {
    AntispamSettings::set(&db.pool, name, value)
        .await
        .unwrap_or_else(|e| panic!("set {name}: {e}"));
}

fn start(db: &TestDatabase, dns: &DnsServer, redis_url: &str, prefix: &str) -> IngressProcess {
    let servers = format!("[\"{}\"]", dns.addr());
    IngressProcess::start(
        db,
        &[
            ("MAILCLUSTER_SMTP__DNS_SERVERS", servers.as_str()),
            ("MAILCLUSTER_SMTP__ANTISPAM_SETTINGS_SECS", "0"),
            ("MAILCLUSTER_REDIS__URL", redis_url),
            ("MAILCLUSTER_REDIS__KEY_PREFIX", prefix),
        ],
    )
}

fn redis(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("redis url")
        .get_connection()
        .expect("connect to Redis")
}

/// The stored record of a triplet from 127.0.0.1 (its /24).
fn record_key(prefix: &str, from: &str, to: &str) -> String {
    use mc_antispam::greylist;
    let client = greylist::client_part(
        "127.0.0.1".parse().expect("ip"),
        mc_policy::antispam::GreylistScope::Network,
    );
    format!("{prefix}{}", greylist::key(&client, from, to))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const DEFERRED: &str = "451 4.7.1 Greylisted: please try again later";

#[tokio::test(flavor = "multi_thread")]
async fn first_attempt_is_deferred_a_retry_after_the_delay_passes_and_records_expire() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(Zone::default());
    let url = mc_testkit::redis_url();
    let prefix = mc_testkit::unique_prefix("grey");
    let ingress = start(&db, &dns, &url, &prefix);
    set(&db, "greylist_enabled", json!(true)).await;
    let mut r = redis(&url);
    let key = record_key(&prefix, "sender@example.net", "alice@example.test");

    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);
    let stored: String = redis::cmd("GET").arg(&key).query(&mut r).expect("record");
    let record = mc_antispam::greylist::Record::parse(&stored).expect("a record");
    assert!(
        !record.passed && (now() - record.first).abs() < 60,
        "{stored}"
    );
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut r).expect("ttl");
    assert!(
        (24 * 3600 - 60..=24 * 3600).contains(&ttl),
        "unused lifetime: {ttl}"
    );

    // Retried at once: still too early (and the record keeps its first time).
    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);
    let again: String = redis::cmd("GET").arg(&key).query(&mut r).expect("record");
    assert_eq!(again, stored);

    // Another recipient is another triplet.
    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "bob@example.test");
    assert_eq!(rcpt.line(), DEFERRED);

    // 31 minutes later (the default delay is 30): accepted, and the record is now "used".
    let first = now() - 31 * 60;
    let moved = mc_antispam::greylist::Record {
        first,
        last: first,
        passed: false,
    };
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(moved.encode())
        .query(&mut r)
        .expect("set");
    let (rcpt, data) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.code, 250, "{rcpt:?}");
    assert_eq!(data.expect("data").code, 250);
    let used: String = redis::cmd("GET").arg(&key).query(&mut r).expect("record");
    let used = mc_antispam::greylist::Record::parse(&used).expect("record");
    assert!(used.passed && used.first == first && (now() - used.last).abs() < 60);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut r).expect("ttl");
    assert!(
        (864 * 3600 - 60..=864 * 3600).contains(&ttl),
        "used lifetime: {ttl}"
    );

    // Used records are counted from their last use: 800 hours later still known...
    let last = now() - 800 * 3600;
    let aged = mc_antispam::greylist::Record {
        first: last - 3600,
        last,
        passed: true,
    };
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(aged.encode())
        .query(&mut r)
        .expect("set");
    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.code, 250, "{rcpt:?}");
    // ...but 865 hours after the last use the record has expired: deferred again.
    let last = now() - 865 * 3600;
    let expired = mc_antispam::greylist::Record {
        first: last - 3600,
        last,
        passed: true,
    };
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(expired.encode())
        .query(&mut r)
        .expect("set");
    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);
    // An unused record older than 24 hours is forgotten too.
    let first = now() - 25 * 3600;
    let stale = mc_antispam::greylist::Record {
        first,
        last: first,
        passed: false,
    };
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(stale.encode())
        .query(&mut r)
        .expect("set");
    let (rcpt, _) = attempt(ingress.mx_port, "sender@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);
    let restarted: String = redis::cmd("GET").arg(&key).query(&mut r).expect("record");
    let restarted = mc_antispam::greylist::Record::parse(&restarted).expect("record");
    assert!((now() - restarted.first).abs() < 60, "a new first attempt");

    let metrics = ingress.metrics();
    assert!(
        metrics.contains("mailcluster_smtp_greylist_total{result=\"passed\"} 1"),
        "{metrics}"
    );
    assert_eq!(count(&db, "queue_entries").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn whitelist_and_domain_switch_skip_greylisting() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(Zone::default());
    let url = mc_testkit::redis_url();
    let prefix = mc_testkit::unique_prefix("grey");
    let ingress = start(&db, &dns, &url, &prefix);
    set(&db, "greylist_enabled", json!(true)).await;

    mc_policy::Whitelist::new(db.pool.clone())
        .add(&mc_policy::NewWhitelistEntry {
            kind: mc_policy::WhitelistKind::Greylist,
            description: "a partner that never retries".into(),
            lower: None,
            upper: None,
            address: Some("*@partner.example".into()),
        })
        .await
        .expect("whitelist");
    let (rcpt, _) = attempt(ingress.mx_port, "x@partner.example", "alice@example.test");
    assert_eq!(rcpt.code, 250, "whitelisted sender: {rcpt:?}");
    let (rcpt, _) = attempt(ingress.mx_port, "x@other.example", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);

    // The recipient domain's switch.
    sqlx::query("UPDATE domains SET greylisting = false WHERE name = 'example.test'")
        .execute(&db.pool)
        .await
        .expect("domain switch");
    let (rcpt, _) = attempt(ingress.mx_port, "y@other.example", "alice@example.test");
    assert_eq!(rcpt.code, 250, "greylisting off for the domain: {rcpt:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_spf_pass_skips_greylisting_when_configured() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let mut zone = Zone::default();
    zone.txt("spf.example", "v=spf1 ip4:127.0.0.0/8 -all");
    let dns = DnsServer::start(zone);
    let url = mc_testkit::redis_url();
    let prefix = mc_testkit::unique_prefix("grey");
    let ingress = start(&db, &dns, &url, &prefix);
    set(&db, "greylist_enabled", json!(true)).await;
    let (rcpt, _) = attempt(ingress.mx_port, "a@spf.example", "alice@example.test");
    assert_eq!(rcpt.code, 250, "SPF pass bypasses: {rcpt:?}");
    set(&db, "greylist_bypass_spf_pass", json!(false)).await;
    let (rcpt, _) = attempt(ingress.mx_port, "a@spf.example", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED);
}

/// A Redis of our own, so that the test can stop it.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> Self {
        let port = mc_tests::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (installed by ops/test)");
        let url = format!("redis://127.0.0.1:{port}/");
        let started = Instant::now();
        while redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_fails_open_by_default_and_closed_when_configured() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let dns = DnsServer::start(Zone::default());
    let mut own = OwnRedis::start();
    let prefix = mc_testkit::unique_prefix("grey");
    let ingress = start(&db, &dns, &own.url, &prefix);
    set(&db, "greylist_enabled", json!(true)).await;
    let (rcpt, _) = attempt(ingress.mx_port, "s@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED, "greylisting works while Redis runs");

    own.stop();
    let (rcpt, data) = attempt(ingress.mx_port, "s@example.net", "alice@example.test");
    assert_eq!(rcpt.code, 250, "Redis down: fail open: {rcpt:?}");
    assert_eq!(data.expect("data").code, 250, "and the message is accepted");
    assert_eq!(count(&db, "queue_entries").await, 1);

    set(&db, "greylist_fail_open", json!(false)).await;
    let (rcpt, _) = attempt(ingress.mx_port, "t@example.net", "alice@example.test");
    assert_eq!(rcpt.line(), DEFERRED, "fail closed defers");
    let metrics = ingress.metrics();
    assert!(
        metrics.contains("mailcluster_smtp_greylist_total{result=\"error_open\"} 1"),
        "{metrics}"
    );
    // The first check reached Redis; the two made while it was down are Redis errors.
    let greylist = |result: &str| {
        mc_tests::sample(
            &metrics,
            &format!("mailcluster_redis_commands_total{{group=\"greylist\",result=\"{result}\"}}"),
        )
        .unwrap_or_else(|| panic!("no greylist {result} series in\n{metrics}"))
    };
    assert!(greylist("ok") >= 1.0, "{metrics}");
    assert_eq!(greylist("error"), 2.0, "{metrics}");
}
