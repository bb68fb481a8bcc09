//! Kafka RecordBatches (magic 2): framing and validation without copying, the
//! base-offset rewrite of the fetch path, and the timestamp search of ListOffsets.
//!
//! An agent stores batches exactly as producers sent them, so the write path checks
//! here what Kafka's broker checks before it appends — framing, magic, CRC-32C, size,
//! compression codec, the record count of a producer's batch, and the structure of
//! its records (inflated first when compressed), so that a consumer never receives a
//! batch it cannot read. Only [`first_record_at_or_after`] decodes records.
//!
//! A batch starts with a 61-byte header (big-endian):
//!
//! | byte | field                | type | notes                                        |
//! |-----:|----------------------|------|----------------------------------------------|
//! |    0 | baseOffset           | i64  | not covered by the CRC: rewritten on fetch   |
//! |    8 | batchLength          | i32  | bytes after this field, at least 49          |
//! |   12 | partitionLeaderEpoch | i32  | not covered by the CRC                       |
//! |   16 | magic                | i8   | 2; byte 16 is the magic in every format      |
//! |   17 | crc                  | u32  | CRC-32C of bytes 21 to the end of the batch  |
//! |   21 | attributes           | i16  | bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control |
//! |   23 | lastOffsetDelta      | i32  | recordsCount - 1 in a producer's batch       |
//! |   27 | baseTimestamp        | i64  |                                              |
//! |   35 | maxTimestamp         | i64  |                                              |
//! |   43 | producerId           | i64  | -1 without an idempotent producer            |
//! |   51 | producerEpoch        | i16  |                                              |
//! |   53 | baseSequence         | i32  |                                              |
//! |   57 | recordsCount         | i32  |                                              |
//! |   61 | records              |      | compressed as a whole when the codec is not 0 |

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};

/// Length of a batch header, and so of the smallest batch.
pub const HEADER_LEN: usize = 61;
/// baseOffset and batchLength: the bytes a batch has besides those `batchLength` counts.
pub const LOG_OVERHEAD: usize = 12;
/// The only message format Weir accepts (Kafka 0.11 and later).
pub const MAGIC: i8 = 2;
/// The most bytes a batch's compressed records may inflate to. The records are held
/// inflated while they are walked, so this bounds what one batch makes the agent
/// allocate: a few hundred compressed kilobytes of zeros inflate to gigabytes. The
/// compressed size is already capped by `max_batch_bytes` (1 MiB by default); 128 MiB
/// leaves room for compression ratios far above real data's.
pub const MAX_INFLATED_BATCH_BYTES: usize = 128 * 1024 * 1024;

/// Smallest legal batchLength: a header and nothing else.
const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const CRC_START: usize = 21;
pub(crate) const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
/// A record timestamp that says "none" (Kafka's RecordBatch.NO_TIMESTAMP).
const NO_TIMESTAMP: i64 = -1;
/// The smallest record on the wire: seven one-byte fields (length, attributes,
/// timestamp delta, offset delta, key length, value length, header count).
const MIN_RECORD_LEN: usize = 7;
/// The smallest record header on the wire: a one-byte key length and value length.
const MIN_RECORD_HEADER_LEN: usize = 2;
/// Longest varints: an int takes at most 5 bytes, a long 10.
const VARINT_MAX_LEN: usize = 5;
const VARLONG_MAX_LEN: usize = 10;
pub(crate) const CODEC_MASK: i16 = 0b111;
const LOG_APPEND_TIME_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
/// What snappy-java's framing (Kafka's snappy) starts with: a magic, its version and
/// the oldest compatible version. Its blocks follow, each a big-endian u32 length and
/// raw snappy.
pub(crate) const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Why a partition's records were refused. Each variant maps to one Kafka error code
/// (see [`BatchError::kafka_error_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The bytes are not a well-formed batch (framing, CRC, codec): Kafka's CORRUPT_MESSAGE.
    #[error("corrupt record batch: {reason}")]
    Corrupt { reason: String },
    /// A batch is over the size limit: Kafka's MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes is over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    /// A batch's compressed records inflate past the limit
    /// ([`MAX_INFLATED_BATCH_BYTES`]): Kafka's MESSAGE_TOO_LARGE.
    #[error("record batch's {codec:?} records inflate to more than the limit of {max} bytes")]
    InflatesTooLarge { codec: Compression, max: usize },
    /// A well-formed batch that a producer must not send: Kafka's INVALID_RECORD.
    #[error("invalid record batch: {reason}")]
    InvalidRecord { reason: String },
    /// A message set of magic 0 or 1, from a client older than Kafka 0.11.
    #[error(
        "record batch has magic {0}, a message format older than Kafka 0.11; only magic 2 is supported"
    )]
    UnsupportedMagic(i8),
}

