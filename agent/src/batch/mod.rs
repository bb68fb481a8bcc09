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

mod inflate;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub(crate) use inflate::inflate;
