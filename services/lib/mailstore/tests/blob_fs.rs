//! The BlobStore contract against [`FsBlobStore`] in a fresh temporary folder per test.

use mc_mailstore::blob::contract::Backend;
use mc_mailstore::blob::{BlobStore, FsBlobStore};

struct FsBackend(tempfile::TempDir);

impl Backend for FsBackend {
    fn store(&self, prefix: &str) -> Box<dyn BlobStore> {
        let store = FsBlobStore::new(self.0.path().to_path_buf());
        Box::new(store.with_prefix(prefix).expect("valid prefix"))
    }
}

fn backend() -> FsBackend {
    FsBackend(tempfile::tempdir().expect("temporary folder"))
}

mc_mailstore::blob_store_contract_tests!(backend());

#[tokio::test]
async fn run_all_passes() {
    mc_mailstore::blob::contract::run_all(&backend()).await;
}
