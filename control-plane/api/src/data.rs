//! The data path's calls, typed: what an agent's writer, fetches, offset lookups,
//! watermark watch and garbage collector ask of the control plane, in the domain's
//! types — ids, partitions, offsets — with the protocol's messages kept in here.
//!
//! A whole call fails with a `tonic::Status` (callers retry `UNAVAILABLE`); one item of
//! a call the control plane refused comes back as a [`Refusal`] in that item's place.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tonic::Status;
use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use crate::client::ControlPlaneClient;
/// The codes of a [`Refusal`].
pub use crate::proto::ErrorCode;
use crate::proto::{self, offset_query::Spec};

/// Why the control plane refused one item of a call: the protocol's code, with its
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    /// `None` for `ErrorCode::None`; an unknown code is an invalid request.
    pub(crate) fn of(error: i32, message: String) -> Option<Refusal> {
        match ErrorCode::try_from(error).unwrap_or(ErrorCode::InvalidRequest) {
            ErrorCode::None => None,
            code => Some(Refusal { code, message }),
        }
    }
}

/// One batch of an uploaded object, as the sequencer needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRef {
    pub topic: TopicId,
    pub partition: Partition,
    /// Byte offset in the object.
    pub position: u64,
    pub length: u32,
    pub record_count: i32,
    pub max_timestamp: i64,
    /// `-1` without an idempotent producer.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// An uploaded object to commit: its batches get offsets in one transaction.
#[derive(Clone, Debug)]
pub struct ObjectCommit {
    pub id: ObjectId,
    /// The object's key, relative to the bucket prefix.
    pub key: String,
    pub size: u64,
    /// An object older than this is not committed (its writer has moved on).
    pub max_age: Duration,
    /// Grouped by partition, in object order.
    pub batches: Vec<BatchRef>,
}

/// What one batch of a commit got: its base offset, or why not.
pub type BatchOutcome = Result<Offset, Refusal>;

/// A commit's answer: one outcome per batch, and how far compaction is behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub outcomes: Vec<BatchOutcome>,
    pub backlog: Backlog,
}

/// What the control plane asks of produce while compaction is behind
/// (docs/lifecycle.md, "Keeping up").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Delay produce answers by this much.
    pub throttle: Duration,
    /// Refuse new produce (retriable) until it drains.
    pub full: bool,
}

/// Where a run of one partition's batches is: a range of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub object: ObjectId,
    pub object_size: u64,
    pub position: u64,
    pub length: u64,
    pub base_offset: Offset,
    pub record_count: i64,
    pub max_timestamp: i64,
    pub batch_count: u32,
}

impl IndexEntry {
    /// The offset after its last record.
    pub fn end(&self) -> Offset {
        Offset(self.base_offset.0 + self.record_count)
    }

    pub fn from_message(entry: proto::IndexEntry) -> Result<IndexEntry, Status> {
        Ok(IndexEntry {
            object: ObjectId::from_slice(&entry.object_id).map_err(|e| {
                Status::data_loss(format!("an index entry names a bad object id: {e}"))
            })?,
            object_size: entry.object_size,
            position: entry.position,
            length: entry.length,
            base_offset: Offset(entry.base_offset),
            record_count: entry.record_count,
            max_timestamp: entry.max_timestamp,
            batch_count: entry.batch_count,
        })
    }
}

/// Part of a partition's index, with its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionIndex {
    /// Contiguous, in offset order.
    pub entries: Vec<IndexEntry>,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
}

/// A read of one partition's index from `from`, for about `max_bytes` (at least one
/// entry when any exists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRead {
    pub topic: TopicId,
    pub partition: Partition,
    pub from: Offset,
    pub max_bytes: u64,
}

/// Which offset a lookup asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first batch holding the partition's largest timestamp.
    MaxTimestamp,
    /// The first offset whose batch's max timestamp is at least this.
    Timestamp(i64),
}