impl BatchError {
    /// The Kafka error code a producer gets for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchError::Corrupt { .. } => ResponseError::CorruptMessage.code(),
            BatchError::TooLarge { .. } | BatchError::InflatesTooLarge { .. } => {
                ResponseError::MessageTooLarge.code()
            }
            BatchError::InvalidRecord { .. } => ResponseError::InvalidRecord.code(),
            // What Kafka answers a v3+ produce carrying an old message format.
            BatchError::UnsupportedMagic(_) => ResponseError::InvalidRecord.code(),
        }
    }
}

fn corrupt(reason: impl Into<String>) -> BatchError {
    BatchError::Corrupt {
        reason: reason.into(),
    }
}

fn invalid(reason: impl Into<String>) -> BatchError {
    BatchError::InvalidRecord {
        reason: reason.into(),
    }
}

/// The decoded 61-byte header of a RecordBatch, field for field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `bytes`, or `None` if `bytes` is shorter than
    /// a header. Checks nothing: [`split`] does.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        let mut b: &[u8] = bytes.first_chunk::<HEADER_LEN>()?;
        Some(BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            record_count: b.get_i32(),
        })
    }

    /// The whole batch's length in bytes, header included (0 for a negative batchLength).
    pub fn size(&self) -> usize {
        usize::try_from(self.batch_length).map_or(0, |length| LOG_OVERHEAD + length)
    }

    /// The codec of the records, or `None` for a codec id Kafka does not define
    /// (which [`split`] refuses).
    pub fn compression(&self) -> Option<Compression> {
        match self.attributes & CODEC_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Whether record timestamps are the producer's (create time) or the broker's
    /// append time, which maxTimestamp then carries for every record.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & LOG_APPEND_TIME_BIT != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        }
    }

    /// A create-time batch whose maxTimestamp is below its first timestamp: the
    /// producer left it unset (Sarama before 1.27 sends -1), so it says nothing about
    /// the records.
    pub fn lacks_max_timestamp(&self) -> bool {
        self.timestamp_type() == TimestampType::Creation && self.max_timestamp < self.base_timestamp
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// A control batch carries transaction markers, not user records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The offset of the batch's last record, given its baseOffset.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
}

/// A batch that passed [`split`]'s checks, and its bytes: a zero-copy slice of the
/// produce request.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
    /// The earliest timestamp of its records (the header carries only the latest).
    pub min_timestamp: i64,
    /// The length of its largest record, inflated (a topic's
    /// `max.decompressed.message.bytes` bounds it in a compressed batch).
    pub largest_record: usize,
    /// How many of its records have a null key (a compacted topic refuses them).
    pub keyless_records: usize,
}

/// Shows the header and the length, never the records: payloads stay out of logs.
impl fmt::Debug for ValidBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidBatch")
            .field("header", &self.header)
            .field("len", &self.bytes.len())
            .field("min_timestamp", &self.min_timestamp)
            .field("largest_record", &self.largest_record)
            .field("keyless_records", &self.keyless_records)
            .finish()
    }
}

