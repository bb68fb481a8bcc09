//! The open object: batches collect here until the agent seals and uploads them.

use std::collections::BTreeMap;
use std::fmt;

use bytes::{Bytes, BytesMut};
use weir_metadata::{Partition, TopicId};

use super::format::{self, FooterEntry, HEADER_LEN, Level};
use crate::batch::{BatchHeader, ValidBatch};

/// Collects validated batches for one object. `T` is the caller's handle to whoever
/// waits for each batch's offset (a producer's pending response); it comes back with
/// the batch's footer entry when the object is sealed.
pub struct ObjectBuilder<T> {
    level: Level,
    /// Batches by partition, each partition's in push order, with the header the
    /// footer copies. The map's order is the object's partition order, so equal inputs
    /// give equal objects.
    partitions: BTreeMap<(TopicId, Partition), Vec<Pushed<T>>>,
    batch_count: usize,
    data_len: u64,
}

/// A pushed batch: the header its footer entry copies, its bytes and its tag.
type Pushed<T> = (BatchHeader, Bytes, T);

/// An object ready to upload, and what it holds.
pub struct SealedObject<T> {
    /// The header, each batch's bytes (the very `Bytes` pushed, not copies), then the
    /// footer and trailer. Concatenated, they are the object.
    pub parts: Vec<Bytes>,
    /// The object's size in bytes: the sum of the parts' lengths.
    pub size: u64,
    /// Each batch's footer entry and tag, in the object's order.
    pub batches: Vec<(FooterEntry, T)>,
}

impl<T> ObjectBuilder<T> {
    /// An empty object of `level`: writers make [`Level::WRITER`] objects.
    pub fn new(level: Level) -> Self {
        ObjectBuilder {
            level,
            partitions: BTreeMap::new(),
            batch_count: 0,
            data_len: 0,
        }
    }

    /// Adds a batch of `partition` of `topic`. Its bytes are kept, not copied.
    pub fn push(&mut self, topic: TopicId, partition: Partition, batch: ValidBatch, tag: T) {
        self.push_stored(topic, partition, batch.header, batch.bytes, tag);
    }

    /// Adds a batch read back from an object, which was checked when it was produced:
    /// compaction copies batches without walking their records again. `header` is what
    /// the footer copies: the batch's own, except a max timestamp the producer left
    /// unset, which the caller computes as [`crate::batch::split`] does.
    pub(crate) fn push_stored(
        &mut self,
        topic: TopicId,
        partition: Partition,
        header: BatchHeader,
        bytes: Bytes,
        tag: T,
    ) {
        self.batch_count += 1;
        self.data_len += bytes.len() as u64;
        self.partitions
            .entry((topic, partition))
            .or_default()
            .push((header, bytes, tag));
    }

    /// The size the object would have if sealed now, header, footer and trailer
    /// included: what the agent compares with its seal threshold.
    pub fn size(&self) -> u64 {
        format::object_size(self.data_len, self.batch_count)
    }

    pub fn batch_count(&self) -> usize {
        self.batch_count
    }

    pub fn is_empty(&self) -> bool {
        self.batch_count == 0
    }

    /// Lays the batches out grouped by partition, in ascending (topic id, partition)
    /// order and each partition's batches in push order, and writes the footer.
    pub fn finish(self) -> SealedObject<T> {
        let mut parts = Vec::with_capacity(self.batch_count + 2);
        let mut batches = Vec::with_capacity(self.batch_count);
        let mut header = BytesMut::with_capacity(HEADER_LEN);
        format::write_header(self.level, &mut header);
        parts.push(header.freeze());

        let mut position = HEADER_LEN as u64;
        for ((topic, partition), pushed) in self.partitions {
            for (batch_header, bytes, tag) in pushed {
                let length = u32::try_from(bytes.len())
                    .expect("a RecordBatch is at most i32::MAX + 12 bytes");
                let entry = FooterEntry::new(topic, partition, position, length, &batch_header);
                position = entry.end();
                parts.push(bytes);
                batches.push((entry, tag));
            }
        }

        let mut footer = BytesMut::new();
        format::write_footer(
            batches.iter().map(|(entry, _)| entry),
            position,
            self.level,
            &mut footer,
        );
        let size = position + footer.len() as u64;
        parts.push(footer.freeze());
        SealedObject {
            parts,
            size,
            batches,
        }
    }
}

/// An empty writer's object.
impl<T> Default for ObjectBuilder<T> {
    fn default() -> Self {
        Self::new(Level::WRITER)
    }
}

/// Sizes only: batch bytes stay out of logs, and tags need not be `Debug`.
impl<T> fmt::Debug for ObjectBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBuilder")
            .field("level", &self.level)
            .field("partitions", &self.partitions.len())
            .field("batch_count", &self.batch_count)
            .field("size", &self.size())
            .finish()
    }
}

/// Sizes only: batch bytes stay out of logs, and tags need not be `Debug`.
impl<T> fmt::Debug for SealedObject<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedObject")
            .field("size", &self.size)
            .field("parts", &self.parts.len())
            .field("batches", &self.batches.len())
            .finish()
    }
}