/// The answer to an offset lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAnswer {
    /// `None` when no batch reaches the timestamp.
    pub offset: Option<Offset>,
    /// For timestamp lookups: the entry holding that offset, to find the record in.
    pub entry: Option<IndexEntry>,
}

/// A partition's bounds after a change the watch reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionAdvance {
    pub topic: TopicId,
    pub partition: Partition,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// Compaction replaced some of its index entries: what is kept of them is stale.
    pub entries_replaced: bool,
}

/// What the watermark watch says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatermarkUpdate {
    /// Partitions' high watermarks went up, or their log start offsets, or their
    /// entries were replaced.
    Advances(Vec<PartitionAdvance>),
    /// The watcher fell behind and missed advances: forget every watermark known.
    Resync,
}

impl ControlPlaneClient {
    /// Commits an uploaded object: one outcome per batch, in order. A repeat of a
    /// commit is answered with the first answer.
    pub async fn commit_object(&self, commit: &ObjectCommit) -> Result<Committed, Status> {
        let request = proto::CommitObjectRequest {
            object_id: commit.id.to_bytes().to_vec(),
            key: commit.key.clone(),
            size: commit.size,
            max_age_ms: u64::try_from(commit.max_age.as_millis()).unwrap_or(u64::MAX),
            batches: commit
                .batches
                .iter()
                .map(|b| proto::BatchRef {
                    topic_id: b.topic.as_bytes().to_vec(),
                    partition: b.partition.0,
                    position: b.position,
                    length: b.length,
                    record_count: b.record_count,
                    max_timestamp: b.max_timestamp,
                    producer_id: b.producer_id,
                    producer_epoch: i32::from(b.producer_epoch),
                    base_sequence: b.base_sequence,
                })
                .collect(),
        };
        let answer = self
            .sequencer
            .clone()
            .commit_object(request)
            .await?
            .into_inner();
        let backlog = Backlog {
            throttle: Duration::from_millis(u64::from(answer.throttle_ms)),
            full: answer.backlog_full,
        };
        let results = answer.results;
        if results.len() != commit.batches.len() {
            return Err(Status::internal(format!(
                "the commit of object {} answered {} batches of {}",
                commit.id,
                results.len(),
                commit.batches.len()
            )));
        }
        let outcomes = results
            .into_iter()
            .map(|r| match Refusal::of(r.error, r.message) {
                None => Ok(Offset(r.base_offset)),
                Some(refusal) => Err(refusal),
            })
            .collect();
        Ok(Committed { outcomes, backlog })
    }

