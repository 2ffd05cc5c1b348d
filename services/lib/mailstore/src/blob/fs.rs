//! [`FsBlobStore`]: blobs as files under one local folder, for single-node installations and
//! development. Key `blobs/<sha256>` under prefix `p/` is the file `<root>/p/blobs/<sha256>`.
//!
//! The layout is flat below `blobs/`: ext4 and XFS index large directories, so millions of entries
//! stay fast to open; a fan-out (`blobs/ab/<hash>`) would make the on-disk name differ from the S3
//! object name and is not worth that until a directory listing is needed.
//!
//! Writes are crash-safe: the body goes to a temporary file (`.partial-*`, a name no key can take)
//! in the target folder, which is fsynced, renamed over the target and then the folder is fsynced.
//! This module must never make a half-written file visible under a key, never create the root
//! folder itself (a missing root usually means an unmounted volume, and writing to the disk
//! underneath would lose mail on the next mount), and never follow a key outside the root (keys
//! are validated by [`BlobKey`]).

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{BlobError, BlobKey, BlobPrefix, BlobStore, BlobStream, clip_range};

/// Blob store over a local folder. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    prefix: BlobPrefix,
}

/// What a write copies into the temporary file.
enum Source {
    Memory(Bytes),
    File(PathBuf),
}

impl FsBlobStore {
    /// A store over `root`, which must exist when the store is used ([`BlobStore::check`] says so).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            prefix: BlobPrefix::default(),
        }
    }

    /// Keeps every key under the sub-folder `prefix` (see [`BlobPrefix::parse`]).
    pub fn with_prefix(self, prefix: &str) -> Result<Self, BlobError> {
        Ok(Self {
            prefix: BlobPrefix::parse(prefix)?,
            ..self
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        // Keys and prefixes use '/' and contain no '.'-segments, so this stays inside `root`.
        self.root.join(self.prefix.join(key))
    }

    async fn write(&self, key: &BlobKey, source: Source) -> Result<(), BlobError> {
        let root = self.root.clone();
        let target = self.path_of(key);
        blocking(move || write_durably(&root, &target, source)).await
    }

    /// Opens the file of `key`, failing with `NotFound` unless it is a regular file.
    async fn open(&self, key: &BlobKey) -> Result<(tokio::fs::File, u64), BlobError> {
        let path = self.path_of(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| read_error(e, &path))?;
        let meta = file.metadata().await.map_err(|e| read_error(e, &path))?;
        if !meta.is_file() {
            return Err(BlobError::not_found(format!(
                "{} is not a file",
                path.display()
            )));
        }
        Ok((file, meta.len()))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, body: Bytes) -> Result<(), BlobError> {
        self.write(key, Source::Memory(body)).await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path) -> Result<(), BlobError> {
        self.write(key, Source::File(path.to_path_buf())).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let (mut file, len) = self.open(key).await?;
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut body)
            .await
            .map_err(|e| read_error(e, &self.path_of(key)))?;
        Ok(body.into())
    }

    async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes, BlobError> {
        let (mut file, len) = self.open(key).await?;
        let Some(range) = clip_range(&range, len) else {
            return Ok(Bytes::new());
        };
        let path = self.path_of(key);
        file.seek(io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| read_error(e, &path))?;
        let wanted = range.end - range.start;
        let mut body = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
        file.take(wanted)
            .read_to_end(&mut body)
            .await
            .map_err(|e| read_error(e, &path))?;
        Ok(body.into())
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, BlobError> {
        let (file, len) = self.open(key).await?;
        // `take` pins the stream to the announced length even if the file were to grow.
        Ok(BlobStream {
            len,
            reader: Box::pin(file.take(len)),
        })
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) => match read_error(e, &path) {
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        // No directory fsync: a blob that reappears after a crash is only garbage collected again.
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) => match read_error(e, &path) {
                err if err.is_not_found() => Ok(()),
                err => Err(err),
            },
        }
    }

    async fn check(&self) -> Result<(), BlobError> {
        let root = self.root.clone();
        blocking(move || {
            require_root(&root)?;
            let mut probe = tempfile::Builder::new()
                .prefix(".check-")
                .tempfile_in(&root)
                .map_err(|e| write_error(e, &root))?;
            probe.write_all(b"ok").map_err(|e| write_error(e, &root))
        })
        .await
    }
}

