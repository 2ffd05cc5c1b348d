//! Group commit for the ingress: messages accepted at the same moment by different sessions are
//! queued together, so that they share one object upload and one PostgreSQL commit.
//!
//! A session hands its finished message to [`Intake::commit`] and waits. One task collects what
//! has arrived and flushes it as a batch:
//!
//! 1. the small bodies held in memory ([`Body::Inline`]) are concatenated into one blob (keyed
//!    by the sha256 of the whole, as every blob); a batch of one stores the body alone, exactly
//!    as without batching;
//! 2. that blob is uploaded while every entry of the batch, whether its body was packed or
//!    uploaded by the session itself ([`Body::Stored`]), is queued by ONE statement (which also
//!    writes the blob's row) in a transaction that commits only once the upload succeeded;
//! 3. only then does each waiting session learn that its message is queued (and answer 250).
//!
//! Inline bodies skip the crate's reserve-before-upload step: that step protects a body whose
//! identical copy may already be stored and be under collection, and the intake's bodies are
//! never such copies (each carries the ingress's `Received:` header naming its own queue id, so
//! a body, and a pack of bodies, is new content under a new key). A crash between the upload and
//! the commit leaves an object no row names; the collector must also sweep the bucket for
//! those (objects older than its grace period without a `blobs` row).
//!
//! Nothing waits to fill a batch: a flush starts as soon as a message arrives and a flush slot
//! is free, so a lone message is queued as fast as before, and batches grow only while earlier
//! flushes are busy, i.e. exactly when the stores are the bottleneck. If a batch is refused
//! because one entry breaks a schema rule, each entry is retried alone so that the others are
//! not refused for it. A failed batch leaves at most an unreferenced blob, which the collector
//! removes; a session that stopped waiting (timeout) may see its message queued anyway: a
//! duplicate at worst, never a loss.

use crate::{BodyLocation, Envelope, NewEntry, Queue, QueueError};
use bytes::{Bytes, BytesMut};
use mc_mailstore::blob::{BlobError, BlobKey, BlobStore};
use mc_runtime::store_metrics::{DbOp, Outcome, StoreOutcome, db, observe_db};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

/// Bounds of the intake (each one a named `[smtp]` key in the ingress).
#[derive(Debug, Clone, Copy)]
pub struct IntakeLimits {
    /// Most messages queued by one statement.
    pub max_batch_messages: usize,
    /// Most bytes packed into one blob; a batch closes when it would exceed this.
    pub max_pack_bytes: usize,
    /// Flushes in progress at once; more arrivals wait and form the next batch.
    pub concurrent_flushes: usize,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            max_batch_messages: 128,
            max_pack_bytes: 4 * 1024 * 1024,
            concurrent_flushes: 1,
        }
    }
}

/// A message's body as handed to the intake.
pub enum Body {
    /// Held in memory: packed with the other inline bodies of its batch.
    Inline { bytes: Bytes, sha256: [u8; 32] },
    /// Already reserved and uploaded by the caller (large or spooled bodies).
    Stored(BodyLocation),
}

