//! IP ranges against a real PostgreSQL: seeds, administration, and which range governs a client.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_policy::{IpRanges, NewIpRange, PolicyError};
use mc_testkit::TestDatabase;
use time::{Duration, OffsetDateTime};

fn range(name: &str, priority: i32, lower: &str, upper: &str) -> NewIpRange {
    NewIpRange {
        name: name.into(),
        priority,
        lower: lower.parse().unwrap(),
        upper: upper.parse().unwrap(),
        allow_smtp: None,
        allow_pop3: None,
        allow_imap: None,
        allow_local_to_local: None,
        allow_local_to_external: None,
        allow_external_to_local: None,
        allow_external_to_external: None,
        require_auth_local_to_local: None,
        require_auth_local_to_external: None,
        require_auth_external_to_local: None,
        require_auth_external_to_external: None,
        antispam: None,
        antivirus: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn the_reference_default_ranges_are_seeded() {
    let db = TestDatabase::migrated().await;
    let ranges = IpRanges::new(db.pool.clone());
    let internet = ranges.get("Internet").await.unwrap();
    assert_eq!(
        (
            internet.priority,
            internet.lower.to_string(),
            internet.upper.to_string()
        ),
        (10, "0.0.0.0".into(), "255.255.255.255".into())
    );
    assert!(internet.allow_smtp && internet.allow_pop3 && internet.allow_imap);
    assert!(internet.require_auth_local_to_local && internet.require_auth_local_to_external);
    assert!(
        !internet.require_auth_external_to_local,
        "other servers deliver to us without auth"
    );
    assert!(internet.require_auth_external_to_external, "no open relay");
    let local = ranges.get("My computer").await.unwrap();
    assert_eq!(local.priority, 30);
    assert!(!local.require_auth_local_to_external && local.require_auth_external_to_external);
    assert_eq!(
        ranges.list().await.unwrap().len(),
        4,
        "IPv4 and IPv6 variants of both"
    );
}

#[tokio::test]
async fn the_highest_priority_live_range_governs() {
    let db = TestDatabase::migrated().await;
    let ranges = IpRanges::new(db.pool.clone());
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        ranges
            .governing("192.0.2.7".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Internet"
    );
    assert_eq!(
        ranges
            .governing("127.0.0.1".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "My computer"
    );
    assert_eq!(
        ranges
            .governing("::ffff:127.0.0.1".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "My computer"
    );
    assert_eq!(
        ranges
            .governing("2001:db8::1".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Internet (IPv6)"
    );

    ranges
        .create(&range("LAN", 20, "192.0.2.0", "192.0.2.255"))
        .await
        .unwrap();
    assert_eq!(
        ranges
            .governing("192.0.2.7".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "LAN"
    );
    let mut ban = range("ban", 25, "192.0.2.7", "192.0.2.7");
    ban.expires_at = Some(now + Duration::minutes(60));
    ranges.create(&ban).await.unwrap();
    assert_eq!(
        ranges
            .governing("192.0.2.7".parse().unwrap(), now)
            .await
            .unwrap()
            .unwrap()
            .name,
        "ban"
    );
    let later = now + Duration::minutes(61);
    assert_eq!(
        ranges
            .governing("192.0.2.7".parse().unwrap(), later)
            .await
            .unwrap()
            .unwrap()
            .name,
        "LAN",
        "expired ranges no longer apply"
    );

    for name in ["Internet", "Internet (IPv6)"] {
        ranges.remove(name).await.unwrap();
    }
    assert_eq!(
        ranges
            .governing("198.51.100.1".parse().unwrap(), now)
            .await
            .unwrap(),
        None,
        "no range, no service"
    );
}

#[tokio::test]
async fn bad_ranges_are_refused_and_nothing_is_written() {
    let db = TestDatabase::migrated().await;
    let ranges = IpRanges::new(db.pool.clone());
    for bad in [
        range("", 10, "10.0.0.1", "10.0.0.2"),
        range(&"x".repeat(41), 10, "10.0.0.1", "10.0.0.2"),
        range("prio", 1001, "10.0.0.1", "10.0.0.2"),
        range("order", 10, "10.0.0.9", "10.0.0.2"),
        range("family", 10, "10.0.0.1", "::2"),
    ] {
        assert!(
            matches!(ranges.create(&bad).await, Err(PolicyError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        ranges
            .create(&range("Internet", 1, "10.0.0.1", "10.0.0.1"))
            .await,
        Err(PolicyError::AlreadyExists(_))
    ));
    assert!(matches!(
        ranges.remove("nope").await,
        Err(PolicyError::NotFound(_))
    ));
    assert_eq!(ranges.list().await.unwrap().len(), 4);
}
