//! The produce path after validation: batches pool into the open object, which is
//! sealed after `batch_timeout` or at `batch_max_bytes`, uploaded under a fresh key
//! (uploads pipelined, a bounded number at once), committed to the control plane in
//! the order objects were sealed, and only then are producers answered.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStore, PutPayload};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_cache::BlockCache;
use weir_control_plane_api::ControlPlaneClient;
use weir_control_plane_api::data::{Backlog, BatchOutcome, BatchRef, Committed, ObjectCommit};
use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use crate::batch::ValidBatch;
use crate::bucket::Bucket;
use crate::handoffs::{Handoff, Handoffs, Held};
use crate::object::{FooterEntry, Level, ObjectBuilder};

/// Why a batch was not written, as a Kafka error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub code: i16,
    pub message: String,
}

impl Rejected {
    fn new(code: kafka_protocol::error::ResponseError, message: impl Into<String>) -> Self {
        Rejected {
            code: code.code(),
            message: message.into(),
        }
    }
}

pub type Ack = Result<Offset, Rejected>;

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub batch_timeout: Duration,
    pub batch_max_bytes: u64,
    pub uploads_in_flight: usize,
    /// How long an object may take to upload and commit before its producers get a
    /// retriable error.
    pub deadline: Duration,
}

struct Submission {
    topic: TopicId,
    partition: Partition,
    batch: ValidBatch,
    reply: oneshot::Sender<Ack>,
    /// Counted in the writer queue's gauge until the writer takes it.
    _queued: Held,
}

/// A cloneable front to the writer task.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    queue: mpsc::Sender<Submission>,
    handoffs: Arc<Handoffs>,
    backlog: Arc<parking_lot::Mutex<Backlog>>,
}

impl WriterHandle {
    /// What the control plane said of compaction's backlog with its last commit answer.
    pub fn backlog(&self) -> Backlog {
        *self.backlog.lock()
    }

    /// Adds a batch to the open object; the returned [`PendingAck`] resolves once the
    /// object holding it is committed. Batches submitted one after another keep that
    /// order in their partition.
    pub async fn submit(
        &self,
        topic: TopicId,
        partition: Partition,
        batch: ValidBatch,
    ) -> PendingAck {
        let (reply, ack) = oneshot::channel();
        let submission = Submission {
            topic,
            partition,
            batch,
            reply,
            _queued: Held::new(&self.handoffs.writer_queue, 1),
        };
        let send = self.queue.send(submission);
        match self.handoffs.wait(Handoff::WriterQueue, send).await {
            Ok(()) => PendingAck(Some(ack)),
            Err(_) => PendingAck(None),
        }
    }
}

/// A submitted batch's answer, still to come.
#[derive(Debug)]
pub struct PendingAck(Option<oneshot::Receiver<Ack>>);

impl PendingAck {
    pub async fn wait(self) -> Ack {
        use kafka_protocol::error::ResponseError;
        match self.0 {
            // The writer stopped with the batch in hand: its commit may have been sent.
            Some(ack) => ack.await.map_err(|_| {
                Rejected::new(
                    ResponseError::RequestTimedOut,
                    "the agent is shutting down; the batch may or may not have been committed",
                )
            })?,
            None => Err(Rejected::new(
                ResponseError::NotEnoughReplicas,
                "the agent is shutting down; the batch was not written",
            )),
        }
    }
}

/// Starts the writer; on `cancel` it seals the open object and finishes what it holds.
pub fn spawn(
    config: WriterConfig,
    bucket: Bucket,
    cache: BlockCache,
    control: ControlPlaneClient,
    handoffs: Arc<Handoffs>,
    cancel: CancellationToken,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (queue, submissions) = mpsc::channel(1024);
    let (sealed_tx, sealed_rx) = mpsc::channel(config.uploads_in_flight.max(1));
    let backlog = Arc::new(parking_lot::Mutex::new(Backlog::default()));
    let committer = tokio::spawn(commit_in_order(
        sealed_rx,
        control,
        config.deadline,
        backlog.clone(),
    ));
    let writer = Writer {
        uploads: Arc::new(Semaphore::new(config.uploads_in_flight.max(1))),
        config,
        bucket,
        cache,
        sealed: sealed_tx,
        handoffs: handoffs.clone(),
    };
    let task = tokio::spawn(async move {
        writer.run(submissions, cancel).await;
        let _ = committer.await;
    });
    (
        WriterHandle {
            queue,
            handoffs,
            backlog,
        },
        task,
    )
}

