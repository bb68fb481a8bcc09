//! The sequencer: assigns offsets to the batches of uploaded objects.
//!
//! Concurrent `CommitObject` calls queue on a bounded channel; the sequencer task takes
//! whatever has queued while the previous transaction was committing and commits it as
//! one metadata transaction (group commit), so the cost of a durable commit is shared.
//! For each batch, in order: the topic and partition must exist; a batch of an
//! idempotent producer passes the sequence check (see [`crate::producers`]), and a retry
//! of a batch already appended is answered with its first offset and appended nothing;
//! the base offset is the partition's high watermark, which then grows by the batch's
//! record count. Contiguous batches of one partition in one object share one index
//! entry. The producer state lives in the same transaction as the offsets, so the check
//! and the append cannot part ways.
//!
//! A commit is idempotent by object id: the object's record and its per-batch answers
//! are written in the same transaction, so a retry after an unknown result (by the
//! retry loop here, or by the agent) finds them and answers the same again.
//!
//! Offsets are assigned inside serializable transactions, so two sequencers running at
//! once (a stale lease) would conflict, never assign an offset twice; the lease only
//! keeps them from wasting work.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use weir_metadata::keyspace::{
    self, CommitResults, IndexEntry, ObjectRecord, PartitionRecord, ProducerStateRecord,
};
use weir_metadata::{ObjectId, Offset, Partition, ProducerId, TopicId, Transaction};

use crate::error::{Error, ErrorKind, ItemError, Result};
use crate::lease::Lease;
use crate::lifecycle::entries;
use crate::metrics::SequencerMetrics;
use crate::producers::{self, PartitionProducer, ProducerBatch, Verdict};
use crate::proto::ErrorCode;
use crate::store::{Store, topic_by_id};
use crate::watch::{Advance, WatermarkHub};

/// Per-batch answers are stored in chunks of this many, each well under the value limit.
const RESULTS_CHUNK: usize = 4096;

#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// The most batches one object may carry; keeps one commit within the metadata
    /// store's transaction limit (10 MB).
    pub max_batches_per_object: usize,
    /// A group stops taking objects once it holds this many batches.
    pub max_batches_per_group: usize,
    /// Commits waiting for the sequencer, at most.
    pub queue_depth: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batches_per_object: 32_768,
            max_batches_per_group: 32_768,
            queue_depth: 1024,
        }
    }
}

/// One batch of an uploaded object, as the agent describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRef {
    pub topic: TopicId,
    pub partition: Partition,
    /// Byte offset of the batch in the object.
    pub position: u64,
    pub length: u32,
    pub record_count: i32,
    pub max_timestamp: i64,
    /// Set for a batch of an idempotent producer (producer id `>= 0`).
    pub producer: Option<ProducerBatch>,
}

/// An uploaded object to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectCommit {
    pub object: ObjectId,
    pub key: String,
    pub size: u64,
    pub batches: Vec<BatchRef>,
    /// An object older than this is refused (OBJECT_TOO_OLD): its writer stops waiting
    /// at this age and commits its next objects, so a late copy of this commit (held
    /// up in a paused process or a slow network) must not apply after them.
    pub max_age: Option<std::time::Duration>,
}

/// A batch's answer: its base offset, or why it was not committed.
pub type BatchOutcome = Result<Offset, ItemError>;

struct Pending {
    commit: ObjectCommit,
    reply: oneshot::Sender<Result<Vec<BatchOutcome>>>,
}

/// A cloneable front to the sequencer task.
#[derive(Clone, Debug)]
pub struct SequencerHandle {
    queue: mpsc::Sender<Pending>,
    max_batches_per_object: usize,
}

