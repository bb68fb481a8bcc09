//! A produce request's records for one partition through `batch::split`, the check
//! every produced batch passes before the agent stores it, and what `split` accepts
//! through ListOffsets' timestamp search, `first_record_at_or_after`, which decodes
//! (and inflates) the records.
//!
//! The first byte chooses how the rest is used, so that the fuzzer gets past the CRC:
//! - 0: as is, bytes a client sent;
//! - 1: as a batch whose batchLength, magic and CRC-32C are made right, so every other
//!   header field and the (possibly compressed) records are the fuzzer's;
//! - 2: as a batch built around the records, compressed with the codec the next byte
//!   names (so the record decoder sees fuzzed records inside gzip, snappy, lz4 and
//!   zstd), the record count from the byte after, then a correct header.

#![no_main]

// The agent binary's allocator, so that allocations behave as in the agent: one of a
// gigabyte or more (kafka-protocol sizes an array's Vec from the count on the wire) is
// reserved address space, not a failed allocation that aborts.
#[path = "../../src/reserve.rs"]
mod reserve;

#[global_allocator]
static ALLOCATOR: reserve::Reserving = reserve::Reserving;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use libfuzzer_sys::fuzz_target;
use weir_agent::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD, MAGIC};

/// The agent's default limit on a batch's size.
const MAX_BATCH_BYTES: usize = 1024 * 1024 + 12;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        check(&Bytes::new());
        return;
    };
    let records = match mode % 3 {
        0 => Bytes::copy_from_slice(rest),
        1 => resealed(rest),
        _ => match built(rest) {
            Some(batch) => batch,
            None => return,
        },
    };
    check(&records);
});

fn check(records: &Bytes) {
    // Stored bytes are searched whatever they hold: never a panic.
    let _ = batch::first_record_at_or_after(records, 0);
    let Ok(batches) = batch::split(records, MAX_BATCH_BYTES) else {
        return;
    };
    // What split promises of each batch it accepts.
    let mut at = 0;
    for valid in &batches {
        let bytes = &valid.bytes[..];
        let header = valid.header;
        assert_eq!(
            bytes,
            &records[at..at + bytes.len()],
            "batches tile the records"
        );
        at += bytes.len();
        assert_eq!(bytes.len(), header.size());
        assert!(bytes.len() <= MAX_BATCH_BYTES);
        assert_eq!(header.magic, MAGIC);
        assert_eq!(
            crc32c::crc32c(&bytes[21..]),
            header.crc,
            "the CRC-32C matches"
        );
        assert!(header.compression().is_some(), "a codec Kafka defines");
        assert!(header.record_count >= 1);
        assert_eq!(
            i64::from(header.last_offset_delta),
            i64::from(header.record_count) - 1
        );
        let mut parsed = BatchHeader::parse(bytes).expect("a whole header");
        if parsed.lacks_max_timestamp() {
            // split computed maxTimestamp from the records, so they decoded.
            assert!(header.max_timestamp >= header.base_timestamp);
            parsed.max_timestamp = header.max_timestamp;
            let first = batch::first_record_at_or_after(bytes, i64::MIN)
                .expect("records split decoded decode again");
            assert!(
                first.is_some(),
                "a batch of {} records has a first",
                header.record_count
            );
        }
        assert_eq!(parsed, header, "the header as sent");
        if header.compression() == Some(kafka_protocol::records::Compression::None) {
            let room = (bytes.len() - HEADER_LEN) / 7;
            assert!(
                header.record_count as usize <= room,
                "{header:?} in {} bytes",
                bytes.len()
            );
        }
        for timestamp in [
            i64::MIN,
            header.base_timestamp,
            header.max_timestamp,
            i64::MAX,
        ] {
            if let Ok(Some((_, found))) = batch::first_record_at_or_after(bytes, timestamp) {
                assert!(
                    found >= timestamp,
                    "found {found} searching from {timestamp}"
                );
            }
        }
    }
    assert_eq!(at, records.len());
}

/// `bytes` as one batch with its length, magic and CRC made right.
fn resealed(bytes: &[u8]) -> Bytes {
    let mut batch = bytes.to_vec();
    if batch.len() >= HEADER_LEN {
        let length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[16] = MAGIC as u8;
        reseal(&mut batch);
    }
    batch.into()
}

/// A producer-like batch around `rest`'s records: `[codec and flags, record count,
/// records...]`.
fn built(rest: &[u8]) -> Option<Bytes> {
    let (&flags, rest) = rest.split_first()?;
    let (&count, records) = rest.split_first()?;
    let codec = i16::from(flags % 5);
    let log_append_time = flags & 0x08 != 0;
    let unset_max_timestamp = flags & 0x10 != 0;
    let mut payload = BytesMut::new();
    let put = |tmp: &mut BytesMut| {
        tmp.put_slice(records);
        Ok(())
    };
    match codec {
        0 => payload.put_slice(records),
        1 => Gzip::compress(&mut payload, put).ok()?,
        2 => Snappy::compress(&mut payload, put).ok()?,
        3 => Lz4::compress(&mut payload, put).ok()?,
        _ => Zstd::compress(&mut payload, put).ok()?,
    }
    let record_count = i32::from(count);
    let attributes = codec | if log_append_time { 1 << 3 } else { 0 };
    let base_timestamp = 1_700_000_000_000i64;
    let mut batch = BytesMut::with_capacity(HEADER_LEN + payload.len());
    batch.put_i64(0); // baseOffset
    batch.put_i32(i32::try_from(HEADER_LEN - LOG_OVERHEAD + payload.len()).ok()?);
    batch.put_i32(-1); // partitionLeaderEpoch
    batch.put_i8(MAGIC);
    batch.put_u32(0); // crc, below
    batch.put_i16(attributes);
    batch.put_i32(record_count - 1);
    batch.put_i64(base_timestamp);
    batch.put_i64(if unset_max_timestamp {
        -1
    } else {
        base_timestamp + 1_000
    });
    batch.put_i64(-1); // producerId
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(record_count);
    batch.put_slice(&payload);
    let mut batch = batch.to_vec();
    reseal(&mut batch);
    Some(batch.into())
}

fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}
