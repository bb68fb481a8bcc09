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

/// The configs shown applied with Kafka's meaning, by this file or (retention's) by
/// tests/kafka_lifecycle.rs: docs/topic-configs.md's "Applied" table must name exactly
/// these.
const APPLIED_AND_TESTED: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "max.decompressed.message.bytes",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "retention.bytes",
    "retention.ms",
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

/// Produces one record, keyed "k", to partition 0 with `timestamp` (or the client's
/// clock) and returns its offset or the error.
fn produce_one(
    producer: &FutureProducer,
    topic: &str,
    value: &[u8],
    timestamp: Option<i64>,
) -> Result<i64, KafkaError> {
    let mut record = FutureRecord::<str, [u8]>::to(topic)
        .partition(0)
        .key("k")
        .payload(value);
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
            records.push((
                message.timestamp(),
                message.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    records
}

#[test]
fn log_append_time_topics_give_every_record_the_append_time() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(
        &bootstrap,
        "appended",
        &[("message.timestamp.type", "LogAppendTime")],
    );
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
        produce_error(produce_one(
            &producer,
            "bounded",
            b"old",
            Some(now - 2 * HOUR)
        )),
        Some(RDKafkaErrorCode::InvalidTimestamp),
        "two hours before the agent's clock"
    );
    assert_eq!(
        produce_error(produce_one(
            &producer,
            "bounded",
            b"future",
            Some(now + 2 * HOUR)
        )),
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

/// Each batch stored in partition 0 of `topic`, read with a raw Fetch: (its length in
/// bytes, its codec).
fn stored_batches(bootstrap: &str, topic: &str) -> Vec<(usize, i16)> {
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
    let mut batches = Vec::new();
    let mut at = 0;
    while at + 23 <= records.len() {
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4 bytes"));
        let codec = i16::from_be_bytes(records[at + 21..at + 23].try_into().expect("2")) & 7;
        batches.push((12 + length as usize, codec));
        at += 12 + length as usize;
    }
    batches
}

fn stored_codecs(bootstrap: &str, topic: &str) -> Vec<i16> {
    stored_batches(bootstrap, topic)
        .into_iter()
        .map(|(_, codec)| codec)
        .collect()
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

/// Text that compresses, but better with more effort: words from a small vocabulary in
/// a fixed pseudo-random order.
fn compressible(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alder", "birch", "cedar", "dogwood", "elm", "fir", "ginkgo", "hazel", "ironwood",
        "juniper", "kapok", "larch", "maple", "nutmeg", "oak", "pine",
    ];
    let mut state: u32 = 12345;
    let mut text = Vec::with_capacity(len + 16);
    while text.len() < len {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        text.extend_from_slice(WORDS[(state >> 16) as usize % WORDS.len()].as_bytes());
        text.push(b' ');
    }
    text.truncate(len);
    text
}

/// A topic's `compression.<codec>.level` is the level Weir recompresses with: the same
/// uncompressed record is stored smaller in a topic at the codec's highest level than
/// at its lowest, and both read back as sent.
#[test]
fn compression_levels_set_how_hard_recompression_works() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let value = compressible(200_000);
    let producer = kafka::producer(&bootstrap);
    for (codec, low, high) in [("gzip", "1", "9"), ("lz4", "1", "17"), ("zstd", "1", "19")] {
        let level = format!("compression.{codec}.level");
        let mut sizes = Vec::new();
        for l in [low, high] {
            let topic = format!("{codec}-at-{l}");
            create(
                &bootstrap,
                &topic,
                &[("compression.type", codec), (&level, l)],
            );
            produce_one(&producer, &topic, &value, None).expect("produce");
            let stored = stored_batches(&bootstrap, &topic);
            assert_eq!(stored.len(), 1, "{topic}");
            sizes.push(stored[0].0);
            assert_eq!(
                consume(&bootstrap, &topic, 1)[0].1,
                value,
                "{topic} reads back"
            );
        }
        assert!(
            sizes[1] < sizes[0],
            "{codec}: level {high} stores {} bytes, level {low} {}",
            sizes[1],
            sizes[0]
        );
    }
    let bad = NewTopic::new("bad-level", 1, TopicReplication::Fixed(1))
        .set("compression.zstd.level", "23");
    let created =
        block_on(kafka::admin(&bootstrap).create_topics([&bad], &options())).expect("CreateTopics");
    assert_eq!(
        created[0],
        Err(("bad-level".to_string(), RDKafkaErrorCode::InvalidConfig)),
        "a level past the codec's range is refused"
    );
}

/// `max.decompressed.message.bytes` bounds a compressed record once inflated, and only a
/// compressed one (Kafka answers INVALID_RECORD).
#[test]
fn a_compressed_record_over_max_decompressed_message_bytes_is_refused() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(
        &bootstrap,
        "inflated",
        &[("max.decompressed.message.bytes", "512")],
    );
    let gzip: FutureProducer = kafka::producer_config(&bootstrap)
        .set("compression.codec", "gzip")
        .create()
        .expect("producer");
    assert_eq!(
        produce_error(produce_one(&gzip, "inflated", &[b'z'; 4_096], None)),
        Some(RDKafkaErrorCode::InvalidRecord),
        "a gzip record of 4 KB inflated"
    );
    assert_eq!(
        produce_error(produce_one(&gzip, "inflated", &[b'z'; 64], None)),
        None,
        "a small compressed record"
    );
    let plain = kafka::producer(&bootstrap);
    assert_eq!(
        produce_error(produce_one(&plain, "inflated", &[b'z'; 4_096], None)),
        None,
        "an uncompressed record of the same size"
    );
    let read: Vec<usize> = consume(&bootstrap, "inflated", 2)
        .into_iter()
        .map(|(_, v)| v.len())
        .collect();
    assert_eq!(read, vec![64, 4_096]);
}

