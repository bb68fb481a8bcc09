//! Compaction: a claimed job's input entries read from the bucket, their batches copied
//! into new objects in (topic, partition, offset) order with their real base offsets
//! written in, and the outputs uploaded. The commit is the runner's (docs/lifecycle.md,
//! "Compaction").
//!
//! Outputs are made one after another, each from one ranged GET per input it draws on
//! (an object's data is grouped by partition in ascending order, so what one output
//! needs of an input lies together), several at once. Batches are not validated again
//! (they were when produced): each one's header is read, checked against the entry
//! that names it, and its bytes copied with the baseOffset, which no CRC covers,
//! replaced.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use prometheus_client::metrics::counter::Counter;
use weir_control_plane_api::jobs::{Job, JobOutput, OutputEntry, OutputRun};
use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use super::JobError;
use super::plan::{self, OutputPlan, Piece};
use crate::batch::{self, BatchHeader};
use crate::bucket::Bucket;
use crate::object::{Level, ObjectBuilder, SealedObject};

#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// Outputs are at most this big, unless one input entry alone is bigger.
    pub object_bytes: u64,
    /// Outputs are indexed in entries of about this many bytes, cut between batches.
    pub entry_bytes: u64,
    /// Ranged GETs of inputs at once, at most.
    pub reads_in_flight: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            object_bytes: 64 * 1024 * 1024,
            entry_bytes: 1024 * 1024,
            reads_in_flight: 8,
        }
    }
}

/// Reads `job`'s inputs, writes its outputs to `bucket` (counting their bytes in
/// `written` as each is uploaded) and returns what the commit needs of them. An error
/// leaves the outputs uploaded so far to the orphan sweep.
pub async fn compact(
    job: &Job,
    bucket: &Bucket,
    config: &CompactionConfig,
    written: &Counter,
) -> Result<Vec<JobOutput>, JobError> {
    let level = Level::new(job.output_level).ok_or(JobError::BadLevel(job.output_level))?;
    let plans = plan::plan(job, config.object_bytes)?;
    let mut outputs = Vec::with_capacity(plans.len());
    for output in &plans {
        let spans = read(bucket, output, config.reads_in_flight).await?;
        let sealed = build(output, &spans, level, config.entry_bytes)?;
        drop(spans);
        let runs = runs(output, &sealed);
        let uploaded = upload(bucket, sealed, runs).await?;
        written.inc_by(uploaded.size);
        tracing::debug!(
            job = %job.id,
            object = %uploaded.object,
            bytes = uploaded.size,
            batches = uploaded.batch_count,
            runs = uploaded.runs.len(),
            "compaction output uploaded"
        );
        outputs.push(uploaded);
    }
    Ok(outputs)
}

/// What one output needs of one input: the bytes of one ranged GET.
struct Span {
    start: u64,
    bytes: Bytes,
}

impl Span {
    /// The bytes of `piece`, which this span covers.
    fn of(&self, piece: &Piece<'_>) -> Bytes {
        let range = piece.bytes();
        let start = usize::try_from(range.start - self.start).expect("a span is in memory");
        let end = start + usize::try_from(range.end - range.start).expect("a span is in memory");
        self.bytes.slice(start..end)
    }
}

/// Reads, per input that `output` draws on, the bytes from its first piece's start to
/// its last piece's end, `in_flight` GETs at once.
async fn read(
    bucket: &Bucket,
    output: &OutputPlan<'_>,
    in_flight: usize,
) -> Result<BTreeMap<ObjectId, Span>, JobError> {
    let mut ranges: BTreeMap<ObjectId, (&str, Range<u64>)> = BTreeMap::new();
    for piece in output.runs.iter().flat_map(|run| &run.pieces) {
        let bytes = piece.bytes();
        ranges
            .entry(piece.input.object)
            .and_modify(|(_, range)| {
                range.start = range.start.min(bytes.start);
                range.end = range.end.max(bytes.end);
            })
            .or_insert((&piece.input.key, bytes));
    }
    let reads: Vec<_> = ranges
        .into_iter()
        .map(|(object, (key, range))| read_span(bucket, object, key, range))
        .collect();
    futures::stream::iter(reads)
        .buffer_unordered(in_flight.max(1))
        .try_collect()
        .await
}

