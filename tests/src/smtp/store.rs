//! Store fixtures for the SMTP tests: a seeded directory, IP ranges, and what the queue holds.

use crate::TestDatabase;
use mc_directory::{AccountUpdate, Directory, DomainUpdate};

/// argon2id of [`super::PASSWORD`] with the cheapest parameters (m=8 KiB, t=1). The server verifies with
/// the parameters stored in the hash, so logins cost microseconds instead of the ~1 s the OWASP
/// parameters take in a debug build, where every test would otherwise spend its time.
const PASSWORD_HASH: &str =
    "$argon2id$v=19$m=8,t=1,p=1$vG1OXYwa6vEVl/HmiWB+Qg$h9rrXmhAB8a8VzwuAAZ1gH38ceRubao44MMBoSdyjYE";

/// Seeded directory: `example.test` with `alice` and `bob` (active), `carol` (disabled) and
/// `closed.test` (disabled domain) with `dave`; every password is [`super::PASSWORD`].
pub async fn seed_directory(db: &TestDatabase) -> Directory {
    let directory = Directory::new(db.pool.clone());
    for domain in ["example.test", "closed.test"] {
        directory
            .create_domain(domain)
            .await
            .expect("create a domain");
    }
    for (address, active) in [
        ("alice@example.test", true),
        ("bob@example.test", true),
        ("carol@example.test", false),
        ("dave@closed.test", true),
    ] {
        // Inserted directly because `Directory::create_account` hashes with the OWASP parameters.
        sqlx::query(
            "INSERT INTO accounts (domain_id, address, password_hash, active)
             SELECT id, $1, $2, $3 FROM domains WHERE name = split_part($1, '@', 2)",
        )
        .bind(address)
        .bind(PASSWORD_HASH)
        .bind(active)
        .execute(&db.pool)
        .await
        .expect("insert an account");
    }
    let disable = DomainUpdate {
        active: Some(false),
        ..Default::default()
    };
    directory
        .update_domain("closed.test", &disable)
        .await
        .expect("disable closed.test");
    directory
}

/// Disables an account (the next MAIL of a session authenticated as it must fail).
pub async fn disable_account(directory: &Directory, address: &str) {
    let update = AccountUpdate {
        active: Some(false),
        ..Default::default()
    };
    directory
        .update_account(address, update)
        .await
        .expect("disable the account");
}

/// Puts 127.0.0.1 under an "Internet"-like range (priority 100): no external→external at all,
/// AUTH for local senders, none for external→local.
pub async fn loopback_is_internet(db: &TestDatabase) {
    mc_policy::IpRanges::new(db.pool.clone())
        .create(&internet_like_loopback())
        .await
        .expect("create the IP range");
}

/// The range of [`loopback_is_internet`], for tests that change one of its switches.
pub fn internet_like_loopback() -> mc_policy::NewIpRange {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    mc_policy::NewIpRange {
        name: "Internet-like loopback".into(),
        priority: 100,
        lower: loopback,
        upper: loopback,
        allow_smtp: Some(true),
        allow_pop3: None,
        allow_imap: None,
        allow_local_to_local: Some(true),
        allow_local_to_external: Some(true),
        allow_external_to_local: Some(true),
        allow_external_to_external: Some(false),
        require_auth_local_to_local: Some(true),
        require_auth_local_to_external: Some(true),
        require_auth_external_to_local: Some(false),
        require_auth_external_to_external: Some(true),
        antispam: None,
        antivirus: None,
        expires_at: None,
    }
}

/// Lets 127.0.0.1 send anywhere without AUTH (priority 200): for tests about delivery, whose
/// messages the ingress must accept whatever their sender and recipients.
pub async fn loopback_may_relay(db: &TestDatabase) {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    mc_policy::IpRanges::new(db.pool.clone())
        .create(&mc_policy::NewIpRange {
            name: "relaying loopback".into(),
            priority: 200,
            lower: loopback,
            upper: loopback,
            allow_smtp: Some(true),
            allow_pop3: None,
            allow_imap: None,
            allow_local_to_local: Some(true),
            allow_local_to_external: Some(true),
            allow_external_to_local: Some(true),
            allow_external_to_external: Some(true),
            require_auth_local_to_local: Some(false),
            require_auth_local_to_external: Some(false),
            require_auth_external_to_local: Some(false),
            require_auth_external_to_external: Some(false),
            antispam: None,
            antivirus: None,
            expires_at: None,
        })
        .await
        .expect("create the IP range");
}

/// Number of rows in `table` (a fixed table name from the test).
pub async fn count(db: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&db.pool)
        .await
        .expect("count rows")
}

/// One queued message as the database holds it.
#[derive(Debug)]
pub struct QueuedMessage {
    pub id: String,
    pub sender: String,
    pub auth_user: Option<String>,
    pub blob_key: String,
    pub blob_offset: i64,
    pub size_bytes: i64,
    pub recipients: Vec<String>,
}

/// Every queue entry, oldest first (UUIDv7 order), with its recipients in RCPT order.
pub async fn queued(db: &TestDatabase) -> Vec<QueuedMessage> {
    let rows: Vec<(String, String, Option<String>, String, i64, i64)> = sqlx::query_as(
        "SELECT e.id::text, e.sender, e.auth_user, m.blob_key, m.blob_offset, m.size_bytes
           FROM queue_entries e JOIN messages m ON m.id = e.message_id ORDER BY e.id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("read the queue");
    let mut out = Vec::new();
    for (id, sender, auth_user, blob_key, blob_offset, size_bytes) in rows {
        let recipients: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM queue_recipients WHERE queue_id = $1::uuid ORDER BY id",
        )
        .bind(&id)
        .fetch_all(&db.pool)
        .await
        .expect("read the recipients");
        out.push(QueuedMessage {
            id,
            sender,
            auth_user,
            blob_key,
            blob_offset,
            size_bytes,
            recipients,
        });
    }
    out
}
