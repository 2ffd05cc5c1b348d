//! The directory against a real PostgreSQL (one fresh database per test).
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_directory::{
    AccountUpdate, AuthFailure, AuthOutcome, Directory, DirectoryError, DomainUpdate, ListMode,
    NewAccount, NewAlias, NewList, Rejection, Resolved, Target,
};
use mc_testkit::TestDatabase;
use mc_types::Secret;

async fn directory() -> (TestDatabase, Directory) {
    let db = TestDatabase::migrated().await;
    let directory = Directory::new(db.pool.clone());
    (db, directory)
}

fn account(address: &str) -> NewAccount {
    NewAccount {
        address: address.to_string(),
        password: Secret::new("correct horse battery".to_string()),
        quota_bytes: 0,
        admin_level: Default::default(),
        active: true,
    }
}

fn alias(address: &str, target: &str) -> NewAlias {
    NewAlias {
        address: address.into(),
        target: target.into(),
    }
}

fn list(address: &str) -> NewList {
    NewList {
        address: address.into(),
        mode: ListMode::Public,
        announce_address: None,
        require_auth: false,
    }
}

fn accounts(targets: &[&str]) -> Vec<Target> {
    targets
        .iter()
        .map(|a| Target::Account(a.to_string()))
        .collect()
}

async fn deliver(directory: &Directory, address: &str) -> Vec<Target> {
    match directory.resolve(address).await.unwrap() {
        Resolved::Deliver { targets, .. } => targets,
        other => panic!("{address} should be delivered, got {other:?}"),
    }
}