/// A compacted topic refuses a record without a key, as Kafka does (compaction keeps the
/// last record of each key, so a keyless one could never be compacted).
#[test]
fn a_compacted_topic_refuses_records_without_a_key() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(&bootstrap, "compacted", &[("cleanup.policy", "compact")]);
    let producer = kafka::producer(&bootstrap);
    let keyless = FutureRecord::<(), [u8]>::to("compacted")
        .partition(0)
        .payload(b"no key");
    let outcome = block_on(producer.send(keyless, PATIENCE)).map_err(|(e, _)| e);
    assert_eq!(
        produce_error(outcome.map(|d| d.offset)),
        Some(RDKafkaErrorCode::InvalidRecord)
    );
    let keyed = FutureRecord::to("compacted")
        .partition(0)
        .key("k")
        .payload(b"keyed".as_slice());
    block_on(producer.send(keyed, PATIENCE))
        .map_err(|(e, _)| e)
        .expect("a keyed record is stored");
    assert_eq!(consume(&bootstrap, "compacted", 1)[0].1, b"keyed");
}

#[test]
fn configs_weir_cannot_honour_are_refused_and_every_other_is_documented() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let admin = kafka::admin(&bootstrap);
    let refused =
        NewTopic::new("tiered", 1, TopicReplication::Fixed(1)).set("remote.storage.enable", "true");
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

/// The topic's configs as DescribeConfigs shows them: (name, value, set explicitly).
fn described(bootstrap: &str, topic: &str) -> Vec<(String, Option<String>, bool)> {
    let described = block_on(
        kafka::admin(bootstrap).describe_configs([&ResourceSpecifier::Topic(topic)], &options()),
    )
    .expect("DescribeConfigs");
    let resource = described[0].as_ref().expect("configs");
    resource
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.value.clone(), !e.is_default))
        .collect()
}

fn value(configs: &[(String, Option<String>, bool)], name: &str) -> (Option<String>, bool) {
    configs
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, set)| (v.clone(), *set))
        .unwrap_or_else(|| panic!("{name} is described"))
}