/// Splits one partition's `records` from a produce request into its batches, checking
/// each as Kafka's broker would, and returns them as zero-copy slices of `records`.
///
/// Refuses the whole partition on the first bad batch, as Kafka does. Empty records
/// are refused too: a produce request must carry at least one batch per partition.
/// Whether control or transactional batches are allowed is the caller's policy.
pub fn split(records: &Bytes, max_batch_bytes: usize) -> Result<Vec<ValidBatch>, BatchError> {
    if records.is_empty() {
        return Err(invalid(
            "no record batches: a produce request carries at least one batch per partition",
        ));
    }
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let (header, walked) =
            validate_within(&records[at..], max_batch_bytes, MAX_INFLATED_BATCH_BYTES)?;
        let end = at + header.size();
        batches.push(ValidBatch {
            header,
            bytes: records.slice(at..end),
            min_timestamp: walked.min_timestamp,
            largest_record: walked.largest_record,
            keyless_records: walked.keyless_records,
        });
        at = end;
    }
    Ok(batches)
}

/// Checks the batch at the start of `bytes` (which may hold more after it) and returns
/// its header.
pub(crate) fn validate(bytes: &[u8], max_batch_bytes: usize) -> Result<BatchHeader, BatchError> {
    validate_within(bytes, max_batch_bytes, MAX_INFLATED_BATCH_BYTES).map(|(header, _)| header)
}

/// [`validate`], with the most bytes compressed records may inflate to as a parameter;
/// also returns what the walk over the records found.
fn validate_within(
    bytes: &[u8],
    max_batch_bytes: usize,
    max_inflated_bytes: usize,
) -> Result<(BatchHeader, Walked), BatchError> {
    let header = frame(bytes)?;
    let size = header.size();
    if size > max_batch_bytes {
        return Err(BatchError::TooLarge {
            size,
            max: max_batch_bytes,
        });
    }
    check_crc(&header, &bytes[..size])?;
    let compression = check_contents(&header)?;
    let records = inflate(&bytes[HEADER_LEN..size], compression, max_inflated_bytes)?;
    let walked = check_records(&header, &records)?;
    let max_timestamp = walked.max_timestamp;
    let mut header = header;
    if header.lacks_max_timestamp() {
        // What Kafka's log validator would have written there. The bytes stay as the
        // producer sent them; the object footer and the index carry this value.
        header.max_timestamp = max_timestamp;
    }
    Ok((header, walked))
}

/// What [`check_records`] learns of a batch's records on its way through them.
#[derive(Debug, Clone, Copy)]
struct Walked {
    /// The smallest and largest record timestamps (baseTimestamp included).
    min_timestamp: i64,
    max_timestamp: i64,
    /// The longest record's length.
    largest_record: usize,
    /// Records whose key is null.
    keyless_records: usize,
}

/// Reads the header of the batch at the start of `bytes` and checks that the batch is
/// magic 2 and that all of its bytes are there.
fn frame(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    // The magic byte sits at byte 16 in every message format, so an old client's
    // message set is named as such even when it is shorter than a v2 header.
    if let Some(&magic) = bytes.get(MAGIC_AT) {
        check_magic(magic as i8)?;
    }
    let header = BatchHeader::parse(bytes).ok_or_else(|| {
        corrupt(format!(
            "{} bytes left, fewer than the {HEADER_LEN} bytes of a batch header",
            bytes.len()
        ))
    })?;
    if header.batch_length < MIN_BATCH_LENGTH {
        return Err(corrupt(format!(
            "batchLength is {}, below the minimum of {MIN_BATCH_LENGTH}",
            header.batch_length
        )));
    }
    if header.size() > bytes.len() {
        return Err(corrupt(format!(
            "batchLength {} makes a batch of {} bytes but only {} bytes are left",
            header.batch_length,
            header.size(),
            bytes.len()
        )));
    }
    Ok(header)
}

fn check_magic(magic: i8) -> Result<(), BatchError> {
    match magic {
        MAGIC => Ok(()),
        0 | 1 => Err(BatchError::UnsupportedMagic(magic)),
        _ => Err(corrupt(format!(
            "magic is {magic}; Kafka defines only magic 0, 1 and 2"
        ))),
    }
}