impl SequencerHandle {
    /// Commits an object and returns one outcome per batch, in order. Waits while the
    /// queue is full (backpressure).
    pub async fn commit(&self, commit: ObjectCommit) -> Result<Vec<BatchOutcome>> {
        if commit.batches.len() > self.max_batches_per_object {
            return Err(Error::TooManyBatches {
                count: commit.batches.len(),
                max: self.max_batches_per_object,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { commit, reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }
}

/// Starts the sequencer task; it stops when `cancel` fires, after the group in hand.
pub fn spawn(
    store: Store,
    lease: Lease,
    hub: WatermarkHub,
    metrics: SequencerMetrics,
    config: SequencerConfig,
    cancel: CancellationToken,
) -> (SequencerHandle, tokio::task::JoinHandle<()>) {
    let (queue, receiver) = mpsc::channel(config.queue_depth.max(1));
    let handle = SequencerHandle {
        queue,
        max_batches_per_object: config.max_batches_per_object,
    };
    let sequencer = Sequencer {
        store,
        lease,
        hub,
        metrics,
        config,
    };
    let task = tokio::spawn(sequencer.run(receiver, cancel));
    (handle, task)
}

struct Sequencer {
    store: Store,
    lease: Lease,
    hub: WatermarkHub,
    metrics: SequencerMetrics,
    config: SequencerConfig,
}

impl Sequencer {
    async fn run(self, mut receiver: mpsc::Receiver<Pending>, cancel: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                pending = receiver.recv() => match pending {
                    Some(pending) => pending,
                    None => break,
                },
            };
            let mut batches = first.commit.batches.len();
            let mut group = vec![first];
            while batches < self.config.max_batches_per_group {
                match receiver.try_recv() {
                    Ok(pending) => {
                        batches += pending.commit.batches.len();
                        group.push(pending);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group).await;
        }
        tracing::info!("sequencer stopped");
    }

    async fn commit_group(&self, group: Vec<Pending>) {
        let started = Instant::now();
        let commits: Vec<&ObjectCommit> = group.iter().map(|p| &p.commit).collect();
        let outcome = match self.commit_objects(&commits).await {
            // One object too large for a shared transaction must not fail the others.
            Err(err) if err.kind() == ErrorKind::Invalid && group.len() > 1 => {
                tracing::info!(error = %err, objects = group.len(), "group too large; committing its objects one by one");
                for pending in group {
                    let result = self.commit_objects(&[&pending.commit]).await;
                    let result = result.map(|mut outcomes| outcomes.pop().unwrap_or_default());
                    let _ = pending.reply.send(result);
                }
                return;
            }
            outcome => outcome,
        };
        match outcome {
            Ok(outcomes) => {
                self.metrics.observe_group(
                    commits.len(),
                    commits.iter().map(|c| c.batches.len()).sum(),
                    started.elapsed(),
                );
                for (pending, outcomes) in group.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcomes));
                }
            }
            Err(err) => {
                if err.kind() == ErrorKind::Internal {
                    tracing::error!(error = %err, objects = group.len(), "group commit failed");
                }
                let (kind, message) = (err.kind(), err.to_string());
                for pending in group {
                    let _ = pending.reply.send(Err(Error::shared(kind, &message)));
                }
            }
        }
    }

    /// Commits `commits` in one transaction and publishes the watermark advances.
    async fn commit_objects(&self, commits: &[&ObjectCommit]) -> Result<Vec<Vec<BatchOutcome>>> {
        let store = &self.store;
        let lease = &self.lease;
        let (outcomes, advances) = store
            .db
            .run(|tx| async move {
                lease.check(&tx).await?;
                let mut group = GroupState::default();
                let mut outcomes = Vec::with_capacity(commits.len());
                for commit in commits {
                    outcomes.push(commit_object(&tx, store, &mut group, commit).await?);
                }
                let now_ms = store.clock.now_ms();
                Ok::<_, Error>((outcomes, group.finish(&tx, store, now_ms)))
            })
            .await?;
        self.hub.publish(advances);
        Ok(outcomes)
    }
}

type ProducerKey = (TopicId, Partition, ProducerId);

/// Topics, partition states and producer states read by one group transaction.
#[derive(Default)]
struct GroupState {
    topics: HashMap<TopicId, Option<i32>>,
    partitions: BTreeMap<(TopicId, Partition), PartitionRecord>,
    /// Read on first use; `changed` once a batch of that producer was appended.
    producers: BTreeMap<ProducerKey, ProducerSlot>,
}

struct ProducerSlot {
    state: Option<PartitionProducer>,
    changed: bool,
}

impl GroupState {
    /// The topic's partition count, or `None` if it does not exist.
    async fn partitions_of(
        &mut self,
        tx: &Transaction,
        store: &Store,
        topic: TopicId,
    ) -> Result<Option<i32>> {
        if let Some(known) = self.topics.get(&topic) {
            return Ok(*known);
        }
        let count = topic_by_id(tx, &store.ks, topic)
            .await?
            .map(|t| t.partitions);
        self.topics.insert(topic, count);
        Ok(count)
    }

