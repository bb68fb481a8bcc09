//! Reading a whole object: what compaction and `weir inspect` do, with every check.

use std::fmt;

use super::ObjectError;
use super::format::{self, FooterEntry, Level, Trailer};
use crate::batch::{self, BatchHeader};

/// A whole object whose header, footer and batches all checked out.
#[derive(Clone)]
pub struct ObjectView<'a> {
    bytes: &'a [u8],
    trailer: Trailer,
    entries: Vec<FooterEntry>,
}

impl<'a> ObjectView<'a> {
    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }

    /// Its compaction level (header and trailer agree on it).
    pub fn level(&self) -> Level {
        self.trailer.level
    }

    /// The footer's entries, in the object's order.
    pub fn entries(&self) -> &[FooterEntry] {
        &self.entries
    }

    /// Each footer entry with its batch's bytes, in the object's order.
    pub fn batches(&self) -> impl Iterator<Item = (&FooterEntry, &'a [u8])> + '_ {
        let bytes = self.bytes;
        // read_object checked that every entry lies within the data section.
        self.entries.iter().map(move |entry| {
            let range = entry.range();
            (entry, &bytes[range.start as usize..range.end as usize])
        })
    }
}

/// Sizes only: batch bytes stay out of logs.
impl fmt::Debug for ObjectView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectView")
            .field("size", &self.size())
            .field("trailer", &self.trailer)
            .field("batches", &self.entries.len())
            .finish()
    }
}

/// Reads a whole object, checking its header, trailer and footer, and that each batch
/// is a valid RecordBatch that agrees with its footer entry.
pub fn read_object(bytes: &[u8]) -> Result<ObjectView<'_>, ObjectError> {
    let level = format::read_header(bytes)?;
    let trailer = format::read_trailer(bytes)?;
    if level != trailer.level {
        return Err(ObjectError::LevelMismatch {
            header: level,
            trailer: trailer.level,
        });
    }
    if trailer.object_size() != bytes.len() as u64 {
        return Err(ObjectError::SizeMismatch {
            trailer: trailer.object_size(),
            actual: bytes.len() as u64,
        });
    }
    let footer_range = trailer.footer_range();
    let footer = &bytes[footer_range.start as usize..footer_range.end as usize];
    let entries = format::read_footer(footer, &trailer)?;
    let view = ObjectView {
        bytes,
        trailer,
        entries,
    };
    for (entry, batch) in view.batches() {
        check_batch(entry, batch)?;
    }
    Ok(view)
}

/// Checks a batch as the agent checked it on produce, and that the footer copied its
/// header faithfully.
fn check_batch(entry: &FooterEntry, batch: &[u8]) -> Result<(), ObjectError> {
    let header = batch::validate(batch, usize::MAX).map_err(|source| ObjectError::Batch {
        position: entry.position,
        source,
    })?;
    let mismatch = copied_fields(entry, &header).find(|(_, footer, batch)| footer != batch);
    if let Some((field, footer, batch)) = mismatch {
        return Err(ObjectError::EntryMismatch {
            position: entry.position,
            field,
            footer,
            batch,
        });
    }
    Ok(())
}

/// The fields a footer entry copies from its batch's header, as (name, footer, header).
fn copied_fields(
    entry: &FooterEntry,
    header: &BatchHeader,
) -> impl Iterator<Item = (&'static str, i64, i64)> {
    [
        ("length", i64::from(entry.length), header.size() as i64),
        (
            "record count",
            entry.record_count.into(),
            header.record_count.into(),
        ),
        (
            "base timestamp",
            entry.base_timestamp,
            header.base_timestamp,
        ),
        (
            "max timestamp",
            entry.max_timestamp,
            // Computed from the records when the producer left it unset.
            if header.lacks_max_timestamp() {
                entry.max_timestamp
            } else {
                header.max_timestamp
            },
        ),
        ("producer id", entry.producer_id, header.producer_id),
        (
            "producer epoch",
            entry.producer_epoch.into(),
            header.producer_epoch.into(),
        ),
        (
            "base sequence",
            entry.base_sequence.into(),
            header.base_sequence.into(),
        ),
    ]
    .into_iter()
}
