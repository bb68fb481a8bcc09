//! Bad input against a live `weir playground`, over raw TCP: each gets a Kafka error code
//! or a clean disconnect — never a hang, never a crash — and clients on other
//! connections keep producing and consuming throughout.

#[path = "support/mod.rs"]
mod support;

use std::net::Shutdown;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use support::Playground;
use support::kafka::{self, Record};
use support::wire::{self, Reply};

const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_VERSION: i16 = 35;

/// An rdkafka producer and consumer connected before the bad input, and checked after
/// it, together with fresh clients.
struct Witness {
    bootstrap: String,
    producer: FutureProducer,
    consumer: BaseConsumer,
    next_offset: i64,
}

const WITNESS: &str = "witness";

impl Witness {
    fn new(playground: &mut Playground) -> Witness {
        let bootstrap = playground.bootstrap();
        kafka::create_topic(&bootstrap, WITNESS, 1);
        let consumer = kafka::consumer(&bootstrap);
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(WITNESS, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let mut witness = Witness {
            producer: witness_producer(&bootstrap),
            consumer,
            bootstrap,
            next_offset: 0,
        };
        witness.check(playground, "before the bad input");
        witness
    }

    /// The connected clients still produce and consume, and so do new ones.
    fn check(&mut self, playground: &mut Playground, after: &str) {
        let running = playground.process.is_running();
        assert!(running, "the playground is still running {after}");
        let record = Record::new("witness", format!("produced {after}"));
        let acked = kafka::produce(
            &self.producer,
            WITNESS,
            Some(0),
            std::slice::from_ref(&record),
        );
        if !matches!(acked[..], [Ok((0, offset))] if offset == self.next_offset) {
            let running = playground.process.is_running();
            panic!(
                "a connected producer is acknowledged at offset {} {after}: got {acked:?}; \
                 the playground process is {}",
                self.next_offset,
                if running {
                    "still running"
                } else {
                    "gone (it crashed)"
                }
            );
        }
        let deadline = std::time::Instant::now() + kafka::PATIENCE;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "a connected consumer receives offset {} {after}",
                self.next_offset
            );
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) if message.offset() == self.next_offset => {
                    assert_eq!(
                        message.payload(),
                        record.value.as_deref(),
                        "a connected consumer reads the record {after}"
                    );
                    break;
                }
                Some(Ok(_)) | None => {}
                Some(Err(e)) => eprintln!("witness consumer error {after}: {e}"),
            }
        }
        self.next_offset += 1;

        let fresh = witness_producer(&self.bootstrap);
        let acked = kafka::produce(&fresh, WITNESS, Some(0), &[Record::new("fresh", after)]);
        assert!(
            matches!(acked[..], [Ok((0, offset))] if offset == self.next_offset),
            "a new producer is acknowledged at offset {} {after}: {acked:?}",
            self.next_offset
        );
        self.next_offset += 1;
        assert_eq!(
            kafka::watermarks(&kafka::consumer(&self.bootstrap), WITNESS, 0),
            (0, self.next_offset),
            "a new consumer's ListOffsets {after}"
        );
    }
}

/// A producer that gives up on a record after 15 s, so a dead server fails the test
/// sooner.
fn witness_producer(bootstrap: &str) -> FutureProducer {
    kafka::producer_config(bootstrap)
        .set("message.timeout.ms", "15000")
        .create()
        .expect("create a producer")
}

fn assert_closed(stream: &mut std::net::TcpStream, what: &str) {
    match wire::read_reply(stream) {
        Reply::Closed => {}
        Reply::Frame(frame) => {
            panic!("{what}: expected the connection closed, got a response {frame:?}")
        }
    }
}

/// Either a response carrying `correlation_id`, or a closed connection.
fn assert_answered_or_closed(stream: &mut std::net::TcpStream, correlation_id: i32, what: &str) {
    if let Reply::Frame(frame) = wire::read_reply(stream) {
        assert_eq!(
            frame.get(..4),
            Some(&correlation_id.to_be_bytes()[..]),
            "{what}: a response answers the request's correlation id"
        );
    }
}

#[test]
fn frame_lengths_over_the_maximum_or_negative_close_the_connection() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);

    // 2 GiB - 1 claimed, a few bytes sent: the server must not wait for (or allocate)
    // the rest.
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &[0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0]);
    assert_closed(&mut stream, "a 2 GiB frame length");
    witness.check(&mut playground, "a 2 GiB frame length");

    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &[0xff, 0xff, 0xff, 0xfe, 0, 18, 0, 0]);
    assert_closed(&mut stream, "a negative frame length");
    witness.check(&mut playground, "a negative frame length");
}

