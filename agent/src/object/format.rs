//! The fixed-size pieces of an object — header, footer entries, trailer — and the
//! checks a reader makes on them. The module doc of [`crate::object`] gives the layout.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, BufMut, BytesMut};
use uuid::Uuid;
use weir_metadata::{Partition, TopicId};

use super::ObjectError;
use crate::batch::{self, BatchHeader};

/// The first and last four bytes of every object.
pub const MAGIC: [u8; 4] = *b"WEIR";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Length of the header: magic, version, flags.
pub const HEADER_LEN: usize = 8;
/// Length of one footer entry.
pub const ENTRY_LEN: usize = 66;
/// Length of the trailer, the last bytes of an object: a reader fetches these first.
pub const TRAILER_LEN: usize = 24;

/// The bits of version 1's flags that hold the object's [`Level`]. A reader refuses
/// any other bit set, since a flag it does not know may change what the bytes mean.
const LEVEL_BITS: u16 = 0b1111;
/// The footer's entry count, before the entries.
const COUNT_LEN: usize = 4;

/// An object's compaction level, bits 0-3 of its flags: 0 for what an agent's writer
/// made, `n + 1` for what a compaction job made of objects of level `n`
/// (docs/lifecycle.md). Readers treat every level alike; it tells people and the
/// planner where an object came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

impl Level {
    /// What an agent's writer makes.
    pub const WRITER: Level = Level(0);
    /// The highest level the flags can hold.
    pub const MAX: Level = Level(LEVEL_BITS as u8);

    /// `level`, if the flags can hold it.
    pub fn new(level: u32) -> Option<Level> {
        u8::try_from(level)
            .ok()
            .filter(|&l| l <= Self::MAX.0)
            .map(Level)
    }

    pub fn get(self) -> u8 {
        self.0
    }

    fn flags(self) -> u16 {
        u16::from(self.0)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The footer's description of one batch in the data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FooterEntry {
    pub topic: TopicId,
    pub partition: Partition,
    /// Where the batch starts, in bytes from the start of the object.
    pub position: u64,
    /// The batch's length in bytes.
    pub length: u32,
    pub record_count: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl FooterEntry {
    /// The entry for a batch of `length` bytes with `header`, placed at `position`.
    pub(crate) fn new(
        topic: TopicId,
        partition: Partition,
        position: u64,
        length: u32,
        header: &BatchHeader,
    ) -> FooterEntry {
        FooterEntry {
            topic,
            partition,
            position,
            length,
            record_count: header.record_count,
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        }
    }

    /// The batch's bytes within the object: what a reader fetches.
    pub fn range(&self) -> Range<u64> {
        self.position..self.end()
    }

    /// Where the batch ends (saturating: positions may come from a corrupt footer).
    pub fn end(&self) -> u64 {
        self.position.saturating_add(u64::from(self.length))
    }

    /// The order of partitions in an object: by topic id bytes, then partition.
    pub(crate) fn partition_key(&self) -> (TopicId, Partition) {
        (self.topic, self.partition)
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_slice(self.topic.as_bytes());
        out.put_i32(self.partition.0);
        out.put_u64(self.position);
        out.put_u32(self.length);
        out.put_i32(self.record_count);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
    }

    fn read(entry: &[u8; ENTRY_LEN]) -> FooterEntry {
        let mut b: &[u8] = entry;
        let mut topic = [0; 16];
        b.copy_to_slice(&mut topic);
        FooterEntry {
            topic: TopicId(Uuid::from_bytes(topic)),
            partition: Partition(b.get_i32()),
            position: b.get_u64(),
            length: b.get_u32(),
            record_count: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
        }
    }
}

/// What the last [`TRAILER_LEN`] bytes of an object say: where its footer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Where the footer starts, which is also where the data section ends.
    pub footer_position: u64,
    pub footer_length: u32,
    /// CRC-32C of the footer's bytes.
    pub footer_crc: u32,
    /// The level its flags give, which the header's must match.
    pub level: Level,
}

impl Trailer {
    /// The footer's bytes within the object: what a reader fetches after the trailer.
    pub fn footer_range(&self) -> Range<u64> {
        let end = self
            .footer_position
            .saturating_add(u64::from(self.footer_length));
        self.footer_position..end
    }

    /// The size of the object this trailer ends.
    pub fn object_size(&self) -> u64 {
        self.footer_range().end.saturating_add(TRAILER_LEN as u64)
    }
}

/// The size of an object holding `batch_count` batches of `data_len` bytes in all.
pub(crate) fn object_size(data_len: u64, batch_count: usize) -> u64 {
    (HEADER_LEN + COUNT_LEN + batch_count * ENTRY_LEN + TRAILER_LEN) as u64 + data_len
}

pub(crate) fn write_header(level: Level, out: &mut BytesMut) {
    out.put_slice(&MAGIC);
    out.put_u16(VERSION);
    out.put_u16(level.flags());
}

/// Writes the footer listing `entries`, then the trailer of an object of `level`; the
/// data section ends at `footer_position`.
pub(crate) fn write_footer<'a>(
    entries: impl ExactSizeIterator<Item = &'a FooterEntry>,
    footer_position: u64,
    level: Level,
    out: &mut BytesMut,
) {
    let start = out.len();
    let count = u32::try_from(entries.len()).expect("an object holds fewer than 2^32 batches");
    out.put_u32(count);
    for entry in entries {
        entry.write(out);
    }
    let footer = &out[start..];
    let footer_length = u32::try_from(footer.len()).expect("a footer is smaller than 4 GiB");
    let footer_crc = crc32c::crc32c(footer);
    out.put_u64(footer_position);
    out.put_u32(footer_length);
    out.put_u32(footer_crc);
    out.put_u16(VERSION);
    out.put_u16(level.flags());
    out.put_slice(&MAGIC);
}

