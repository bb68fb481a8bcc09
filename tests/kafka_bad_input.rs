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
        1_700_000_000_000,
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
    let mut wrong_crc = wire::record_batch(&[(b"k4", b"bad crc")], 1_700_000_000_200);
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
    let again = wire::record_batch(&[(b"k5", b"after the corrupt ones")], 1_700_000_000_300);
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
    let batch = wire::record_batch(&[(b"k", b"v")], 1_700_000_000_000);
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
