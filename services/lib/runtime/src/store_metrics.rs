//! Metrics of the three shared stores as the services see them, the same families in every role:
//!
//! - PostgreSQL: `mailcluster_db_operations_total{operation,result}` and
//!   `mailcluster_db_operation_duration_seconds{operation}` for the operations of [`DbOp`] (each
//!   one call of a store function, which may run several statements or a transaction), and the
//!   pool: `mailcluster_db_pool_connections{state=idle|in_use}`,
//!   `mailcluster_db_pool_max_connections`;
//! - Redis: `mailcluster_redis_commands_total{group,result}` and
//!   `mailcluster_redis_command_duration_seconds{group}` for the groups of [`RedisGroup`];
//! - object storage: `mailcluster_blob_operations_total{op,result}`,
//!   `mailcluster_blob_operation_duration_seconds{op}` and `mailcluster_blob_bytes_total{direction}`.
//!
//! The counters live in one process-wide set (the stores are shared by every part of a process),
//! which [`crate::metrics::registry`] registers. Every `(operation, result)` series is created at
//! zero up front, so an error rate is a rate of an existing series from the first scrape, and an
//! alert on it does not wait for the first error to exist.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The PostgreSQL operations that are measured: the hot paths of mail flow, each a function of
/// the store crates. Administrative queries (the admin API, mailctl) are not in this list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbOp {
    /// One group commit of accepted messages into the queue (smtp-ingress, submission).
    QueueIntake,
    /// Claiming due queue entries (delivery worker).
    QueueClaim,
    /// Recording the outcome of a delivery attempt on its own: delivered remotely, deferred,
    /// failed (delivery worker). A local delivery records its outcome inside
    /// [`DbOp::MailboxDelivery`].
    QueueFinish,
    /// Resolving a recipient: its domain, then the account, alias or list behind it.
    DirectoryLookup,
    /// Looking up an account's credentials at login (SMTP AUTH, IMAP, POP3).
    Authenticate,
    /// Filing a message into local mailboxes: the delivery worker's whole transaction (fenced
    /// leases, copies, recipients marked delivered, commit).
    MailboxDelivery,
    /// A mailbox's state for a session: the snapshot at SELECT, the changes since then.
    MailboxSync,
    /// Reading message rows for FETCH, SEARCH and POP3.
    MessageFetch,
    /// APPEND (IMAP) and COPY/MOVE.
    MessageAppend,
    /// Flags, expunges and removals.
    MessageUpdate,
}

impl DbOp {
    pub const ALL: [DbOp; 10] = [
        DbOp::QueueIntake,
        DbOp::QueueClaim,
        DbOp::QueueFinish,
        DbOp::DirectoryLookup,
        DbOp::Authenticate,
        DbOp::MailboxDelivery,
        DbOp::MailboxSync,
        DbOp::MessageFetch,
        DbOp::MessageAppend,
        DbOp::MessageUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DbOp::QueueIntake => "queue_intake",
            DbOp::QueueClaim => "queue_claim",
            DbOp::QueueFinish => "queue_finish",
            DbOp::DirectoryLookup => "directory_lookup",
            DbOp::Authenticate => "authenticate",
            DbOp::MailboxDelivery => "mailbox_delivery",
            DbOp::MailboxSync => "mailbox_sync",
            DbOp::MessageFetch => "message_fetch",
            DbOp::MessageAppend => "message_append",
            DbOp::MessageUpdate => "message_update",
        }
    }
}

/// What the Redis commands are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedisGroup {
    /// Greylisting records (smtp-ingress).
    Greylist,
    /// Authentication failure counts and their reset (every protocol, the admin API).
    Autoban,
    /// Hourly message counts per client and sender (smtp-ingress).
    RateLimit,
    /// The POP3 maildrop lock (access, the admin API).
    Pop3Lock,
    /// Change notifications (PUBLISH).
    Notify,
    /// Per-destination connection limits of the delivery workers.
    DeliveryLimits,
}