#[test]
fn garbage_bytes_close_the_connection() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);

    // An HTTP request: its first four bytes read as a ~1.1 GB frame length.
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n");
    assert_closed(&mut stream, "an HTTP request");
    witness.check(&mut playground, "an HTTP request");

    // A frame too short to hold a request header.
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &wire::frame(&[1, 2, 3]));
    assert_closed(&mut stream, "a 3-byte frame");
    witness.check(&mut playground, "a 3-byte frame");

    // Noise from a fixed seed, with a plausible length.
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(0x5e1f);
    let noise: Vec<u8> = (0..512)
        .map(|_| rand::Rng::random::<u8>(&mut rng))
        .collect();
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &wire::frame(&noise));
    let correlation_id = i32::from_be_bytes([noise[4], noise[5], noise[6], noise[7]]);
    assert_answered_or_closed(&mut stream, correlation_id, "512 random bytes");
    witness.check(&mut playground, "512 random bytes");
    // A Metadata v1 header followed by noise: a topic count of 2^31-1 and no topics.
    let mut body = wire::request_header(3, 1, 77);
    body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef]);
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &wire::frame(&body));
    assert_answered_or_closed(&mut stream, 77, "a Metadata request with a garbage body");
    witness.check(&mut playground, "a Metadata request with a garbage body");
}

#[test]
fn a_truncated_frame_then_close_is_a_clean_disconnect() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);

    let mut stream = wire::connect(&playground.bootstrap());
    let mut partial = 100i32.to_be_bytes().to_vec();
    partial.extend_from_slice(&wire::request_header(18, 0, 5));
    wire::send(&mut stream, &partial);
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_closed(&mut stream, "a truncated frame");
    witness.check(&mut playground, "a truncated frame followed by close");
}

#[test]
fn unknown_api_keys_and_versions() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);

    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(
        &mut stream,
        &wire::frame(&wire::request_header(12_345, 0, 7)),
    );
    assert_answered_or_closed(&mut stream, 7, "API key 12345");
    witness.check(&mut playground, "an unknown API key");

    // ApiVersions at a version the server does not know: as Kafka does (KIP-511), an
    // answer in v0 with UNSUPPORTED_VERSION and the versions it serves, on a connection
    // that stays open for the client's retry at v0.
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &wire::frame(&wire::request_header(18, 99, 8)));
    let Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("ApiVersions v99 is answered, not disconnected");
    };
    let (correlation_id, error, apis) = wire::parse_api_versions_v0(&frame);
    assert_eq!(
        (correlation_id, error),
        (8, UNSUPPORTED_VERSION),
        "ApiVersions v99"
    );
    for key in [0, 1, 2, 3, 18] {
        assert!(
            apis.iter().any(|(k, _, _)| *k == key),
            "ApiVersions v99: the answer lists API key {key} among {apis:?}"
        );
    }
    wire::send(&mut stream, &wire::frame(&wire::request_header(18, 0, 9)));
    let Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("the retry at ApiVersions v0 is answered on the same connection");
    };
    let (correlation_id, error, retry_apis) = wire::parse_api_versions_v0(&frame);
    assert_eq!((correlation_id, error), (9, 0), "ApiVersions v0 after v99");
    assert_eq!(retry_apis, apis, "both answers list the same versions");

    // A known API at a version out of range.
    let mut stream = wire::connect(&playground.bootstrap());
    wire::send(&mut stream, &wire::frame(&wire::request_header(0, 99, 10)));
    assert_answered_or_closed(&mut stream, 10, "Produce v99");
    witness.check(&mut playground, "unknown API keys and versions");
}

