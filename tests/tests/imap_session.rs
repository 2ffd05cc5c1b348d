//! IMAP over TCP with Python's imaplib (an independent client) against the real access service,
//! PostgreSQL, Redis and the object store: TLS and login variants, folders, APPEND, FETCH
//! variants, STORE, SEARCH, COPY/MOVE, EXPUNGE.

use mc_tests::TestDatabase;
use mc_tests::access::AccessProcess;
use mc_tests::smtp::seed_directory;

async fn start() -> (TestDatabase, AccessProcess) {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let access = AccessProcess::start(&db, &mc_testkit::unique_prefix("imap"), &[]);
    (db, access)
}

const PRELUDE: &str = r#"
import imaplib, json, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
PW = os.environ["PASSWORD"]
out = {}
def imaps():
    return imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
def plain():
    return imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP_PORT"]))
def s(x):
    if isinstance(x, bytes): return x.decode("utf-8", "replace")
    if isinstance(x, (list, tuple)): return [s(i) for i in x]
    return x
"#;

fn script(body: &str) -> String {
    format!("{PRELUDE}\n{body}\nprint(json.dumps(out))")
}

#[tokio::test]
async fn login_needs_tls_and_the_right_password() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
m = plain()
out["caps_before"] = sorted(m.capabilities)
try:
    m.login("alice@example.test", PW)
    out["plain_login"] = "accepted"
except imaplib.IMAP4.error as e:
    out["plain_login"] = str(e)
m.starttls(ssl_context=ctx)
out["caps_tls"] = sorted(s(m.capability()[1][0]).split())
try:
    m.login("alice@example.test", "wrong")
except imaplib.IMAP4.error as e:
    out["wrong"] = str(e)
typ, data = m.login("alice@example.test", PW)
out["login"] = typ
m.logout()
for who in ["carol@example.test", "dave@closed.test", "nobody@example.test"]:
    m = imaps()
    try:
        m.login(who, PW)
        out[who] = "accepted"
    except imaplib.IMAP4.error as e:
        out[who] = str(e)