impl RedisGroup {
    pub const ALL: [RedisGroup; 6] = [
        RedisGroup::Greylist,
        RedisGroup::Autoban,
        RedisGroup::RateLimit,
        RedisGroup::Pop3Lock,
        RedisGroup::Notify,
        RedisGroup::DeliveryLimits,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedisGroup::Greylist => "greylist",
            RedisGroup::Autoban => "autoban",
            RedisGroup::RateLimit => "rate_limit",
            RedisGroup::Pop3Lock => "pop3_lock",
            RedisGroup::Notify => "notify",
            RedisGroup::DeliveryLimits => "delivery_limits",
        }
    }
}

/// Object storage requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobOp {
    Put,
    Get,
    Head,
    Delete,
}

impl BlobOp {
    pub const ALL: [BlobOp; 4] = [BlobOp::Put, BlobOp::Get, BlobOp::Head, BlobOp::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            BlobOp::Put => "put",
            BlobOp::Get => "get",
            BlobOp::Head => "head",
            BlobOp::Delete => "delete",
        }
    }
}

/// How a store call ended, as far as the store is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The store answered (a refused row or a missing key included: the store did its job).
    Ok,
    /// No connection could be had in time: PostgreSQL's pool was exhausted.
    Timeout,
    /// The store failed: unreachable, broken connection, an error from the server.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Timeout, Outcome::Error];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }
}

/// How an error of a store crate counts: [`Outcome::Ok`] when it is not the store's failure (a
/// duplicate, a fencing conflict, over quota, no such mailbox).
pub trait StoreOutcome {
    fn store_outcome(&self) -> Outcome;
}

