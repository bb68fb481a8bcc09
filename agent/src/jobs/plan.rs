//! Where a compaction job puts what: its inputs' entries grouped by partition into runs
//! of consecutive offsets, and the runs laid out in (topic, partition, offset) order
//! into outputs of at most `object_bytes`. Nothing here reads the bucket.
//!
//! A run that does not fit the rest of an output goes on in the next one, split
//! between two input entries (never inside one), so each part replaces whole entries
//! and the control plane can swap it on its own.

use std::collections::BTreeMap;

use weir_control_plane_api::data::IndexEntry;
use weir_control_plane_api::jobs::{Job, JobInput};
use weir_metadata::{Partition, TopicId};

use super::JobError;
use crate::batch;
use crate::object::{self, HEADER_LEN};

/// One input entry: the bytes `entry` names in `input`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Piece<'a> {
    pub(super) input: &'a JobInput,
    pub(super) entry: &'a IndexEntry,
}

impl Piece<'_> {
    pub(super) fn bad(
        &self,
        topic: TopicId,
        partition: Partition,
        reason: impl Into<String>,
    ) -> JobError {
        JobError::BadInput {
            object: self.input.object,
            topic,
            partition,
            offset: self.entry.base_offset,
            reason: reason.into(),
        }
    }

    /// Its bytes' range in its input.
    pub(super) fn bytes(&self) -> std::ops::Range<u64> {
        self.entry.position..self.entry.position + self.entry.length
    }
}

/// Consecutive offsets of one partition, whole input entries, in one output.
#[derive(Clone, Debug)]
pub(super) struct RunPart<'a> {
    pub(super) topic: TopicId,
    pub(super) partition: Partition,
    /// In offset order, each starting where the previous ends.
    pub(super) pieces: Vec<Piece<'a>>,
}

/// What one output holds, in the order it holds it.
#[derive(Clone, Debug, Default)]
pub(super) struct OutputPlan<'a> {
    pub(super) runs: Vec<RunPart<'a>>,
    /// Bytes of batches.
    pub(super) data_len: u64,
    pub(super) batch_count: u64,
}

impl OutputPlan<'_> {
    /// The object's size with `data_len` more bytes in `batch_count` more batches.
    fn size_with(&self, data_len: u64, batch_count: u64) -> u64 {
        let batches = usize::try_from(self.batch_count + batch_count).unwrap_or(usize::MAX);
        object::object_size(self.data_len + data_len, batches)
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// Plans a job's outputs: every input entry is in exactly one of them, once.
pub(super) fn plan(job: &Job, object_bytes: u64) -> Result<Vec<OutputPlan<'_>>, JobError> {
    let mut outputs = Vec::new();
    let mut output = OutputPlan::default();
    for ((topic, partition), pieces) in by_partition(job)? {
        for run in runs(&pieces) {
            let mut starts_part = true;
            for piece in run {
                let (length, batches) = (piece.entry.length, u64::from(piece.entry.batch_count));
                if !output.is_empty() && output.size_with(length, batches) > object_bytes {
                    outputs.push(std::mem::take(&mut output));
                    starts_part = true;
                }
                if starts_part {
                    output.runs.push(RunPart {
                        topic,
                        partition,
                        pieces: Vec::new(),
                    });
                    starts_part = false;
                }
                let part = output.runs.last_mut().expect("a part was pushed");
                part.pieces.push(*piece);
                output.data_len += length;
                output.batch_count += batches;
            }
        }
    }
    if !output.is_empty() {
        outputs.push(output);
    }
    Ok(outputs)
}

type Partitions<'a> = BTreeMap<(TopicId, Partition), Vec<Piece<'a>>>;

/// Every input entry by partition (in an object's partition order: topic id bytes,
/// then partition), each partition's in offset order; refuses entries that cannot
/// describe their object's bytes or that overlap.
fn by_partition(job: &Job) -> Result<Partitions<'_>, JobError> {
    let mut partitions: Partitions<'_> = BTreeMap::new();
    for input in &job.inputs {
        for e in &input.entries {
            let piece = Piece {
                input,
                entry: &e.entry,
            };
            check(&piece, e.topic, e.partition)?;
            partitions
                .entry((e.topic, e.partition))
                .or_default()
                .push(piece);
        }
    }
    for ((topic, partition), pieces) in &mut partitions {
        pieces.sort_by_key(|p| p.entry.base_offset);
        for pair in pieces.windows(2) {
            let (previous, piece) = (&pair[0], &pair[1]);
            if piece.entry.base_offset < previous.entry.end() {
                return Err(piece.bad(
                    *topic,
                    *partition,
                    format!(
                        "overlaps the entry of object {} that runs to offset {}",
                        previous.input.object,
                        previous.entry.end()
                    ),
                ));
            }
        }
    }
    Ok(partitions)
}

/// Checks what an entry says of its object before anything is read.
fn check(piece: &Piece<'_>, topic: TopicId, partition: Partition) -> Result<(), JobError> {
    let entry = piece.entry;
    let reason = if entry.object != piece.input.object {
        format!("the entry names object {}", entry.object)
    } else if entry.record_count < 1 || entry.batch_count < 1 {
        format!(
            "the entry holds {} records in {} batches",
            entry.record_count, entry.batch_count
        )
    } else if entry.length < (batch::HEADER_LEN as u64) * u64::from(entry.batch_count) {
        format!(
            "{} bytes cannot hold {} batches",
            entry.length, entry.batch_count
        )
    } else if entry.position < HEADER_LEN as u64
        || entry
            .position
            .checked_add(entry.length)
            .is_none_or(|end| end > piece.input.size)
    {
        format!(
            "bytes {}..+{} are not in the data of an object of {} bytes",
            entry.position, entry.length, piece.input.size
        )
    } else {
        return Ok(());
    };
    Err(piece.bad(topic, partition, reason))
}

/// A partition's pieces (in offset order) cut where offsets are not consecutive.
fn runs<'p, 'a>(pieces: &'p [Piece<'a>]) -> impl Iterator<Item = &'p [Piece<'a>]> {
    pieces.chunk_by(|a, b| a.entry.end() == b.entry.base_offset)
}