    async fn partition(
        &mut self,
        tx: &Transaction,
        store: &Store,
        topic: TopicId,
        partition: Partition,
    ) -> Result<&mut PartitionRecord> {
        use std::collections::btree_map::Entry;
        match self.partitions.entry((topic, partition)) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let key = store.ks.partition(topic, partition);
                let record = match tx.get(&key).await? {
                    Some(value) => keyspace::decode(&key, &value)?,
                    None => entries::empty_partition(),
                };
                Ok(entry.insert(record))
            }
        }
    }

    /// The producer's state on the batch's partition, read from the store on first use.
    async fn producer(
        &mut self,
        tx: &Transaction,
        store: &Store,
        key: ProducerKey,
    ) -> Result<&mut ProducerSlot> {
        use std::collections::btree_map::Entry;
        match self.producers.entry(key) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let (topic, partition, id) = key;
                let key = store.ks.producer_state(topic, partition, id);
                let state = match tx.get(&key).await? {
                    Some(value) => {
                        let record: ProducerStateRecord = keyspace::decode(&key, &value)?;
                        Some(PartitionProducer::from_record(&key, &record)?)
                    }
                    None => None,
                };
                Ok(entry.insert(ProducerSlot {
                    state,
                    changed: false,
                }))
            }
        }
    }

    /// Writes the partitions this group advanced and the producer states it changed;
    /// returns the partitions' new watermarks.
    fn finish(self, tx: &Transaction, store: &Store, now_ms: i64) -> Vec<Advance> {
        for ((topic, partition, id), slot) in &self.producers {
            if let (true, Some(state)) = (slot.changed, &slot.state) {
                tx.set(
                    &store.ks.producer_state(*topic, *partition, *id),
                    &keyspace::encode(&state.to_record(now_ms)),
                );
            }
        }
        self.partitions
            .into_iter()
            .map(|((topic, partition), record)| {
                tx.set(
                    &store.ks.partition(topic, partition),
                    &keyspace::encode(&record),
                );
                Advance {
                    topic,
                    partition,
                    high_watermark: Offset(record.high_watermark),
                    log_start_offset: Offset(record.log_start_offset),
                    entries_replaced: false,
                }
            })
            .collect()
    }
}

/// Contiguous batches of one partition, indexed as one entry.
struct Run {
    topic: TopicId,
    partition: Partition,
    entry: IndexEntry,
}

impl Run {
    fn end(&self) -> u64 {
        self.entry.position + self.entry.length
    }

    fn last_offset(&self) -> Offset {
        Offset(self.entry.base_offset + self.entry.record_count - 1)
    }
}

