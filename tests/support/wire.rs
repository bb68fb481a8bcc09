//! Raw Kafka frames for the bad-input tests, which must send what no client library
//! would: a corrupt CRC, an unknown API key, a frame that lies about its length. Only
//! the few non-flexible request versions those tests need are encoded here, by the
//! protocol specification; the server decodes with `kafka-protocol`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a test waits for the server to answer or close a connection: the server
/// must do one or the other; a connection left hanging fails the test.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

pub fn connect(bootstrap: &str) -> TcpStream {
    let stream = TcpStream::connect(bootstrap).expect("connect to the Kafka listener");
    stream
        .set_read_timeout(Some(ANSWER_WITHIN))
        .expect("set a read timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// What the server did after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A response frame (without its length prefix).
    Frame(Vec<u8>),
    /// The connection was closed (end of stream or reset).
    Closed,
}

/// Reads one response frame, or notices that the server closed the connection. Panics if
/// the server does neither within [`ANSWER_WITHIN`].
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut length = [0u8; 4];
    if read_exact_or_closed(stream, &mut length).is_none() {
        return Reply::Closed;
    }
    let length = i32::from_be_bytes(length);
    assert!(
        (0..=100 << 20).contains(&length),
        "response frame length {length} is sane"
    );
    let mut frame = vec![0u8; length as usize];
    match read_exact_or_closed(stream, &mut frame) {
        None => panic!("the server closed the connection in the middle of a response"),
        Some(()) => Reply::Frame(frame),
    }
}

fn read_exact_or_closed(stream: &mut TcpStream, buf: &mut [u8]) -> Option<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return None;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "the server neither answered nor closed the connection within {ANSWER_WITHIN:?}"
                )
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read from the server: {e}"),
        }
    }
    Some(())
}

/// Writes all of `bytes`; a reset while writing (the server closed early) is fine.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    match stream.write_all(bytes).and_then(|()| stream.flush()) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
        Err(e) => panic!("write to the server: {e}"),
    }
}

/// A length-prefixed frame.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Request header v1: api key, version, correlation id, client id.
pub fn request_header(api_key: i16, api_version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&api_version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    put_string(&mut out, "weir-e2e-raw");
    out
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A zigzag varint, as records encode their lengths, deltas and header counts.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn put_varint_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// A RecordBatch v2 (magic 2, uncompressed, no producer id) of (key, value) records
/// with timestamps `timestamp`, `timestamp + 1`, …, with a correct CRC32C.
pub fn record_batch(records: &[(&[u8], &[u8])], timestamp: i64) -> Vec<u8> {
    idempotent_record_batch(records, timestamp, -1, -1, -1)
}

/// Like [`record_batch`], from an idempotent producer: its id, epoch and the sequence
/// of the first record.
pub fn idempotent_record_batch(
    records: &[(&[u8], &[u8])],
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Vec<u8> {
    let mut body = Vec::new(); // attributes .. end: what the CRC covers
    body.extend_from_slice(&0i16.to_be_bytes()); // attributes
    body.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes()); // lastOffsetDelta
    body.extend_from_slice(&timestamp.to_be_bytes()); // baseTimestamp
    body.extend_from_slice(&(timestamp + records.len() as i64 - 1).to_be_bytes()); // maxTimestamp
    body.extend_from_slice(&producer_id.to_be_bytes());
    body.extend_from_slice(&producer_epoch.to_be_bytes());
    body.extend_from_slice(&base_sequence.to_be_bytes());
    body.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for (i, (key, value)) in records.iter().enumerate() {
        let mut record = Vec::new();
        record.push(0); // attributes
        put_varint(&mut record, i as i64); // timestampDelta
        put_varint(&mut record, i as i64); // offsetDelta
        put_varint_bytes(&mut record, key);
        put_varint_bytes(&mut record, value);
        put_varint(&mut record, 0); // headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    batch.extend_from_slice(&((4 + 1 + 4 + body.len()) as i32).to_be_bytes()); // batchLength
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    batch.extend_from_slice(&body);
    batch
}

/// Offset of the CRC field in a RecordBatch.
pub const BATCH_CRC_AT: usize = 8 + 4 + 4 + 1;
/// Offsets of other RecordBatch header fields the bad-input tests edit.
pub const BATCH_LENGTH_AT: usize = 8;
pub const BATCH_MAGIC_AT: usize = 16;
pub const BATCH_ATTRIBUTES_AT: usize = 21;
pub const BATCH_LAST_OFFSET_DELTA_AT: usize = 23;
pub const BATCH_MAX_TIMESTAMP_AT: usize = 35;
pub const BATCH_RECORD_COUNT_AT: usize = 57;
/// Length of a RecordBatch header: where the records start.
pub const BATCH_HEADER_LEN: usize = 61;

/// Recomputes a batch's CRC-32C after an edit, so that only the edit is wrong.
pub fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_AT + 4..]);
    batch[BATCH_CRC_AT..BATCH_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets a batch's batchLength to what its bytes hold.
pub fn fit_length(batch: &mut [u8]) {
    let length = (batch.len() - 12) as i32;
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
}

/// One record as the v2 format encodes it, length first: `headers` is the header
/// count and headers, already encoded, so that tests can make them lie.
pub fn record(timestamp_delta: i64, offset_delta: i64, value: &[u8], headers: &[u8]) -> Vec<u8> {
    let mut body = vec![0]; // attributes
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, -1); // null key
    put_varint_bytes(&mut body, value);
    body.extend_from_slice(headers);
    let mut record = Vec::new();
    put_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    record
}

