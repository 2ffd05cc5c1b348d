//! The contract every [`BlobStore`] must meet, as executable checks (feature `testsuite`).
//!
//! Each backend's test file implements [`Backend`] and expands [`blob_store_contract_tests!`]
//! (`crate::blob_store_contract_tests`), which turns every check below into one named test, so a
//! failure names the broken behaviour and the backend. The checks run against real stores (a
//! temporary folder, the Garage started by `ops/test`), never against mocks.
//!
//! Checks must only use the public trait, must never depend on another check having run, and must
//! leave every key they write deleted (the S3 bucket is shared by all test runs).

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{BlobErrorKind, BlobKey, BlobStore};

/// A backend under test: hands out stores that share one bucket or root folder but keep their
/// keys under different prefixes.
pub trait Backend: Send + Sync {
    fn store(&self, prefix: &str) -> Box<dyn BlobStore>;
}

/// Runs every check in sequence (for backends wrapped by other crates).
pub async fn run_all(backend: &dyn Backend) {
    let store = backend.store("contract/");
    let store = &*store;
    put_then_get_round_trips(store).await;
    put_is_idempotent(store).await;
    concurrent_puts_of_one_blob_agree(store).await;
    put_replaces_previous_blob(store).await;
    empty_body_round_trips(store).await;
    missing_key_is_not_found_for_every_read(store).await;
    head_reports_size(store).await;
    delete_then_get_is_not_found(store).await;
    delete_of_missing_key_is_ok(store).await;
    get_range_clips_to_the_blob(store).await;
    get_stream_equals_get(store).await;
    put_file_streams_a_multi_mebibyte_file(store).await;
    check_is_ok(store).await;
    prefixes_are_isolated(backend).await;
}