#[test]
fn a_produce_with_a_corrupt_crc_is_rejected_and_stores_nothing() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);
    let bootstrap = playground.bootstrap();
    let topic = "crc";
    kafka::create_topic(&bootstrap, topic, 1);
    let mut stream = wire::connect(&bootstrap);

    let good = wire::record_batch(
        &[(b"k0", b"intact"), (b"k1", b"intact too")],
        support::recent_ms(),
    );
    wire::send(&mut stream, &wire::produce_v3(1, topic, 0, &good));
    let Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("a valid hand-made Produce v3 is answered");
    };
    let (correlation_id, answers) = wire::parse_produce_v3(&frame);
    assert_eq!(correlation_id, 1);
    assert_eq!(
        answers,
        vec![wire::ProduceAnswer {
            topic: topic.into(),
            partition: 0,
            error_code: 0,
            base_offset: 0
        }],
        "the valid batch (the control) is stored at offset 0"
    );

    // A flipped bit in a record value, under the CRC.
    let mut flipped = wire::record_batch(
        &[(b"k2", b"corrupted"), (b"k3", b"lost")],
        1_700_000_000_100,
    );
    let last = flipped.len() - 3;
    flipped[last] ^= 0x20;
    // A wrong CRC field over intact records.
    let mut wrong_crc = wire::record_batch(&[(b"k4", b"bad crc")], support::recent_ms() + 200);
    wrong_crc[wire::BATCH_CRC_AT] ^= 0xff;
    for (correlation_id, batch, what) in [
        (2, &flipped, "a flipped bit"),
        (3, &wrong_crc, "a wrong CRC"),
    ] {
        wire::send(
            &mut stream,
            &wire::produce_v3(correlation_id, topic, 0, batch),
        );
        match wire::read_reply(&mut stream) {
            Reply::Frame(frame) => {
                let (got_id, answers) = wire::parse_produce_v3(&frame);
                assert_eq!(got_id, correlation_id);
                assert_eq!(answers.len(), 1);
                assert_eq!(
                    answers[0].error_code, CORRUPT_MESSAGE,
                    "{what}: the partition's answer is CORRUPT_MESSAGE, got {:?}",
                    answers[0]
                );
            }
            Reply::Closed => panic!("{what}: answered with an error code, not a disconnect"),
        }
    }

    // The connection still works, and only the valid batches are stored.
    let again = wire::record_batch(
        &[(b"k5", b"after the corrupt ones")],
        support::recent_ms() + 300,
    );
    wire::send(&mut stream, &wire::produce_v3(4, topic, 0, &again));
    let Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("a valid Produce after the corrupt ones is answered");
    };
    let (_, answers) = wire::parse_produce_v3(&frame);
    assert_eq!(
        (answers[0].error_code, answers[0].base_offset),
        (0, 2),
        "the next valid batch follows the first: nothing corrupt took an offset"
    );
    let consumer = kafka::consumer(&bootstrap);
    let ends = [(0, 3)].into_iter().collect();
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    let values: Vec<&[u8]> = consumed[&0]
        .iter()
        .map(|c| c.record.value.as_deref().expect("a value"))
        .collect();
    assert_eq!(
        values,
        vec![&b"intact"[..], b"intact too", b"after the corrupt ones"],
        "a consumer reads the valid records only"
    );
    assert_eq!(kafka::watermarks(&consumer, topic, 0), (0, 3));
    witness.check(&mut playground, "produces with corrupt CRCs");
}

#[test]
fn produce_to_a_missing_topic_without_auto_create_is_unknown_topic() {
    let mut playground = Playground::start_with(&["--no-auto-create-topics"], &[]);
    let mut witness = Witness::new(&mut playground);
    let bootstrap = playground.bootstrap();

    // Through librdkafka: the delivery report says the topic does not exist.
    let producer: FutureProducer = kafka::producer_config(&bootstrap)
        .set("topic.metadata.propagation.max.ms", "1000")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("create a producer");
    let outcome = kafka::produce(&producer, "missing", None, &[Record::new("k", "v")]);
    match &outcome[0] {
        Err(KafkaError::MessageProduction(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
        )) => {}
        other => panic!(
            "producing to a missing topic: expected an unknown-topic delivery error, got {other:?}"
        ),
    }

    // Raw Produce: UNKNOWN_TOPIC_OR_PARTITION for the missing topic, and for a partition
    // the witness topic does not have.
    let mut stream = wire::connect(&bootstrap);
    let batch = wire::record_batch(&[(b"k", b"v")], support::recent_ms());
    for (correlation_id, topic, partition) in [(1, "missing", 0), (2, WITNESS, 5)] {
        wire::send(
            &mut stream,
            &wire::produce_v3(correlation_id, topic, partition, &batch),
        );
        let Reply::Frame(frame) = wire::read_reply(&mut stream) else {
            panic!("Produce to {topic}/{partition} is answered, not disconnected");
        };
        let (_, answers) = wire::parse_produce_v3(&frame);
        assert_eq!(
            (answers[0].partition, answers[0].error_code),
            (partition, UNKNOWN_TOPIC_OR_PARTITION),
            "Produce to {topic}/{partition}"
        );
    }

    // Asking did not create it.
    let metadata = kafka::consumer(&bootstrap)
        .fetch_metadata(Some("missing"), kafka::PATIENCE)
        .expect("Metadata");
    assert_eq!(
        metadata.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        "the missing topic was not created"
    );
    witness.check(&mut playground, "produces to a missing topic");
}