impl Body {
    fn inline_len(&self) -> usize {
        match self {
            Self::Inline { bytes, .. } => bytes.len(),
            Self::Stored(_) => 0,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    #[error("blob store: {0}")]
    Blob(String),
    #[error("queue: {0}")]
    Queue(String),
    #[error("the intake has stopped")]
    Stopped,
}

impl From<&BlobError> for IntakeError {
    fn from(error: &BlobError) -> Self {
        Self::Blob(error.to_string())
    }
}

impl From<&QueueError> for IntakeError {
    fn from(error: &QueueError) -> Self {
        Self::Queue(error.to_string())
    }
}

/// Called once per committed batch with the ids it queued (hints to workers, metrics).
pub type OnCommitted = Arc<dyn Fn(&[Uuid]) + Send + Sync>;

struct Job {
    envelope: Envelope,
    body: Body,
    done: oneshot::Sender<Result<(), IntakeError>>,
}

/// The sessions' handle on the group-commit task. Cheap to clone; the task ends (after its last
/// flush) when every handle is dropped.
#[derive(Clone)]
pub struct Intake {
    jobs: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the collecting task on the current runtime.
    pub fn start(
        queue: Queue,
        blobs: Arc<dyn BlobStore>,
        limits: IntakeLimits,
        on_committed: OnCommitted,
    ) -> Self {
        let limits = IntakeLimits {
            max_batch_messages: limits.max_batch_messages.max(1),
            max_pack_bytes: limits.max_pack_bytes.max(1),
            concurrent_flushes: limits.concurrent_flushes.max(1),
        };
        // A session waits here when even the waiting room is full: back-pressure, not memory.
        let (jobs, receiver) = mpsc::channel(limits.max_batch_messages * 4);
        let flusher = Flusher {
            queue,
            blobs,
            on_committed,
        };
        tokio::spawn(collect(receiver, Arc::new(flusher), limits));
        Self { jobs }
    }

    /// Queues one message (with the others arriving meanwhile) and returns once it is committed.
    pub async fn commit(&self, envelope: Envelope, body: Body) -> Result<Uuid, IntakeError> {
        let id = envelope.id;
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job {
                envelope,
                body,
                done,
            })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        outcome.await.map_err(|_| IntakeError::Stopped)??;
        Ok(id)
    }
}

async fn collect(mut receiver: mpsc::Receiver<Job>, flusher: Arc<Flusher>, limits: IntakeLimits) {
    let slots = Arc::new(Semaphore::new(limits.concurrent_flushes));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        // A session that stopped waiting (store timeout, connection gone) already answered 451:
        // committing its message now would only make the client's retry a duplicate.
        let mut packed = 0;
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            if !job.done.is_closed() {
                packed += job.body.inline_len();
                batch.push(job);
            }
            if batch.len() >= limits.max_batch_messages || packed >= limits.max_pack_bytes {
                break;
            }
            next = receiver.try_recv().ok();
        }
        if batch.is_empty() {
            continue;
        }
        let flusher = flusher.clone();
        tokio::spawn(async move {
            flusher.flush(batch).await;
            drop(slot);
        });
    }
}

struct Flusher {
    queue: Queue,
    blobs: Arc<dyn BlobStore>,
    on_committed: OnCommitted,
}

type Waiter = oneshot::Sender<Result<(), IntakeError>>;

impl Flusher {
    async fn flush(&self, batch: Vec<Job>) {
        let (entries, waiters, upload) = place_bodies(batch);
        let Some((key, bytes)) = upload else {
            // Every body was stored by its session already: only the commit is shared.
            let committed = db(DbOp::QueueIntake, self.queue.enqueue_batch(&entries));
            return match committed.await {
                Ok(()) => self.committed(&entries, waiters),
                Err(error) => self.refused(error, entries, waiters).await,
            };
        };
        // The statement runs in a transaction while the pack uploads; it commits only once the
        // upload succeeded, so no committed row ever points at a missing body.
        // Measured as one operation: the statement (not the upload it overlaps) and the commit.
        let statement = async {
            let started = Instant::now();
            let queued = self.queue.enqueue_batch_uncommitted(&entries).await;
            (queued, started.elapsed())
        };
        let ((queued, statement_time), stored) =
            tokio::join!(statement, self.blobs.put(&key, bytes));
        if let Err(error) = &queued {
            observe_db(DbOp::QueueIntake, error.store_outcome(), statement_time);
        }
        match (queued, stored) {
            (Ok(transaction), Ok(())) => {
                let started = Instant::now();
                let committed = transaction.commit().await;
                let outcome = committed
                    .as_ref()
                    .map_or_else(|e| e.store_outcome(), |()| Outcome::Ok);
                observe_db(
                    DbOp::QueueIntake,
                    outcome,
                    statement_time + started.elapsed(),
                );
                match committed {
                    Ok(()) => self.committed(&entries, waiters),
                    Err(error) => fail(waiters, &IntakeError::from(&QueueError::from(error))),
                }
            }
            (queued, Err(error)) => {
                if let Ok(transaction) = queued {
                    let _ = transaction.rollback().await;
                }
                tracing::error!(%error, messages = waiters.len(), "uploading a batch's bodies failed");
                fail(waiters, &IntakeError::from(&error));
            }
            // The pack is stored; the statement failed.
            (Err(error), Ok(())) => self.refused(error, entries, waiters).await,
        }
    }