/// Temp file, fsync, rename, fsync folder: after a crash the key holds the old blob or the
/// complete new one, and once this returns the new one survives power loss.
fn write_durably(root: &Path, target: &Path, source: Source) -> Result<(), BlobError> {
    require_root(root)?;
    let folder = target
        .parent()
        .ok_or_else(|| BlobError::internal(format!("{} has no parent folder", target.display())))?;
    create_folders_durably(root, folder)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(folder)
        .map_err(|e| write_error(e, folder))?;
    match source {
        Source::Memory(body) => temp
            .write_all(&body)
            .map_err(|e| write_error(e, temp.path()))?,
        Source::File(source) => {
            let mut input = File::open(&source).map_err(|e| {
                BlobError::internal(format!("cannot open source file {}: {e}", source.display()))
            })?;
            // io::copy between two files uses copy_file_range/sendfile on Linux: the body
            // never passes through a user-space buffer, whatever its size.
            io::copy(&mut input, temp.as_file_mut()).map_err(|e| write_error(e, temp.path()))?;
        }
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| write_error(e, temp.path()))?;
    temp.persist(target)
        .map_err(|e| write_error(e.error, target))?;
    sync_folder(folder)
}

/// Creates the folders between `root` (which exists) and `folder`, fsyncing each new entry's
/// parent so that the folder holding a freshly written blob cannot vanish in a crash.
fn create_folders_durably(root: &Path, folder: &Path) -> Result<(), BlobError> {
    if folder.is_dir() {
        return Ok(());
    }
    let relative = folder
        .strip_prefix(root)
        .map_err(|_| BlobError::internal(format!("{} is outside the root", folder.display())))?;
    let mut current = root.to_path_buf();
    for part in relative.components() {
        let parent = current.clone();
        current.push(part);
        match fs::create_dir(&current) {
            Ok(()) => sync_folder(&parent)?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(e) => return Err(write_error(e, &current)),
        }
    }
    Ok(())
}

fn sync_folder(folder: &Path) -> Result<(), BlobError> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| write_error(e, folder))
}

fn require_root(root: &Path) -> Result<(), BlobError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(BlobError::internal(format!(
            "blob root {} is not a folder",
            root.display()
        ))),
        Err(e) => Err(BlobError::unavailable(format!(
            "blob root {} is not usable (not mounted?): {e}",
            root.display()
        ))),
    }
}

/// Classifies an I/O error of a read, where a missing file (or a folder in its place) is a
/// missing blob.
fn read_error(err: io::Error, path: &Path) -> BlobError {
    let message = format!("{}: {err}", path.display());
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory => {
            BlobError::not_found(message)
        }
        ErrorKind::PermissionDenied => BlobError::unauthorized(message),
        _ => BlobError::unavailable(message),
    }
}

/// Classifies an I/O error of a write: nothing is "not found" here; a file where a folder must be
/// means two keys clash (`a` and `a/b`), which S3 would allow and this backend cannot.
fn write_error(err: io::Error, path: &Path) -> BlobError {
    let message = format!("{}: {err}", path.display());
    match err.kind() {
        ErrorKind::PermissionDenied => BlobError::unauthorized(message),
        ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            BlobError::internal(message)
        }
        _ => BlobError::unavailable(message),
    }
}

/// Runs blocking file system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::internal(format!("file system task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FsBlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::new(dir.path().to_path_buf());
        (dir, store)
    }

    #[tokio::test]
    async fn put_leaves_no_temporary_files_behind() {
        let (dir, store) = store();
        let key = BlobKey::for_content(b"hello");
        store
            .put(&key, Bytes::from_static(b"hello"))
            .await
            .expect("put");
        let names: Vec<_> = fs::read_dir(dir.path().join("blobs"))
            .expect("read_dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(&key.as_str()["blobs/".len()..])]
        );
    }

    #[tokio::test]
    async fn missing_root_is_unavailable_and_not_created() {
        let (dir, _) = store();
        let root = dir.path().join("not-mounted");
        let store = FsBlobStore::new(root.clone());
        let err = store
            .put(&BlobKey::for_content(b"x"), Bytes::new())
            .await
            .expect_err("no root");
        assert_eq!(err.kind(), super::super::BlobErrorKind::Unavailable);
        assert_eq!(store.check().await.map_err(|e| e.kind()), Err(err.kind()));
        assert!(!root.exists());
    }

    #[tokio::test]
    async fn a_folder_in_place_of_a_key_reads_as_missing() {
        let (_dir, store) = store();
        let inner = BlobKey::parse("a/b").expect("key");
        store
            .put(&inner, Bytes::from_static(b"x"))
            .await
            .expect("put");
        let outer = BlobKey::parse("a").expect("key");
        assert!(store.get(&outer).await.expect_err("folder").is_not_found());
        assert_eq!(store.head(&outer).await.expect("head"), None);
        store
            .delete(&outer)
            .await
            .expect("delete of a folder-shaped key is a no-op");
        assert_eq!(
            store.get(&inner).await.expect("still there"),
            Bytes::from_static(b"x")
        );
    }

    #[tokio::test]
    async fn missing_source_file_is_internal() {
        let (dir, store) = store();
        let err = store
            .put_file(&BlobKey::for_content(b"x"), &dir.path().join("nope"))
            .await
            .expect_err("no source");
        assert_eq!(err.kind(), super::super::BlobErrorKind::Internal);
    }
}
