//! The Weir object format: what an agent uploads, holding the batches of many
//! partitions exactly as producers sent them.
//!
//! Objects are self-describing, so compaction and `weir inspect` read one without the
//! index. Compaction's objects have the same layout as a writer's; only the level in
//! their flags differs, and each batch's baseOffset is its real offset (a writer's
//! holds whatever the producer sent). A reader that fetches ranges starts with the fixed-size trailer at the end,
//! which says where the footer is; the footer says where each batch is.
//!
//! # Layout, version 1
//!
//! All integers are big-endian, as in Kafka. Positions are in bytes from the start of
//! the object.
//!
//! ```text
//! header       8 bytes
//!   0   magic            4 bytes  "WEIR"
//!   4   version          u16      1
//!   6   flags            u16      bits 0-3: the compaction level (0 from a writer,
//!                                   n + 1 from a job merging level n); a reader
//!                                   refuses any other bit set
//!
//! data section, from byte 8 to the footer
//!   Kafka RecordBatches (magic 2), byte for byte as received, back to back with no
//!   padding, grouped by partition: partitions in ascending (topic id as 16 bytes,
//!   partition) order, each partition's batches in the order they were produced.
//!
//! footer       4 + 66 × N bytes, at footer position
//!   0   entry count N    u32
//!   4   N entries of 66 bytes, one per batch, in data-section order:
//!     0   topic id         16 bytes (UUID)
//!    16   partition        i32
//!    20   position         u64      where the batch starts in the object
//!    28   length           u32      the batch's length
//!    32   record count     i32      recordsCount of the batch
//!    36   base timestamp   i64      baseTimestamp of the batch
//!    44   max timestamp    i64      maxTimestamp of the batch
//!    52   producer id      i64      producerId of the batch (-1: none)
//!    60   producer epoch   i16      producerEpoch of the batch
//!    62   base sequence    i32      baseSequence of the batch
//!
//! trailer      24 bytes, the last of the object
//!   0   footer position  u64      also where the data section ends
//!   8   footer length    u32
//!  12   footer CRC-32C   u32      over the footer's bytes
//!  16   version          u16      as in the header
//!  18   flags            u16      as in the header, which must agree
//!  20   magic            4 bytes  "WEIR"
//! ```
//!
//! An object of N batches holding D bytes is `8 + D + 4 + 66 × N + 24` bytes long.
//! The footer's entries tile the data section exactly: the first batch starts at
//! byte 8, each next one where the previous ends, and the last ends at the footer.
//! The entry fields copied from a batch's header let the agent commit an object, and
//! compaction plan one, without reading the batches.
//!
//! Integrity: the footer's CRC-32C is in the trailer, and each batch carries Kafka's
//! own CRC-32C over everything from its attributes on. A reader of a whole object also
//! checks each batch's batchLength and magic, and that its header agrees with its
//! entry, so the only bytes no check covers are a batch's baseOffset (which the fetch
//! path overwrites) and partitionLeaderEpoch. The trailer has no checksum: its magic,
//! version and sizes are checked against the object and the footer instead.

mod builder;
mod description;
mod error;
mod format;
mod view;

#[cfg(test)]
mod tests;

pub use builder::{ObjectBuilder, SealedObject};
pub use description::{OffsetLookup, describe};
pub use error::ObjectError;
pub(crate) use format::object_size;
pub use format::{
    ENTRY_LEN, FooterEntry, HEADER_LEN, Level, MAGIC, TRAILER_LEN, Trailer, VERSION, read_footer,
    read_trailer,
};
pub use view::{ObjectView, read_object};