m = imaps()
typ, _ = m.authenticate("PLAIN", lambda _: b"\0alice@example.test\0" + PW.encode())
out["plain"] = typ
m.logout()
"#,
    ));
    let caps: Vec<String> = serde_json::from_value(out["caps_before"].clone()).expect("caps");
    assert!(caps.contains(&"LOGINDISABLED".to_string()), "{caps:?}");
    assert!(caps.contains(&"STARTTLS".to_string()), "{caps:?}");
    assert!(
        out["plain_login"]
            .as_str()
            .unwrap_or("")
            .contains("PRIVACYREQUIRED"),
        "{out}"
    );
    let tls_caps = out["caps_tls"].to_string();
    assert!(
        tls_caps.contains("AUTH=PLAIN") && !tls_caps.contains("LOGINDISABLED"),
        "{out}"
    );
    assert!(
        out["wrong"]
            .as_str()
            .unwrap_or("")
            .contains("AUTHENTICATIONFAILED"),
        "{out}"
    );
    assert_eq!(out["login"], "OK");
    for who in [
        "carol@example.test",
        "dave@closed.test",
        "nobody@example.test",
    ] {
        assert!(
            out[who]
                .as_str()
                .unwrap_or("")
                .contains("AUTHENTICATIONFAILED"),
            "{who}: {out}"
        );
    }
    assert_eq!(out["plain"], "OK");
    let metrics = access.metrics();
    assert!(
        metrics.contains("mailcluster_access_logins_total{protocol=\"imap\",result=\"failure\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn folders_can_be_created_renamed_subscribed_and_deleted() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
m = imaps()
m.login("alice@example.test", PW)
out["initial"] = s(m.list()[1])
out["create"] = m.create("Projects/2026")[0]
out["create_again"] = s(m.create("Projects/2026"))
out["rename"] = m.rename("Projects", "Work")[0]
out["after_rename"] = s(m.list('""', "Work*")[1])
out["unsubscribe"] = m.unsubscribe("Work/2026")[0]
out["lsub"] = s(m.lsub('""', "Work*")[1])
out["delete"] = m.delete("Work/2026")[0]
out["delete_inbox"] = s(m.delete("INBOX"))
out["status"] = s(m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")[1])
out["percent"] = s(m.list('""', "%")[1])
m.logout()
"#,
    ));
    let initial = out["initial"].to_string();
    for expected in [
        r#"(\\HasNoChildren) \"/\" \"INBOX\""#,
        r#"(\\HasNoChildren \\Sent) \"/\" \"Sent\""#,
        r#"(\\HasNoChildren \\Drafts) \"/\" \"Drafts\""#,
        r#"(\\HasNoChildren \\Trash) \"/\" \"Trash\""#,
        r#"(\\HasNoChildren \\Junk) \"/\" \"Junk\""#,
    ] {
        assert!(initial.contains(expected), "{expected} in {initial}");
    }
    assert_eq!(out["create"], "OK");
    assert!(
        out["create_again"].to_string().contains("ALREADYEXISTS"),
        "{out}"
    );
    assert_eq!(out["rename"], "OK");
    let renamed = out["after_rename"].to_string();
    assert!(
        renamed.contains(r#"(\\HasChildren) \"/\" \"Work\""#)
            && renamed.contains(r#"\"Work/2026\""#),
        "{renamed}"
    );
    assert_eq!(out["unsubscribe"], "OK");
    assert!(!out["lsub"].to_string().contains("Work/2026"), "{out}");
    assert_eq!(out["delete"], "OK");
    assert!(out["delete_inbox"].to_string().contains("NO"), "{out}");
    let status = out["status"].to_string();
    assert!(
        status.contains("MESSAGES 0") && status.contains("UIDNEXT 1"),
        "{status}"
    );
    let percent = out["percent"].to_string();
    assert!(
        percent.contains("\\\"Work\\\"") && !percent.contains("Work/"),
        "{percent}"
    );
}

#[tokio::test]
async fn quota_namespace_id_and_enable_answer() {
    let (db, access) = start().await;
    sqlx::query("UPDATE accounts SET quota_bytes = 4096 WHERE address = 'alice@example.test'")
        .execute(&db.pool)
        .await
        .expect("set a quota");
    let out = access.python(&script(
        r#"
m = imaps()
m.login("alice@example.test", PW)
out["namespace"] = s(m.namespace()[1])
out["id"] = s(m.xatom("ID", "NIL")[0])
out["id_data"] = s(m.untagged_responses.get("ID", []))
typ, data = m._simple_command("ENABLE", "CONDSTORE")
out["enable"] = typ
out["enabled"] = s(m.untagged_responses.get("ENABLED", []))
body = b"Subject: small\r\n\r\n" + b"x" * 1000 + b"\r\n"
out["append"] = m.append("INBOX", None, None, body)[0]
typ, data = m.getquotaroot("INBOX")
out["quotaroot"] = s(data)
out["too_big"] = s(m.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"y" * 4000 + b"\r\n"))
m.logout()
"#,
    ));
    assert_eq!(
        out["namespace"],
        serde_json::json!(["((\"\" \"/\")) NIL NIL"]),
        "{out}"
    );
    assert!(out["id_data"].to_string().contains("mailcluster"), "{out}");
    assert_eq!(out["enable"], "OK");
    assert_eq!(out["enabled"], serde_json::json!(["CONDSTORE"]), "{out}");
    assert_eq!(out["append"], "OK");
    let quota = out["quotaroot"].to_string();
    assert!(
        quota.contains(r#"\"INBOX\" \"\""#) && quota.contains(r#"\"\" (STORAGE 1 4)"#),
        "{quota}"
    );
    assert!(out["too_big"].to_string().contains("[OVERQUOTA]"), "{out}");
}

#[tokio::test]
async fn failed_logins_are_counted_per_address_in_redis() {
    let (_db, access) = start().await;
    let out = access.python(&script(
        r#"
for who in ["alice@example.test", "nobody@example.test"]:
    m = imaps()
    try:
        m.login(who, "wrong password")
    except imaplib.IMAP4.error as e:
        out[who] = str(e)
"#,
    ));
    assert_eq!(out.as_object().map(|o| o.len()), Some(2), "{out}");
    let client = redis::Client::open(mc_testkit::redis_url()).expect("redis client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let key = format!("{}authfail:127.0.0.1", access.redis_prefix);
    let count: i64 = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .expect("GET");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .expect("TTL");
    assert_eq!(count, 2);
    // The window is the shared anti-spam setting autoban_window_minutes (30 by default).
    assert!(ttl > 1700 && ttl <= 1800, "{ttl}");
}