/// An uncompressed magic-2 batch around `records` (encoded by [`record`]) declaring
/// `record_count` records, with the given timestamps and a correct CRC.
pub fn batch_around(
    records: &[u8],
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
) -> Vec<u8> {
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    batch.extend_from_slice(&0i32.to_be_bytes()); // batchLength, below
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes
    batch.extend_from_slice(&(record_count.wrapping_sub(1)).to_be_bytes()); // lastOffsetDelta
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&max_timestamp.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    batch.extend_from_slice(&record_count.to_be_bytes());
    batch.extend_from_slice(records);
    fit_length(&mut batch);
    reseal(&mut batch);
    batch
}

/// A Produce v3 request frame (acks=-1) carrying `records` for one partition.
pub fn produce_v3(correlation_id: i32, topic: &str, partition: i32, records: &[u8]) -> Vec<u8> {
    let mut body = request_header(0, 3, correlation_id);
    body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    body.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    body.extend_from_slice(&30_000i32.to_be_bytes()); // timeout_ms
    body.extend_from_slice(&1i32.to_be_bytes()); // topics
    put_string(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes()); // partitions
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&(records.len() as i32).to_be_bytes());
    body.extend_from_slice(records);
    frame(&body)
}

/// An InitProducerId v0 request frame without a transactional id.
pub fn init_producer_id_v0(correlation_id: i32) -> Vec<u8> {
    let mut body = request_header(22, 0, correlation_id);
    body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional_id: null
    body.extend_from_slice(&60_000i32.to_be_bytes()); // transaction_timeout_ms
    frame(&body)
}

/// Decodes an InitProducerId v0 response: correlation id, error code, producer id and
/// epoch.
pub fn parse_init_producer_id_v0(frame: &[u8]) -> (i32, i16, i64, i16) {
    let mut r = Reader {
        bytes: frame,
        at: 0,
    };
    let correlation_id = r.i32();
    let _throttle = r.i32();
    let answer = (correlation_id, r.i16(), r.i64(), r.i16());
    assert_eq!(
        r.at,
        frame.len(),
        "the InitProducerId v0 response has no trailing bytes"
    );
    answer
}

/// One partition's answer in a Produce response.
#[derive(Debug, PartialEq, Eq)]
pub struct ProduceAnswer {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Decodes a Produce v3 response frame: its correlation id and partition answers.
pub fn parse_produce_v3(frame: &[u8]) -> (i32, Vec<ProduceAnswer>) {
    let mut r = Reader {
        bytes: frame,
        at: 0,
    };
    let correlation_id = r.i32();
    let mut answers = Vec::new();
    for _ in 0..r.i32() {
        let topic = r.string();
        for _ in 0..r.i32() {
            let partition = r.i32();
            let error_code = r.i16();
            let base_offset = r.i64();
            let _log_append_time = r.i64();
            answers.push(ProduceAnswer {
                topic: topic.clone(),
                partition,
                error_code,
                base_offset,
            });
        }
    }
    let _throttle = r.i32();
    assert_eq!(
        r.at,
        frame.len(),
        "the Produce v3 response has no trailing bytes"
    );
    (correlation_id, answers)
}

/// Decodes the start of an ApiVersions response: correlation id, error code, and the
/// (api key, min, max) list in the v0 layout (the layout a broker uses when it
/// rejects the request's version).
pub fn parse_api_versions_v0(frame: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let mut r = Reader {
        bytes: frame,
        at: 0,
    };
    let correlation_id = r.i32();
    let error_code = r.i16();
    let apis = (0..r.i32()).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    (correlation_id, error_code, apis)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self
            .bytes
            .get(self.at..self.at + N)
            .and_then(|s| s.try_into().ok())
            .unwrap_or_else(|| panic!("response truncated at byte {}: {:?}", self.at, self.bytes));
        self.at += N;
        out
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
    fn string(&mut self) -> String {
        let len = self.i16();
        assert!(len >= 0, "a non-null string");
        let bytes = self.bytes[self.at..self.at + len as usize].to_vec();
        self.at += len as usize;
        String::from_utf8(bytes).expect("UTF-8")
    }
}