/// IncrementalAlterConfigs by hand (librdkafka's Rust wrapper has only AlterConfigs):
/// `(name, operation, value)` with Kafka's operation codes (0 SET, 1 DELETE, 2 APPEND,
/// 3 SUBTRACT); returns the resource's (error code, message).
fn incremental_alter(
    bootstrap: &str,
    topic: &str,
    changes: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(
                    changes
                        .iter()
                        .map(|(name, op, value)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(name.to_string()))
                                .with_config_operation(*op)
                                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
    let response = Connection::open(bootstrap).call(1, &request);
    let resource = &response.responses[0];
    (
        resource.error_code,
        resource.error_message.as_ref().map(|m| m.to_string()),
    )
}

#[test]
fn incremental_alter_configs_sets_deletes_appends_and_subtracts_and_produce_follows() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(&bootstrap, "altered", &[("retention.ms", "3600000")]);

    // Four operations in one request, applied together.
    let (code, message) = incremental_alter(
        &bootstrap,
        "altered",
        &[
            ("message.timestamp.type", 0, Some("LogAppendTime")),
            ("retention.ms", 1, None),
            ("cleanup.policy", 2, Some("compact")),
            ("max.message.bytes", 0, Some("2000")),
        ],
        false,
    );
    assert_eq!((code, message), (0, None));
    let configs = described(&bootstrap, "altered");
    assert_eq!(
        value(&configs, "message.timestamp.type"),
        (Some("LogAppendTime".into()), true)
    );
    assert_eq!(
        value(&configs, "retention.ms"),
        (Some("604800000".into()), false),
        "DELETE: back to Kafka's default"
    );
    assert_eq!(
        value(&configs, "cleanup.policy"),
        (Some("delete,compact".into()), true),
        "APPEND to the default list"
    );
    // The agent's produce path follows the new configs.
    let producer = kafka::producer(&bootstrap);
    assert_eq!(
        produce_error(produce_one(&producer, "altered", &[1; 5_000], None)),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "the new max.message.bytes"
    );
    produce_one(&producer, "altered", b"stamped", Some(1_000_000)).expect("produce");
    let consumed = consume(&bootstrap, "altered", 1);
    assert!(
        matches!(consumed[0].0, Timestamp::LogAppendTime(t) if t > 1_000_000),
        "the new message.timestamp.type: {:?}",
        consumed[0].0
    );

    let (code, _) = incremental_alter(
        &bootstrap,
        "altered",
        &[("cleanup.policy", 3, Some("delete"))],
        false,
    );
    assert_eq!(code, 0);
    assert_eq!(
        value(&described(&bootstrap, "altered"), "cleanup.policy"),
        (Some("compact".into()), true),
        "SUBTRACT"
    );

    // Refused, naming the offending config; nothing of the request applied.
    for (changes, wanted, words) in [
        (
            vec![
                ("segment.ms", 0, Some("60000")),
                ("retention.ms", 0, Some("soon")),
            ],
            40,
            "retention.ms",
        ),
        (vec![("no.such.config", 0, Some("1"))], 40, "no.such.config"),
        (vec![("retention.ms", 2, Some("1"))], 40, "retention.ms"),
        (
            vec![("remote.storage.enable", 0, Some("true"))],
            40,
            "Weir does not support",
        ),
        (
            vec![("segment.ms", 0, Some("1")), ("segment.ms", 1, None)],
            42,
            "duplicate",
        ),
    ] {
        let (code, message) = incremental_alter(&bootstrap, "altered", &changes, false);
        assert_eq!(code, wanted, "{changes:?}: {message:?}");
        let message = message.unwrap_or_default();
        assert!(message.contains(words), "{changes:?}: {message}");
    }
    assert_eq!(
        value(&described(&bootstrap, "altered"), "segment.ms"),
        (Some("604800000".into()), false),
        "a refused request changes nothing"
    );
    let (code, _) = incremental_alter(&bootstrap, "altered", &[("segment.ms", 0, Some("1"))], true);
    assert_eq!(code, 0, "validate_only accepts a valid change");
    assert_eq!(
        value(&described(&bootstrap, "altered"), "segment.ms"),
        (Some("604800000".into()), false),
        "and applies nothing"
    );
    let (code, _) = incremental_alter(
        &bootstrap,
        "missing",
        &[("segment.ms", 0, Some("1"))],
        false,
    );
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

#[test]
fn alter_configs_through_librdkafka_replaces_the_topics_configs() {
    use rdkafka::admin::AlterConfig;
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    create(
        &bootstrap,
        "replaced",
        &[("retention.ms", "3600000"), ("segment.ms", "60000")],
    );
    let admin = kafka::admin(&bootstrap);
    let change = AlterConfig::new(ResourceSpecifier::Topic("replaced"))
        .set("retention.ms", "7200000")
        .set("max.message.bytes", "5000");
    let results = block_on(admin.alter_configs([&change], &options())).expect("AlterConfigs");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let configs = described(&bootstrap, "replaced");
    assert_eq!(
        value(&configs, "retention.ms"),
        (Some("7200000".into()), true)
    );
    assert_eq!(
        value(&configs, "max.message.bytes"),
        (Some("5000".into()), true)
    );
    assert_eq!(
        value(&configs, "segment.ms"),
        (Some("604800000".into()), false),
        "a config the request does not name goes back to its default"
    );

    // rdkafka 0.39's wrapper reports every resource of an AlterConfigs as altered (it
    // reads no per-resource error), so the refusal is read from the protocol itself.
    let bad = AlterConfig::new(ResourceSpecifier::Topic("replaced")).set("retention.ms", "soon");
    block_on(admin.alter_configs([&bad], &options())).expect("AlterConfigs");
    assert_eq!(
        value(&described(&bootstrap, "replaced"), "retention.ms"),
        (Some("7200000".into()), true),
        "an invalid value changes nothing"
    );
    use kafka_protocol::messages::AlterConfigsRequest;
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let response = Connection::open(&bootstrap).call(
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("replaced"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("soon"))),
                ]),
        ]),
    );
    let resource = &response.responses[0];
    assert_eq!(resource.error_code, 40, "INVALID_CONFIG");
    let message = resource.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("retention.ms"), "{message}");
}