/// A body of `len` bytes that differs at every offset, so off-by-one ranges show up.
pub fn patterned_body(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

async fn must_put(store: &dyn BlobStore, body: &Bytes) -> BlobKey {
    let key = BlobKey::for_content(body);
    store.put(&key, body.clone()).await.expect("put");
    key
}

async fn must_delete(store: &dyn BlobStore, key: &BlobKey) {
    store.delete(key).await.expect("delete");
}

pub async fn put_then_get_round_trips(store: &dyn BlobStore) {
    let body = patterned_body(1000, 1);
    let key = must_put(store, &body).await;
    assert_eq!(store.get(&key).await.expect("get"), body);
    must_delete(store, &key).await;
}

pub async fn put_is_idempotent(store: &dyn BlobStore) {
    let body = patterned_body(300, 2);
    let key = must_put(store, &body).await;
    must_put(store, &body).await;
    assert_eq!(store.get(&key).await.expect("get"), body);
    assert_eq!(store.head(&key).await.expect("head"), Some(300));
    must_delete(store, &key).await;
}

pub async fn concurrent_puts_of_one_blob_agree(store: &dyn BlobStore) {
    let body = patterned_body(64 * 1024, 3);
    let key = BlobKey::for_content(&body);
    let puts = (0..4).map(|_| store.put(&key, body.clone()));
    for result in futures::future::join_all(puts).await {
        result.expect("concurrent put");
    }
    assert_eq!(store.get(&key).await.expect("get"), body);
    must_delete(store, &key).await;
}

pub async fn put_replaces_previous_blob(store: &dyn BlobStore) {
    let key = BlobKey::parse("contract/replaced").expect("key");
    store
        .put(&key, Bytes::from_static(b"first"))
        .await
        .expect("put");
    store
        .put(&key, Bytes::from_static(b"second!"))
        .await
        .expect("put");
    assert_eq!(
        store.get(&key).await.expect("get"),
        Bytes::from_static(b"second!")
    );
    assert_eq!(store.head(&key).await.expect("head"), Some(7));
    must_delete(store, &key).await;
}

pub async fn empty_body_round_trips(store: &dyn BlobStore) {
    let key = must_put(store, &Bytes::new()).await;
    assert_eq!(store.head(&key).await.expect("head"), Some(0));
    assert!(store.get(&key).await.expect("get").is_empty());
    let stream = store.get_stream(&key).await.expect("get_stream");
    assert_eq!(stream.len, 0);
    assert!(read_all(stream.reader).await.is_empty());
    assert!(
        store
            .get_range(&key, 0..10)
            .await
            .expect("range")
            .is_empty()
    );
    must_delete(store, &key).await;
}

pub async fn missing_key_is_not_found_for_every_read(store: &dyn BlobStore) {
    let key = BlobKey::for_content(b"never stored");
    assert_eq!(
        kind(store.get(&key).await),
        Some(BlobErrorKind::NotFound),
        "get"
    );
    assert_eq!(
        kind(store.get_range(&key, 0..5).await),
        Some(BlobErrorKind::NotFound),
        "range"
    );
    assert_eq!(
        kind(store.get_range(&key, 3..3).await),
        Some(BlobErrorKind::NotFound),
        "empty"
    );
    assert_eq!(
        kind(store.get_stream(&key).await),
        Some(BlobErrorKind::NotFound),
        "stream"
    );
    assert_eq!(store.head(&key).await.expect("head"), None);
}

pub async fn head_reports_size(store: &dyn BlobStore) {
    let body = patterned_body(4097, 4);
    let key = must_put(store, &body).await;
    assert_eq!(store.head(&key).await.expect("head"), Some(4097));
    must_delete(store, &key).await;
}

pub async fn delete_then_get_is_not_found(store: &dyn BlobStore) {
    let body = patterned_body(10, 5);
    let key = must_put(store, &body).await;
    must_delete(store, &key).await;
    let err = store.get(&key).await.expect_err("deleted");
    assert_eq!(err.kind(), BlobErrorKind::NotFound, "{err}");
    assert_eq!(store.head(&key).await.expect("head"), None);
}

pub async fn delete_of_missing_key_is_ok(store: &dyn BlobStore) {
    must_delete(store, &BlobKey::for_content(b"never stored either")).await;
}

pub async fn get_range_clips_to_the_blob(store: &dyn BlobStore) {
    let body = patterned_body(100, 6);
    let key = must_put(store, &body).await;
    let range = |r: std::ops::Range<u64>| store.get_range(&key, r);
    assert_eq!(range(10..20).await.expect("middle"), body.slice(10..20));
    assert_eq!(range(0..1).await.expect("first byte"), body.slice(0..1));
    assert_eq!(range(90..100).await.expect("to end"), body.slice(90..100));
    assert_eq!(
        range(90..1000).await.expect("past end"),
        body.slice(90..100)
    );
    assert_eq!(range(0..u64::MAX).await.expect("everything"), body);
    assert!(range(100..110).await.expect("at end").is_empty());
    assert!(range(500..600).await.expect("beyond end").is_empty());
    assert!(range(5..5).await.expect("empty range").is_empty());
    must_delete(store, &key).await;
}

pub async fn get_stream_equals_get(store: &dyn BlobStore) {
    let body = patterned_body(200_000, 7);
    let key = must_put(store, &body).await;
    let stream = store.get_stream(&key).await.expect("get_stream");
    assert_eq!(stream.len, body.len() as u64);
    assert_eq!(
        read_all(stream.reader).await,
        store.get(&key).await.expect("get")
    );
    must_delete(store, &key).await;
}

pub async fn put_file_streams_a_multi_mebibyte_file(store: &dyn BlobStore) {
    // 6 MiB and an odd tail: more than one upload/read chunk and not a multiple of any of them.
    let body = patterned_body(6 * 1024 * 1024 + 123, 8);
    let spool = tempfile::NamedTempFile::new().expect("spool file");
    tokio::fs::write(spool.path(), &body)
        .await
        .expect("write spool");
    let key = BlobKey::for_content(&body);
    store.put_file(&key, spool.path()).await.expect("put_file");
    assert_eq!(
        store.head(&key).await.expect("head"),
        Some(body.len() as u64)
    );
    let stream = store.get_stream(&key).await.expect("get_stream");
    assert_eq!(stream.len, body.len() as u64);
    assert!(
        read_all(stream.reader).await == body,
        "streamed body differs"
    );
    assert!(store.get(&key).await.expect("get") == body, "body differs");
    must_delete(store, &key).await;
}

pub async fn check_is_ok(store: &dyn BlobStore) {
    store.check().await.expect("check");
}

pub async fn prefixes_are_isolated(backend: &dyn Backend) {
    let (a, b) = (backend.store("iso-a/"), backend.store("iso-b/"));
    // `iso` is a textual prefix of `iso-a/`: a store must treat its prefix as a folder. Were `iso`
    // not normalised to `iso/`, the key `-a/<key>` under it would name a's object `iso-a/<key>`.
    let parent = backend.store("iso");
    let body = patterned_body(50, 9);
    let key = must_put(&*a, &body).await;
    assert_eq!(b.head(&key).await.expect("head b"), None);
    assert!(
        b.get(&key)
            .await
            .expect_err("b must not see a's blob")
            .is_not_found()
    );
    let spliced = BlobKey::parse(&format!("-a/{key}")).expect("valid key");
    assert_eq!(parent.head(&spliced).await.expect("head parent"), None);
    assert_eq!(
        kind(parent.get(&spliced).await),
        Some(BlobErrorKind::NotFound),
        "parent must not see a's blob"
    );
    must_delete(&*b, &key).await;
    assert_eq!(
        a.get(&key).await.expect("b's delete must not touch a"),
        body
    );
    must_delete(&*a, &key).await;
}

/// The kind of error of `result`, `None` when it succeeded.
fn kind<T>(result: Result<T, super::BlobError>) -> Option<BlobErrorKind> {
    result.err().map(|e| e.kind())
}

async fn read_all(mut reader: super::BlobReader) -> Bytes {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read stream");
    out.into()
}

/// Expands to one `#[tokio::test]` per contract check. `$backend` is evaluated anew in each test
/// and must implement [`Backend`]; the calling crate needs `tokio` (with `macros`) as a dependency.
#[macro_export]
macro_rules! blob_store_contract_tests {
    ($backend:expr) => {
        $crate::blob_store_contract_tests!(@each $backend;
            put_then_get_round_trips, put_is_idempotent, concurrent_puts_of_one_blob_agree,
            put_replaces_previous_blob, empty_body_round_trips,
            missing_key_is_not_found_for_every_read, head_reports_size,
            delete_then_get_is_not_found, delete_of_missing_key_is_ok,
            get_range_clips_to_the_blob, get_stream_equals_get,
            put_file_streams_a_multi_mebibyte_file, check_is_ok);

        #[::tokio::test]
        async fn prefixes_are_isolated() {
            let backend = $backend;
            $crate::blob::contract::prefixes_are_isolated(&backend).await;
        }
    };
    (@each $backend:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $check() {
                let backend = $backend;
                let store = $crate::blob::contract::Backend::store(&backend, "contract/");
                $crate::blob::contract::$check(&*store).await;
            }
        )*
    };
}