async fn commit_object(
    tx: &Transaction,
    store: &Store,
    group: &mut GroupState,
    commit: &ObjectCommit,
) -> Result<Vec<BatchOutcome>> {
    let ks = &store.ks;
    let object_key = ks.object(commit.object);
    if let Some(value) = tx.get(&object_key).await? {
        let record: ObjectRecord = keyspace::decode(&object_key, &value)?;
        return replay(tx, store, commit, &record).await;
    }
    if let Some(max_age) = commit.max_age {
        let born_ms = i64::try_from(commit.object.0.timestamp_ms()).unwrap_or(i64::MAX);
        let age_ms = store.clock.now_ms().saturating_sub(born_ms);
        if u128::try_from(age_ms).unwrap_or(0) > max_age.as_millis() {
            let refused = ItemError::new(
                ErrorCode::ObjectTooOld,
                format!(
                    "object {} is {age_ms} ms old, past the {} ms its writer waits for a commit: not committed",
                    commit.object,
                    max_age.as_millis()
                ),
            );
            return Ok(vec![Err(refused); commit.batches.len()]);
        }
    }

    let mut outcomes = Vec::with_capacity(commit.batches.len());
    let mut runs: Vec<Run> = Vec::new();
    for batch in &commit.batches {
        let verdict = match check_batch(tx, store, group, commit, batch).await? {
            Err(e) => Verdict::Reject(e),
            Ok(()) => match batch.producer {
                Some(producer) if producer.id.0 >= 0 => {
                    let key = (batch.topic, batch.partition, producer.id);
                    let slot = group.producer(tx, store, key).await?;
                    producers::check(slot.state.as_ref(), producer, batch.record_count)
                }
                _ => Verdict::Append,
            },
        };
        let outcome = match verdict {
            Verdict::Reject(e) => Err(e),
            // A retry: the first copy holds the records; this one gets no index entry.
            Verdict::Duplicate(offset) => Ok(offset),
            Verdict::Append => Ok(append(tx, store, group, commit, batch, &mut runs).await?),
        };
        outcomes.push(outcome);
    }

    let mut live_bytes = 0;
    let indexed = !runs.is_empty();
    for run in runs {
        let last = run.last_offset();
        let state = group.partition(tx, store, run.topic, run.partition).await?;
        if run.entry.max_timestamp > state.max_timestamp {
            // The first entry to reach this timestamp: what a by-time lookup finds.
            state.max_timestamp = run.entry.max_timestamp;
            tx.set(
                &ks.time_entry(run.topic, run.partition, run.entry.max_timestamp),
                &last.0.to_le_bytes(),
            );
        }
        if state.bytes == 0 {
            entries::set_head(state, Some(&run.entry));
        }
        state.bytes += run.entry.length;
        live_bytes += run.entry.length;
        entries::add_entry(
            tx,
            store,
            run.topic,
            run.partition,
            &run.entry,
            commit.object,
        );
    }
    let record = ObjectRecord {
        key: commit.key.clone(),
        size: commit.size,
        live_bytes,
        created_ms: store.clock.now_ms(),
        batch_count: u32::try_from(outcomes.len()).unwrap_or(u32::MAX),
        ..ObjectRecord::default()
    };
    tx.set(&object_key, &keyspace::encode(&record));
    if indexed {
        entries::candidate(tx, store, commit.object, 0, commit.size);
    } else {
        // Every batch was refused or a duplicate: nothing will ever read it.
        entries::dereference_if_unreferenced(tx, store, commit.object, store.delete_grace_ms)
            .await?;
    }
    for (chunk, outcomes) in outcomes.chunks(RESULTS_CHUNK).enumerate() {
        let mut results = CommitResults::default();
        for (i, outcome) in outcomes.iter().enumerate() {
            let (code, offset) = match outcome {
                Ok(offset) => (ErrorCode::None, offset.0),
                Err(e) => {
                    results.messages.insert(i as u32, e.message.clone());
                    (e.code, -1)
                }
            };
            results.errors.push(code as i32);
            results.base_offsets.push(offset);
        }
        tx.set(
            &ks.object_results(commit.object, chunk as u32),
            &keyspace::encode(&results),
        );
    }
    Ok(outcomes)
}

/// Gives a batch the partition's next offsets, extends the object's runs, and records
/// the batch in its producer's state.
async fn append(
    tx: &Transaction,
    store: &Store,
    group: &mut GroupState,
    commit: &ObjectCommit,
    batch: &BatchRef,
    runs: &mut Vec<Run>,
) -> Result<Offset> {
    let state = group
        .partition(tx, store, batch.topic, batch.partition)
        .await?;
    let base = state.high_watermark;
    state.high_watermark += i64::from(batch.record_count);
    match runs.last_mut() {
        Some(run)
            if run.topic == batch.topic
                && run.partition == batch.partition
                && run.end() == batch.position
                && run.last_offset().0 + 1 == base =>
        {
            run.entry.length += u64::from(batch.length);
            run.entry.record_count += i64::from(batch.record_count);
            run.entry.max_timestamp = run.entry.max_timestamp.max(batch.max_timestamp);
            run.entry.batch_count += 1;
        }
        _ => runs.push(Run {
            topic: batch.topic,
            partition: batch.partition,
            entry: IndexEntry {
                object_id: commit.object.to_bytes().to_vec(),
                position: batch.position,
                length: u64::from(batch.length),
                base_offset: base,
                record_count: i64::from(batch.record_count),
                max_timestamp: batch.max_timestamp,
                batch_count: 1,
                object_size: commit.size,
            },
        }),
    }
    if let Some(producer) = batch.producer.filter(|p| p.id.0 >= 0) {
        let key = (batch.topic, batch.partition, producer.id);
        let slot = group.producer(tx, store, key).await?;
        slot.state = Some(producers::appended(
            slot.state.take(),
            producer,
            batch.record_count,
            Offset(base),
        ));
        slot.changed = true;
    }
    Ok(Offset(base))
}

