//! Delivery end-to-end harness: the `mailcluster-delivery-worker` process on a fresh ops port,
//! and what the mailbox tables hold.

use crate::{TestDatabase, bin, free_port, http_status, uuid_like};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct WorkerProcess {
    pub child: Child,
    pub ops_url: String,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts a worker against `db` and the object store under `blob_prefix` (the ingress's, so
    /// that it reads what the ingress stored), polling every 100 ms, and waits until `/readyz`
    /// answers 200. `extra_env` overrides anything (e.g. the Redis key prefix shared with an
    /// ingress).
    pub fn start(db: &TestDatabase, blob_prefix: &str, extra_env: &[(&str, &str)]) -> Self {
        let ops = free_port();
        let log = std::env::temp_dir().join(format!("mc-delivery-worker-{}.log", uuid_like()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin("mailcluster-delivery-worker"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MAILCLUSTER_DATABASE__URL", &db.url)
            .envs(crate::store_env(blob_prefix))
            .env(
                "MAILCLUSTER_REDIS__KEY_PREFIX",
                mc_testkit::unique_prefix("delivery"),
            )
            .env("MAILCLUSTER_DELIVERY__HOSTNAME", crate::smtp::HOSTNAME)
            .env("MAILCLUSTER_OPS__LISTEN", format!("127.0.0.1:{ops}"))
            .env("MAILCLUSTER_LOG__FORMAT", "text")
            .env("MAILCLUSTER_DELIVERY__POLL_INTERVAL_MS", "100")
            .envs(extra_env.iter().copied())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start mailcluster-delivery-worker");
        let worker = Self {
            child,
            ops_url: format!("http://127.0.0.1:{ops}"),
            log,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if http_status(&format!("{}/readyz", worker.ops_url)) == Some(200) {
                return worker;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mailcluster-delivery-worker did not become ready; its log:\n{}",
            worker.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The queue ids of the messages in `account`'s INBOX, in UID order, with their UIDs.
pub async fn inbox(db: &TestDatabase, account: &str) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT mm.uid, e.id::text
           FROM mailbox_messages mm
           JOIN mailboxes mb ON mb.id = mm.mailbox_id
           JOIN accounts a ON a.id = mb.account_id
           JOIN queue_entries e ON e.message_id = mm.message_id
          WHERE a.address = $1 AND mb.name = 'INBOX'
          ORDER BY mm.uid",
    )
    .bind(account)
    .fetch_all(&db.pool)
    .await
    .expect("read the INBOX")
}

/// The state and last error of each recipient of queue entry `id`, by address.
pub async fn recipient_states(
    db: &TestDatabase,
    id: &str,
) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT address, state, last_error FROM queue_recipients
          WHERE queue_id = $1::uuid ORDER BY address",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .expect("read the recipients")
}

/// Sets a route for `domain` (or `*.domain`) to `host:port` with the given TLS mode, optional
/// login and retry count.
pub async fn route(
    db: &TestDatabase,
    domain: &str,
    host: &str,
    port: u16,
    tls: mc_policy::TlsMode,
    auth: Option<(&str, &str)>,
    retries: Option<u32>,
) {
    mc_policy::DeliverySettings::new(db.pool.clone())
        .set_route(&mc_policy::NewRoute {
            domain: domain.into(),
            host: host.into(),
            port: Some(port),
            tls: Some(tls),
            username: auth.map(|(user, _)| user.to_string()),
            password: auth.map(|(_, password)| password.to_string()),
            retries,
            retry_minutes: retries.map(|_| 5),
        })
        .await
        .expect("set the route");
}

/// Waits (up to 20 s) until `account`'s INBOX holds at least `count` messages; returns their
/// queue ids in UID order. Panics with the worker's log otherwise.
pub async fn wait_for_inbox(
    db: &TestDatabase,
    account: &str,
    count: usize,
    worker: &WorkerProcess,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let messages = inbox(db, account).await;
        if messages.len() >= count {
            return messages.into_iter().map(|(_, id)| id).collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{account}: {messages:?}\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