    /// Kafka's DeleteRecords: raises each partition's log start offset to `offset`
    /// (`-1`: the high watermark); one answer per partition, the new low watermark.
    pub async fn delete_records(
        &self,
        deletions: &[(TopicId, Partition, Offset)],
    ) -> Result<Vec<Result<Offset, Refusal>>, Status> {
        let answers = self
            .index
            .clone()
            .delete_records(proto::DeleteRecordsRequest {
                partitions: deletions
                    .iter()
                    .map(|(topic, partition, offset)| proto::RecordsDeletion {
                        topic_id: topic.as_bytes().to_vec(),
                        partition: partition.0,
                        offset: offset.0,
                    })
                    .collect(),
            })
            .await?
            .into_inner()
            .partitions;
        if answers.len() != deletions.len() {
            return Err(Status::internal(format!(
                "DeleteRecords answered {} partitions of {}",
                answers.len(),
                deletions.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|a| match Refusal::of(a.error, a.message) {
                None => Ok(Offset(a.low_watermark)),
                Some(refusal) => Err(refusal),
            })
            .collect())
    }

    /// Reads partitions' index: one answer per read, in order.
    pub async fn read_index(
        &self,
        reads: &[PartitionRead],
    ) -> Result<Vec<Result<PartitionIndex, Refusal>>, Status> {
        let request = proto::ReadIndexRequest {
            partitions: reads
                .iter()
                .map(|r| proto::PartitionRead {
                    topic_id: r.topic.as_bytes().to_vec(),
                    partition: r.partition.0,
                    from_offset: r.from.0,
                    max_bytes: r.max_bytes,
                })
                .collect(),
        };
        let found = self
            .index
            .clone()
            .read_index(request)
            .await?
            .into_inner()
            .partitions;
        if found.len() != reads.len() {
            return Err(Status::internal(format!(
                "the index answered {} partitions of {}",
                found.len(),
                reads.len()
            )));
        }
        found
            .into_iter()
            .map(|p| {
                if let Some(refusal) = Refusal::of(p.error, p.message) {
                    return Ok(Err(refusal));
                }
                Ok(Ok(PartitionIndex {
                    entries: p
                        .entries
                        .into_iter()
                        .map(IndexEntry::from_message)
                        .collect::<Result<_, _>>()?,
                    high_watermark: Offset(p.high_watermark),
                    log_start_offset: Offset(p.log_start_offset),
                }))
            })
            .collect()
    }

    /// Looks up one partition's offset.
    pub async fn list_offset(
        &self,
        topic: TopicId,
        partition: Partition,
        spec: OffsetSpec,
    ) -> Result<Result<OffsetAnswer, Refusal>, Status> {
        let spec = match spec {
            OffsetSpec::Earliest => Spec::Earliest(true),
            OffsetSpec::Latest => Spec::Latest(true),
            OffsetSpec::MaxTimestamp => Spec::MaxTimestamp(true),
            OffsetSpec::Timestamp(ts) => Spec::Timestamp(ts),
        };
        let answer = self
            .index
            .clone()
            .list_offsets(proto::ListOffsetsRequest {
                queries: vec![proto::OffsetQuery {
                    topic_id: topic.as_bytes().to_vec(),
                    partition: partition.0,
                    spec: Some(spec),
                }],
            })
            .await?
            .into_inner()
            .answers
            .pop()
            .ok_or_else(|| Status::internal("ListOffsets answered nothing"))?;
        if let Some(refusal) = Refusal::of(answer.error, answer.message) {
            return Ok(Err(refusal));
        }
        Ok(Ok(OffsetAnswer {
            offset: (answer.offset >= 0).then_some(Offset(answer.offset)),
            entry: answer.entry.map(IndexEntry::from_message).transpose()?,
        }))
    }

    /// Follows high-watermark advances as commits happen, until the stream breaks.
    pub async fn watch_high_watermarks(
        &self,
    ) -> Result<impl Stream<Item = Result<WatermarkUpdate, Status>> + use<>, Status> {
        let stream = self
            .index
            .clone()
            .watch_high_watermarks(proto::WatchHighWatermarksRequest {})
            .await?
            .into_inner();
        Ok(stream.map(|update| {
            let update = update?;
            if update.resync {
                return Ok(WatermarkUpdate::Resync);
            }
            Ok(WatermarkUpdate::Advances(
                update
                    .advances
                    .into_iter()
                    .filter_map(|a| {
                        Some(PartitionAdvance {
                            topic: TopicId::from_slice(&a.topic_id).ok()?,
                            partition: Partition(a.partition),
                            high_watermark: Offset(a.high_watermark),
                            log_start_offset: Offset(a.log_start_offset),
                            entries_replaced: a.entries_replaced,
                        })
                    })
                    .collect(),
            ))
        }))
    }

    /// Which of `ids` were committed, in order.
    pub async fn check_objects(&self, ids: &[ObjectId]) -> Result<Vec<bool>, Status> {
        let committed = self
            .index
            .clone()
            .check_objects(proto::CheckObjectsRequest {
                object_ids: ids.iter().map(|id| id.to_bytes().to_vec()).collect(),
            })
            .await?
            .into_inner()
            .committed;
        if committed.len() != ids.len() {
            return Err(Status::internal(format!(
                "CheckObjects answered {} flags for {} objects",
                committed.len(),
                ids.len()
            )));
        }
        Ok(committed)
    }
}
