//! Topic configs do what Kafka's do, seen through librdkafka: LogAppendTime timestamps,
//! the timestamp bounds, a topic's max.message.bytes and compression.type; configs Weir
//! cannot honour are refused; and every config a client can describe is on the one
//! list in docs/topic-configs.md of what Weir does with it.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use support::Playground;
use support::kafka::{self, PATIENCE, block_on};
use support::protocol::Connection;

/// The configs this file shows applied with Kafka's meaning: docs/topic-configs.md's
/// "Applied" table must name exactly these.
const APPLIED_AND_TESTED: &[&str] = &[
    "compression.type",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
];

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn create(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (name, value) in configs {
        new = new.set(name, value);
    }
    let created =
        block_on(kafka::admin(bootstrap).create_topics([&new], &options())).expect("CreateTopics");
    assert_eq!(created[0], Ok(topic.to_string()), "create {topic}");
}

/// Produces one record to partition 0 with `timestamp` (or the client's clock) and
/// returns its offset or the error.
fn produce_one(
    producer: &FutureProducer,
    topic: &str,
    value: &[u8],
    timestamp: Option<i64>,
) -> Result<i64, KafkaError> {
    let mut record = FutureRecord::<(), [u8]>::to(topic).partition(0).payload(value);
    if let Some(timestamp) = timestamp {
        record = record.timestamp(timestamp);
    }
    block_on(producer.send(record, PATIENCE))
        .map(|delivery| delivery.offset)
        .map_err(|(e, _)| e)
}

fn produce_error(result: Result<i64, KafkaError>) -> Option<RDKafkaErrorCode> {
    match result {
        Ok(_) => None,
        Err(KafkaError::MessageProduction(code)) => Some(code),
        Err(other) => panic!("unexpected producer error: {other}"),
    }
}

/// Reads partition 0 of `topic` from offset 0 until `count` records came back, and
/// returns each one's timestamp and value.
fn consume(bootstrap: &str, topic: &str, count: usize) -> Vec<(Timestamp, Vec<u8>)> {
    let consumer: BaseConsumer = kafka::consumer_config(bootstrap)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut records = Vec::new();
    while records.len() < count {
        assert!(std::time::Instant::now() < deadline, "consume {topic}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            records.push((message.timestamp(), message.payload().unwrap_or_default().to_vec()));
        }
    }
    records
}

#[test]
fn log_append_time_topics_give_every_record_the_append_time() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(&bootstrap, "appended", &[("message.timestamp.type", "LogAppendTime")]);
    create(&bootstrap, "created", &[]);
    for codec in ["none", "lz4"] {
        let producer: FutureProducer = kafka::producer_config(&bootstrap)
            .set("compression.codec", codec)
            .create()
            .expect("producer");
        let before = now_ms();
        produce_one(&producer, "appended", codec.as_bytes(), Some(1_000_000)).expect("produce");
        produce_one(&producer, "created", codec.as_bytes(), Some(1_000_000)).expect("produce");
        let after = now_ms();
        let appended = consume(&bootstrap, "appended", if codec == "none" { 1 } else { 2 });
        let (timestamp, value) = appended.last().expect("a record");
        assert_eq!(value, codec.as_bytes());
        match timestamp {
            Timestamp::LogAppendTime(t) => assert!(
                (before..=after).contains(t),
                "{codec}: the append time {t} is when the agent took the record, \
                 between {before} and {after}, not the producer's 1000000"
            ),
            other => panic!("{codec}: a LogAppendTime topic's record has {other:?}"),
        }
        let created = consume(&bootstrap, "created", if codec == "none" { 1 } else { 2 });
        assert_eq!(
            created.last().expect("a record").0,
            Timestamp::CreateTime(1_000_000),
            "a CreateTime topic keeps the producer's timestamp"
        );
    }
}

#[test]
fn record_timestamps_outside_the_topics_bounds_are_refused() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    const HOUR: i64 = 3_600_000;
    create(
        &bootstrap,
        "bounded",
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    );
    let producer = kafka::producer(&bootstrap);
    let now = now_ms();
    assert_eq!(
        produce_error(produce_one(&producer, "bounded", b"old", Some(now - 2 * HOUR))),
        Some(RDKafkaErrorCode::InvalidTimestamp),
        "two hours before the agent's clock"
    );
    assert_eq!(
        produce_error(produce_one(&producer, "bounded", b"future", Some(now + 2 * HOUR))),
        Some(RDKafkaErrorCode::InvalidTimestamp),
        "two hours after"
    );
    assert_eq!(
        produce_error(produce_one(&producer, "bounded", b"now", None)),
        None,
        "a record timestamped now is accepted"
    );
    let consumed = consume(&bootstrap, "bounded", 1);
    assert_eq!(consumed[0].1, b"now", "only the accepted record is stored");
}