async fn rejected(directory: &Directory, address: &str) -> Rejection {
    match directory.resolve(address).await.unwrap() {
        Resolved::Rejected(reason) => reason,
        other => panic!("{address} should be rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn domains_are_created_listed_shown_and_removed() {
    let (_db, d) = directory().await;
    let created = d.create_domain("Example.TEST").await.unwrap();
    assert_eq!(created.name, "example.test");
    assert!(created.active);
    d.create_domain("other.test").await.unwrap();
    let names: Vec<_> = d
        .domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["example.test", "other.test"]);
    d.remove_domain("other.test", false).await.unwrap();
    assert!(matches!(
        d.domain("other.test").await,
        Err(DirectoryError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bad_and_duplicate_domains_are_refused() {
    let (_db, d) = directory().await;
    assert!(matches!(
        d.create_domain("nodot").await,
        Err(DirectoryError::InvalidDomain { .. })
    ));
    assert!(matches!(
        d.create_domain("bad_char.test").await,
        Err(DirectoryError::InvalidDomain { .. })
    ));
    d.create_domain("example.test").await.unwrap();
    assert!(matches!(
        d.create_domain("EXAMPLE.test").await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    d.create_domain("other.test").await.unwrap();
    // A name is a domain or a domain alias, never both.
    assert!(matches!(
        d.add_domain_alias("example.test", "other.test").await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    d.add_domain_alias("example.test", "alias.test")
        .await
        .unwrap();
    assert!(matches!(
        d.create_domain("alias.test").await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    assert!(matches!(
        d.add_domain_alias("other.test", "alias.test").await,
        Err(DirectoryError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn removing_a_domain_that_holds_objects_needs_force() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_alias(&alias("info@example.test", "alice@example.test"))
        .await
        .unwrap();
    assert!(matches!(
        d.remove_domain("example.test", false).await,
        Err(DirectoryError::Conflict(_))
    ));
    assert_eq!(
        d.accounts(None).await.unwrap().len(),
        1,
        "nothing was removed"
    );
    d.remove_domain("example.test", true).await.unwrap();
    assert!(d.accounts(None).await.unwrap().is_empty());
    assert!(d.aliases(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn accounts_need_a_hosted_primary_domain_and_a_unique_address() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.add_domain_alias("example.test", "alias.test")
        .await
        .unwrap();
    assert!(matches!(
        d.create_account(account("bob@unknown.test")).await,
        Err(DirectoryError::UnknownDomain(_))
    ));
    match d.create_account(account("bob@alias.test")).await {
        Err(DirectoryError::Invalid(message)) => {
            assert!(message.contains("example.test"), "{message}")
        }
        other => panic!("expected a hint to the primary domain, got {other:?}"),
    }
    assert!(matches!(
        d.create_account(account("not an address")).await,
        Err(DirectoryError::InvalidAddress { .. })
    ));
    let created = d
        .create_account(account("Alice@Example.test"))
        .await
        .unwrap();
    assert_eq!(created.address, "alice@example.test");
    assert!(matches!(
        d.create_account(account("ALICE@example.test")).await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    // One name, one kind of object: accounts, aliases and lists share the address space.
    assert!(matches!(
        d.create_alias(&alias("alice@example.test", "x@other.test"))
            .await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    d.create_alias(&alias("info@example.test", "alice@example.test"))
        .await
        .unwrap();
    assert!(matches!(
        d.create_list(&list("info@example.test")).await,
        Err(DirectoryError::AlreadyExists(_))
    ));
    let mut weak = account("carol@example.test");
    weak.password = Secret::new("short".into());
    assert!(matches!(
        d.create_account(weak).await,
        Err(DirectoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn concurrent_creations_of_one_address_as_two_kinds_let_exactly_one_win() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    for round in 0..10 {
        let address = format!("race{round}@example.test");
        let (new_alias, new_list) = (alias(&address, "someone@other.test"), list(&address));
        let (a, b) = tokio::join!(d.create_alias(&new_alias), d.create_list(&new_list));
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: alias {a:?}, list {b:?}"
        );
    }
}

#[tokio::test]
async fn the_cross_table_address_check_holds_under_concurrent_raw_inserts() {
    // Bypasses the directory's domain-row lock to exercise the triggers' own serialisation.
    let (db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    let domain_id: i64 = sqlx::query_scalar("SELECT id FROM domains")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    for round in 0..20 {
        let address = format!("raw{round}@example.test");
        let mut first = db.pool.begin().await.unwrap();
        let mut second = db.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO aliases (domain_id, address, target) VALUES ($1, $2, 'x@other.test')",
        )
        .bind(domain_id)
        .bind(&address)
        .execute(&mut *first)
        .await
        .unwrap();
        // The second insert blocks on the advisory lock until the first commits, then fails.
        let racing = tokio::spawn(async move {
            let result =
                sqlx::query("INSERT INTO distribution_lists (domain_id, address) VALUES ($1, $2)")
                    .bind(domain_id)
                    .bind(&address)
                    .execute(&mut *second)
                    .await;
            (result.map(|_| ()), second)
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        first.commit().await.unwrap();
        let (result, second) = racing.await.unwrap();
        let error = result.expect_err("the second kind of object must be refused");
        assert!(
            error.as_database_error().unwrap().is_unique_violation(),
            "{error}"
        );
        second.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn external_targets_keep_their_spelling() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_alias(&alias("ext@example.test", "John.Doe@Elsewhere.test"))
        .await
        .unwrap();
    assert_eq!(
        deliver(&d, "ext@example.test").await,
        vec![Target::External("John.Doe@elsewhere.test".into())]
    );
    d.create_list(&list("team@example.test")).await.unwrap();
    d.add_list_member("team@example.test", "Mixed.Case@Elsewhere.test")
        .await
        .unwrap();
    assert_eq!(
        d.list("team@example.test").await.unwrap().members,
        vec!["Mixed.Case@elsewhere.test"]
    );
    d.remove_list_member("team@example.test", "mixed.case@elsewhere.test")
        .await
        .unwrap();
    assert!(
        d.list("team@example.test")
            .await
            .unwrap()
            .members
            .is_empty()
    );
}

#[tokio::test]
async fn domain_limits_are_enforced() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    let limits = DomainUpdate {
        max_accounts: Some(1),
        max_account_size_bytes: Some(1000),
        ..Default::default()
    };
    d.update_domain("example.test", &limits).await.unwrap();
    let mut first = account("a@example.test");
    first.quota_bytes = 600;
    d.create_account(first).await.unwrap();
    assert!(matches!(
        d.create_account(account("b@example.test")).await,
        Err(DirectoryError::Conflict(_))
    ));
    let over = AccountUpdate {
        quota_bytes: Some(1001),
        ..Default::default()
    };
    assert!(matches!(
        d.update_account("a@example.test", over).await,
        Err(DirectoryError::Conflict(_))
    ));
    let within = AccountUpdate {
        quota_bytes: Some(1000),
        ..Default::default()
    };
    assert_eq!(
        d.update_account("a@example.test", within)
            .await
            .unwrap()
            .quota_bytes,
        1000
    );
}

#[tokio::test]
async fn alias_to_list_to_accounts_resolves_to_every_final_recipient() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_account(account("bob@example.test")).await.unwrap();
    d.create_list(&list("team@example.test")).await.unwrap();
    for member in [
        "alice@example.test",
        "bob@example.test",
        "partner@elsewhere.test",
    ] {
        d.add_list_member("team@example.test", member)
            .await
            .unwrap();
    }
    d.create_alias(&alias("sales@example.test", "team@example.test"))
        .await
        .unwrap();
    let targets = deliver(&d, "Sales@Example.TEST").await;
    let mut expected = accounts(&["alice@example.test", "bob@example.test"]);
    expected.push(Target::External("partner@elsewhere.test".into()));
    assert_eq!(targets, expected);
    assert_eq!(
        d.resolve("someone@elsewhere.test").await.unwrap(),
        Resolved::NotHosted
    );
}

#[tokio::test]
async fn unknown_users_catch_all_and_domain_aliases() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.add_domain_alias("example.test", "example-alias.test")
        .await
        .unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "nobody@example.test").await,
        Rejection::UnknownUser
    );
    assert_eq!(
        deliver(&d, "alice@example-alias.test").await,
        accounts(&["alice@example.test"])
    );

    d.set_catch_all("example.test", Some("alice@example.test"))
        .await
        .unwrap();
    assert_eq!(
        deliver(&d, "nobody@example.test").await,
        accounts(&["alice@example.test"])
    );
    assert_eq!(
        deliver(&d, "nobody@example-alias.test").await,
        accounts(&["alice@example.test"])
    );

    // A catch-all pointing at a local address that does not exist is a configuration error.
    d.set_catch_all("example.test", Some("ghost@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "nobody@example.test").await,
        Rejection::TooManyRecursiveForwards
    );
    d.set_catch_all("example.test", None).await.unwrap();
    assert_eq!(
        rejected(&d, "nobody@example.test").await,
        Rejection::UnknownUser
    );
}

#[tokio::test]
async fn disabled_objects_are_refused_each_with_its_reason() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_alias(&alias("info@example.test", "alice@example.test"))
        .await
        .unwrap();
    d.create_list(&list("team@example.test")).await.unwrap();
    d.add_list_member("team@example.test", "alice@example.test")
        .await
        .unwrap();

    d.set_alias_active("info@example.test", false)
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "info@example.test").await,
        Rejection::AliasDisabled
    );
    d.set_list_active("team@example.test", false).await.unwrap();
    assert_eq!(
        rejected(&d, "team@example.test").await,
        Rejection::ListDisabled
    );
    d.update_account(
        "alice@example.test",
        AccountUpdate {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        rejected(&d, "alice@example.test").await,
        Rejection::AccountDisabled
    );
    d.update_account(
        "alice@example.test",
        AccountUpdate {
            active: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.update_domain(
        "example.test",
        &DomainUpdate {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        rejected(&d, "alice@example.test").await,
        Rejection::DomainDisabled
    );
}

#[tokio::test]
async fn list_members_that_fail_are_skipped_not_fatal() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_account(account("bob@example.test")).await.unwrap();
    d.update_account(
        "bob@example.test",
        AccountUpdate {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.create_list(&list("team@example.test")).await.unwrap();
    for member in [
        "alice@example.test",
        "bob@example.test",
        "ghost@example.test",
    ] {
        d.add_list_member("team@example.test", member)
            .await
            .unwrap();
    }
    match d.resolve("team@example.test").await.unwrap() {
        Resolved::Deliver { targets, skipped } => {
            assert_eq!(targets, accounts(&["alice@example.test"]));
            assert_eq!(
                skipped,
                vec![
                    ("bob@example.test".to_string(), Rejection::AccountDisabled),
                    (
                        "ghost@example.test".to_string(),
                        Rejection::TooManyRecursiveForwards
                    ),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn loops_and_dangling_aliases_are_configuration_errors() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_alias(&alias("a@example.test", "b@example.test"))
        .await
        .unwrap();
    d.create_alias(&alias("b@example.test", "a@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "a@example.test").await,
        Rejection::TooManyRecursiveForwards
    );

    // A list that reaches itself through an alias fails as a whole, even with a good member.
    d.create_list(&list("team@example.test")).await.unwrap();
    d.create_alias(&alias("back@example.test", "team@example.test"))
        .await
        .unwrap();
    d.add_list_member("team@example.test", "alice@example.test")
        .await
        .unwrap();
    d.add_list_member("team@example.test", "back@example.test")
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "team@example.test").await,
        Rejection::TooManyRecursiveForwards
    );

    d.create_alias(&alias("dangling@example.test", "nobody@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "dangling@example.test").await,
        Rejection::TooManyRecursiveForwards
    );

    // A chain longer than the hop limit.
    for i in 0..12 {
        d.create_alias(&alias(
            &format!("hop{i}@example.test"),
            &format!("hop{}@example.test", i + 1),
        ))
        .await
        .unwrap();
    }
    d.create_alias(&alias("hop12@example.test", "alice@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "hop0@example.test").await,
        Rejection::TooManyRecursiveForwards
    );
    assert_eq!(
        deliver(&d, "hop5@example.test").await,
        accounts(&["alice@example.test"])
    );
}

#[tokio::test]
async fn plus_addressing_reaches_the_base_address_when_enabled() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "alice+news@example.test").await,
        Rejection::UnknownUser
    );
    d.update_domain(
        "example.test",
        &DomainUpdate {
            plus_addressing: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        deliver(&d, "alice+news@example.test").await,
        accounts(&["alice@example.test"])
    );
}

#[tokio::test]
async fn authentication_accepts_only_active_accounts_with_the_right_password() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    d.add_domain_alias("example.test", "alias.test")
        .await
        .unwrap();
    d.create_account(account("alice@example.test"))
        .await
        .unwrap();
    d.create_alias(&alias("info@example.test", "alice@example.test"))
        .await
        .unwrap();
    let good = || Secret::new("correct horse battery".to_string());

    assert!(matches!(
        d.authenticate("Alice@example.test", good()).await.unwrap(),
        AuthOutcome::Success { .. }
    ));
    assert!(matches!(
        d.authenticate("alice@alias.test", good()).await.unwrap(),
        AuthOutcome::Success { .. }
    ));
    assert_eq!(
        d.authenticate("alice@example.test", Secret::new("wrong".into()))
            .await
            .unwrap(),
        AuthOutcome::Failure(AuthFailure::WrongPassword)
    );
    assert_eq!(
        d.authenticate("info@example.test", good()).await.unwrap(),
        AuthOutcome::Failure(AuthFailure::UnknownAccount),
        "aliases cannot log in"
    );
    assert_eq!(
        d.authenticate("not-an-address", good()).await.unwrap(),
        AuthOutcome::Failure(AuthFailure::UnknownAccount)
    );
    d.update_domain(
        "example.test",
        &DomainUpdate {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        d.authenticate("alice@example.test", good()).await.unwrap(),
        AuthOutcome::Failure(AuthFailure::Disabled)
    );
    assert!(
        d.account("alice@example.test")
            .await
            .unwrap()
            .last_login_at
            .is_some()
    );

    d.update_account(
        "alice@example.test",
        AccountUpdate {
            password: Some(Secret::new("another long one".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.update_domain(
        "example.test",
        &DomainUpdate {
            active: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        d.authenticate("alice@example.test", good()).await.unwrap(),
        AuthOutcome::Failure(AuthFailure::WrongPassword)
    );
    assert!(matches!(
        d.authenticate("alice@example.test", Secret::new("another long one".into()))
            .await
            .unwrap(),
        AuthOutcome::Success { .. }
    ));
}

#[tokio::test]
async fn password_hashes_are_argon2id_and_never_serialised() {
    let (db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    let created = d
        .create_account(account("alice@example.test"))
        .await
        .unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM accounts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let debug = format!("{created:?}");
    let json = serde_json::to_string(&created).unwrap();
    for text in [debug, json] {
        assert!(
            !text.contains("argon2") && !text.contains("correct horse"),
            "{text}"
        );
    }
}

fn forwarding(to: &str, keep_copy: bool) -> AccountUpdate {
    AccountUpdate {
        forward_enabled: Some(true),
        forward_address: Some(to.to_string()),
        forward_keep_copy: Some(keep_copy),
        ..Default::default()
    }
}

#[tokio::test]
async fn account_forwarding_with_and_without_a_copy_and_forward_cycles() {
    let (_db, d) = directory().await;
    d.create_domain("example.test").await.unwrap();
    for address in ["a@example.test", "b@example.test", "c@example.test"] {
        d.create_account(account(address)).await.unwrap();
    }
    // Without a copy: only the forward target receives it.
    d.update_account("a@example.test", forwarding("Friend@Elsewhere.test", false))
        .await
        .unwrap();
    assert_eq!(
        deliver(&d, "a@example.test").await,
        [Target::External("Friend@elsewhere.test".into())]
    );
    // With a copy: both, the account first.
    d.update_account("a@example.test", forwarding("b@example.test", true))
        .await
        .unwrap();
    assert_eq!(
        deliver(&d, "a@example.test").await,
        accounts(&["a@example.test", "b@example.test"])
    );
    // A cycle of forwards ends where it closes: b forwards back to a, each gets one copy.
    d.update_account("b@example.test", forwarding("a@example.test", false))
        .await
        .unwrap();
    assert_eq!(
        deliver(&d, "a@example.test").await,
        accounts(&["a@example.test", "b@example.test"])
    );
    assert_eq!(
        deliver(&d, "b@example.test").await,
        accounts(&["a@example.test"])
    );
    // A forward to a local address that does not exist: the kept copy still arrives ...
    d.update_account("c@example.test", forwarding("ghost@example.test", true))
        .await
        .unwrap();
    match d.resolve("c@example.test").await.unwrap() {
        Resolved::Deliver { targets, skipped } => {
            assert_eq!(targets, accounts(&["c@example.test"]));
            assert_eq!(
                skipped,
                [(
                    "ghost@example.test".to_string(),
                    Rejection::TooManyRecursiveForwards
                )]
            );
        }
        other => panic!("{other:?}"),
    }
    // ... and without a copy the address is a configuration error, as for aliases.
    d.update_account("c@example.test", forwarding("ghost@example.test", false))
        .await
        .unwrap();
    assert_eq!(
        rejected(&d, "c@example.test").await,
        Rejection::TooManyRecursiveForwards
    );
    // Forwarding switched off: the account is an ordinary mailbox again.
    let off = AccountUpdate {
        forward_enabled: Some(false),
        ..Default::default()
    };
    d.update_account("c@example.test", off).await.unwrap();
    assert_eq!(
        deliver(&d, "c@example.test").await,
        accounts(&["c@example.test"])
    );
}
