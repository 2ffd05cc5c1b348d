//! `mailctl antispam|greylist|whitelist|dnsbl|ban|relay` (a process) against `mailcluster-admin`
//! (a process) against a real PostgreSQL and Redis: outputs, the rows they leave, refusals.

use mc_tests::{AdminProcess, TestDatabase, stderr, stdout};
use serde_json::{Value, json};
use std::net::IpAddr;

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "mailctl failed: {}\n{}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_str(&ok(output)).expect("--json prints JSON")
}

fn fails_with(output: &std::process::Output, code: i32, needle: &str) {
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

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

fn knob<'a>(knobs: &'a Value, name: &str) -> &'a Value {
    knobs
        .as_array()
        .and_then(|k| k.iter().find(|k| k["name"] == name))
        .unwrap_or_else(|| panic!("{name} listed"))
}

async fn stored(db: &TestDatabase, name: &str) -> Option<Value> {
    sqlx::query_scalar::<_, sqlx::types::Json<Value>>("SELECT value FROM settings WHERE key = $1")
        .bind(format!("antispam.{name}"))
        .fetch_optional(&db.pool)
        .await
        .expect("settings")
        .map(|v| v.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn antispam_knobs_are_shown_set_and_reset() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let table = ok(&admin.mailctl(&["antispam", "show"]));
    assert!(table.starts_with("NAME"), "{table}");
    let line = table
        .lines()
        .find(|l| l.starts_with("mark_threshold "))
        .expect("mark_threshold row");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["mark_threshold", "5", "no"]
    );

    let set = ok(&admin.mailctl(&["antispam", "set", "mark_threshold", "7"]));
    assert_eq!(set.trim(), "mark_threshold = 7");
    ok(&admin.mailctl(&["antispam", "set", "subject_prefix", "[JUNK]"]));
    ok(&admin.mailctl(&["antispam", "set", "delete_action", "drop"]));
    ok(&admin.mailctl(&["antispam", "set", "blocked_extensions", r#"["exe","js"]"#]));
    let knobs = json(&admin.mailctl(&["antispam", "show", "--json"]));
    assert_eq!(
        knob(&knobs, "mark_threshold"),
        &json!({ "name": "mark_threshold", "value": 7, "set": true })
    );
    assert_eq!(knob(&knobs, "subject_prefix")["value"], "[JUNK]");
    assert_eq!(knob(&knobs, "delete_action")["value"], "drop");
    assert_eq!(
        knob(&knobs, "blocked_extensions")["value"],
        json!(["exe", "js"])
    );
    assert_eq!(knob(&knobs, "delete_threshold")["set"], false);
    assert_eq!(stored(&db, "mark_threshold").await, Some(json!(7)));
    assert_eq!(
        stored(&db, "blocked_extensions").await,
        Some(json!(["exe", "js"]))
    );
    let table = ok(&admin.mailctl(&["antispam", "show"]));
    assert!(table.contains(r#"["exe","js"]"#), "{table}");

    let reset = ok(&admin.mailctl(&["antispam", "reset", "mark_threshold"]));
    assert_eq!(reset.trim(), "mark_threshold = 5 (default)");
    assert_eq!(stored(&db, "mark_threshold").await, None);

    fails_with(
        &admin.mailctl(&["antispam", "set", "no_such_knob", "1"]),
        1,
        "anti-spam setting no_such_knob does not exist (HTTP 404)",
    );
    fails_with(
        &admin.mailctl(&["antispam", "reset", "no_such_knob"]),
        1,
        "(HTTP 404)",
    );
    fails_with(
        &admin.mailctl(&["antispam", "set", "mark_threshold", "lots"]),
        1,
        "(HTTP 400)",
    );
    fails_with(
        &admin.mailctl(&["antispam", "set", "delete_threshold", "2"]),
        1,
        "delete_threshold must not be below mark_threshold",
    );
    fails_with(
        &admin.mailctl(&["antispam", "set", "delete_action", "shred"]),
        1,
        "delete_action",
    );
    assert_eq!(
        stored(&db, "delete_threshold").await,
        None,
        "nothing written"
    );
    assert_eq!(stored(&db, "delete_action").await, Some(json!("drop")));
}

#[tokio::test(flavor = "multi_thread")]
async fn greylisting_is_switched_and_summarised() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let status = ok(&admin.mailctl(&["greylist", "status"]));
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["enabled", "false"])),
        "{status}"
    );
    assert_eq!(
        ok(&admin.mailctl(&["greylist", "enable"])).trim(),
        "greylisting enabled"
    );
    assert_eq!(stored(&db, "greylist_enabled").await, Some(json!(true)));
    ok(&admin.mailctl(&["antispam", "set", "greylist_delay_minutes", "5"]));
    ok(&admin.mailctl(&["whitelist", "add", "--greylist", "--ip", "192.0.2.0/24"]));
    let status = json(&admin.mailctl(&["greylist", "status", "--json"]));
    assert_eq!(
        (
            &status["enabled"],
            &status["delay_minutes"],
            &status["unused_hours"],
            &status["used_hours"],
            &status["whitelist_entries"]
        ),
        (&json!(true), &json!(5), &json!(24), &json!(864), &json!(1))
    );
    assert!(status.get("bypass_spf_pass").is_some(), "{status}");
    ok(&admin.mailctl(&["greylist", "disable"]));
    assert_eq!(stored(&db, "greylist_enabled").await, Some(json!(false)));
}

#[tokio::test(flavor = "multi_thread")]
async fn whitelist_entries_are_added_listed_matched_and_removed() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let table = ok(&admin.mailctl(&[
        "whitelist",
        "add",
        "--ip",
        "192.0.2.77/24",
        "--address",
        "*@partner.test",
        "--description",
        "Partner",
    ]));
    assert!(
        table.contains("192.0.2.0-192.0.2.255") && table.contains("*@partner.test"),
        "{table}"
    );
    ok(&admin.mailctl(&["whitelist", "add", "--address", "alerts@monitor.test"]));
    let grey = json(&admin.mailctl(&[
        "whitelist",
        "add",
        "--greylist",
        "--ip",
        "198.51.100.1-198.51.100.9",
        "--json",
    ]));
    assert_eq!(
        (
            &grey[0]["kind"],
            &grey[0]["lower"],
            &grey[0]["upper"],
            &grey[0]["address"]
        ),
        (
            &json!("greylist"),
            &json!("198.51.100.1"),
            &json!("198.51.100.9"),
            &json!("*")
        )
    );

    let antispam = json(&admin.mailctl(&["whitelist", "list", "--json"]));
    assert_eq!(antispam.as_array().map(Vec::len), Some(2), "{antispam}");
    assert_eq!(antispam[1]["lower"], Value::Null);
    let greylist = json(&admin.mailctl(&["whitelist", "list", "--greylist", "--json"]));
    assert_eq!(greylist.as_array().map(Vec::len), Some(1));
    let all = json(&admin.mailctl(&["whitelist", "list", "--all", "--json"]));
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let table = ok(&admin.mailctl(&["whitelist", "list"]));
    assert!(table.starts_with("ID") && table.contains("any"), "{table}");

    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT kind, host(lower_ip), address FROM whitelist ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            (
                "antispam".into(),
                Some("192.0.2.0".into()),
                "*@partner.test".into()
            ),
            ("antispam".into(), None, "alerts@monitor.test".into()),
            ("greylist".into(), Some("198.51.100.1".into()), "*".into()),
        ]
    );
    let whitelist = mc_policy::Whitelist::new(db.pool.clone());
    let antispam_kind = mc_policy::WhitelistKind::Antispam;
    assert!(
        whitelist
            .matches(antispam_kind, ip("192.0.2.8"), "Bob@Partner.test")
            .await
            .expect("match")
    );
    assert!(
        !whitelist
            .matches(antispam_kind, ip("198.51.100.2"), "bob@partner.test")
            .await
            .expect("match")
    );

    let id = grey[0]["id"].as_i64().expect("id").to_string();
    assert_eq!(
        ok(&admin.mailctl(&["whitelist", "remove", &id])).trim(),
        format!("whitelist entry {id} removed")
    );
    fails_with(
        &admin.mailctl(&["whitelist", "remove", &id]),
        1,
        "does not exist",
    );

    fails_with(
        &admin.mailctl(&["whitelist", "add", "--ip", "10.0.0.999"]),
        2,
        "invalid address range",
    );
    fails_with(
        &admin.mailctl(&["whitelist", "add", "--ip", "10.0.0.9-10.0.0.1"]),
        1,
        "lower must not be above upper",
    );
    fails_with(
        &admin.mailctl(&["whitelist", "add", "--ip", "10.0.0.1-2001:db8::1"]),
        1,
        "same address family",
    );
    fails_with(
        &admin.mailctl(&["whitelist", "add", "--address", "a b@x.test"]),
        1,
        "without spaces",
    );
    fails_with(&admin.mailctl(&["whitelist", "remove", "x"]), 2, "invalid");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM whitelist")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 2, "refusals wrote nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn block_lists_are_added_switched_and_removed() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let table = ok(&admin.mailctl(&["dnsbl", "list"]));
    assert!(
        table.starts_with("KIND")
            && table.contains("zen.spamhaus.org")
            && table.contains("multi.surbl.org"),
        "the reference's lists are seeded: {table}"
    );
    let added = json(&admin.mailctl(&[
        "dnsbl",
        "add",
        "BL.Example.test",
        "--expected",
        "127.0.0.2-8|127.0.0.10",
        "--score",
        "4",
        "--message",
        "Listed by example",
        "--json",
    ]));
    assert_eq!(
        (
            &added[0]["kind"],
            &added[0]["zone"],
            &added[0]["score"],
            &added[0]["active"]
        ),
        (
            &json!("dnsbl"),
            &json!("bl.example.test"),
            &json!(4),
            &json!(true)
        )
    );
    let table = ok(&admin.mailctl(&[
        "dnsbl",
        "add",
        "uribl.example.test",
        "--surbl",
        "--inactive",
    ]));
    assert!(
        table.contains("surbl") && table.contains("127.0.0.*"),
        "{table}"
    );

    fails_with(
        &admin.mailctl(&["dnsbl", "add", "bl.example.test"]),
        1,
        "the dnsbl zone bl.example.test already exists (HTTP 409)",
    );
    fails_with(
        &admin.mailctl(&[
            "dnsbl",
            "add",
            "other.example.test",
            "--expected",
            "127.0.0.300",
        ]),
        1,
        "expected answers",
    );
    fails_with(
        &admin.mailctl(&[
            "dnsbl",
            "add",
            "other.example.test",
            "--expected",
            "127.0.0.8-2",
        ]),
        1,
        "(HTTP 400)",
    );
    fails_with(
        &admin.mailctl(&["dnsbl", "add", "other.example.test", "--score", "5000"]),
        1,
        "between 0 and 1000",
    );
    fails_with(
        &admin.mailctl(&["dnsbl", "add", "localhost"]),
        1,
        "not a DNS zone",
    );

    let switched = json(&admin.mailctl(&["dnsbl", "enable", "zen.spamhaus.org", "--json"]));
    assert_eq!(switched[0]["active"], true);
    ok(&admin.mailctl(&["dnsbl", "disable", "bl.example.test"]));
    ok(&admin.mailctl(&["dnsbl", "enable", "uribl.example.test", "--surbl"]));
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT kind, zone, active FROM dns_blacklists ORDER BY kind, zone")
            .fetch_all(&db.pool)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            ("dnsbl".into(), "bl.example.test".into(), false),
            ("dnsbl".into(), "bl.spamcop.net".into(), false),
            ("dnsbl".into(), "zen.spamhaus.org".into(), true),
            ("surbl".into(), "multi.surbl.org".into(), false),
            ("surbl".into(), "uribl.example.test".into(), true),
        ]
    );
    fails_with(
        &admin.mailctl(&["dnsbl", "enable", "uribl.example.test"]),
        1,
        "the dnsbl zone uribl.example.test does not exist",
    );

    assert_eq!(
        ok(&admin.mailctl(&["dnsbl", "remove", "bl.example.test"])).trim(),
        "bl.example.test removed"
    );
    ok(&admin.mailctl(&["dnsbl", "remove", "uribl.example.test", "--surbl"]));
    fails_with(
        &admin.mailctl(&["dnsbl", "remove", "bl.example.test"]),
        1,
        "does not exist",
    );
    let listed = json(&admin.mailctl(&["dnsbl", "list", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn lifting_a_ban_clears_the_failed_login_count_in_redis() {
    let db = TestDatabase::migrated().await;
    let prefix = mc_testkit::unique_prefix("ban");
    let redis_url = mc_testkit::redis_url();
    let admin = AdminProcess::start_with(
        &db.url,
        &[
            ("MAILCLUSTER_REDIS__URL", &redis_url),
            ("MAILCLUSTER_REDIS__KEY_PREFIX", &prefix),
        ],
    );

    let table = ok(&admin.mailctl(&["ban", "add", "203.0.113.7", "--minutes", "30"]));
    assert!(
        table.starts_with("IP") && table.contains("203.0.113.7"),
        "{table}"
    );
    ok(&admin.mailctl(&["ban", "add", "2001:db8::7"]));
    let bans = json(&admin.mailctl(&["ban", "list", "--json"]));
    assert_eq!(bans.as_array().map(Vec::len), Some(2), "{bans}");
    let table = ok(&admin.mailctl(&["ban", "list"]));
    assert!(
        table.contains("never") && table.contains("2001:db8::7"),
        "{table}"
    );
    let (smtp, ban, minutes): (bool, bool, f64) = sqlx::query_as(
        "SELECT allow_smtp, ban, EXTRACT(EPOCH FROM expires_at - now())::float8 / 60
           FROM ip_ranges WHERE lower_ip = '203.0.113.7'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the ban's range");
    assert!(
        !smtp && ban && (28.0..=30.0).contains(&minutes),
        "{minutes}"
    );

    let client = redis::Client::open(redis_url.as_str()).expect("redis client");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let key = format!("{prefix}{}", mc_policy::auth_failure_key(ip("203.0.113.7")));
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(3)
        .query_async(&mut redis)
        .await
        .expect("SET");

    let lifted = ok(&admin.mailctl(&["ban", "remove", "203.0.113.7"]));
    assert_eq!(
        lifted.trim(),
        "ban of 203.0.113.7 lifted (1 removed; failed-login count cleared)"
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert_eq!(
        exists, 0,
        "the count is gone, so the next failure does not re-ban"
    );
    let lifted = json(&admin.mailctl(&["ban", "remove", "2001:db8::7", "--json"]));
    assert_eq!(
        lifted,
        json!({ "ip": "2001:db8::7", "removed": 1, "failures_cleared": false })
    );
    assert_eq!(json(&admin.mailctl(&["ban", "list", "--json"])), json!([]));

    fails_with(
        &admin.mailctl(&["ban", "remove", "203.0.113.7"]),
        1,
        "does not exist",
    );
    fails_with(
        &admin.mailctl(&["ban", "add", "203.0.113.999"]),
        2,
        "invalid",
    );
    fails_with(
        &admin.mailctl(&["ban", "add", "203.0.113.8", "--minutes", "0"]),
        1,
        "at least one minute",
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM ip_ranges WHERE ban")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ban_is_lifted_even_without_redis() {
    let db = TestDatabase::migrated().await;
    // Nothing listens there: the counter cannot be cleared, the ban is lifted all the same.
    let dead = format!("redis://127.0.0.1:{}", mc_tests::free_port());
    let admin = AdminProcess::start_with(&db.url, &[("MAILCLUSTER_REDIS__URL", &dead)]);
    ok(&admin.mailctl(&["ban", "add", "198.51.100.66"]));
    let lifted = ok(&admin.mailctl(&["ban", "remove", "198.51.100.66"]));
    assert!(
        lifted.contains("lifted (1 removed; no failed-login count cleared)"),
        "{lifted}"
    );
    assert_eq!(json(&admin.mailctl(&["ban", "list", "--json"])), json!([]));
    assert!(
        admin
            .log_text()
            .contains("failed-login count of the address stays"),
        "a warning is logged: {}",
        admin.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn incoming_relays_are_added_listed_and_removed() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let table = ok(&admin.mailctl(&["relay", "add", "backup-mx", "198.51.100.10-198.51.100.11"]));
    assert!(
        table.starts_with("NAME") && table.contains("198.51.100.11"),
        "{table}"
    );
    ok(&admin.mailctl(&["relay", "add", "backup-v6", "2001:db8:1::/64"]));
    let relays = json(&admin.mailctl(&["relay", "list", "--json"]));
    assert_eq!(
        (&relays[1]["name"], &relays[1]["lower"], &relays[1]["upper"]),
        (
            &json!("backup-v6"),
            &json!("2001:db8:1::"),
            &json!("2001:db8:1:0:ffff:ffff:ffff:ffff")
        )
    );
    let contains = mc_policy::IncomingRelays::new(db.pool.clone());
    assert!(
        contains
            .contains(ip("198.51.100.10"))
            .await
            .expect("lookup")
    );
    assert!(
        contains
            .contains(ip("2001:db8:1::25"))
            .await
            .expect("lookup")
    );
    assert!(
        !contains
            .contains(ip("198.51.100.12"))
            .await
            .expect("lookup")
    );

    fails_with(
        &admin.mailctl(&["relay", "add", "backup-mx", "10.0.0.1"]),
        1,
        "an incoming relay named backup-mx already exists",
    );
    fails_with(
        &admin.mailctl(&["relay", "add", "x", "10.0.0.0/40"]),
        2,
        "invalid address range",
    );
    fails_with(
        &admin.mailctl(&["relay", "add", "x", "10.0.0.2-10.0.0.1"]),
        1,
        "lower must not be above upper",
    );
    assert_eq!(
        ok(&admin.mailctl(&["relay", "remove", "backup-mx"])).trim(),
        "incoming relay backup-mx removed"
    );
    fails_with(
        &admin.mailctl(&["relay", "remove", "backup-mx"]),
        1,
        "does not exist",
    );
    let table = ok(&admin.mailctl(&["relay", "list"]));
    assert!(
        !table.contains("backup-mx") && table.contains("backup-v6"),
        "{table}"
    );
}
