//! The whitelist, DNS block lists and incoming relays against a real PostgreSQL: what the SMTP
//! ingress asks (`matches`, `active`, `contains`) and what administration refuses.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_policy::{
    BlacklistKind, DnsBlacklists, IncomingRelays, NewBlacklist, NewWhitelistEntry, PolicyError,
    Whitelist, WhitelistKind,
};
use mc_testkit::TestDatabase;
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn entry(
    kind: WhitelistKind,
    range: Option<(&str, &str)>,
    address: Option<&str>,
) -> NewWhitelistEntry {
    NewWhitelistEntry {
        kind,
        description: String::new(),
        lower: range.map(|r| ip(r.0)),
        upper: range.map(|r| ip(r.1)),
        address: address.map(str::to_string),
    }
}

#[tokio::test]
async fn whitelist_matches_by_range_and_sender_pattern_per_kind() {
    let db = TestDatabase::migrated().await;
    let whitelist = Whitelist::new(db.pool.clone());
    let kind = WhitelistKind::Antispam;
    assert!(
        !whitelist
            .matches(kind, ip("192.0.2.1"), "a@x.test")
            .await
            .unwrap()
    );

    whitelist
        .add(&entry(
            kind,
            Some(("192.0.2.0", "192.0.2.127")),
            Some("*@partner.test"),
        ))
        .await
        .unwrap();
    assert!(
        whitelist
            .matches(kind, ip("192.0.2.5"), "Bob@Partner.TEST")
            .await
            .unwrap()
    );
    assert!(
        whitelist
            .matches(kind, ip("::ffff:192.0.2.5"), "bob@partner.test")
            .await
            .unwrap(),
        "an IPv4-mapped client counts as IPv4"
    );
    assert!(
        !whitelist
            .matches(kind, ip("192.0.2.200"), "bob@partner.test")
            .await
            .unwrap()
    );
    assert!(
        !whitelist
            .matches(kind, ip("192.0.2.5"), "bob@other.test")
            .await
            .unwrap()
    );
    assert!(
        !whitelist
            .matches(kind, ip("2001:db8::1"), "bob@partner.test")
            .await
            .unwrap()
    );
    assert!(
        !whitelist
            .matches(WhitelistKind::Greylist, ip("192.0.2.5"), "bob@partner.test")
            .await
            .unwrap(),
        "an anti-spam entry does not skip greylisting only"
    );

    let any_sender = whitelist
        .add(&entry(
            WhitelistKind::Greylist,
            Some(("2001:db8::", "2001:db8::ffff")),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(any_sender.address, "*");
    assert!(
        whitelist
            .matches(WhitelistKind::Greylist, ip("2001:db8::10"), "")
            .await
            .unwrap(),
        "`*` takes the null sender"
    );
    whitelist
        .add(&entry(kind, None, Some("alerts@monitor.test")))
        .await
        .unwrap();
    assert!(
        whitelist
            .matches(kind, ip("203.0.113.9"), "alerts@monitor.test")
            .await
            .unwrap()
    );

    assert_eq!(whitelist.list(None).await.unwrap().len(), 3);
    assert_eq!(
        whitelist
            .list(Some(WhitelistKind::Greylist))
            .await
            .unwrap()
            .len(),
        1
    );
    whitelist.remove(any_sender.id).await.unwrap();
    assert!(matches!(
        whitelist.remove(any_sender.id).await,
        Err(PolicyError::NotFound(_))
    ));
}

#[tokio::test]
async fn whitelist_refuses_half_ranges_mixed_families_and_spaces() {
    let db = TestDatabase::migrated().await;
    let whitelist = Whitelist::new(db.pool.clone());
    let kind = WhitelistKind::Antispam;
    let mut half = entry(kind, Some(("192.0.2.1", "192.0.2.2")), None);
    half.upper = None;
    for bad in [
        half,
        entry(kind, Some(("192.0.2.9", "192.0.2.1")), None),
        entry(kind, Some(("192.0.2.1", "2001:db8::1")), None),
        entry(kind, None, Some("a b@x.test")),
        entry(kind, None, Some("")),
        entry(kind, None, Some(&"a".repeat(321))),
    ] {
        assert!(
            matches!(whitelist.add(&bad).await, Err(PolicyError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(whitelist.list(None).await.unwrap().is_empty());
}

fn list(kind: BlacklistKind, zone: &str) -> NewBlacklist {
    NewBlacklist {
        kind,
        zone: zone.into(),
        expected: None,
        score: None,
        message: None,
        active: None,
    }
}

#[tokio::test]
async fn block_lists_are_seeded_inactive_and_administered_per_kind() {
    let db = TestDatabase::migrated().await;
    let lists = DnsBlacklists::new(db.pool.clone());
    assert_eq!(
        lists.list(None).await.unwrap().len(),
        3,
        "the reference defaults"
    );
    assert!(lists.active(BlacklistKind::Dnsbl).await.unwrap().is_empty());

    let added = lists
        .add(&list(BlacklistKind::Dnsbl, "Bl.Example.TEST."))
        .await
        .unwrap();
    assert_eq!(
        (
            added.zone.as_str(),
            added.expected.as_str(),
            added.score,
            added.active
        ),
        ("bl.example.test", "127.0.0.*", 3, true)
    );
    assert!(matches!(
        lists
            .add(&list(BlacklistKind::Dnsbl, "bl.example.test"))
            .await,
        Err(PolicyError::AlreadyExists(_))
    ));
    lists
        .add(&list(BlacklistKind::Surbl, "bl.example.test"))
        .await
        .unwrap();
    let mut garbage = list(BlacklistKind::Dnsbl, "other.example.test");
    garbage.expected = Some("127.0.0.300".into());
    assert!(matches!(
        lists.add(&garbage).await,
        Err(PolicyError::Invalid(_))
    ));

    lists
        .set_active(BlacklistKind::Dnsbl, "zen.spamhaus.org", true)
        .await
        .unwrap();
    let active: Vec<String> = lists
        .active(BlacklistKind::Dnsbl)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.zone)
        .collect();
    assert_eq!(active, ["bl.example.test", "zen.spamhaus.org"]);
    lists
        .remove(BlacklistKind::Dnsbl, "bl.example.test")
        .await
        .unwrap();
    assert_eq!(lists.active(BlacklistKind::Surbl).await.unwrap().len(), 1);
    assert!(matches!(
        lists
            .set_active(BlacklistKind::Dnsbl, "bl.example.test", true)
            .await,
        Err(PolicyError::NotFound(_))
    ));
}

#[tokio::test]
async fn incoming_relays_contain_their_addresses() {
    let db = TestDatabase::migrated().await;
    let relays = IncomingRelays::new(db.pool.clone());
    relays
        .add("backup-mx", ip("198.51.100.10"), ip("198.51.100.11"))
        .await
        .unwrap();
    assert!(relays.contains(ip("198.51.100.11")).await.unwrap());
    assert!(relays.contains(ip("::ffff:198.51.100.10")).await.unwrap());
    assert!(!relays.contains(ip("198.51.100.12")).await.unwrap());
    assert!(matches!(
        relays
            .add("backup-mx", ip("10.0.0.1"), ip("10.0.0.1"))
            .await,
        Err(PolicyError::AlreadyExists(_))
    ));
    assert!(matches!(
        relays.add("v6", ip("2001:db8::2"), ip("2001:db8::1")).await,
        Err(PolicyError::Invalid(_))
    ));
    relays.remove("backup-mx").await.unwrap();
    assert!(relays.list().await.unwrap().is_empty());
    assert!(matches!(
        relays.remove("backup-mx").await,
        Err(PolicyError::NotFound(_))
    ));
}