fn check_crc(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc {
        return Err(corrupt(format!(
            "CRC-32C in the header is {:#010x} but the batch's bytes give {computed:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Checks what a producer's batch header must say, and returns its codec. An
/// uncompressed batch's record count is checked against its bytes here, before the
/// records are read.
fn check_contents(header: &BatchHeader) -> Result<Compression, BatchError> {
    let Some(compression) = header.compression() else {
        return Err(corrupt(format!(
            "attributes {:#06x} name compression codec {}; Kafka defines codecs 0 to 4",
            header.attributes,
            header.attributes & CODEC_MASK
        )));
    };
    if header.record_count < 1 {
        return Err(invalid(format!(
            "recordsCount is {}; a batch holds at least one record",
            header.record_count
        )));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(invalid(format!(
            "lastOffsetDelta is {} but recordsCount is {}: a producer's batch numbers its records 0 to recordsCount - 1",
            header.last_offset_delta, header.record_count
        )));
    }
    if compression == Compression::None {
        check_record_room(header.record_count, header.size() - HEADER_LEN)?;
    }
    Ok(compression)
}

/// Refuses a record count that `records_len` bytes of uncompressed records cannot hold.
/// Besides catching a lying producer, this bounds what the record decoder allocates
/// up front, which is proportional to the count.
fn check_record_room(record_count: i32, records_len: usize) -> Result<(), BatchError> {
    let room = records_len / MIN_RECORD_LEN;
    if usize::try_from(record_count).is_ok_and(|count| count > room) {
        return Err(invalid(format!(
            "recordsCount is {record_count} but {records_len} bytes of records hold at most {room}"
        )));
    }
    Ok(())
}

/// Walks a batch's (inflated) records and checks their structure as Kafka's record
/// iterator does before the broker appends them — exactly recordsCount records, each
/// field within its record, nothing after the last record — and returns the smallest
/// and the largest record timestamps (baseTimestamp included) and the longest record's
/// length. Nothing is allocated, whatever the
/// counts and lengths claim; so this also runs before the record decoder, which
/// allocates for them.
///
/// Kafka answers these with INVALID_RECORD (its InvalidRecordException).
fn check_records(header: &BatchHeader, records: &[u8]) -> Result<Walked, BatchError> {
    check_record_room(header.record_count, records.len())?;
    let mut rest = records;
    let mut max_timestamp = header.base_timestamp;
    let mut min_timestamp = header.base_timestamp;
    let mut largest_record = 0;
    let mut keyless_records = 0;
    for index in 0..header.record_count {
        if rest.is_empty() {
            return Err(invalid(format!(
                "recordsCount is {} but the records end after {index}",
                header.record_count
            )));
        }
        let length = read_varint(&mut rest)
            .ok_or_else(|| invalid(format!("record {index} has a malformed length")))?;
        let Some(record) = usize::try_from(length).ok().and_then(|len| rest.get(..len)) else {
            return Err(invalid(format!(
                "record {index} has length {length} but {} bytes are left",
                rest.len()
            )));
        };
        rest = &rest[record.len()..];
        largest_record = largest_record.max(record.len());
        let (timestamp, keyed) = check_record(header, record)
            .map_err(|reason| invalid(format!("record {index}: {reason}")))?;
        keyless_records += usize::from(!keyed);
        max_timestamp = max_timestamp.max(timestamp);
        min_timestamp = min_timestamp.min(timestamp);
    }
    if !rest.is_empty() {
        return Err(invalid(format!(
            "{} bytes follow the last of the batch's {} records",
            rest.len(),
            header.record_count
        )));
    }
    Ok(Walked {
        min_timestamp,
        max_timestamp,
        largest_record,
        keyless_records,
    })
}

/// Checks one record's fields (the bytes its length covers) and returns its timestamp
/// and whether it has a key.
fn check_record(header: &BatchHeader, mut record: &[u8]) -> Result<(i64, bool), String> {
    let r = &mut record;
    skip(r, 1, "attributes")?;
    let delta = read_varlong(r).ok_or("malformed timestamp delta")?;
    let timestamp = header.base_timestamp.checked_add(delta).ok_or_else(|| {
        format!(
            "timestamp delta {delta} from baseTimestamp {} is past the range of a timestamp",
            header.base_timestamp
        )
    })?;
    read_varint(r).ok_or("malformed offset delta")?;
    let keyed = take_varint_bytes(r, "key")?.is_some();
    skip_varint_bytes(r, "value")?;
    let count = read_varint(r).ok_or("malformed header count")?;
    let room = r.len() / MIN_RECORD_HEADER_LEN;
    if !usize::try_from(count).is_ok_and(|count| count <= room) {
        return Err(format!(
            "header count is {count} but its {} bytes left hold at most {room} headers",
            r.len()
        ));
    }
    for _ in 0..count {
        let key = take_varint_bytes(r, "header key")?.ok_or("a header key is null")?;
        // kafka-protocol reads header keys as UTF-8 strings, as the Java client
        // writes them.
        std::str::from_utf8(key).map_err(|_| "a header key is not UTF-8".to_string())?;
        skip_varint_bytes(r, "header value")?;
    }
    if !r.is_empty() {
        return Err(format!("{} bytes follow its last header", r.len()));
    }
    Ok((timestamp, keyed))
}

fn skip(bytes: &mut &[u8], len: usize, what: &str) -> Result<(), String> {
    *bytes = bytes
        .get(len..)
        .ok_or_else(|| format!("the record ends in its {what}"))?;
    Ok(())
}

/// Takes a varint-length-prefixed field (null at length -1).
fn take_varint_bytes<'a>(bytes: &mut &'a [u8], what: &str) -> Result<Option<&'a [u8]>, String> {
    let length = read_varint(bytes).ok_or_else(|| format!("malformed {what} length"))?;
    if length == -1 {
        return Ok(None);
    }
    let field = usize::try_from(length)
        .ok()
        .and_then(|len| bytes.get(..len))
        .ok_or_else(|| {
            format!(
                "{what} length is {length} but the record has {} bytes left",
                bytes.len()
            )
        })?;
    *bytes = &bytes[field.len()..];
    Ok(Some(field))
}

fn skip_varint_bytes(bytes: &mut &[u8], what: &str) -> Result<(), String> {
    take_varint_bytes(bytes, what).map(|_| ())
}

fn read_varint(bytes: &mut &[u8]) -> Option<i32> {
    read_zigzag(bytes, VARINT_MAX_LEN).and_then(|value| i32::try_from(value).ok())
}

fn read_varlong(bytes: &mut &[u8]) -> Option<i64> {
    read_zigzag(bytes, VARLONG_MAX_LEN)
}

/// Reads a zigzag varint of at most `max_len` bytes, as records encode their fields.
fn read_zigzag(bytes: &mut &[u8], max_len: usize) -> Option<i64> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(max_len).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// Appends `batch` to `out` with its baseOffset replaced: the fetch path, which gives
/// stored batches the offsets the sequencer assigned. baseOffset is outside the CRC,
/// so the batch stays valid. `batch` is one whole batch, as [`split`] returns them.
pub fn with_base_offset(batch: &[u8], base_offset: i64, out: &mut BytesMut) {
    out.reserve(batch.len());
    out.put_i64(base_offset);
    out.extend_from_slice(batch.get(8..).unwrap_or_default());
}

/// The batch as a broker appends it to a topic with `message.timestamp.type=LogAppendTime`:
/// the timestamp-type attribute set and maxTimestamp the append time `now_ms`, CRC
/// recomputed, as Kafka's log validator does. Consumers then read `now_ms` as every
/// record's timestamp. The records are untouched; the batch is copied (the produce
/// request's bytes are shared).
pub fn with_log_append_time(batch: &ValidBatch, now_ms: i64) -> ValidBatch {
    let mut bytes = BytesMut::from(&batch.bytes[..]);
    let attributes = batch.header.attributes | LOG_APPEND_TIME_BIT;
    bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[CRC_AT..CRC_START].copy_from_slice(&crc.to_be_bytes());
    ValidBatch {
        header: BatchHeader {
            attributes,
            max_timestamp: now_ms,
            crc,
            ..batch.header
        },
        bytes: bytes.freeze(),
        ..*batch
    }
}

/// The records of `batch` whose timestamps are outside `earliest..=latest`, as (index in
/// the batch, timestamp): what a CreateTime topic's `message.timestamp.before.max.ms`
/// and `message.timestamp.after.max.ms` refuse. Records without a timestamp (-1) are
/// never outside, as in Kafka.
pub fn records_outside(batch: &ValidBatch, earliest: i64, latest: i64) -> Vec<(usize, i64)> {
    let outside = |ts: i64| ts != NO_TIMESTAMP && !(earliest..=latest).contains(&ts);
    if !outside(batch.min_timestamp) && !outside(batch.header.max_timestamp) {
        return Vec::new();
    }
    records_where(batch, |r| outside(r.timestamp))
}

/// The index in `batch` of each record with a null key: what a compacted topic refuses
/// (Kafka's "Compacted topic cannot accept message without key").
pub fn keyless_records(batch: &ValidBatch) -> Vec<usize> {
    if batch.keyless_records == 0 {
        return Vec::new();
    }
    records_where(batch, |r| r.key.is_none())
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

/// (index, timestamp) of the records of `batch` that `refused` picks out, decoded with
/// kafka-protocol: only when a check over the walk's summary says some will be. `split`
/// has checked the batch; one that fails to decode here has no record to name, so its
/// first stands for all.
fn records_where(batch: &ValidBatch, refused: impl Fn(&Record) -> bool) -> Vec<(usize, i64)> {
    let mut bytes = batch.bytes.clone();
    match RecordBatchDecoder::decode(&mut bytes) {
        Ok(set) => set
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| refused(r))
            .map(|(i, r)| (i, r.timestamp))
            .collect(),
        Err(_) => vec![(0, batch.min_timestamp)],
    }
}

/// How many bytes of `batches` (whole batches, back to back) make up the longest run of
/// whole batches within `limit` bytes; with `at_least_one`, the first batch counts even
/// when it alone is over the limit (KIP-74: a consumer always gets the first batch of
/// the first partition with data, however large, so it can make progress).
pub fn whole_batches_within(batches: &[u8], limit: usize, at_least_one: bool) -> usize {
    let mut taken = 0;
    while let Some(header) = batches.get(taken..).and_then(BatchHeader::parse) {
        let size = header.size();
        let fits = taken + size <= limit || (taken == 0 && at_least_one);
        if size < HEADER_LEN || taken + size > batches.len() || !fits {
            break;
        }
        taken += size;
    }
    taken
}

/// Finds the first record whose timestamp is at least `timestamp` in `batches`
/// (concatenated batches whose baseOffsets are the real offsets) and returns its
/// `(offset, timestamp)`: ListOffsets by timestamp.
///
/// Batches whose maxTimestamp is earlier are skipped without decompressing them (unless
/// the producer left it unset). In a LogAppendTime batch every record has the batch's
/// maxTimestamp.
pub fn first_record_at_or_after(
    batches: &[u8],
    timestamp: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    let mut at = 0;
    while at < batches.len() {
        let header = frame(&batches[at..])?;
        let batch = &batches[at..at + header.size()];
        if (header.max_timestamp >= timestamp || header.lacks_max_timestamp())
            && let Some(found) = find_in_batch(&header, batch, timestamp)?
        {
            return Ok(Some(found));
        }
        at += header.size();
    }
    Ok(None)
}

fn find_in_batch(
    header: &BatchHeader,
    batch: &[u8],
    timestamp: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    if header.timestamp_type() == TimestampType::LogAppend {
        return Ok(Some((header.base_offset, header.max_timestamp)));
    }
    let records = decode_records(header, batch)?;
    let Some(record) = records.iter().find(|record| record.timestamp >= timestamp) else {
        return Ok(None);
    };
    // decode_records numbers records from 0.
    let offset = header
        .base_offset
        .checked_add(record.offset)
        .ok_or_else(|| {
            corrupt(format!(
                "baseOffset {} and offset delta {} are past the range of an offset",
                header.base_offset, record.offset
            ))
        })?;
    Ok(Some((offset, record.timestamp)))
}

/// Decodes a batch's records with kafka-protocol, numbering them from offset 0. The
/// records are inflated and checked ([`check_records`]) first: the decoder allocates
/// for the record and header counts it reads, and adds deltas without checking for
/// overflow.
fn decode_records(header: &BatchHeader, batch: &[u8]) -> Result<Vec<Record>, BatchError> {
    let mut buf = BytesMut::from(batch);
    // baseOffset is outside the CRC: a producer may leave anything there.
    buf[..8].copy_from_slice(&0i64.to_be_bytes());
    let mut buf = buf.freeze();
    let decoded = RecordBatchDecoder::decode_with_custom_compression(
        &mut buf,
        Some(|payload: &mut Bytes, compression| {
            let records = match inflate(payload, compression, MAX_INFLATED_BATCH_BYTES)? {
                Cow::Borrowed(_) => payload.clone(),
                Cow::Owned(inflated) => Bytes::from(inflated),
            };
            check_records(header, &records)?;
            Ok(records)
        }),
    );
    decoded
        .map(|set| set.records)
        .map_err(|e| corrupt(format!("cannot decode its records: {e:#}")))
}

/// A batch's records, inflated unless they are uncompressed. Records that inflate past
/// `limit` bytes are refused once `limit + 1` bytes are out (snappy's before any are).
pub(crate) fn inflate(
    payload: &[u8],
    compression: Compression,
    limit: usize,
) -> Result<Cow<'_, [u8]>, BatchError> {
    let inflated = match compression {
        Compression::None => return Ok(Cow::Borrowed(payload)),
        Compression::Gzip => inflate_gzip(payload, limit),
        Compression::Snappy => inflate_snappy(payload, limit),
        Compression::Lz4 => lz4::Decoder::new(payload)
            .map_err(Inflate::from)
            .and_then(|decoder| read_at_most(decoder, limit)),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(payload)
            .map_err(Inflate::from)
            .and_then(|decoder| read_at_most(decoder, limit)),
    };
    match inflated {
        Ok(records) => Ok(Cow::Owned(records)),
        Err(Inflate::OverLimit) => Err(BatchError::InflatesTooLarge {
            codec: compression,
            max: limit,
        }),
        Err(Inflate::Malformed(e)) => Err(corrupt(format!(
            "cannot decompress {compression:?} records: {e}"
        ))),
    }
}

/// Why compressed records were not inflated.
enum Inflate {
    /// They inflate past the limit.
    OverLimit,
    /// They are not a stream of their codec.
    Malformed(io::Error),
}

impl From<io::Error> for Inflate {
    fn from(e: io::Error) -> Self {
        Inflate::Malformed(e)
    }
}

impl From<snap::Error> for Inflate {
    fn from(e: snap::Error) -> Self {
        Inflate::Malformed(e.into())
    }
}

fn malformed(reason: String) -> Inflate {
    Inflate::Malformed(io::Error::new(io::ErrorKind::InvalidData, reason))
}

/// Reads `decoder` to its end, unless it has more than `limit` bytes.
fn read_at_most(decoder: impl Read, limit: usize) -> Result<Vec<u8>, Inflate> {
    let mut records = Vec::new();
    let one_past_limit = u64::try_from(limit).map_or(u64::MAX, |limit| limit.saturating_add(1));
    decoder.take(one_past_limit).read_to_end(&mut records)?;
    if records.len() > limit {
        return Err(Inflate::OverLimit);
    }
    Ok(records)
}

/// One gzip member, as producers write it, and nothing after it.
fn inflate_gzip(payload: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    // Over a `&[u8]`, the decoder consumes exactly its member: what is left follows it.
    let mut decoder = flate2::bufread::GzDecoder::new(payload);
    let records = read_at_most(&mut decoder, limit)?;
    let after = decoder.get_ref().len();
    if after > 0 {
        return Err(malformed(format!("{after} bytes follow the gzip stream")));
    }
    Ok(records)
}

/// Snappy as snappy-java frames it ([`XERIAL_HEADER`], then length-prefixed blocks),
/// or, without that header, one raw snappy block, as snappy-java and kafka-protocol
/// read it.
fn inflate_snappy(payload: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    let mut records = Vec::new();
    let Some(mut blocks) = payload.strip_prefix(XERIAL_HEADER.as_slice()) else {
        append_snappy_block(payload, &mut records, limit)?;
        return Ok(records);
    };
    while !blocks.is_empty() {
        let (length, rest) = blocks.split_first_chunk::<4>().ok_or_else(|| {
            malformed(format!(
                "{} bytes left, too few for a snappy block length",
                blocks.len()
            ))
        })?;
        let length = u32::from_be_bytes(*length);
        let Some(block) = usize::try_from(length).ok().and_then(|len| rest.get(..len)) else {
            return Err(malformed(format!(
                "snappy block of {length} bytes but {} bytes are left",
                rest.len()
            )));
        };
        append_snappy_block(block, &mut records, limit)?;
        blocks = &rest[block.len()..];
    }
    Ok(records)
}

/// Inflates one raw snappy block onto `records`, checking the length its header states
/// against `limit` before making room for it.
fn append_snappy_block(block: &[u8], records: &mut Vec<u8>, limit: usize) -> Result<(), Inflate> {
    let length = snap::raw::decompress_len(block)?;
    if length > limit - records.len() {
        return Err(Inflate::OverLimit);
    }
    let start = records.len();
    records.resize(start + length, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut records[start..])?;
    records.truncate(start + written);
    Ok(())
}

/// Batches built with kafka-protocol's encoder, as a producer would send them.
#[cfg(test)]
pub(crate) mod testing {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use proptest::prelude::*;

    /// What one producer batch holds.
    #[derive(Debug, Clone)]
    pub(crate) struct Spec {
        pub(crate) compression: Compression,
        /// One `(timestamp, value)` per record.
        pub(crate) records: Vec<(i64, Vec<u8>)>,
        pub(crate) producer_id: i64,
        pub(crate) producer_epoch: i16,
        pub(crate) base_sequence: i32,
    }

    impl Spec {
        /// An uncompressed batch of records with these timestamps.
        pub(crate) fn plain(timestamps: &[i64]) -> Spec {
            Spec {
                compression: Compression::None,
                records: timestamps
                    .iter()
                    .map(|&ts| (ts, format!("value at {ts}").into_bytes()))
                    .collect(),
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            }
        }

        pub(crate) fn compressed(mut self, compression: Compression) -> Spec {
            self.compression = compression;
            self
        }
    }

    pub(crate) const COMPRESSIONS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Encodes `spec` as one batch with baseOffset 0, as producers send it.
    pub(crate) fn encode(spec: &Spec) -> Bytes {
        let records: Vec<Record> = spec
            .records
            .iter()
            .enumerate()
            .map(|(i, (timestamp, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: spec.producer_id,
                producer_epoch: spec.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: spec.base_sequence.wrapping_add(i as i32),
                timestamp: *timestamp,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(value.clone())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: spec.compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode a test batch");
        buf.freeze()
    }

    /// Recomputes a batch's CRC after a test edited a covered field.
    pub(crate) fn reseal(batch: &mut [u8]) {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    pub(crate) fn specs() -> impl Strategy<Value = Spec> {
        let record = (
            0i64..2_000_000_000_000,
            prop::collection::vec(any::<u8>(), 0..40),
        );
        (
            prop::sample::select(COMPRESSIONS.to_vec()),
            prop::collection::vec(record, 1..8),
            prop_oneof![
                Just((-1i64, -1i16, -1i32)),
                (0i64..1 << 40, 0i16..10, 0i32..1000)
            ],
        )
            .prop_map(
                |(compression, records, (producer_id, producer_epoch, base_sequence))| Spec {
                    compression,
                    records,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                },
            )
    }
}

#[cfg(test)]
mod tests {
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
}