/// One ranged GET of an input.
async fn read_span(
    bucket: &Bucket,
    object: ObjectId,
    key: &str,
    range: Range<u64>,
) -> Result<(ObjectId, Span), JobError> {
    let path = bucket.key_path(key);
    let bytes =
        bucket
            .store
            .get_range(&path, range.clone())
            .await
            .map_err(|source| match source {
                object_store::Error::NotFound { .. } => JobError::InputMissing {
                    object,
                    key: key.to_string(),
                },
                source => JobError::ReadInput {
                    object,
                    key: key.to_string(),
                    source,
                },
            })?;
    if bytes.len() as u64 != range.end - range.start {
        return Err(JobError::ShortRead {
            object,
            range,
            got: bytes.len() as u64,
        });
    }
    let span = Span {
        start: range.start,
        bytes,
    };
    Ok((object, span))
}

/// Where a batch of an output goes in its index: the part of the plan's runs and the
/// entry of that run it is in, and the offsets it holds.
#[derive(Clone, Copy, Debug)]
struct Slot {
    run: usize,
    entry: usize,
    base_offset: i64,
    offsets: i64,
}

/// Copies every batch `output` holds out of `spans` and seals the object, each run cut
/// into index entries of about `entry_bytes`.
fn build(
    output: &OutputPlan<'_>,
    spans: &BTreeMap<ObjectId, Span>,
    level: Level,
    entry_bytes: u64,
) -> Result<SealedObject<Slot>, JobError> {
    let capacity = usize::try_from(output.data_len).expect("an output is held in memory");
    let mut data = BytesMut::with_capacity(capacity);
    let mut copied = Vec::new();
    for (r, run) in output.runs.iter().enumerate() {
        let mut cut = EntryCut::new(entry_bytes);
        for piece in &run.pieces {
            let bytes = spans
                .get(&piece.input.object)
                .expect("read() covers every piece's input")
                .of(piece);
            for stored in stored_batches(piece, run.topic, run.partition, &bytes)? {
                let batch = &bytes[stored.range];
                let slot = Slot {
                    run: r,
                    entry: cut.place(batch.len() as u64),
                    base_offset: stored.header.base_offset,
                    offsets: stored.offsets,
                };
                let start = data.len();
                batch::with_base_offset(batch, stored.header.base_offset, &mut data);
                copied.push((
                    run.topic,
                    run.partition,
                    stored.header,
                    start..data.len(),
                    slot,
                ));
            }
        }
    }
    let data = data.freeze();
    let mut builder = ObjectBuilder::new(level);
    // Pushed in (topic, partition, offset) order, which the builder keeps.
    for (topic, partition, header, range, slot) in copied {
        builder.push_stored(topic, partition, header, data.slice(range), slot);
    }
    Ok(builder.finish())
}

/// Numbers a run's index entries: a new one when the next batch would take the
/// current one past the limit (an entry is at least one batch).
struct EntryCut {
    limit: u64,
    index: usize,
    bytes: u64,
}

impl EntryCut {
    fn new(limit: u64) -> Self {
        EntryCut {
            limit,
            index: 0,
            bytes: 0,
        }
    }

    /// The entry a batch of `len` bytes goes in.
    fn place(&mut self, len: u64) -> usize {
        if self.bytes > 0 && self.bytes + len > self.limit {
            self.index += 1;
            self.bytes = 0;
        }
        self.bytes += len;
        self.index
    }
}

/// A batch of an input entry, checked against the entry.
struct StoredBatch {
    /// Its header with its real base offset, and its max timestamp computed from the
    /// records when the producer left it unset, as the writer's footer has it.
    header: BatchHeader,
    /// Where it is in the entry's bytes.
    range: Range<usize>,
    /// How many offsets it takes: lastOffsetDelta + 1.
    offsets: i64,
}

