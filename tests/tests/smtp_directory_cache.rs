//! smtp-ingress's directory cache, end to end with the real admin service and Redis: repeated
//! lookups are answered from the cache, and a change made through the admin API (mailctl) is
//! seen by the very next RCPT, because the admin announces it and the ingress empties its cache.

use mc_tests::smtp::{IngressProcess, RawClient, seed_directory};
use mc_tests::{AdminProcess, TestDatabase, stderr};

/// `mailcluster_smtp_directory_cache_lookups_total{result="..."}` on the ingress's ops port.
fn lookups(ingress: &IngressProcess, result: &str) -> u64 {
    let line = format!("mailcluster_smtp_directory_cache_lookups_total{{result=\"{result}\"}} ");
    ingress
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_lookups_hit_the_cache_and_an_admin_change_is_seen_at_once() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let prefix = mc_testkit::unique_prefix("cache");
    let shared = [("MAILCLUSTER_REDIS__KEY_PREFIX", prefix.as_str())];
    let redis_url = mc_testkit::redis_url();
    let mut admin_env = shared.to_vec();
    admin_env.push(("MAILCLUSTER_REDIS__URL", redis_url.as_str()));
    let admin = AdminProcess::start_with(&db.url, &admin_env);
    let ingress = IngressProcess::start(&db, &shared);
    // The ingress subscribes shortly after it is ready; wait until the cache is live, i.e. a
    // repeated lookup is a hit.
    let (mut client, _) = RawClient::connect(ingress.mx_port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    let mut live = false;
    for _ in 0..50 {
        assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
        assert_eq!(client.cmd("RSET").code, 250);
        if lookups(&ingress, "hit") > 0 {
            live = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(live, "the cache never answered: {}", ingress.log_text());
    let (hits, misses) = (lookups(&ingress, "hit"), lookups(&ingress, "miss"));
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(
        lookups(&ingress, "hit"),
        hits + 2,
        "the sender's domain and the recipient came from the cache"
    );
    assert_eq!(lookups(&ingress, "miss"), misses);
    assert_eq!(client.cmd("RSET").code, 250);

    // A refusal is never cached: the address may be created any moment.
    let misses = lookups(&ingress, "miss");
    for _ in 0..2 {
        assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<nobody@example.test>").code, 550);
        assert_eq!(client.cmd("RSET").code, 250);
    }
    assert_eq!(lookups(&ingress, "miss"), misses + 2);

    let disabled = admin.mailctl(&["account", "disable", "alice@example.test"]);
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    let refused = client.cmd("RCPT TO:<alice@example.test>");
    assert_eq!(
        refused.line(),
        "550 5.2.1 Account is not active",
        "the change reached the ingress before mailctl returned"
    );
}
