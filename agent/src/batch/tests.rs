//! The batch checks against what Kafka's broker accepts and refuses.

use kafka_protocol::records::RecordBatchDecoder;
use proptest::prelude::*;

use super::testing::{COMPRESSIONS, Spec, encode, reseal, specs};
use super::*;

const MAX: usize = 1 << 20;

fn concat(batches: &[Bytes]) -> Bytes {
    batches.concat().into()
}

fn split_err(bytes: impl Into<Bytes>) -> BatchError {
    split(&bytes.into(), MAX).expect_err("the bytes should be refused")
}

/// Edits a batch with `edit`, then recomputes its CRC so that only the edit is wrong.
fn edited(spec: &Spec, edit: impl FnOnce(&mut [u8])) -> Bytes {
    let mut batch = encode(spec).to_vec();
    edit(&mut batch);
    reseal(&mut batch);
    batch.into()
}

/// `err` answers Kafka error `code` and its message names every one of `words`.
fn assert_error_mentions(err: BatchError, code: i16, words: &[&str]) {
    assert_eq!(err.kafka_error_code(), code, "{err}");
    let message = err.to_string();
    for word in words {
        assert!(
            message.contains(word),
            "{message:?} should mention {word:?}"
        );
    }
}

fn assert_corrupt_mentions(err: BatchError, words: &[&str]) {
    assert_error_mentions(err, 2, words);
}

#[test]
fn every_compression_codec_is_accepted_with_its_header_read() {
    for compression in COMPRESSIONS {
        let spec = Spec::plain(&[1_000, 3_000, 2_000]).compressed(compression);
        let bytes = encode(&spec);
        let batches = split(&bytes, MAX).expect("a producer's batch is valid");
        assert_eq!(batches.len(), 1);
        let header = batches[0].header;
        assert_eq!(header.compression(), Some(compression));
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 3_000);
        assert_eq!(header.size(), bytes.len());
        assert!(!header.is_transactional() && !header.is_control());
    }
}

/// A batch as Sarama before 1.27 sends it: maxTimestamp left at -1.
fn without_max_timestamp(spec: &Spec) -> Vec<u8> {
    let mut batch = encode(spec).to_vec();
    batch[35..43].copy_from_slice(&(-1i64).to_be_bytes());
    reseal(&mut batch);
    batch
}

#[test]
fn an_unset_max_timestamp_is_computed_from_the_records() {
    for compression in COMPRESSIONS {
        let spec = Spec::plain(&[1_000, 3_000, 2_000]).compressed(compression);
        let batch = Bytes::from(without_max_timestamp(&spec));
        let header = split(&batch, MAX).expect("still a valid batch")[0].header;
        assert_eq!(header.max_timestamp, 3_000, "{compression:?}");
    }
}

#[test]
fn a_timestamp_lookup_finds_records_in_a_batch_without_max_timestamp() {
    let mut batches = without_max_timestamp(&Spec::plain(&[1_000, 3_000, 2_000]));
    let second = batches.len();
    batches.extend_from_slice(&encode(&Spec::plain(&[4_000])));
    // The second batch's records follow the first's three.
    batches[second..second + 8].copy_from_slice(&3i64.to_be_bytes());
    assert_eq!(
        first_record_at_or_after(&batches, 2_500).expect("decodes"),
        Some((1, 3_000)),
        "the record at 3,000 in the first batch, not the next batch"
    );
}

#[test]
fn a_flipped_record_byte_is_a_crc_error() {
    let mut batch = encode(&Spec::plain(&[5, 6])).to_vec();
    let last = batch.len() - 1;
    batch[last] ^= 0x40;
    assert_corrupt_mentions(split_err(batch), &["CRC-32C"]);
}

#[test]
fn a_batch_length_claiming_more_bytes_than_sent_is_corrupt() {
    let mut batch = encode(&Spec::plain(&[5])).to_vec();
    let length = i32::from_be_bytes(batch[8..12].try_into().expect("4 bytes")) + 1;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let err = split_err(batch.clone());
    assert_corrupt_mentions(err, &[&length.to_string(), &(batch.len() + 1).to_string()]);
}

#[test]
fn a_batch_length_claiming_fewer_bytes_than_sent_is_corrupt() {
    let mut batch = encode(&Spec::plain(&[5, 6, 7])).to_vec();
    let length = i32::from_be_bytes(batch[8..12].try_into().expect("4 bytes")) - 3;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    // The batch now ends early: its CRC no longer matches.
    assert_corrupt_mentions(split_err(batch), &["CRC-32C"]);
}