/// Checks the header at the start of a whole object and returns the level it gives.
pub(crate) fn read_header(object: &[u8]) -> Result<Level, ObjectError> {
    let Some(header) = object.first_chunk::<HEADER_LEN>() else {
        return Err(ObjectError::Truncated {
            what: "header",
            need: HEADER_LEN as u64,
            have: object.len() as u64,
        });
    };
    let mut b: &[u8] = header;
    let magic = b.get_u32().to_be_bytes();
    check_magic("header", magic)?;
    check_version(b.get_u16(), b.get_u16())
}

/// Reads the trailer from the last [`TRAILER_LEN`] bytes of `tail` (the end of an
/// object, or all of it) and checks what it can without the rest of the object.
pub fn read_trailer(tail: &[u8]) -> Result<Trailer, ObjectError> {
    let Some(trailer) = tail.last_chunk::<TRAILER_LEN>() else {
        return Err(ObjectError::Truncated {
            what: "trailer",
            need: TRAILER_LEN as u64,
            have: tail.len() as u64,
        });
    };
    let mut b: &[u8] = trailer;
    let footer_position = b.get_u64();
    let footer_length = b.get_u32();
    let footer_crc = b.get_u32();
    let version = b.get_u16();
    let flags = b.get_u16();
    check_magic("trailer", b.get_u32().to_be_bytes())?;
    let level = check_version(version, flags)?;
    if footer_position < HEADER_LEN as u64 {
        return Err(ObjectError::FooterPosition { footer_position });
    }
    let entries_len = (footer_length as usize).checked_sub(COUNT_LEN);
    if entries_len.is_none_or(|len| len % ENTRY_LEN != 0) {
        return Err(ObjectError::FooterLength { footer_length });
    }
    if footer_position
        .checked_add(u64::from(footer_length) + TRAILER_LEN as u64)
        .is_none()
    {
        return Err(ObjectError::FooterPosition { footer_position });
    }
    Ok(Trailer {
        footer_position,
        footer_length,
        footer_crc,
        level,
    })
}

/// Reads the footer's entries, checking its CRC and that the entries tile the data
/// section (from the header to the footer) in (topic, partition) groups.
pub fn read_footer(footer: &[u8], trailer: &Trailer) -> Result<Vec<FooterEntry>, ObjectError> {
    if footer.len() != trailer.footer_length as usize {
        return Err(ObjectError::FooterSize {
            have: footer.len() as u64,
            trailer: trailer.footer_length,
        });
    }
    let computed = crc32c::crc32c(footer);
    if computed != trailer.footer_crc {
        return Err(ObjectError::FooterCrc {
            stored: trailer.footer_crc,
            computed,
        });
    }
    let Some((count, entries)) = footer.split_first_chunk::<COUNT_LEN>() else {
        return Err(ObjectError::FooterLength {
            footer_length: trailer.footer_length,
        });
    };
    let count = u32::from_be_bytes(*count);
    let (entries, _) = entries.as_chunks::<ENTRY_LEN>();
    if count as usize != entries.len() {
        return Err(ObjectError::FooterCount {
            count,
            room: entries.len(),
        });
    }
    let entries: Vec<FooterEntry> = entries.iter().map(FooterEntry::read).collect();
    check_layout(&entries, trailer.footer_position)?;
    Ok(entries)
}

/// Checks that the batches lie back to back from the header to `data_end`, grouped
/// by partition in ascending (topic, partition) order.
fn check_layout(entries: &[FooterEntry], data_end: u64) -> Result<(), ObjectError> {
    let mut expected = HEADER_LEN as u64;
    let mut previous: Option<&FooterEntry> = None;
    for (index, entry) in entries.iter().enumerate() {
        if entry.position != expected {
            return Err(ObjectError::EntryMisplaced {
                index,
                position: entry.position,
                expected,
            });
        }
        if entry.end() > data_end {
            return Err(ObjectError::EntryOutOfBounds {
                index,
                end: entry.end(),
                data_end,
            });
        }
        check_entry(index, entry)?;
        if let Some(previous) = previous.filter(|p| p.partition_key() > entry.partition_key()) {
            return Err(ObjectError::EntryOrder {
                index,
                topic: entry.topic,
                partition: entry.partition,
                previous_topic: previous.topic,
                previous_partition: previous.partition,
            });
        }
        previous = Some(entry);
        expected = entry.end();
    }
    if expected != data_end {
        return Err(ObjectError::DataGap {
            end: expected,
            data_end,
        });
    }
    Ok(())
}

/// Checks an entry's own fields: what no batch could have is refused before reading
/// the batch.
fn check_entry(index: usize, entry: &FooterEntry) -> Result<(), ObjectError> {
    let reason = if (entry.length as usize) < batch::HEADER_LEN {
        format!(
            "length {} is shorter than a {}-byte batch header",
            entry.length,
            batch::HEADER_LEN
        )
    } else if entry.record_count < 1 {
        format!("record count is {}", entry.record_count)
    } else {
        return Ok(());
    };
    Err(ObjectError::EntryInvalid { index, reason })
}

fn check_magic(place: &'static str, found: [u8; 4]) -> Result<(), ObjectError> {
    if found != MAGIC {
        return Err(ObjectError::BadMagic { place, found });
    }
    Ok(())
}

/// Checks the version and flags and returns the level the flags give.
fn check_version(version: u16, flags: u16) -> Result<Level, ObjectError> {
    if version != VERSION {
        return Err(ObjectError::UnsupportedVersion { version });
    }
    if flags & !LEVEL_BITS != 0 {
        return Err(ObjectError::UnsupportedFlags { flags });
    }
    Ok(Level((flags & LEVEL_BITS) as u8))
}
