//! The text `weir inspect` prints for an object: a summary, then one table line per
//! partition and one per batch.

use super::format::{FooterEntry, TRAILER_LEN, VERSION};
use super::{ObjectError, read_object};

const PARTITION_COLUMNS: [&str; 7] = [
    "topic",
    "partition",
    "batches",
    "records",
    "bytes",
    "base timestamp",
    "max timestamp",
];

const BATCH_COLUMNS: [&str; 10] = [
    "topic",
    "partition",
    "position",
    "length",
    "records",
    "base timestamp",
    "max timestamp",
    "producer id",
    "epoch",
    "sequence",
];

/// Looks up the base offset the index gave a batch, if it knows the batch.
pub type OffsetLookup<'a> = &'a dyn Fn(&FooterEntry) -> Option<i64>;

/// Describes a whole object for people, after checking it as [`read_object`] does.
/// `offsets`, when given, looks up a batch's base offset (from the index); batches it
/// knows nothing of show `-`.
pub fn describe(bytes: &[u8], offsets: Option<OffsetLookup<'_>>) -> Result<String, ObjectError> {
    let view = read_object(bytes)?;
    let entries = view.entries();
    let partitions: Vec<&[FooterEntry]> = entries
        .chunk_by(|a, b| a.partition_key() == b.partition_key())
        .collect();
    let records: i64 = entries.iter().map(|e| i64::from(e.record_count)).sum();
    let footer = view.trailer().footer_range();

    let mut out = format!(
        "Weir object, format version {VERSION}, compaction level {level}, {size} bytes\n\
         {batches} batches, {records} records, {partitions} partitions\n\
         data bytes {data_start}..{data_end}, footer bytes {data_end}..{footer_end} \
         (CRC-32C {crc:#010x}), trailer {TRAILER_LEN} bytes\n\
         timestamps are Unix epoch milliseconds\n",
        level = view.level(),
        size = view.size(),
        batches = entries.len(),
        partitions = partitions.len(),
        data_start = super::HEADER_LEN,
        data_end = footer.start,
        footer_end = footer.end,
        crc = view.trailer().footer_crc,
    );
    out.push_str("\npartitions\n");
    let rows: Vec<Vec<String>> = partitions.iter().map(|p| partition_row(p)).collect();
    out.push_str(&table(&PARTITION_COLUMNS, &rows));

    out.push_str("\nbatches\n");
    let mut columns = BATCH_COLUMNS.to_vec();
    if offsets.is_some() {
        columns.push("offset");
    }
    let rows: Vec<Vec<String>> = entries.iter().map(|e| batch_row(e, offsets)).collect();
    out.push_str(&table(&columns, &rows));
    Ok(out)
}

/// One partition's batches, which an object keeps together.
fn partition_row(batches: &[FooterEntry]) -> Vec<String> {
    let first = &batches[0];
    let records: i64 = batches.iter().map(|b| i64::from(b.record_count)).sum();
    let bytes: u64 = batches.iter().map(|b| u64::from(b.length)).sum();
    let base_timestamp = batches.iter().map(|b| b.base_timestamp).min();
    let max_timestamp = batches.iter().map(|b| b.max_timestamp).max();
    vec![
        first.topic.to_string(),
        first.partition.to_string(),
        batches.len().to_string(),
        records.to_string(),
        bytes.to_string(),
        base_timestamp.unwrap_or_default().to_string(),
        max_timestamp.unwrap_or_default().to_string(),
    ]
}

fn batch_row(entry: &FooterEntry, offsets: Option<OffsetLookup<'_>>) -> Vec<String> {
    let mut row = vec![
        entry.topic.to_string(),
        entry.partition.to_string(),
        entry.position.to_string(),
        entry.length.to_string(),
        entry.record_count.to_string(),
        entry.base_timestamp.to_string(),
        entry.max_timestamp.to_string(),
        entry.producer_id.to_string(),
        entry.producer_epoch.to_string(),
        entry.base_sequence.to_string(),
    ];
    if let Some(offsets) = offsets {
        row.push(offsets(entry).map_or_else(|| "-".to_string(), |o| o.to_string()));
    }
    row
}

/// Lays out rows under their titles, each column as wide as its widest cell: the
/// first column (the topic) left-aligned, the numbers right-aligned.
fn table(titles: &[&str], rows: &[Vec<String>]) -> String {
    let titles: Vec<String> = titles.iter().map(|t| t.to_string()).collect();
    let mut widths: Vec<usize> = titles.iter().map(String::len).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    std::iter::once(&titles)
        .chain(rows)
        .map(|row| line(row, &widths))
        .collect()
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::from(" ");
    for (column, (cell, &width)) in cells.iter().zip(widths).enumerate() {
        if column == 0 {
            line.push_str(&format!(" {cell:<width$}"));
        } else {
            line.push_str(&format!("  {cell:>width$}"));
        }
    }
    let end = line.trim_end().len();
    line.truncate(end);
    line.push('\n');
    line
}
