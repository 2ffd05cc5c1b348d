//! `mailctl account unlock`: an administrator clears the maildrop lock a POP3 session holds (a
//! stuck client, or a replica that died before the lock expired), so the next login succeeds.

use mc_tests::access::AccessProcess;
use mc_tests::smtp::seed_directory;
use mc_tests::{AdminProcess, TestDatabase};

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_can_clear_a_maildrop_lock() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let redis = mc_testkit::unique_prefix("unlock");
    let access =
        AccessProcess::start_shared(&db, &mc_testkit::unique_prefix("unlock"), &redis, &[]);
    let redis_url = mc_testkit::redis_url();
    let admin = AdminProcess::start_with(
        &db.url,
        &[
            ("MAILCLUSTER_REDIS__URL", &redis_url),
            ("MAILCLUSTER_REDIS__KEY_PREFIX", &redis),
        ],
    );
    let mut holder = access.python_spawn(
        r#"
import json, os, poplib, ssl, sys, time
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
p = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx)
p.user("alice@example.test")
p.pass_(os.environ["PASSWORD"])
print("LOCKED")
time.sleep(30)
"#,
        &[],
    );
    assert_eq!(holder.line(), "LOCKED");
    let second = r#"
import json, os, poplib, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
p = poplib.POP3_SSL("127.0.0.1", int(os.environ["POP3S_PORT"]), context=ctx)
p.user("alice@example.test")
try:
    print(json.dumps({"pass": p.pass_(os.environ["PASSWORD"]).decode()}))
    p.quit()
except poplib.error_proto as e:
    print(json.dumps({"pass": str(e)}))
"#;
    let refused = access.python(second);
    assert!(
        refused["pass"].as_str().unwrap_or("").contains("[IN-USE]"),
        "{refused}"
    );
    let output = admin.mailctl(&["account", "unlock", "alice@example.test"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("POP3 lock of alice@example.test cleared"),
        "{output:?}"
    );
    let accepted = access.python(second);
    assert!(
        accepted["pass"].as_str().unwrap_or("").starts_with("+OK"),
        "{accepted}"
    );
    let again = admin.mailctl(&["account", "unlock", "alice@example.test"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("had no POP3 lock"),
        "{again:?}"
    );
    drop(holder);
}
