//! `mailctl route|relayer|dkim` (a process) against `mailcluster-admin` (a process) against a
//! real PostgreSQL: what operators' scripts run, exit codes and output included. Passwords go
//! in by flag, file or environment and must never come back out.

use mc_policy::DeliverySettings;
use mc_tests::{ADMIN_TOKEN, AdminProcess, TestDatabase, bin, stderr, stdout};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};

const ROUTE_PASSWORD: &str = "route-pass-7f3a9c";
const FILE_PASSWORD: &str = "file pass with spaces 51d0";
const ENV_PASSWORD: &str = "env-pass-c0ffee42";
const RELAYER_PASSWORD: &str = "relayer-pass-2b8e61";

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "mailctl failed: {}\n{}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

fn json_of(output: &Output) -> Value {
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

/// Fails if any password given to any command shows up in what `mailctl` printed.
fn no_password_in(output: &Output) {
    let text = format!("{}{}", stdout(output), stderr(output));
    for password in [
        ROUTE_PASSWORD,
        FILE_PASSWORD,
        ENV_PASSWORD,
        RELAYER_PASSWORD,
    ] {
        assert!(!text.contains(password), "a password was printed: {text}");
    }
}

/// `mailctl` with one extra environment variable (the harness clears the environment).
fn mailctl_with_env(admin: &AdminProcess, args: &[&str], name: &str, value: &str) -> Output {
    Command::new(bin("mailctl"))
        .args(args)
        .env_clear()
        .env("MAILCTL_URL", &admin.api_url)
        .env("MAILCTL_TOKEN", ADMIN_TOKEN)
        .env(name, value)
        .stdin(Stdio::null())
        .output()
        .expect("run mailctl")
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_are_added_listed_and_removed_and_passwords_never_shown() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    let settings = DeliverySettings::new(db.pool.clone());

    let added = admin.mailctl(&[
        "route",
        "add",
        "example.org",
        "--host",
        "mx.partner.example:2525",
        "--tls",
        "required",
        "--user",
        "relay-user",
        "--password",
        ROUTE_PASSWORD,
        "--retries",
        "5",
        "--retry-minutes",
        "30",
    ]);
    let table = ok(&added);
    no_password_in(&added);
    assert!(table.starts_with("DOMAIN"), "{table}");
    assert!(
        table.contains("mx.partner.example") && table.contains("2525"),
        "{table}"
    );
    assert!(table.contains("required") && table.contains("relay-user"));
    let hop = settings
        .route_for("example.org")
        .await
        .expect("route lookup")
        .expect("route stored");
    assert_eq!(
        hop.auth,
        Some(("relay-user".into(), ROUTE_PASSWORD.into())),
        "the password reached the worker's view"
    );
    assert_eq!((hop.retries, hop.retry_minutes), (Some(5), Some(30)));

    // A wildcard route, a bracketed IPv6 next hop with a port, the password from a file.
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{FILE_PASSWORD}\n")).expect("write password file");
    let file = file.to_str().expect("UTF-8 path");
    let added = admin.mailctl(&[
        "route",
        "add",
        "*.Example.net",
        "--host",
        "[::1]:2526",
        "--user",
        "wild",
        "--password-file",
        file,
        "--json",
    ]);
    no_password_in(&added);
    let route = json_of(&added);
    assert_eq!(route[0]["domain"], "*.example.net");
    assert_eq!(
        (&route[0]["host"], &route[0]["port"]),
        (&json!("::1"), &json!(2526))
    );
    assert_eq!(route[0]["tls"], "optional", "the default TLS mode");
    let hop = settings
        .route_for("a.b.example.net")
        .await
        .expect("route lookup")
        .expect("the wildcard applies to subdomains");
    assert_eq!(hop.auth, Some(("wild".into(), FILE_PASSWORD.into())));

    // A bare IPv6 address, the password from the environment.
    let added = mailctl_with_env(
        &admin,
        &[
            "route",
            "add",
            "example.com",
            "--host",
            "2001:db8::25",
            "--tls",
            "none",
            "--user",
            "envuser",
        ],
        "MAILCTL_RELAY_PASSWORD",
        ENV_PASSWORD,
    );
    ok(&added);
    no_password_in(&added);
    let hop = settings
        .route_for("example.com")
        .await
        .expect("route lookup")
        .expect("route stored");
    assert_eq!((hop.host.as_str(), hop.port), ("2001:db8::25", 25));
    assert_eq!(hop.auth, Some(("envuser".into(), ENV_PASSWORD.into())));

    // Adding again replaces: the credentials go away when not given.
    ok(&admin.mailctl(&["route", "add", "example.com", "--host", "mx.example.com"]));

    let listed = admin.mailctl(&["route", "list", "--json"]);
    no_password_in(&listed);
    let routes = json_of(&listed);
    let summary: Vec<(&str, &str, u64, &str)> = routes
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["domain"].as_str().unwrap_or_default(),
                r["host"].as_str().unwrap_or_default(),
                r["port"].as_u64().unwrap_or_default(),
                r["tls"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("*.example.net", "::1", 2526, "optional"),
            ("example.com", "mx.example.com", 25, "optional"),
            ("example.org", "mx.partner.example", 2525, "required"),
        ]
    );
    assert_eq!(routes[1]["username"], Value::Null);
    for route in routes.as_array().expect("a list") {
        assert!(route.get("password").is_none(), "{route}");
    }
    let listed = admin.mailctl(&["route", "list"]);
    no_password_in(&listed);
    let table = ok(&listed);
    assert!(table.contains("*.example.net"), "{table}");
    assert!(
        table.contains("default"),
        "unset retries show as default: {table}"
    );

    ok(&admin.mailctl(&["route", "remove", "*.example.net"]));
    let removed = admin.mailctl(&["route", "remove", "example.com", "--json"]);
    assert_eq!(json_of(&removed)["ok"], true);
    fails_with(
        &admin.mailctl(&["route", "remove", "example.com"]),
        1,
        "does not exist",
    );
    let routes = json_of(&admin.mailctl(&["route", "list", "--json"]));
    assert_eq!(routes.as_array().map(Vec::len), Some(1), "{routes}");
    assert_eq!(routes[0]["domain"], "example.org");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relayer_is_set_shown_and_cleared() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    let settings = DeliverySettings::new(db.pool.clone());

    fails_with(&admin.mailctl(&["relayer", "show"]), 1, "no relayer is set");
    fails_with(
        &admin.mailctl(&["relayer", "clear"]),
        1,
        "no relayer is set",
    );

    let set = admin.mailctl(&[
        "relayer",
        "set",
        "smarthost.example.net:587",
        "--tls",
        "required",
        "--user",
        "relay",
        "--password",
        RELAYER_PASSWORD,
    ]);
    let shown = ok(&set);
    no_password_in(&set);
    assert!(shown.contains("smarthost.example.net"), "{shown}");
    assert!(
        shown.contains("587") && shown.contains("required"),
        "{shown}"
    );
    let hop = settings
        .relayer_hop()
        .await
        .expect("relayer lookup")
        .expect("relayer stored");
    assert_eq!(hop.auth, Some(("relay".into(), RELAYER_PASSWORD.into())));

    let shown = admin.mailctl(&["relayer", "show", "--json"]);
    no_password_in(&shown);
    let relayer = json_of(&shown);
    assert_eq!(
        (
            &relayer["host"],
            &relayer["port"],
            &relayer["tls"],
            &relayer["username"]
        ),
        (
            &json!("smarthost.example.net"),
            &json!(587),
            &json!("required"),
            &json!("relay")
        )
    );
    assert!(relayer.get("password").is_none(), "{relayer}");
    let table = admin.mailctl(&["relayer", "show"]);
    no_password_in(&table);
    assert!(ok(&table).contains("relay"));

    // Replaced by a plain one on the default port.
    let relayer = json_of(&admin.mailctl(&["relayer", "set", "[2001:db8::1]", "--json"]));
    assert_eq!(
        (&relayer["host"], &relayer["port"], &relayer["username"]),
        (&json!("2001:db8::1"), &json!(25), &Value::Null)
    );

    assert!(ok(&admin.mailctl(&["relayer", "clear"])).contains("relayer cleared"));
    assert_eq!(settings.relayer().await.expect("relayer lookup"), None);
    fails_with(&admin.mailctl(&["relayer", "show"]), 1, "no relayer is set");
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_generate_prints_the_txt_record_of_an_rsa_2048_key() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    ok(&admin.mailctl(&["domain", "add", "example.test"]));

    fails_with(
        &admin.mailctl(&["dkim", "show", "example.test"]),
        1,
        "has no DKIM key",
    );

    let generated = ok(&admin.mailctl(&["dkim", "generate", "example.test"]));
    let record_line = generated
        .lines()
        .find(|line| line.starts_with("mail._domainkey.example.test. IN TXT \"v=DKIM1; k=rsa; p="))
        .unwrap_or_else(|| panic!("no one-line TXT record: {generated}"));
    let value = record_line
        .strip_prefix("mail._domainkey.example.test. IN TXT \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("one quoted string");
    let key = value
        .strip_prefix("v=DKIM1; k=rsa; p=")
        .expect("the DKIM tags");
    let der = base64_decode(key).expect("p= is base64");
    // SubjectPublicKeyInfo of a 2048-bit RSA key: SEQUENCE of 290 bytes (294 with its header),
    // holding the rsaEncryption algorithm identifier.
    assert_eq!(der.len(), 294, "DER length");
    assert_eq!(&der[..4], [0x30, 0x82, 0x01, 0x22]);
    let rsa_encryption = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    assert!(
        der.windows(rsa_encryption.len())
            .any(|w| w == rsa_encryption),
        "rsaEncryption OID"
    );

    // The value is longer than one TXT string: the zone-file form splits it.
    assert!(value.len() > 255);
    let split_line = generated
        .lines()
        .filter(|line| line.starts_with("mail._domainkey.example.test. IN TXT "))
        .nth(1)
        .unwrap_or_else(|| panic!("no split TXT record: {generated}"));
    let strings: Vec<&str> = split_line
        .trim_start_matches("mail._domainkey.example.test. IN TXT ")
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert!(strings.len() >= 2, "{split_line}");
    assert!(strings.iter().all(|s| s.len() <= 255), "{split_line}");
    assert_eq!(strings.concat(), value);

    let shown = ok(&admin.mailctl(&["dkim", "show", "example.test"]));
    assert!(shown.contains(record_line), "the same record: {shown}");

    // A new selector makes a new key; --json carries the name and value.
    let record = json_of(&admin.mailctl(&[
        "dkim",
        "generate",
        "example.test",
        "--selector",
        "s2026",
        "--json",
    ]));
    assert_eq!(record["txt_name"], "s2026._domainkey.example.test");
    assert_ne!(record["txt_value"], json!(value), "a fresh key");
    assert_eq!(
        json_of(&admin.mailctl(&["dkim", "show", "example.test", "--json"])),
        record
    );
    for output in [
        admin.mailctl(&["dkim", "show", "example.test"]),
        admin.mailctl(&["dkim", "show", "example.test", "--json"]),
    ] {
        assert!(
            !stdout(&output).contains("PRIVATE"),
            "no private key material is printed"
        );
    }

    fails_with(
        &admin.mailctl(&["dkim", "generate", "unknown.test"]),
        1,
        "domain unknown.test does not exist",
    );
    fails_with(
        &admin.mailctl(&["dkim", "show", "unknown.test"]),
        1,
        "does not exist",
    );
    fails_with(
        &admin.mailctl(&[
            "dkim",
            "generate",
            "example.test",
            "--selector",
            "bad selector",
        ]),
        1,
        "not a DNS name",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_delivery_input_is_refused_before_or_by_the_api() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    let route = |extra: &[&str]| {
        let mut args = vec!["route", "add", "example.org"];
        args.extend_from_slice(extra);
        admin.mailctl(&args)
    };

    // Refused by mailctl itself: exit 2, nothing sent.
    fails_with(&route(&["--host", "mx.example.org:0"]), 2, "port 0");
    fails_with(
        &route(&["--host", "mx.example.org:70000"]),
        2,
        "invalid host",
    );
    fails_with(&route(&["--host", "2001:db8::1:2525:x"]), 2, "in brackets");
    fails_with(&route(&["--host", "[::1]x"]), 2, "invalid host");
    fails_with(
        &route(&["--host", "mx.example.org", "--user", "u"]),
        2,
        "--user needs a password",
    );
    fails_with(
        &route(&["--host", "mx.example.org", "--password", ROUTE_PASSWORD]),
        2,
        "needs --user",
    );
    fails_with(
        &route(&["--host", "mx.example.org", "--tls", "sometimes"]),
        2,
        "invalid value",
    );
    fails_with(&route(&[]), 2, "--host");
    fails_with(
        &route(&[
            "--host",
            "mx.example.org",
            "--user",
            "u",
            "--password-file",
            "/nonexistent/password",
        ]),
        2,
        "cannot read the password file",
    );
    fails_with(
        &admin.mailctl(&["relayer", "set", "relay.example.org:0"]),
        2,
        "port 0",
    );
    fails_with(
        &admin.mailctl(&["relayer", "set", "relay.example.org", "--user", "u"]),
        2,
        "--user needs a password",
    );
    let leaked = route(&["--host", "mx.example.org", "--password", ROUTE_PASSWORD]);
    no_password_in(&leaked);

    // Refused by the API: exit 1 with its message.
    fails_with(
        &admin.mailctl(&["route", "add", "localhost", "--host", "mx.example.org"]),
        1,
        "needs at least one dot",
    );
    fails_with(&route(&["--host", "not a host"]), 1, "host");
    fails_with(
        &route(&["--host", "mx.example.org", "--retry-minutes", "0"]),
        1,
        "retry_minutes must be at least 1",
    );
    fails_with(
        &route(&["--host", "mx.example.org", "--retries", "1001"]),
        1,
        "retries must be at most 1000",
    );

    assert_eq!(
        json_of(&admin.mailctl(&["route", "list", "--json"])),
        json!([]),
        "nothing was written"
    );
    fails_with(
        &admin.mailctl(&["relayer", "show", "--json"]),
        1,
        "no relayer is set",
    );
}

/// Standard base64 with padding (RFC 4648 §4); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for byte in body.bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte)?;
        bits = (bits << 6) | u32::try_from(value).ok()?;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    Some(out)
}