    /// A batch whose statement failed: if one entry broke a schema rule, the others are queued
    /// one by one (their bodies are stored) so that they are not refused for it.
    async fn refused(&self, error: QueueError, entries: Vec<NewEntry>, waiters: Vec<Waiter>) {
        if !(error.is_entry_fault() && entries.len() > 1) {
            return fail(waiters, &IntakeError::from(&error));
        }
        tracing::warn!(%error, "a batch was refused; queueing its entries one by one");
        for (entry, done) in entries.into_iter().zip(waiters) {
            let one = std::slice::from_ref(&entry);
            match db(DbOp::QueueIntake, self.queue.enqueue_batch(one)).await {
                Ok(()) => self.committed(one, vec![done]),
                Err(error) => fail(vec![done], &IntakeError::from(&error)),
            }
        }
    }

    fn committed(&self, entries: &[NewEntry], waiters: Vec<Waiter>) {
        for done in waiters {
            // A session that gave up waiting gets nothing; its message stays queued.
            let _ = done.send(Ok(()));
        }
        let ids: Vec<Uuid> = entries.iter().map(|e| e.envelope.id).collect();
        (self.on_committed)(&ids);
    }
}

/// Packs the inline bodies (no I/O): every entry with the location its body will have, the
/// waiting sessions in the same order, and the blob to upload, if any.
fn place_bodies(batch: Vec<Job>) -> (Vec<NewEntry>, Vec<Waiter>, Option<(BlobKey, Bytes)>) {
    let mut pending = Vec::with_capacity(batch.len());
    let mut waiters = Vec::with_capacity(batch.len());
    let mut pack = Pack::default();
    for job in batch {
        let place = match job.body {
            Body::Stored(location) => Place::Stored(location),
            Body::Inline { bytes, sha256 } => Place::Packed(pack.add(bytes, sha256)),
        };
        pending.push((job.envelope, place));
        waiters.push(job.done);
    }
    let upload = pack.finish();
    let entries = pending
        .into_iter()
        .filter_map(|(envelope, place)| {
            let body = match (place, &upload) {
                (Place::Stored(location), _) => location,
                (Place::Packed((offset, size)), Some((key, bytes))) => BodyLocation {
                    blob_key: key.clone(),
                    blob_size: bytes.len() as u64,
                    offset,
                    size,
                },
                // A packed body implies a pack.
                (Place::Packed(_), None) => return None,
            };
            Some(NewEntry { envelope, body })
        })
        .collect();
    (entries, waiters, upload)
}

fn fail(waiters: Vec<Waiter>, error: &IntakeError) {
    for done in waiters {
        let _ = done.send(Err(error.clone()));
    }
}

enum Place {
    Stored(BodyLocation),
    /// Offset and size in the batch's pack.
    Packed((u64, u64)),
}

/// Inline bodies of one batch, concatenated.
#[derive(Default)]
struct Pack {
    parts: Vec<(Bytes, [u8; 32])>,
    len: u64,
}

impl Pack {
    /// Adds a body; returns its offset and size in the pack.
    fn add(&mut self, bytes: Bytes, sha256: [u8; 32]) -> (u64, u64) {
        let size = bytes.len() as u64;
        let offset = self.len;
        self.len += size;
        self.parts.push((bytes, sha256));
        (offset, size)
    }

    /// The pack's key and bytes; a pack of one is that body alone, under its own digest.
    fn finish(&mut self) -> Option<(BlobKey, Bytes)> {
        match self.parts.len() {
            0 => None,
            1 => {
                let (bytes, sha256) = self.parts.pop()?;
                Some((BlobKey::from_sha256(&sha256), bytes))
            }
            _ => {
                let mut joined = BytesMut::with_capacity(self.len as usize);
                let mut hasher = Sha256::new();
                for (bytes, _) in self.parts.drain(..) {
                    hasher.update(&bytes);
                    joined.extend_from_slice(&bytes);
                }
                let key = BlobKey::from_sha256(&hasher.finalize().into());
                Some((key, joined.freeze()))
            }
        }
    }
}
