//! The BlobStore contract against [`S3BlobStore`] on the real Garage started by `ops/test`
//! (each test under its own object-key prefix), plus the S3-only failure classification.

use std::time::{Duration, Instant};

use mc_mailstore::blob::contract::{Backend, patterned_body};
use mc_mailstore::blob::{
    BlobErrorKind, BlobKey, BlobStore, S3BlobConfig, S3BlobStore, S3Timeouts,
};
use mc_testkit::S3Settings;
use mc_types::Secret;
use tokio::io::AsyncReadExt;

struct S3Backend(S3Settings);

impl Backend for S3Backend {
    fn store(&self, prefix: &str) -> Box<dyn BlobStore> {
        let mut config = config(&self.0);
        config.prefix = format!("{}{prefix}", self.0.prefix);
        Box::new(S3BlobStore::new(config).expect("valid config"))
    }
}

fn config(settings: &S3Settings) -> S3BlobConfig {
    let mut config = S3BlobConfig::new(
        Some(settings.endpoint.clone()),
        &settings.region,
        &settings.bucket,
        &settings.access_key_id,
        Secret::new(settings.secret_access_key.clone()),
    );
    config.prefix = settings.prefix.clone();
    config
}

fn backend() -> S3Backend {
    S3Backend(S3Settings::from_env("blob"))
}

mc_mailstore::blob_store_contract_tests!(backend());

/// Fails fast: one attempt, short timeouts.
fn impatient(mut config: S3BlobConfig) -> S3BlobConfig {
    config.timeouts = S3Timeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(3),
        max_attempts: 1,
        ..S3Timeouts::default()
    };
    config
}

async fn assert_every_call_is(store: &S3BlobStore, kind: BlobErrorKind) {
    let key = BlobKey::for_content(b"classification");
    let kind_of = |r: Result<(), mc_mailstore::BlobError>| r.map_err(|e| e.kind());
    assert_eq!(kind_of(store.check().await), Err(kind), "check");
    assert_eq!(kind_of(store.put(&key, "x".into()).await), Err(kind), "put");
    assert_eq!(kind_of(store.get(&key).await.map(drop)), Err(kind), "get");
    assert_eq!(
        kind_of(store.get_range(&key, 0..1).await.map(drop)),
        Err(kind),
        "get_range"
    );
    assert_eq!(
        kind_of(store.get_stream(&key).await.map(drop)),
        Err(kind),
        "get_stream"
    );
    assert_eq!(kind_of(store.head(&key).await.map(drop)), Err(kind), "head");
    assert_eq!(kind_of(store.delete(&key).await), Err(kind), "delete");
}

#[tokio::test]
async fn wrong_secret_is_unauthorized() {
    let mut config = impatient(config(&S3Settings::from_env("blob")));
    config.secret_access_key = Secret::new("not-the-secret".into());
    let store = S3BlobStore::new(config).expect("config");
    assert_every_call_is(&store, BlobErrorKind::Unauthorized).await;
}

#[tokio::test]
async fn unknown_access_key_is_unauthorized() {
    let mut config = impatient(config(&S3Settings::from_env("blob")));
    config.access_key_id = "GK000000000000000000000000".into();
    let store = S3BlobStore::new(config).expect("config");
    assert_every_call_is(&store, BlobErrorKind::Unauthorized).await;
}

#[tokio::test]
async fn closed_port_is_unavailable_quickly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut config = impatient(config(&S3Settings::from_env("blob")));
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let store = S3BlobStore::new(config).expect("config");
    let started = Instant::now();
    assert_every_call_is(&store, BlobErrorKind::Unavailable).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_bucket_is_unavailable_not_not_found() {
    let mut config = impatient(config(&S3Settings::from_env("blob")));
    config.bucket = "mailcluster-no-such-bucket".into();
    let store = S3BlobStore::new(config).expect("config");
    let key = BlobKey::for_content(b"x");
    let check = store.check().await.expect_err("no bucket");
    assert_eq!(check.kind(), BlobErrorKind::Unavailable, "{check}");
    let get = store.get(&key).await.expect_err("no bucket");
    assert_eq!(get.kind(), BlobErrorKind::Unavailable, "{get}");
}

/// A reader that stops polling (an IMAP client applying back-pressure) must not trip the SDK's
/// stalled-stream protection: only polled time without progress counts.
#[tokio::test]
async fn slow_reader_is_not_a_stalled_stream() {
    let settings = S3Settings::from_env("blob");
    let mut config = config(&settings);
    config.timeouts.stall_grace_period = Duration::from_secs(1);
    let store = S3BlobStore::new(config).expect("config");
    // Larger than the socket buffers on both ends, so the server still has bytes to send when the
    // reader pauses: the pause then really is time in which the body is "not moving".
    let body = patterned_body(24 * 1024 * 1024, 42);
    let key = BlobKey::for_content(&body);
    store.put(&key, body.clone()).await.expect("put");

    let mut stream = store.get_stream(&key).await.expect("get_stream");
    let mut first = vec![0; 64 * 1024];
    stream
        .reader
        .read_exact(&mut first)
        .await
        .expect("first chunk");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut rest = Vec::new();
    stream
        .reader
        .read_to_end(&mut rest)
        .await
        .expect("rest after a pause");
    first.extend_from_slice(&rest);
    assert!(first == body, "body differs after a pause");
    store.delete(&key).await.expect("delete");
}

#[test]
fn debug_output_never_shows_the_secret() {
    let config = S3BlobConfig::new(None, "garage", "b", "GKid", Secret::new("s3cr3t".into()));
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let store = S3BlobStore::new(config).expect("config");
    assert!(!format!("{store:?}").contains("s3cr3t"));
}