/// What the agent must do with one malformed input.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Close the connection without an answer: what Kafka does with a request it
    /// cannot parse (an InvalidRequestException in its network layer).
    Closed,
    /// Answer the Produce (v3) with this error code for its one partition, and store
    /// nothing.
    ProduceError(i16),
    /// Store the batch: `records` records at the partition's end offset.
    Stored { records: i64 },
    /// Answer ApiVersions in v0 with this error code (KIP-511).
    ApiVersionsError(i16),
    /// Answer the Fetch (v11) with this many partitions, each with this error code and,
    /// for error 0, at least one batch.
    Fetched { partitions: usize, error: i16 },
}

struct Case {
    name: &'static str,
    /// The bytes sent on a fresh connection.
    send: Vec<u8>,
    /// Whether the client half-closes its side after sending.
    then_close: bool,
    expect: Expect,
}

fn case(name: &'static str, send: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        send,
        then_close: false,
        expect,
    }
}

const INVALID_RECORD: i16 = 87;
/// The topic the Produce cases write to; nothing but [`Expect::Stored`] may land there.
const BAD: &str = "bad-input";
const ID: i32 = 41;

/// A Produce v3 frame to `BAD`/0 carrying `records`.
fn produce(records: &[u8]) -> Vec<u8> {
    wire::produce_v3(ID, BAD, 0, records)
}

/// A Produce v3 frame to `topic`/0 with empty records and one of its i32 fields set
/// to `value`.
fn produce_with_i32_at(topic: &str, field: ProduceField, value: i32) -> Vec<u8> {
    let mut frame = wire::produce_v3(ID, topic, 0, &[]);
    let header = wire::request_header(0, 3, ID).len();
    // Frame length, header, transactional id (null), acks, timeout.
    let topics_at = 4 + header + 2 + 2 + 4;
    let at = match field {
        ProduceField::TopicCount => topics_at,
        ProduceField::RecordsLength => frame.len() - 4,
    };
    frame[at..at + 4].copy_from_slice(&value.to_be_bytes());
    frame
}

#[derive(Debug, Clone, Copy)]
enum ProduceField {
    TopicCount,
    RecordsLength,
}

/// Three records with 40-byte values: enough bytes that a record count of up to 17
/// passes the cheap room check, so only reading the records can catch a lying count.
fn three_records() -> Vec<u8> {
    wire::record_batch(
        &[
            (&b"k0"[..], &[b'a'; 40][..]),
            (&b"k1"[..], &[b'b'; 40][..]),
            (&b"k2"[..], &[b'c'; 40][..]),
        ],
        support::recent_ms(),
    )
}

/// `batch` with its recordsCount (and lastOffsetDelta, which must agree) set to `count`.
fn with_record_count(mut batch: Vec<u8>, count: i32) -> Vec<u8> {
    batch[wire::BATCH_RECORD_COUNT_AT..wire::BATCH_RECORD_COUNT_AT + 4]
        .copy_from_slice(&count.to_be_bytes());
    batch[wire::BATCH_LAST_OFFSET_DELTA_AT..wire::BATCH_LAST_OFFSET_DELTA_AT + 4]
        .copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
    wire::reseal(&mut batch);
    batch
}

/// `batch` with maxTimestamp -1, as Sarama before 1.27 sends it: the agent then reads
/// the records to compute it.
fn without_max_timestamp(mut batch: Vec<u8>) -> Vec<u8> {
    batch[wire::BATCH_MAX_TIMESTAMP_AT..wire::BATCH_MAX_TIMESTAMP_AT + 8]
        .copy_from_slice(&(-1i64).to_be_bytes());
    wire::reseal(&mut batch);
    batch
}