#[test]
fn a_batch_over_the_topics_max_message_bytes_is_refused() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(&bootstrap, "small", &[("max.message.bytes", "1000")]);
    let producer = kafka::producer(&bootstrap);
    assert_eq!(
        produce_error(produce_one(&producer, "small", &[7; 5_000], None)),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert_eq!(
        produce_error(produce_one(&producer, "small", &[7; 500], None)),
        None
    );
    assert_eq!(consume(&bootstrap, "small", 1)[0].1, vec![7; 500]);
}

/// The codec of each batch stored in partition 0 of `topic`, read with a raw Fetch.
fn stored_codecs(bootstrap: &str, topic: &str) -> Vec<i16> {
    let response = Connection::open(bootstrap).call(
        12,
        &FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    );
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut codecs = Vec::new();
    let mut at = 0;
    while at + 23 <= records.len() {
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4 bytes"));
        codecs.push(i16::from_be_bytes(records[at + 21..at + 23].try_into().expect("2")) & 7);
        at += 12 + length as usize;
    }
    codecs
}

#[test]
fn a_topic_with_a_compression_type_stores_batches_in_its_codec() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(&bootstrap, "zstd-topic", &[("compression.type", "zstd")]);
    create(&bootstrap, "producer-topic", &[]);
    let mut sent = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let producer: FutureProducer = kafka::producer_config(&bootstrap)
            .set("compression.codec", codec)
            .create()
            .expect("producer");
        let value = format!("compressed with {codec} ").repeat(20).into_bytes();
        produce_one(&producer, "zstd-topic", &value, None).expect("produce");
        produce_one(&producer, "producer-topic", &value, None).expect("produce");
        sent.push(value);
    }
    assert_eq!(
        stored_codecs(&bootstrap, "zstd-topic"),
        vec![4; 5],
        "every batch stored as zstd (codec 4), whatever the producer used"
    );
    assert_eq!(
        stored_codecs(&bootstrap, "producer-topic"),
        vec![0, 1, 2, 3, 4],
        "compression.type=producer keeps each producer's codec"
    );
    let read: Vec<Vec<u8>> = consume(&bootstrap, "zstd-topic", 5)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(read, sent, "the records read back are the ones produced");
}

#[test]
fn configs_weir_cannot_honour_are_refused_and_every_other_is_documented() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let admin = kafka::admin(&bootstrap);
    let refused = NewTopic::new("tiered", 1, TopicReplication::Fixed(1))
        .set("remote.storage.enable", "true");
    let created = block_on(admin.create_topics([&refused], &options())).expect("CreateTopics");
    assert_eq!(
        created[0],
        Err(("tiered".to_string(), RDKafkaErrorCode::InvalidConfig))
    );

    create(&bootstrap, "described", &[]);
    let described =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic("described")], &options()))
            .expect("DescribeConfigs");
    let names: BTreeSet<String> = described[0]
        .as_ref()
        .expect("configs")
        .entries
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert!(!names.is_empty());

    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/topic-configs.md"),
    )
    .expect("docs/topic-configs.md");
    let section = |heading: &str| -> BTreeSet<String> {
        doc.split("\n## ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("section {heading:?}"))
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| l.split('|').nth(1))
            .flat_map(|cell| cell.split(','))
            .map(|n| n.trim().trim_matches('`').to_string())
            .collect()
    };
    let applied = section("Applied");
    let met = section("Met by design");
    let not_yet = section("Stored, not yet enforced");
    for name in &names {
        assert!(
            applied.contains(name) || met.contains(name) || not_yet.contains(name),
            "{name} is accepted but docs/topic-configs.md does not say what Weir does with it"
        );
    }
    let tested: BTreeSet<String> = APPLIED_AND_TESTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        applied, tested,
        "each config documented as applied has a test in this file, and only those"
    );
}