/// Checks one batch against the topic, the partition and the object.
async fn check_batch(
    tx: &Transaction,
    store: &Store,
    group: &mut GroupState,
    commit: &ObjectCommit,
    batch: &BatchRef,
) -> Result<Result<(), ItemError>> {
    let Some(partitions) = group.partitions_of(tx, store, batch.topic).await? else {
        return Ok(Err(ItemError::new(
            ErrorCode::UnknownTopic,
            format!(
                "topic id {} does not exist (it may have been deleted)",
                batch.topic
            ),
        )));
    };
    if !(0..partitions).contains(&batch.partition.0) {
        return Ok(Err(ItemError::new(
            ErrorCode::UnknownPartition,
            format!(
                "partition {} is out of range: topic id {} has {partitions} partitions",
                batch.partition, batch.topic
            ),
        )));
    }
    if batch.record_count <= 0 {
        return Ok(Err(ItemError::new(
            ErrorCode::InvalidBatch,
            format!(
                "batch has {} records; a batch holds at least one",
                batch.record_count
            ),
        )));
    }
    let end = batch.position.checked_add(u64::from(batch.length));
    if batch.length == 0 || end.is_none_or(|end| end > commit.size) {
        return Ok(Err(ItemError::new(
            ErrorCode::InvalidBatch,
            format!(
                "batch bytes at {}..+{} do not lie within the object's {} bytes",
                batch.position, batch.length, commit.size
            ),
        )));
    }
    Ok(Ok(()))
}

/// Answers a commit of an object that is already committed with its first answer.
async fn replay(
    tx: &Transaction,
    store: &Store,
    commit: &ObjectCommit,
    record: &ObjectRecord,
) -> Result<Vec<BatchOutcome>> {
    if record.batch_count as usize != commit.batches.len() {
        return Err(Error::InvalidRequest(format!(
            "object {} was already committed with {} batches, not {}",
            commit.object,
            record.batch_count,
            commit.batches.len()
        )));
    }
    let mut outcomes = Vec::with_capacity(commit.batches.len());
    let chunks = commit.batches.len().div_ceil(RESULTS_CHUNK);
    for chunk in 0..chunks {
        let key = store.ks.object_results(commit.object, chunk as u32);
        let value = tx
            .get(&key)
            .await?
            .ok_or_else(|| weir_metadata::Error::corrupt(&key, "missing commit results"))?;
        let results: CommitResults = keyspace::decode(&key, &value)?;
        for (i, (&code, &offset)) in results.errors.iter().zip(&results.base_offsets).enumerate() {
            let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::InvalidBatch);
            outcomes.push(match code {
                ErrorCode::None => Ok(Offset(offset)),
                code => Err(ItemError::new(
                    code,
                    results
                        .messages
                        .get(&(i as u32))
                        .cloned()
                        .unwrap_or_default(),
                )),
            });
        }
    }
    tracing::debug!(object = %commit.object, "replayed an already committed object");
    Ok(outcomes)
}

impl Error {
    /// The same failure, for each caller of a failed group.
    fn shared(kind: ErrorKind, message: &str) -> Error {
        let message = format!("group commit failed: {message}");
        match kind {
            ErrorKind::Retry => Error::Unavailable(message),
            ErrorKind::Invalid => Error::InvalidRequest(message),
            ErrorKind::Internal => Error::Internal(message),
        }
    }
}