type Waiter = oneshot::Sender<Ack>;

/// A sealed object on its way: its upload, then its commit.
struct InFlight {
    id: ObjectId,
    size: u64,
    upload: tokio::task::JoinHandle<Result<(), String>>,
    batches: Vec<(FooterEntry, Waiter)>,
    sealed_at: Instant,
    /// Counted in the commits-in-flight gauge until it is committed or failed.
    committing: Held,
}

struct Writer {
    config: WriterConfig,
    bucket: Bucket,
    cache: BlockCache,
    uploads: Arc<Semaphore>,
    sealed: mpsc::Sender<InFlight>,
    handoffs: Arc<Handoffs>,
}

impl Writer {
    async fn run(self, mut submissions: mpsc::Receiver<Submission>, cancel: CancellationToken) {
        let mut open: ObjectBuilder<Waiter> = ObjectBuilder::new(Level::WRITER);
        let mut deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    self.seal(std::mem::take(&mut open)).await;
                }
                submission = submissions.recv() => {
                    let Some(s) = submission else { break };
                    open.push(s.topic, s.partition, s.batch, s.reply);
                    deadline.get_or_insert_with(|| Instant::now() + self.config.batch_timeout);
                    if open.size() >= self.config.batch_max_bytes {
                        deadline = None;
                        self.seal(std::mem::take(&mut open)).await;
                    }
                }
            }
        }
        // Shutdown: take what producers already handed over, then flush it.
        submissions.close();
        while let Ok(s) = submissions.try_recv() {
            open.push(s.topic, s.partition, s.batch, s.reply);
        }
        self.seal(open).await;
        tracing::info!("writer flushed");
    }

    async fn seal(&self, open: ObjectBuilder<Waiter>) {
        if open.is_empty() {
            return;
        }
        let sealed = open.finish();
        // Waiting for an upload slot holds the writer: producers then wait on the queue.
        let slot = self.uploads.clone().acquire_owned();
        let permit = self.handoffs.wait(Handoff::Upload, slot).await;
        let uploading = Held::new(&self.handoffs.uploads_in_flight, 1);
        // Named once the upload can start, so the id's time is when its PUT begins:
        // garbage collection and the commit cut-off both measure age from it.
        let id = ObjectId::new();
        let (bucket, cache, deadline) = (
            self.bucket.clone(),
            self.cache.clone(),
            self.config.deadline,
        );
        let parts = sealed.parts;
        let upload = tokio::spawn(async move {
            let result = upload(&bucket, id, parts, &cache, deadline).await;
            drop((permit, uploading));
            result
        });
        let in_flight = InFlight {
            id,
            size: sealed.size,
            upload,
            batches: sealed.batches,
            sealed_at: Instant::now(),
            committing: Held::new(&self.handoffs.commits_in_flight, 1),
        };
        let send = self.sealed.send(in_flight);
        if let Err(mpsc::error::SendError(in_flight)) =
            self.handoffs.wait(Handoff::Commit, send).await
        {
            fail(
                in_flight.batches,
                &Rejected::new(
                    kafka_protocol::error::ResponseError::NotEnoughReplicas,
                    "the agent is shutting down",
                ),
            );
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// PUTs an object, retrying with backoff until `deadline`; then caches it for readers.
async fn upload(
    bucket: &Bucket,
    id: ObjectId,
    parts: Vec<Bytes>,
    cache: &BlockCache,
    deadline: Duration,
) -> Result<(), String> {
    let path = bucket.path(id);
    let give_up = Instant::now() + deadline;
    let mut backoff = Duration::from_millis(20);
    loop {
        let payload = PutPayload::from_iter(parts.iter().cloned());
        match bucket.store.put(&path, payload).await {
            Ok(_) => break,
            Err(e) if Instant::now() + backoff < give_up => {
                tracing::warn!(object = %path, error = %e, "upload object; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(format!("upload object {path}: {e}")),
        }
    }
    cache.insert_object(&path, &parts).await;
    Ok(())
}

fn fail(batches: Vec<(FooterEntry, Waiter)>, why: &Rejected) {
    for (_, waiter) in batches {
        let _ = waiter.send(Err(why.clone()));
    }
}

/// Commits sealed objects one at a time, in the order they were sealed, so a
/// partition's batches get offsets in the order producers sent them.
async fn commit_in_order(
    mut sealed: mpsc::Receiver<InFlight>,
    control: ControlPlaneClient,
    deadline: Duration,
    backlog: Arc<parking_lot::Mutex<Backlog>>,
) {
    while let Some(InFlight {
        id,
        size,
        upload,
        batches,
        sealed_at,
        committing: _committing,
    }) = sealed.recv().await
    {
        let storage_error = |message: String| {
            Rejected::new(
                kafka_protocol::error::ResponseError::KafkaStorageError,
                message,
            )
        };
        let uploaded_at = match upload.await {
            Ok(Ok(())) => Instant::now(),
            Ok(Err(message)) => {
                tracing::error!(object = %id, %message, "object not written; producers get a retriable error");
                fail(batches, &storage_error(message));
                continue;
            }
            Err(e) => {
                fail(batches, &storage_error(format!("upload task failed: {e}")));
                continue;
            }
        };
        match commit(&control, id, size, &batches, sealed_at + deadline, deadline).await {
            Ok(Committed {
                outcomes: results,
                backlog: behind,
            }) => {
                *backlog.lock() = behind;
                tracing::debug!(
                    object = %id,
                    batches = batches.len(),
                    bytes = size,
                    upload_ms = (uploaded_at - sealed_at).as_millis() as u64,
                    commit_ms = uploaded_at.elapsed().as_millis() as u64,
                    "object committed"
                );
                for ((_, waiter), result) in batches.into_iter().zip(results) {
                    let _ = waiter.send(ack(result));
                }
            }
            Err(rejected) => {
                tracing::error!(object = %id, error = %rejected.message, "commit object");
                fail(batches, &rejected);
            }
        }
    }
}

/// How far the control plane's clock may lag this agent's. The control plane refuses
/// to commit an object older than the produce timeout; this agent stops trying, and
/// commits its next objects, only once the object is older than that plus this margin,
/// so a copy of the commit still in flight cannot be applied after them.
const CLOCK_SKEW: Duration = Duration::from_secs(1);

async fn commit(
    control: &ControlPlaneClient,
    id: ObjectId,
    size: u64,
    batches: &[(FooterEntry, Waiter)],
    give_up: Instant,
    max_age: Duration,
) -> Result<Committed, Rejected> {
    let commit = ObjectCommit {
        id,
        key: Bucket::relative_key(id),
        size,
        max_age,
        batches: batches
            .iter()
            .map(|(entry, _)| BatchRef {
                topic: entry.topic,
                partition: entry.partition,
                position: entry.position,
                length: entry.length,
                record_count: entry.record_count,
                max_timestamp: entry.max_timestamp,
                producer_id: entry.producer_id,
                producer_epoch: entry.producer_epoch,
                base_sequence: entry.base_sequence,
            })
            .collect(),
    };
    let mut backoff = Duration::from_millis(10);
    loop {
        // Garbage collection deletes uncommitted objects older than its grace period,
        // which is at least twice `max_age`; the control plane commits no object older
        // than `max_age`, so none is committed after collection judged it an orphan.
        let age = crate::bucket::id_age(id);
        if age > max_age + CLOCK_SKEW {
            return Err(Rejected::new(
                kafka_protocol::error::ResponseError::RequestTimedOut,
                format!(
                    "object {id} is {age:?} old, past the produce timeout ({max_age:?}): not committed, left to garbage collection"
                ),
            ));
        }
        // Retrying with the same object id is safe: the sequencer answers a repeat with
        // the first answer.
        match control.commit_object(&commit).await {
            // The backlog's produce throttle is not applied yet.
            Ok(committed) => return Ok(committed),
            Err(status) => {
                let retriable = matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::Unknown
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                );
                if !retriable || Instant::now() + backoff >= give_up {
                    let code = if retriable {
                        kafka_protocol::error::ResponseError::RequestTimedOut
                    } else {
                        kafka_protocol::error::ResponseError::UnknownServerError
                    };
                    return Err(Rejected::new(
                        code,
                        format!("commit object {id}: {}", status.message()),
                    ));
                }
                tracing::warn!(object = %id, error = %status, "commit object; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn ack(outcome: BatchOutcome) -> Ack {
    outcome.map_err(|refused| {
        Rejected::new(
            crate::error::kafka_error(refused.code as i32),
            refused.message,
        )
    })
}