/// Frames the batches of `piece`'s `bytes` and checks them against the entry: they
/// fill its bytes exactly, and their offsets and count are the entry's.
fn stored_batches(
    piece: &Piece<'_>,
    topic: TopicId,
    partition: Partition,
    bytes: &[u8],
) -> Result<Vec<StoredBatch>, JobError> {
    let bad = |reason: String| piece.bad(topic, partition, reason);
    let entry = piece.entry;
    let mut batches = Vec::with_capacity(entry.batch_count as usize);
    let mut offset = entry.base_offset.0;
    let mut at = 0;
    while at < bytes.len() {
        let Some(mut header) = BatchHeader::parse(&bytes[at..]) else {
            return Err(bad(format!(
                "{} bytes at byte {at} of the entry are too few for a batch header",
                bytes.len() - at
            )));
        };
        let size = header.size();
        if header.magic != batch::MAGIC {
            return Err(bad(format!(
                "the batch at byte {at} of the entry has magic {}",
                header.magic
            )));
        }
        if size < batch::HEADER_LEN || size > bytes.len() - at {
            return Err(bad(format!(
                "the batch at byte {at} of the entry is {size} bytes long; {} are left of the entry",
                bytes.len() - at
            )));
        }
        if header.last_offset_delta < 0 {
            return Err(bad(format!(
                "the batch at byte {at} of the entry has lastOffsetDelta {}",
                header.last_offset_delta
            )));
        }
        let range = at..at + size;
        if header.lacks_max_timestamp() {
            header.max_timestamp = batch::validate(&bytes[range.clone()], usize::MAX)
                .map_err(|e| bad(format!("the batch at byte {at} of the entry: {e}")))?
                .max_timestamp;
        }
        header.base_offset = offset;
        let offsets = i64::from(header.last_offset_delta) + 1;
        offset = offset
            .checked_add(offsets)
            .ok_or_else(|| bad("its offsets pass the largest offset".to_string()))?;
        batches.push(StoredBatch {
            header,
            range,
            offsets,
        });
        at += size;
    }
    if offset - entry.base_offset.0 != entry.record_count
        || batches.len() != entry.batch_count as usize
    {
        return Err(bad(format!(
            "its bytes hold {} offsets in {} batches; the entry says {} in {}",
            offset - entry.base_offset.0,
            batches.len(),
            entry.record_count,
            entry.batch_count
        )));
    }
    Ok(batches)
}

/// The runs an output holds, with their index entries from the sealed object's footer.
fn runs(output: &OutputPlan<'_>, sealed: &SealedObject<Slot>) -> Vec<OutputRun> {
    let mut runs: Vec<OutputRun> = output
        .runs
        .iter()
        .map(|run| OutputRun {
            topic: run.topic,
            partition: run.partition,
            replaces: run
                .pieces
                .iter()
                .map(|p| (Offset(p.entry.end().0 - 1), p.input.object))
                .collect(),
            entries: Vec::new(),
        })
        .collect();
    let entries = sealed
        .batches
        .chunk_by(|(_, a), (_, b)| (a.run, a.entry) == (b.run, b.entry));
    for batches in entries {
        let ((first, slot), (last, _)) = (&batches[0], &batches[batches.len() - 1]);
        runs[slot.run].entries.push(OutputEntry {
            position: first.position,
            length: last.end() - first.position,
            base_offset: Offset(slot.base_offset),
            record_count: batches.iter().map(|(_, s)| s.offsets).sum(),
            max_timestamp: batches
                .iter()
                .map(|(e, _)| e.max_timestamp)
                .max()
                .expect("a chunk holds a batch"),
            batch_count: u32::try_from(batches.len()).expect("an object holds under 2^32 batches"),
        });
    }
    runs
}

/// Uploads a sealed output under a new id.
async fn upload(
    bucket: &Bucket,
    sealed: SealedObject<Slot>,
    runs: Vec<OutputRun>,
) -> Result<JobOutput, JobError> {
    // Named right before its PUT: the commit's age limit and the orphan sweep both
    // measure an object's age from its id.
    let object = ObjectId::new();
    let batch_count =
        u32::try_from(sealed.batches.len()).expect("an object holds under 2^32 batches");
    bucket
        .store
        .put(&bucket.path(object), PutPayload::from_iter(sealed.parts))
        .await
        .map_err(|source| JobError::Upload { object, source })?;
    Ok(JobOutput {
        object,
        key: Bucket::relative_key(object),
        size: sealed.size,
        batch_count,
        runs,
    })
}

#[cfg(test)]
mod tests;