impl StoreOutcome for sqlx::Error {
    fn store_outcome(&self) -> Outcome {
        match self {
            sqlx::Error::PoolTimedOut => Outcome::Timeout,
            // A constraint violation is the row's fault, not the database's.
            sqlx::Error::Database(error) if error.code().is_some_and(|c| c.starts_with("23")) => {
                Outcome::Ok
            }
            _ => Outcome::Error,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationResultLabels {
    operation: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupResultLabels {
    group: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpResultLabels {
    op: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// Blob results: a missing key is an answer, not a failure, but worth seeing apart.
const BLOB_RESULTS: [&str; 3] = ["ok", "not_found", "error"];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn db_histogram() -> Histogram {
    // 0.5 ms … 4 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

fn blob_histogram() -> Histogram {
    // 2 ms … 32 s
    Histogram::new(exponential_buckets(0.002, 2.0, 15))
}

struct StoreMetrics {
    db_operations: Family<OperationResultLabels, Counter>,
    db_duration: HistogramFamily<OperationLabels>,
    redis_commands: Family<GroupResultLabels, Counter>,
    redis_duration: HistogramFamily<GroupLabels>,
    blob_operations: Family<OpResultLabels, Counter>,
    blob_duration: HistogramFamily<OpLabels>,
    blob_bytes: Family<DirectionLabels, Counter>,
}

static METRICS: LazyLock<StoreMetrics> = LazyLock::new(|| {
    let metrics = StoreMetrics {
        db_operations: Family::default(),
        db_duration: Family::new_with_constructor(db_histogram),
        redis_commands: Family::default(),
        redis_duration: Family::new_with_constructor(db_histogram),
        blob_operations: Family::default(),
        blob_duration: Family::new_with_constructor(blob_histogram),
        blob_bytes: Family::default(),
    };
    for op in DbOp::ALL {
        let operation = op.as_str();
        metrics
            .db_duration
            .get_or_create_owned(&OperationLabels { operation });
        for result in Outcome::ALL {
            metrics
                .db_operations
                .get_or_create_owned(&OperationResultLabels {
                    operation,
                    result: result.as_str(),
                });
        }
    }
    for group in RedisGroup::ALL {
        let group = group.as_str();
        metrics
            .redis_duration
            .get_or_create_owned(&GroupLabels { group });
        for result in ["ok", "error"] {
            metrics
                .redis_commands
                .get_or_create_owned(&GroupResultLabels { group, result });
        }
    }
    for op in BlobOp::ALL {
        let op = op.as_str();
        metrics.blob_duration.get_or_create_owned(&OpLabels { op });
        for result in BLOB_RESULTS {
            metrics
                .blob_operations
                .get_or_create_owned(&OpResultLabels { op, result });
        }
    }
    for direction in ["upload", "download"] {
        metrics
            .blob_bytes
            .get_or_create_owned(&DirectionLabels { direction });
    }
    metrics
});

/// Registers the store families under `mailcluster_` (called by [`crate::metrics::registry`]).
pub(crate) fn register(mailcluster: &mut Registry) {
    let metrics = &*METRICS;
    mailcluster.register(
        "db_operations",
        "PostgreSQL operations of the mail flow by result (ok, timeout: no pooled connection in time, error)",
        metrics.db_operations.clone(),
    );
    mailcluster.register_with_unit(
        "db_operation_duration",
        "Duration of PostgreSQL operations of the mail flow, pool wait included",
        Unit::Seconds,
        metrics.db_duration.clone(),
    );
    mailcluster.register(
        "redis_commands",
        "Redis commands (or pipelines) by purpose and result",
        metrics.redis_commands.clone(),
    );
    mailcluster.register_with_unit(
        "redis_command_duration",
        "Duration of Redis commands (or pipelines) by purpose",
        Unit::Seconds,
        metrics.redis_duration.clone(),
    );
    mailcluster.register(
        "blob_operations",
        "Object storage requests by operation and result",
        metrics.blob_operations.clone(),
    );
    mailcluster.register_with_unit(
        "blob_operation_duration",
        "Duration of object storage requests (a streamed read until its first byte)",
        Unit::Seconds,
        metrics.blob_duration.clone(),
    );
    mailcluster.register_with_unit(
        "blob",
        "Message bytes sent to (upload) and read from (download) object storage",
        Unit::Bytes,
        metrics.blob_bytes.clone(),
    );
}

/// Records one PostgreSQL operation.
pub fn observe_db(op: DbOp, outcome: Outcome, elapsed: Duration) {
    let operation = op.as_str();
    METRICS
        .db_duration
        .get_or_create(&OperationLabels { operation })
        .observe(elapsed.as_secs_f64());
    METRICS
        .db_operations
        .get_or_create(&OperationResultLabels {
            operation,
            result: outcome.as_str(),
        })
        .inc();
}

/// Runs a PostgreSQL operation and records its duration and outcome.
pub async fn db<T, E: StoreOutcome>(
    op: DbOp,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = operation.await;
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(error) => error.store_outcome(),
    };
    observe_db(op, outcome, started.elapsed());
    result
}

/// Runs a Redis command (or pipeline) and records its duration and outcome.
pub async fn redis<T>(
    group: RedisGroup,
    command: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    let started = Instant::now();
    let result = command.await;
    let group = group.as_str();
    METRICS
        .redis_duration
        .get_or_create(&GroupLabels { group })
        .observe(started.elapsed().as_secs_f64());
    METRICS
        .redis_commands
        .get_or_create(&GroupResultLabels {
            group,
            result: if result.is_ok() { "ok" } else { "error" },
        })
        .inc();
    result
}

/// How a blob request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobResult {
    Ok,
    NotFound,
    Error,
}

/// Records one object storage request and the message bytes it moved.
pub fn observe_blob(op: BlobOp, result: BlobResult, elapsed: Duration, bytes: u64) {
    let name = op.as_str();
    METRICS
        .blob_duration
        .get_or_create(&OpLabels { op: name })
        .observe(elapsed.as_secs_f64());
    let result_label = match result {
        BlobResult::Ok => "ok",
        BlobResult::NotFound => "not_found",
        BlobResult::Error => "error",
    };
    METRICS
        .blob_operations
        .get_or_create(&OpResultLabels {
            op: name,
            result: result_label,
        })
        .inc();
    if result == BlobResult::Ok && bytes > 0 {
        let direction = match op {
            BlobOp::Put => "upload",
            _ => "download",
        };
        METRICS
            .blob_bytes
            .get_or_create(&DirectionLabels { direction })
            .inc_by(bytes);
    }
}

/// The connection pool's state at scrape time: `mailcluster_db_pool_connections{state}` and
/// `mailcluster_db_pool_max_connections`. Register one per pool the process serves with.
pub fn pool_collector(pool: sqlx::PgPool) -> Box<dyn Collector> {
    Box::new(PoolCollector(pool))
}

#[derive(Debug)]
struct PoolCollector(sqlx::PgPool);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let size = i64::from(self.0.size());
        let idle = i64::try_from(self.0.num_idle())
            .unwrap_or(i64::MAX)
            .min(size);
        let connections = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "mailcluster_db_pool_connections",
            "Connections of the PostgreSQL pool: idle, or in use by an operation",
            None,
            connections.metric_type(),
        )?;
        for (state, value) in [("idle", idle), ("in_use", size - idle)] {
            ConstGauge::new(value).encode(family.encode_family(&StateLabels { state })?)?;
        }
        let max = ConstGauge::new(i64::from(self.0.options().get_max_connections()));
        max.encode(encoder.encode_descriptor(
            "mailcluster_db_pool_max_connections",
            "The most connections the PostgreSQL pool opens (database.max_connections)",
            None,
            max.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> String {
        crate::metrics::encode(&crate::metrics::registry("test"))
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
    }

    #[test]
    fn every_operation_and_result_is_exported_before_any_call() {
        let text = scrape();
        for op in DbOp::ALL {
            for result in ["ok", "timeout", "error"] {
                let series = format!(
                    "mailcluster_db_operations_total{{operation=\"{}\",result=\"{result}\"}}",
                    op.as_str()
                );
                assert!(text.contains(&series), "{series} missing");
            }
        }
        for group in RedisGroup::ALL {
            let series = format!(
                "mailcluster_redis_commands_total{{group=\"{}\",result=\"error\"}}",
                group.as_str()
            );
            assert!(text.contains(&series), "{series} missing");
        }
        assert!(text.contains("mailcluster_blob_operations_total{op=\"put\",result=\"error\"}"));
        assert!(
            text.contains("# TYPE mailcluster_blob_bytes counter"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn db_classifies_pool_timeouts_and_server_errors() {
        // Each test in this process shares the counters: compare before and after.
        let series = |result: &str| {
            format!(
                "mailcluster_db_operations_total{{operation=\"message_update\",result=\"{result}\"}}"
            )
        };
        let before = scrape();
        let timeout: Result<(), sqlx::Error> = db(DbOp::MessageUpdate, async {
            Err(sqlx::Error::PoolTimedOut)
        })
        .await;
        assert!(timeout.is_err());
        let broken: Result<(), sqlx::Error> = db(DbOp::MessageUpdate, async {
            Err(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))
        })
        .await;
        assert!(broken.is_err());
        // A row that must exist and does not is a broken invariant, not the caller's business.
        let missing: Result<(), sqlx::Error> =
            db(DbOp::MessageUpdate, async { Err(sqlx::Error::RowNotFound) }).await;
        assert!(missing.is_err());
        let fine = db(DbOp::MessageUpdate, async { Ok::<_, sqlx::Error>(7) }).await;
        assert_eq!(fine.unwrap(), 7);
        let after = scrape();
        for (result, added) in [("timeout", 1.0), ("error", 2.0), ("ok", 1.0)] {
            let series = series(result);
            assert!(
                value(&after, &series) - value(&before, &series) >= added,
                "{series}: {} → {}",
                value(&before, &series),
                value(&after, &series)
            );
        }
        let count = "mailcluster_db_operation_duration_seconds_count{operation=\"message_update\"}";
        assert!(value(&after, count) - value(&before, count) >= 4.0);
    }

    #[test]
    fn blob_bytes_count_only_successful_transfers_by_direction() {
        let upload = "mailcluster_blob_bytes_total{direction=\"upload\"}";
        let download = "mailcluster_blob_bytes_total{direction=\"download\"}";
        let before = scrape();
        observe_blob(BlobOp::Put, BlobResult::Ok, Duration::from_millis(3), 1000);
        observe_blob(
            BlobOp::Put,
            BlobResult::Error,
            Duration::from_millis(3),
            5000,
        );
        observe_blob(BlobOp::Get, BlobResult::Ok, Duration::from_millis(3), 70);
        let after = scrape();
        assert!(value(&after, upload) - value(&before, upload) >= 1000.0);
        assert!(value(&after, upload) - value(&before, upload) < 5000.0);
        assert!(value(&after, download) - value(&before, download) >= 70.0);
        let errors = "mailcluster_blob_operations_total{op=\"put\",result=\"error\"}";
        assert!(value(&after, errors) - value(&before, errors) >= 1.0);
    }
}
