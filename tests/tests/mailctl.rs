//! `mailctl` (a process) against `mailcluster-admin` (a process) against a real PostgreSQL.

use mc_tests::{AdminProcess, TestDatabase, mailctl, stderr, stdout};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread")]
async fn domains_accounts_aliases_lists_and_ip_ranges_end_to_end() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);

    let table = ok(&admin.mailctl(&["domain", "add", "example.test"]));
    assert!(table.contains("example.test"), "{table}");
    ok(&admin.mailctl(&["domain", "alias", "add", "example.test", "example.org"]));
    ok(&admin.mailctl(&[
        "account",
        "add",
        "alice@example.test",
        "--password",
        "correct horse battery",
        "--quota",
        "500M",
    ]));
    let accounts = json(&admin.mailctl(&["account", "list", "--json"]));
    assert_eq!(accounts[0]["address"], "alice@example.test");
    assert_eq!(accounts[0]["quota_bytes"], 500 * 1024 * 1024);

    let table = ok(&admin.mailctl(&["account", "list"]));
    assert!(
        table.starts_with("ADDRESS"),
        "a readable table by default: {table}"
    );
    assert!(
        table.contains("alice@example.test") && table.contains("500.0 MiB"),
        "{table}"
    );

    let with_stdin = mailctl(
        &admin.api_url,
        Some(mc_tests::ADMIN_TOKEN),
        &["account", "add", "bob@example.test", "--password-stdin"],
        Some("another good one\n"),
    );
    ok(&with_stdin);
    ok(&admin.mailctl(&[
        "account",
        "passwd",
        "bob@example.test",
        "--password",
        "changed password",
    ]));
    let bob = json(&admin.mailctl(&["account", "quota", "bob@example.test", "1G", "--json"]));
    assert_eq!(bob["quota_bytes"], 1024 * 1024 * 1024);
    assert_eq!(
        json(&admin.mailctl(&["account", "disable", "bob@example.test", "--json"]))["active"],
        false
    );
    assert_eq!(
        json(&admin.mailctl(&["account", "enable", "bob@example.test", "--json"]))["active"],
        true
    );
    let shown = ok(&admin.mailctl(&["account", "show", "bob@example.test"]));
    assert!(shown.contains("1.0 GiB"), "{shown}");

    ok(&admin.mailctl(&["alias", "add", "info@example.test", "alice@example.test"]));
    let aliases = json(&admin.mailctl(&["alias", "list", "--domain", "example.test", "--json"]));
    assert_eq!(aliases[0]["target"], "alice@example.test");

    ok(&admin.mailctl(&["list", "add", "team@example.test", "--mode", "membership"]));
    ok(&admin.mailctl(&[
        "list",
        "member",
        "add",
        "team@example.test",
        "alice@example.test",
    ]));
    ok(&admin.mailctl(&[
        "list",
        "member",
        "add",
        "team@example.test",
        "bob@example.test",
    ]));
    let list = json(&admin.mailctl(&["list", "show", "team@example.test", "--json"]));
    assert_eq!(
        list["members"],
        serde_json::json!(["alice@example.test", "bob@example.test"])
    );
    assert_eq!(list["mode"], "membership");
    ok(&admin.mailctl(&[
        "list",
        "member",
        "remove",
        "team@example.test",
        "bob@example.test",
    ]));

    let domain = json(&admin.mailctl(&[
        "domain",
        "catch-all",
        "set",
        "example.test",
        "alice@example.test",
        "--json",
    ]));
    assert_eq!(domain["catch_all"], "alice@example.test");
    assert_eq!(
        json(&admin.mailctl(&["domain", "catch-all", "clear", "example.test", "--json"]))["catch_all"],
        Value::Null
    );
    assert_eq!(
        json(&admin.mailctl(&["domain", "disable", "example.test", "--json"]))["active"],
        false
    );
    assert_eq!(
        json(&admin.mailctl(&["domain", "enable", "example.test", "--json"]))["active"],
        true
    );
    let domain = json(&admin.mailctl(&["domain", "show", "example.test", "--json"]));
    assert_eq!(domain["aliases"], serde_json::json!(["example.org"]));
    ok(&admin.mailctl(&["domain", "alias", "remove", "example.test", "example.org"]));

    ok(&admin.mailctl(&[
        "iprange",
        "add",
        "office",
        "--lower",
        "192.0.2.0",
        "--upper",
        "192.0.2.255",
        "--priority",
        "40",
        "--no-pop3",
        "--allow",
        "local-local,local-external,external-local",
        "--require-auth",
        "none",
    ]));
    let ranges = json(&admin.mailctl(&["iprange", "list", "--json"]));
    let office = ranges
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "office")
        .expect("office listed");
    assert_eq!(
        (
            office["allow_pop3"].as_bool(),
            office["require_auth_local_to_external"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert!(ok(&admin.mailctl(&["iprange", "list"])).contains("office"));
    ok(&admin.mailctl(&["iprange", "remove", "office"]));

    ok(&admin.mailctl(&["list", "remove", "team@example.test"]));
    ok(&admin.mailctl(&["alias", "remove", "info@example.test"]));
    ok(&admin.mailctl(&["account", "remove", "bob@example.test"]));
    fails_with(
        &admin.mailctl(&["domain", "remove", "example.test"]),
        1,
        "still holds 1 account",
    );
    ok(&admin.mailctl(&["domain", "remove", "example.test", "--force"]));
    assert_eq!(
        json(&admin.mailctl(&["domain", "list", "--json"])),
        serde_json::json!([])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_clear_error_and_no_partial_write() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    ok(&admin.mailctl(&["domain", "add", "example.test"]));

    fails_with(
        &admin.mailctl(&["domain", "add", "example.test"]),
        1,
        "already in use",
    );
    fails_with(
        &admin.mailctl(&["domain", "add", "localhost"]),
        1,
        "needs at least one dot",
    );
    fails_with(
        &admin.mailctl(&[
            "account",
            "add",
            "not-an-address",
            "--password",
            "long enough",
        ]),
        1,
        "invalid address",
    );
    fails_with(
        &admin.mailctl(&[
            "account",
            "add",
            "a@unknown.test",
            "--password",
            "long enough",
        ]),
        1,
        "not hosted",
    );
    fails_with(
        &admin.mailctl(&[
            "account",
            "add",
            "a@example.test",
            "--password",
            "long enough",
            "--quota",
            "5 parsecs",
        ]),
        2,
        "invalid size",
    );
    fails_with(
        &admin.mailctl(&["account", "add", "a@example.test"]),
        2,
        "--password",
    );
    assert_eq!(
        json(&admin.mailctl(&["account", "list", "--json"])),
        serde_json::json!([]),
        "nothing was written"
    );

    ok(&admin.mailctl(&[
        "account",
        "add",
        "a@example.test",
        "--password",
        "long enough",
        "--quota",
        "1M",
    ]));
    fails_with(
        &admin.mailctl(&[
            "account",
            "add",
            "A@Example.test",
            "--password",
            "long enough",
        ]),
        1,
        "already in use",
    );
    fails_with(
        &admin.mailctl(&["account", "quota", "a@example.test", "lots"]),
        2,
        "invalid size",
    );
    assert_eq!(
        json(&admin.mailctl(&["account", "show", "a@example.test", "--json"]))["quota_bytes"],
        1024 * 1024
    );
    fails_with(
        &admin.mailctl(&["alias", "add", "a@example.test", "b@example.test"]),
        1,
        "already in use",
    );
    fails_with(
        &admin.mailctl(&["list", "add", "news@example.test", "--mode", "announcement"]),
        1,
        "announce_address",
    );
    fails_with(
        &admin.mailctl(&[
            "iprange", "add", "x", "--lower", "10.0.0.9", "--upper", "10.0.0.1",
        ]),
        1,
        "lower must not be above upper",
    );
    fails_with(
        &admin.mailctl(&["iprange", "add", "x", "--lower", "10.0.0.999"]),
        2,
        "invalid",
    );
    fails_with(
        &admin.mailctl(&["account", "show", "ghost@example.test"]),
        1,
        "does not exist",
    );

    let wrong_token = mailctl(
        &admin.api_url,
        Some("wrong-token-0123456789"),
        &["domain", "list"],
        None,
    );
    fails_with(&wrong_token, 1, "bearer token");
    let no_token = mailctl(&admin.api_url, None, &["domain", "list"], None);
    fails_with(&no_token, 2, "no admin token");
    let port = mc_tests::free_port();
    let unreachable = mailctl(
        &format!("http://127.0.0.1:{port}"),
        Some("x"),
        &["domain", "list"],
        None,
    );
    fails_with(&unreachable, 69, "cannot reach the admin API");
}