/// A producer's batch of `count` records compressed with `compression`.
fn compressed(compression: kafka_protocol::records::Compression, count: i64) -> Vec<u8> {
    use kafka_protocol::records::{
        Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<KafkaRecord> = (0..count)
        .map(|i| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // Consecutive, as the encoder wants within one batch.
            sequence: i as i32 - 1,
            timestamp: support::recent_ms() + i,
            key: None,
            // Varied enough that the codecs emit more than one block's worth of work.
            value: Some((0..200).map(|b| (b * i + b / 7) as u8).collect()),
            headers: Default::default(),
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("encode a batch");
    let batch = out.to_vec();
    assert_eq!(
        batch.len(),
        12 + i32::from_be_bytes(batch[8..12].try_into().expect("4 bytes")) as usize,
        "one batch of {count} records"
    );
    batch
}

/// A zstd batch of one well-formed record whose value is `value_len` zeros: a
/// decompression bomb of some 30 KB per GiB. The record is compressed as
/// it is written, a MiB at a time, never held whole.
fn zstd_zeros(value_len: usize) -> Vec<u8> {
    use std::io::Write;
    const ZSTD: i16 = 4;
    let mut fields = vec![0]; // attributes
    wire::put_varint(&mut fields, 0); // timestamp delta
    wire::put_varint(&mut fields, 0); // offset delta
    wire::put_varint(&mut fields, -1); // null key
    wire::put_varint(&mut fields, value_len as i64);
    let header_count = [0];
    let mut record = Vec::new();
    let length = fields.len() + value_len + header_count.len();
    wire::put_varint(&mut record, length as i64);
    record.extend_from_slice(&fields);

    let mut encoder = zstd::Encoder::new(Vec::new(), 3).expect("a zstd encoder");
    encoder.write_all(&record).expect("compress");
    let zeros = vec![0; 1 << 20];
    let mut left = value_len;
    while left > 0 {
        let chunk = left.min(zeros.len());
        encoder.write_all(&zeros[..chunk]).expect("compress");
        left -= chunk;
    }
    encoder.write_all(&header_count).expect("compress");
    let records = encoder.finish().expect("compress");

    let timestamp = support::recent_ms();
    let mut batch = wire::batch_around(&records, 1, timestamp, timestamp);
    batch[wire::BATCH_ATTRIBUTES_AT..wire::BATCH_ATTRIBUTES_AT + 2]
        .copy_from_slice(&ZSTD.to_be_bytes());
    wire::reseal(&mut batch);
    batch
}

/// `batch` with its compressed records cut in half, its length and CRC made right.
fn truncated_mid_stream(batch: Vec<u8>) -> Vec<u8> {
    let records = batch.len() - wire::BATCH_HEADER_LEN;
    let mut cut = batch[..wire::BATCH_HEADER_LEN + records / 2].to_vec();
    wire::fit_length(&mut cut);
    wire::reseal(&mut cut);
    cut
}

/// A header count, then `headers` headers of a 1-byte key and value.
fn headers(count: i64, present: usize) -> Vec<u8> {
    let mut out = Vec::new();
    wire::put_varint(&mut out, count);
    for _ in 0..present {
        wire::put_varint(&mut out, 1);
        out.push(b'h');
        wire::put_varint(&mut out, 1);
        out.push(b'v');
    }
    out
}

/// One uncompressed record with `headers`, in a batch with maxTimestamp set or not.
fn batch_with_headers(headers: &[u8], max_timestamp_set: bool) -> Vec<u8> {
    let base = support::recent_ms();
    let max = if max_timestamp_set { base } else { -1 };
    wire::batch_around(&wire::record(0, 0, b"value", headers), 1, base, max)
}

/// A Fetch v11 frame (max_wait 0) for `partitions` partitions of `topic` from offset 0.
fn fetch_v11(topic: &str, partitions: i32, max_bytes: i32, partition_max_bytes: i32) -> Vec<u8> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    (0..partitions)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_partition_max_bytes(partition_max_bytes)
                        })
                        .collect(),
                ),
        ]);
    let mut body = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(1)
        .with_request_api_version(11)
        .with_correlation_id(ID)
        .with_client_id(Some(StrBytes::from_static_str("weir-e2e-raw")))
        .encode(&mut body, 1)
        .expect("encode a header");
    request.encode(&mut body, 11).expect("encode a Fetch");
    wire::frame(&body)
}

