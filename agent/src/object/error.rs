//! Why an object could not be read. Every variant is a damaged or foreign object:
//! retrying the read of the same bytes will not help.

use weir_metadata::{Partition, TopicId};

use super::format::{ENTRY_LEN, HEADER_LEN, Level, VERSION};
use crate::batch::BatchError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("truncated object: the {what} needs {need} bytes, only {have} are there")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    #[error(
        "the {place} holds \"{}\" where the magic \"WEIR\" belongs: not a Weir object, or not all of one",
        .found.escape_ascii()
    )]
    BadMagic { place: &'static str, found: [u8; 4] },
    #[error("object format version {version} is not supported; this agent reads version {VERSION}")]
    UnsupportedVersion { version: u16 },
    #[error(
        "object flags {flags:#06x} are not supported; this agent knows only bits 0-3 (the compaction level)"
    )]
    UnsupportedFlags { flags: u16 },
    #[error("the header gives compaction level {header}, the trailer level {trailer}")]
    LevelMismatch { header: Level, trailer: Level },
    #[error(
        "the trailer puts the footer at byte {footer_position}, not after the {HEADER_LEN}-byte header"
    )]
    FooterPosition { footer_position: u64 },
    #[error(
        "the trailer gives a footer of {footer_length} bytes, which is not 4 + {ENTRY_LEN} per entry"
    )]
    FooterLength { footer_length: u32 },
    #[error("the trailer describes an object of {trailer} bytes, but it has {actual}")]
    SizeMismatch { trailer: u64, actual: u64 },
    #[error("footer of {have} bytes given, but the trailer says it has {trailer}")]
    FooterSize { have: u64, trailer: u32 },
    #[error("footer CRC-32C is {computed:#010x} but the trailer records {stored:#010x}")]
    FooterCrc { stored: u32, computed: u32 },
    #[error("the footer counts {count} entries but has room for {room}")]
    FooterCount { count: u32, room: usize },
    #[error(
        "footer entry {index} puts its batch at byte {position}; batches lie back to back, so it should start at byte {expected}"
    )]
    EntryMisplaced {
        index: usize,
        position: u64,
        expected: u64,
    },
    #[error(
        "footer entry {index} runs to byte {end}, past the end of the data section at byte {data_end}"
    )]
    EntryOutOfBounds {
        index: usize,
        end: u64,
        data_end: u64,
    },
    #[error(
        "footer entry {index} (topic {topic}, partition {partition}) follows topic {previous_topic}, partition {previous_partition}: partitions must come in ascending order"
    )]
    EntryOrder {
        index: usize,
        topic: TopicId,
        partition: Partition,
        previous_topic: TopicId,
        previous_partition: Partition,
    },
    #[error("footer entry {index} cannot describe a batch: {reason}")]
    EntryInvalid { index: usize, reason: String },
    #[error("the footer's batches end at byte {end} but the data section runs to byte {data_end}")]
    DataGap { end: u64, data_end: u64 },
    #[error("batch at byte {position}: {source}")]
    Batch {
        position: u64,
        #[source]
        source: BatchError,
    },
    #[error(
        "batch at byte {position}: the footer says its {field} is {footer}, its header says {batch}"
    )]
    EntryMismatch {
        position: u64,
        field: &'static str,
        footer: i64,
        batch: i64,
    },
}