#[test]
fn a_batch_length_below_a_header_is_corrupt() {
    let mut batch = encode(&Spec::plain(&[5])).to_vec();
    batch[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert_corrupt_mentions(split_err(batch), &["48", "49"]);
}

#[test]
fn every_truncation_of_a_batch_is_corrupt() {
    let batch = encode(&Spec::plain(&[5, 6]));
    for len in 1..batch.len() {
        let err = split_err(batch.slice(..len));
        assert_eq!(err.kafka_error_code(), 2, "truncated to {len} bytes: {err}");
    }
}

#[test]
fn a_partial_batch_after_a_whole_one_is_corrupt() {
    let batch = encode(&Spec::plain(&[5]));
    let records = concat(&[batch.clone(), batch.slice(..30)]);
    assert_corrupt_mentions(split_err(records), &["30 bytes left", "61"]);
}

#[test]
fn old_message_formats_are_invalid_records() {
    // A magic-1 message as a Kafka 0.10 client sends it: offset, size, crc, magic,
    // attributes, timestamp, null key, 5-byte value.
    let mut message = Vec::new();
    message.put_i64(0);
    message.put_i32(27);
    message.put_u32(0);
    message.put_i8(1);
    message.put_i8(0);
    message.put_i64(1_700_000_000_000);
    message.put_i32(-1);
    message.put_i32(5);
    message.put_slice(b"hello");
    let err = split_err(message.clone());
    assert_eq!(err, BatchError::UnsupportedMagic(1));
    assert_eq!(
        err.kafka_error_code(),
        87,
        "INVALID_RECORD, as Kafka answers"
    );
    assert!(err.to_string().contains("magic 1"), "{err}");

    message[MAGIC_AT] = 0;
    assert_eq!(split_err(message), BatchError::UnsupportedMagic(0));
}

#[test]
fn an_unknown_magic_is_corrupt() {
    let mut batch = encode(&Spec::plain(&[5])).to_vec();
    batch[MAGIC_AT] = 3;
    assert_corrupt_mentions(split_err(batch), &["magic is 3"]);
}

#[test]
fn a_batch_without_records_is_invalid() {
    let batch = edited(&Spec::plain(&[5]), |b| {
        b[57..61].copy_from_slice(&0i32.to_be_bytes());
        b[23..27].copy_from_slice(&(-1i32).to_be_bytes());
    });
    let err = split_err(batch);
    assert_eq!(err.kafka_error_code(), 87);
    assert!(err.to_string().contains("recordsCount is 0"), "{err}");
}

#[test]
fn a_last_offset_delta_that_disagrees_with_the_record_count_is_invalid() {
    let batch = edited(&Spec::plain(&[5, 6]), |b| {
        b[23..27].copy_from_slice(&5i32.to_be_bytes());
    });
    let err = split_err(batch);
    assert_eq!(err.kafka_error_code(), 87);
    let message = err.to_string();
    assert!(
        message.contains("lastOffsetDelta is 5 but recordsCount is 2"),
        "{message}"
    );
}

#[test]
fn a_record_count_the_bytes_cannot_hold_is_invalid() {
    let batch = edited(&Spec::plain(&[5]), |b| {
        b[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
        b[23..27].copy_from_slice(&999_999i32.to_be_bytes());
    });
    let err = split_err(batch);
    assert_eq!(err.kafka_error_code(), 87);
    assert!(err.to_string().contains("recordsCount is 1000000"), "{err}");
}

#[test]
fn an_unknown_compression_codec_is_corrupt() {
    let batch = edited(&Spec::plain(&[5]), |b| {
        b[21..23].copy_from_slice(&5i16.to_be_bytes());
    });
    assert_corrupt_mentions(split_err(batch), &["codec 5"]);
}

#[test]
fn a_batch_over_the_limit_is_too_large() {
    let batch = encode(&Spec::plain(&[5, 6, 7]));
    let max = batch.len() - 1;
    let err = split(&batch, max).expect_err("over the limit");
    assert_eq!(
        err,
        BatchError::TooLarge {
            size: batch.len(),
            max
        }
    );
    assert_eq!(err.kafka_error_code(), 10);
    let message = err.to_string();
    assert!(message.contains(&batch.len().to_string()) && message.contains(&max.to_string()));
    assert!(
        split(&batch, batch.len()).is_ok(),
        "a batch at the limit is fine"
    );
}

#[test]
fn empty_records_are_invalid() {
    assert_eq!(split_err(Bytes::new()).kafka_error_code(), 87);
}

#[test]
fn flags_in_the_attributes_are_reported() {
    let batch = edited(&Spec::plain(&[5]), |b| {
        b[21..23].copy_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    });
    let header = split(&batch, MAX).expect("valid")[0].header;
    assert!(header.is_transactional());
    assert!(header.is_control());
    assert_eq!(header.timestamp_type(), TimestampType::Creation);
}

#[test]
fn with_base_offset_gives_consumers_the_assigned_offsets() {
    let batch = encode(&Spec::plain(&[5, 6, 7]).compressed(Compression::Lz4));
    let mut out = BytesMut::new();
    with_base_offset(&batch, 1_000, &mut out);
    assert_eq!(out.len(), batch.len());

    let mut out = out.freeze();
    let checked = split(&out, MAX).expect("still valid: baseOffset is outside the CRC");
    assert_eq!(checked[0].header.last_offset(), 1_002);
    let set = RecordBatchDecoder::decode(&mut out).expect("decodes");
    let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [1_000, 1_001, 1_002]);
}

#[test]
fn whole_batches_within_cuts_at_batch_boundaries_and_keeps_one_oversized_first_batch() {
    let sizes: Vec<usize> = [1, 5, 2]
        .iter()
        .map(|&n| encode(&Spec::plain(&vec![7; n])).len())
        .collect();
    let all: Vec<u8> = [1, 5, 2]
        .iter()
        .flat_map(|&n| encode(&Spec::plain(&vec![7; n])).to_vec())
        .collect();
    let [a, b, c] = sizes[..] else { unreachable!() };
    assert_eq!(whole_batches_within(&all, all.len(), false), all.len());
    assert_eq!(whole_batches_within(&all, a + b + c - 1, false), a + b);
    assert_eq!(whole_batches_within(&all, a + b - 1, false), a);
    assert_eq!(whole_batches_within(&all, a - 1, false), 0);
    assert_eq!(whole_batches_within(&all, 0, false), 0);
    // The first batch goes whole when it must, and only the first.
    assert_eq!(whole_batches_within(&all, a - 1, true), a);
    assert_eq!(whole_batches_within(&all, 0, true), a);
    assert_eq!(whole_batches_within(&all, a + 1, true), a);
    assert_eq!(whole_batches_within(&[], 100, true), 0);
    // A truncated last batch is never counted.
    assert_eq!(
        whole_batches_within(&all[..all.len() - 1], usize::MAX, true),
        a + b
    );
}

/// Two batches stored at offsets 100 and 110, as a fetch would return them.
fn stored(first: &Spec, second: &Spec) -> Vec<u8> {
    let mut out = BytesMut::new();
    with_base_offset(&encode(first), 100, &mut out);
    with_base_offset(&encode(second), 110, &mut out);
    out.to_vec()
}

#[test]
fn first_record_at_or_after_finds_the_first_late_enough_record_in_any_codec() {
    for compression in COMPRESSIONS {
        let first = Spec::plain(&[10, 30, 20]).compressed(compression);
        let second = Spec::plain(&[40, 35, 50]).compressed(compression);
        let log = stored(&first, &second);
        let find = |t| first_record_at_or_after(&log, t).expect("valid batches");
        assert_eq!(find(0), Some((100, 10)), "{compression:?}");
        assert_eq!(find(11), Some((101, 30)), "{compression:?}");
        assert_eq!(find(30), Some((101, 30)), "{compression:?}");
        assert_eq!(find(31), Some((110, 40)), "{compression:?}");
        assert_eq!(find(41), Some((112, 50)), "{compression:?}");
        assert_eq!(find(51), None, "{compression:?}");
    }
}

#[test]
fn first_record_at_or_after_uses_max_timestamp_under_log_append_time() {
    let first = Spec::plain(&[10, 20]);
    let mut log = stored(&first, &Spec::plain(&[30, 40]));
    let second_at = encode(&first).len();
    let second = &mut log[second_at..];
    second[21..23].copy_from_slice(&LOG_APPEND_TIME_BIT.to_be_bytes());
    reseal(second);
    assert_eq!(
        first_record_at_or_after(&log, 25).expect("valid"),
        Some((110, 40))
    );
}

#[test]
fn first_record_at_or_after_skips_batches_without_decoding_them() {
    let first = Spec::plain(&[10, 20]);
    let mut log = stored(&first, &Spec::plain(&[30, 40]));
    // Garbage records in a batch whose maxTimestamp is too early are never read.
    let last_record_byte = encode(&first).len() - 1;
    log[last_record_byte] ^= 0xff;
    assert_eq!(
        first_record_at_or_after(&log, 25).expect("valid"),
        Some((110, 30))
    );
    let err = first_record_at_or_after(&log, 15).expect_err("the damaged batch is read");
    assert_eq!(err.kafka_error_code(), 2, "{err}");
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One record, length first, with `tail` (header count and headers) after a null
/// key and a 5-byte value.
fn record(timestamp_delta: i64, tail: &[u8]) -> Vec<u8> {
    let mut body = vec![0];
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, 0);
    put_varint(&mut body, -1);
    put_varint(&mut body, 5);
    body.extend_from_slice(b"value");
    body.extend_from_slice(tail);
    let mut record = Vec::new();
    put_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    record
}

/// An uncompressed batch declaring `count` records around `records`, with a
/// correct CRC.
fn batch_around(records: &[u8], count: i32, base_timestamp: i64, max_timestamp: i64) -> Bytes {
    let mut batch = encode(&Spec::plain(&[0]))[..HEADER_LEN].to_vec();
    batch.extend_from_slice(records);
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    batch[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    reseal(&mut batch);
    batch.into()
}

/// Three records of 40-byte values: room enough for a recordsCount of 10.
fn roomy(compression: Compression, count: usize) -> Spec {
    let mut spec = Spec::plain(&vec![1_000; count]).compressed(compression);
    for (_, value) in &mut spec.records {
        *value = vec![b'x'; 40];
    }
    spec
}

fn with_count(spec: &Spec, count: i32) -> Bytes {
    edited(spec, |b| {
        b[57..61].copy_from_slice(&count.to_be_bytes());
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    })
}

fn assert_invalid_mentions(err: BatchError, words: &[&str]) {
    assert_error_mentions(err, 87, words);
}

#[test]
fn a_record_count_above_the_records_held_is_invalid_in_any_codec() {
    for compression in COMPRESSIONS {
        let err = split_err(with_count(&roomy(compression, 3), 10));
        assert_invalid_mentions(err, &["recordsCount is 10", "end after 3"]);
    }
}

#[test]
fn a_record_count_below_the_records_held_is_invalid_in_any_codec() {
    for compression in COMPRESSIONS {
        let err = split_err(with_count(&roomy(compression, 10), 3));
        assert_invalid_mentions(err, &["follow the last of the batch's 3 records"]);
    }
}

/// gzip, snappy and zstd report a stream cut short: CORRUPT_MESSAGE. lz4's decoder
/// ends it without an error, so the batch is short of records: INVALID_RECORD, as
/// Kafka answers records that end early ("premature EOF").
#[test]
fn compressed_records_cut_short_under_a_correct_crc_are_refused() {
    for (compression, code, words) in [
        (Compression::Gzip, 2, "cannot decompress Gzip"),
        (Compression::Snappy, 2, "cannot decompress Snappy"),
        (Compression::Zstd, 2, "cannot decompress Zstd"),
        (Compression::Lz4, 87, "recordsCount is 20 but 0 bytes"),
    ] {
        let batch = encode(&roomy(compression, 20));
        let cut = HEADER_LEN + (batch.len() - HEADER_LEN) / 2;
        let mut batch = batch[..cut].to_vec();
        let length = (batch.len() - LOG_OVERHEAD) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        reseal(&mut batch);
        let err = split_err(batch);
        assert_eq!(err.kafka_error_code(), code, "{compression:?}: {err}");
        assert!(err.to_string().contains(words), "{compression:?}: {err}");
    }
}

#[test]
fn a_header_count_the_record_cannot_hold_is_refused_before_allocating() {
    let mut headers = Vec::new();
    put_varint(&mut headers, i64::from(i32::MAX));
    let records = record(0, &headers);
    for max_timestamp in [1_000, -1] {
        let batch = batch_around(&records, 1, 1_000, max_timestamp);
        let err = split_err(batch.clone());
        assert_invalid_mentions(err, &["header count is 2147483647"]);
        // A stored batch like this is read as corrupt, without a 2^31-entry map.
        let err = first_record_at_or_after(&batch, 0).expect_err("refused");
        assert_eq!(err.kafka_error_code(), 2, "{err}");
    }
}

#[test]
fn a_header_key_longer_than_its_record_is_invalid() {
    let mut headers = Vec::new();
    put_varint(&mut headers, 1);
    put_varint(&mut headers, 100_000_000);
    headers.extend_from_slice(b"key");
    let err = split_err(batch_around(&record(0, &headers), 1, 1_000, 1_000));
    assert_invalid_mentions(err, &["header key length is 100000000"]);
}

#[test]
fn a_header_key_that_is_not_utf8_is_invalid() {
    let mut headers = Vec::new();
    put_varint(&mut headers, 1);
    put_varint(&mut headers, 2);
    headers.extend_from_slice(&[0xff, 0xfe]);
    put_varint(&mut headers, -1);
    let err = split_err(batch_around(&record(0, &headers), 1, 1_000, 1_000));
    assert_invalid_mentions(err, &["not UTF-8"]);
}

#[test]
fn a_record_timestamp_past_the_range_of_a_timestamp_is_invalid() {
    let batch = batch_around(&record(100, &[0]), 1, i64::MAX - 5, -1);
    let err = split_err(batch.clone());
    assert_invalid_mentions(err, &["past the range of a timestamp"]);
    assert!(first_record_at_or_after(&batch, 0).is_err());
}

#[test]
fn a_garbage_base_offset_is_ignored_when_the_records_are_read() {
    let mut batch = without_max_timestamp(&Spec::plain(&[1_000, 3_000])).to_vec();
    batch[..8].copy_from_slice(&i64::MAX.to_be_bytes());
    let header = split(&Bytes::from(batch.clone()), MAX).expect("valid")[0].header;
    assert_eq!(header.max_timestamp, 3_000);
    // Searching it as stored data: the second record's offset is past i64::MAX.
    let err = first_record_at_or_after(&batch, 2_000).expect_err("no such offset");
    assert!(
        err.to_string().contains("past the range of an offset"),
        "{err}"
    );
    assert_eq!(
        first_record_at_or_after(&batch, 0).expect("the first record's offset fits"),
        Some((i64::MAX, 1_000))
    );
}

/// The limit on inflated records the tests below set: small, to keep them cheap.
const INFLATE_LIMIT: usize = 1 << 20;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// One record whose value is `len` zeros: records that compress to very little.
fn zeros(compression: Compression, len: usize) -> Spec {
    let mut spec = Spec::plain(&[1_000]).compressed(compression);
    spec.records[0].1 = vec![0; len];
    spec
}

/// `batch` with its records replaced by `payload` (compressed as its codec says),
/// with a correct batchLength and CRC.
fn with_payload(batch: &[u8], payload: &[u8]) -> Bytes {
    let mut batch = batch[..HEADER_LEN].to_vec();
    batch.extend_from_slice(payload);
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    reseal(&mut batch);
    batch.into()
}

#[test]
fn records_inflating_past_the_limit_are_too_large_in_every_codec() {
    for compression in CODECS {
        let batch = encode(&zeros(compression, 3 * INFLATE_LIMIT));
        assert!(
            batch.len() < INFLATE_LIMIT / 4,
            "{compression:?}: a small batch"
        );
        let err = validate_within(&batch, MAX, INFLATE_LIMIT).expect_err("too large");
        let codec = format!("{compression:?}");
        assert_error_mentions(err, 10, &[&codec, &INFLATE_LIMIT.to_string()]);
    }
}

#[test]
fn records_inflating_to_exactly_the_limit_are_accepted_in_every_codec() {
    for compression in CODECS {
        let spec = zeros(compression, INFLATE_LIMIT - 100);
        let inflated = encode(&spec.clone().compressed(Compression::None)).len() - HEADER_LEN;
        let batch = encode(&spec);
        let (header, _) = validate_within(&batch, MAX, inflated).expect("at the limit");
        assert_eq!(header.record_count, 1, "{compression:?}");
        let err = validate_within(&batch, MAX, inflated - 1).expect_err("a byte over");
        assert_eq!(
            err,
            BatchError::InflatesTooLarge {
                codec: compression,
                max: inflated - 1
            }
        );
    }
}

/// Snappy without snappy-java's framing is one raw block, as Kafka reads it. The
/// block's header states its inflated length, which is checked before any room is
/// made for it: here 2 GiB, in front of bytes no decoder gets to.
#[test]
fn raw_snappy_is_read_and_its_stated_length_checked_before_inflating() {
    let framed = encode(&roomy(Compression::Snappy, 3));
    let records = &encode(&roomy(Compression::None, 3))[HEADER_LEN..];
    let raw = snap::raw::Encoder::new()
        .compress_vec(records)
        .expect("compress");
    let batch = with_payload(&framed, &raw);
    assert!(split(&batch, MAX).is_ok(), "raw snappy records are read");

    let claims_2_gib = [0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0];
    let mut framed_block = XERIAL_HEADER.to_vec();
    framed_block.put_u32(claims_2_gib.len() as u32);
    framed_block.extend_from_slice(&claims_2_gib);
    for payload in [&claims_2_gib[..], &framed_block] {
        let batch = with_payload(&framed, payload);
        assert_eq!(
            split_err(batch.clone()),
            BatchError::InflatesTooLarge {
                codec: Compression::Snappy,
                max: MAX_INFLATED_BATCH_BYTES
            }
        );
        // Read as stored data, the batch is refused the same way.
        let err = first_record_at_or_after(&batch, 0).expect_err("refused");
        assert!(
            err.to_string()
                .contains(&MAX_INFLATED_BATCH_BYTES.to_string()),
            "{err}"
        );
    }
}

/// A second gzip member, or anything else after the first, is refused.
#[test]
fn bytes_after_a_gzip_stream_are_corrupt() {
    let batch = encode(&roomy(Compression::Gzip, 3));
    let member = &batch[HEADER_LEN..];
    let err = split_err(with_payload(&batch, &[member, member].concat()));
    assert_corrupt_mentions(err, &["Gzip", "follow the gzip stream"]);
}

proptest! {
    #[test]
    fn split_returns_every_batch_as_sent_without_copying(
        specs in prop::collection::vec(specs(), 1..6),
    ) {
        let encoded: Vec<Bytes> = specs.iter().map(encode).collect();
        let records = concat(&encoded);
        let batches = split(&records, MAX).expect("producer batches are valid");
        prop_assert_eq!(batches.len(), specs.len());
        let mut at = 0;
        for ((batch, bytes), spec) in batches.iter().zip(&encoded).zip(&specs) {
            prop_assert_eq!(&batch.bytes, bytes);
            let input = records[at..].as_ptr();
            prop_assert_eq!(batch.bytes.as_ptr(), input, "a slice of the input");
            at += bytes.len();
            let header = batch.header;
            prop_assert_eq!(header.record_count as usize, spec.records.len());
            prop_assert_eq!(header.compression(), Some(spec.compression));
            prop_assert_eq!(header.producer_id, spec.producer_id);
            prop_assert_eq!(header.producer_epoch, spec.producer_epoch);
            prop_assert_eq!(header.base_sequence, spec.base_sequence);
            let max = spec.records.iter().map(|r| r.0).max();
            prop_assert_eq!(Some(header.max_timestamp), max);
        }
    }

    /// Every byte but baseOffset and partitionLeaderEpoch is covered by the CRC or
    /// checked directly; those two are reported as they now read.
    #[test]
    fn any_changed_byte_is_refused_unless_outside_the_crc(
        spec in specs(),
        index in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let mut batch = encode(&spec).to_vec();
        let at = index.index(batch.len());
        batch[at] ^= flip;
        let result = split(&Bytes::from(batch.clone()), MAX);
        match at {
            0..8 | 12..16 => {
                let header = result.expect("fields outside the CRC")[0].header;
                prop_assert_eq!(Some(header), BatchHeader::parse(&batch));
            }
            _ => prop_assert!(result.is_err(), "byte {} changed but accepted", at),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = split(&Bytes::from(bytes.clone()), MAX);
        let _ = first_record_at_or_after(&bytes, 0);
    }

    /// Garbage behind a valid header and CRC reaches the record decoder, which must
    /// fail cleanly rather than panic or allocate for a made-up record count.
    #[test]
    fn garbage_records_never_panic_the_timestamp_search(
        spec in specs(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        record_count in any::<i32>(),
    ) {
        let mut batch = encode(&spec).to_vec();
        batch.truncate(HEADER_LEN);
        batch.extend_from_slice(&garbage);
        let length = (batch.len() - LOG_OVERHEAD) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[57..61].copy_from_slice(&record_count.to_be_bytes());
        reseal(&mut batch);
        let _ = first_record_at_or_after(&batch, i64::MIN);
    }
}