fn cases() -> Vec<Case> {
    use kafka_protocol::records::Compression;
    let header = wire::request_header(0, 3, ID);
    let mut cases = vec![
        // The length prefix lies.
        Case {
            then_close: true,
            ..case(
                "a length prefix of 1 MiB, 30 bytes sent, then the client closes",
                [&(1i32 << 20).to_be_bytes()[..], &header, &[0; 8]].concat(),
                Expect::Closed,
            )
        },
        case(
            "a length prefix of 5: fewer bytes than a request header needs",
            wire::frame(&header[..5]),
            Expect::Closed,
        ),
        case(
            "a length prefix that cuts the header's client id short",
            wire::frame(&header[..12]),
            Expect::Closed,
        ),
        case(
            "a length prefix one byte short of a Produce's body",
            {
                let mut frame = produce(&three_records());
                let short = (frame.len() - 5) as i32;
                frame[..4].copy_from_slice(&short.to_be_bytes());
                frame.pop();
                frame
            },
            Expect::Closed,
        ),
        case(
            "a Produce over the 100 MiB request limit, refused from its length prefix",
            [&(100i32 * 1024 * 1024 + 1).to_be_bytes()[..], &header].concat(),
            Expect::Closed,
        ),
        // Negative sizes inside a request. Kafka's generated readers refuse a negative
        // length for a field that is not nullable, and so does kafka-protocol.
        case(
            "a Produce whose topic array length is -5",
            produce_with_i32_at(BAD, ProduceField::TopicCount, -5),
            Expect::Closed,
        ),
        case(
            "a Produce whose topic name length is -5",
            {
                let mut frame = wire::produce_v3(ID, "", 0, &[]);
                let at = 4 + header.len() + 2 + 2 + 4 + 4;
                frame[at..at + 2].copy_from_slice(&(-5i16).to_be_bytes());
                frame
            },
            Expect::Closed,
        ),
        // Kafka reads any negative length of the nullable records as null;
        // kafka-protocol refuses lengths below -1, so the agent closes. No client
        // sends this.
        case(
            "a Produce whose records length is -5",
            produce_with_i32_at(BAD, ProduceField::RecordsLength, -5),
            Expect::Closed,
        ),
        case(
            "a Produce with null records (length -1)",
            produce_with_i32_at(BAD, ProduceField::RecordsLength, -1),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "a request header whose client id length is -5",
            {
                let mut body = wire::request_header(3, 1, ID);
                body.truncate(8);
                body.extend_from_slice(&(-5i16).to_be_bytes());
                body.extend_from_slice(&(-1i32).to_be_bytes()); // Metadata v1: all topics
                wire::frame(&body)
            },
            Expect::Closed,
        ),
        // kafka-protocol reserves room for the whole array up front: address space
        // only, never touched, as the rest of the frame is not there.
        case(
            "a Fetch v4 whose topic array length is 2^31-1, in a 43-byte frame",
            {
                let mut body = wire::request_header(1, 4, ID);
                body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
                body.extend_from_slice(&0i32.to_be_bytes()); // max wait
                body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
                body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
                body.push(0); // isolation level
                body.extend_from_slice(&i32::MAX.to_be_bytes());
                wire::frame(&body)
            },
            Expect::Closed,
        ),
        case(
            "a Metadata v1 whose topic array length is -5 (only -1 means all topics)",
            {
                let mut body = wire::request_header(3, 1, ID);
                body.extend_from_slice(&(-5i32).to_be_bytes());
                wire::frame(&body)
            },
            Expect::Closed,
        ),
        // API keys and versions: Kafka closes the connection for a key it does not
        // know or a version it does not serve, except ApiVersions (KIP-511).
        case(
            "API key 12345",
            wire::frame(&wire::request_header(12_345, 0, ID)),
            Expect::Closed,
        ),
        case(
            "API key -1",
            wire::frame(&wire::request_header(-1, 0, ID)),
            Expect::Closed,
        ),
        case(
            "Produce v99",
            wire::frame(&wire::request_header(0, 99, ID)),
            Expect::Closed,
        ),
        case(
            "Produce v2, below the versions served (KIP-896)",
            {
                let mut frame = produce(&three_records());
                frame[6..8].copy_from_slice(&2i16.to_be_bytes());
                frame
            },
            Expect::Closed,
        ),
        case(
            "Fetch v18, one above the versions served",
            wire::frame(&wire::request_header(1, 18, ID)),
            Expect::Closed,
        ),
        case(
            "ApiVersions v99",
            wire::frame(&wire::request_header(18, 99, ID)),
            Expect::ApiVersionsError(UNSUPPORTED_VERSION),
        ),
    ];

    // Compressed records cut mid-stream, under a correct CRC. gzip, snappy and zstd
    // report the cut: CORRUPT_MESSAGE, Kafka's code for records that are "otherwise
    // corrupt". lz4's decoder ends the stream quietly, so the batch comes up short of
    // records: INVALID_RECORD, what Kafka answers records that end early.
    for (name, compression, code) in [
        (
            "gzip records cut mid-stream, CRC correct",
            Compression::Gzip,
            CORRUPT_MESSAGE,
        ),
        (
            "snappy records cut mid-stream, CRC correct",
            Compression::Snappy,
            CORRUPT_MESSAGE,
        ),
        (
            "lz4 records cut mid-stream, CRC correct",
            Compression::Lz4,
            INVALID_RECORD,
        ),
        (
            "zstd records cut mid-stream, CRC correct",
            Compression::Zstd,
            CORRUPT_MESSAGE,
        ),
    ] {
        cases.push(case(
            name,
            produce(&truncated_mid_stream(compressed(compression, 20))),
            Expect::ProduceError(code),
        ));
    }

    // A decompression bomb: records that inflate past the agent's limit of 128 MiB.
    // The agent holds a batch's records inflated while it checks them, so it refuses
    // these as too large rather than run out of memory.
    cases.push(case(
        "a zstd batch of some 30 KB whose one record inflates to 1 GiB",
        produce(&zstd_zeros(1 << 30)),
        Expect::ProduceError(MESSAGE_TOO_LARGE),
    ));

    // Record counts that lie under a correct CRC. Kafka's record iterator throws
    // InvalidRecordException ("Incorrect declared batch size, premature EOF reached" /
    // "records still remaining"), which it answers as INVALID_RECORD; its log
    // validator answers a count below 1 the same.
    cases.extend([
        case(
            "recordsCount 10, 3 records",
            produce(&with_record_count(three_records(), 10)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "recordsCount 3, 10 records",
            produce(&with_record_count(
                wire::record_batch(&[(&b"k"[..], &b"v"[..]); 10], support::recent_ms()),
                3,
            )),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "recordsCount -1",
            produce(&with_record_count(three_records(), -1)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "recordsCount i32::MAX",
            produce(&with_record_count(three_records(), i32::MAX)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "gzip batch with recordsCount 10, 3 records",
            produce(&with_record_count(compressed(Compression::Gzip, 3), 10)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "zstd batch with recordsCount 3, 10 records",
            produce(&with_record_count(compressed(Compression::Zstd, 10), 3)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        // Headers that the bytes cannot hold: refused before anything is allocated
        // for them.
        case(
            "a record with a header count of i32::MAX",
            produce(&batch_with_headers(&headers(i64::from(i32::MAX), 0), true)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "a record with a header count of i32::MAX, maxTimestamp unset",
            produce(&batch_with_headers(&headers(i64::from(i32::MAX), 0), false)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "a record whose header key length is 100 MB",
            produce(&batch_with_headers(
                &[&headers(1, 0)[..], &{
                    let mut key = Vec::new();
                    wire::put_varint(&mut key, 100_000_000);
                    key.extend_from_slice(b"short");
                    key
                }]
                .concat(),
                false,
            )),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "a record declaring 1,000 headers and holding 10",
            produce(&batch_with_headers(&headers(1_000, 10), true)),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "a record timestamp past i64::MAX, maxTimestamp unset",
            produce(&wire::batch_around(
                &wire::record(100, 0, b"late", &headers(0, 0)),
                1,
                i64::MAX - 5,
                -1,
            )),
            Expect::ProduceError(INVALID_RECORD),
        ),
        // The batch's framing.
        case(
            "batchLength 100 bytes longer than the batch",
            produce(&{
                let mut batch = three_records();
                let length = (batch.len() - 12 + 100) as i32;
                batch[8..12].copy_from_slice(&length.to_be_bytes());
                batch
            }),
            Expect::ProduceError(CORRUPT_MESSAGE),
        ),
        case(
            "batchLength 5 bytes shorter than the batch",
            produce(&{
                let mut batch = three_records();
                let length = (batch.len() - 12 - 5) as i32;
                batch[8..12].copy_from_slice(&length.to_be_bytes());
                batch
            }),
            Expect::ProduceError(CORRUPT_MESSAGE),
        ),
        // Produce v3+ must carry magic 2: Kafka answers INVALID_RECORD for magic 0
        // and 1, and CORRUPT_MESSAGE ("Invalid magic found in record") above 2.
        case(
            "magic 0",
            produce(&{
                let mut batch = three_records();
                batch[wire::BATCH_MAGIC_AT] = 0;
                batch
            }),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "magic 1",
            produce(&{
                let mut batch = three_records();
                batch[wire::BATCH_MAGIC_AT] = 1;
                batch
            }),
            Expect::ProduceError(INVALID_RECORD),
        ),
        case(
            "magic 3",
            produce(&{
                let mut batch = three_records();
                batch[wire::BATCH_MAGIC_AT] = 3;
                batch
            }),
            Expect::ProduceError(CORRUPT_MESSAGE),
        ),
        // baseOffset is the producer's to leave as it likes: the agent assigns offsets.
        case(
            "baseOffset i64::MAX",
            produce(&{
                let mut batch = three_records();
                batch[..8].copy_from_slice(&i64::MAX.to_be_bytes());
                batch
            }),
            Expect::Stored { records: 3 },
        ),
        case(
            "baseOffset i64::MAX, maxTimestamp unset",
            produce(&{
                let mut batch = without_max_timestamp(three_records());
                batch[..8].copy_from_slice(&i64::MAX.to_be_bytes());
                batch
            }),
            Expect::Stored { records: 3 },
        ),
        // Fetch limits: a negative limit is read as the smallest, and Kafka still
        // returns the first batch so that a consumer makes progress.
        case(
            "a Fetch with max_bytes -1",
            fetch_v11(WITNESS, 1, -1, 1 << 20),
            Expect::Fetched {
                partitions: 1,
                error: 0,
            },
        ),
        case(
            "a Fetch with partition_max_bytes -1",
            fetch_v11(WITNESS, 1, 1 << 20, -1),
            Expect::Fetched {
                partitions: 1,
                error: 0,
            },
        ),
        case(
            "a Fetch of 100,000 partitions of an unknown topic",
            fetch_v11("no-such-topic", 100_000, 1 << 20, 1 << 20),
            Expect::Fetched {
                partitions: 100_000,
                error: UNKNOWN_TOPIC_OR_PARTITION,
            },
        ),
    ]);
    cases
}

/// Decodes a Fetch v11 response: each partition's (error code, record bytes).
fn parse_fetch_v11(frame: &[u8]) -> (i32, Vec<(i16, usize)>) {
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let mut bytes = bytes::Bytes::copy_from_slice(frame);
    let header = ResponseHeader::decode(&mut bytes, 0).expect("a response header");
    let response = FetchResponse::decode(&mut bytes, 11).expect("a Fetch v11 response");
    let partitions = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.error_code, p.records.as_ref().map_or(0, |r| r.len())))
        .collect();
    (header.correlation_id, partitions)
}

/// Every malformed input of the table, each on a fresh connection: the agent answers
/// with the precise error code or closes the connection, stores nothing it refused,
/// and keeps serving the witness's clients after each.
#[test]
fn malformed_inputs_are_answered_precisely_and_harm_no_one_else() {
    let mut playground = Playground::start();
    let mut witness = Witness::new(&mut playground);
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, BAD, 1);
    let watcher = kafka::consumer(&bootstrap);
    let mut end = 0;
    for Case {
        name,
        send,
        then_close,
        expect,
    } in cases()
    {
        let mut stream = wire::connect(&bootstrap);
        wire::send(&mut stream, &send);
        if then_close {
            // The server may have closed already.
            let _ = stream.shutdown(Shutdown::Write);
        }
        let reply = wire::read_reply(&mut stream);
        match (expect, reply) {
            (Expect::Closed, Reply::Closed) => {}
            (Expect::ProduceError(code), Reply::Frame(frame)) => {
                let (correlation_id, answers) = wire::parse_produce_v3(&frame);
                assert_eq!(correlation_id, ID, "{name}");
                let got: Vec<(i32, i16, i64)> = answers
                    .iter()
                    .map(|a| (a.partition, a.error_code, a.base_offset))
                    .collect();
                assert_eq!(got, [(0, code, -1)], "{name}: the partition's answer");
            }
            (Expect::Stored { records }, Reply::Frame(frame)) => {
                let (_, answers) = wire::parse_produce_v3(&frame);
                let got: Vec<(i16, i64)> = answers
                    .iter()
                    .map(|a| (a.error_code, a.base_offset))
                    .collect();
                assert_eq!(got, [(0, end)], "{name}: stored at the partition's end");
                end += records;
            }
            (Expect::ApiVersionsError(code), Reply::Frame(frame)) => {
                let (correlation_id, error, apis) = wire::parse_api_versions_v0(&frame);
                assert_eq!((correlation_id, error), (ID, code), "{name}");
                assert!(
                    !apis.is_empty(),
                    "{name}: the answer lists the versions served"
                );
            }
            (Expect::Fetched { partitions, error }, Reply::Frame(frame)) => {
                let (correlation_id, answers) = parse_fetch_v11(&frame);
                assert_eq!(correlation_id, ID, "{name}");
                assert_eq!(
                    answers.len(),
                    partitions,
                    "{name}: every partition answered"
                );
                for (got, records) in answers {
                    assert_eq!(got, error, "{name}: a partition's error code");
                    if error == 0 {
                        assert!(records > 0, "{name}: the first batch is returned anyway");
                    }
                }
            }
            (expect, Reply::Closed) => {
                let running = playground.process.is_running();
                panic!(
                    "{name}: expected {expect:?}, but the connection was closed; the playground is {}",
                    if running {
                        "running"
                    } else {
                        "gone (it crashed)"
                    }
                )
            }
            (expect, Reply::Frame(frame)) => {
                panic!("{name}: expected {expect:?}, got a response {frame:?}")
            }
        }
        assert_eq!(
            kafka::watermarks(&watcher, BAD, 0),
            (0, end),
            "{name}: the partition holds only what was stored"
        );
        witness.check(&mut playground, &format!("after {name}"));
    }
    assert!(
        end > 0,
        "the table stored something, so the end offset check can fail"
    );
}
