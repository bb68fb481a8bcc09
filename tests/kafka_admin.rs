//! Topic administration through a Kafka admin client (librdkafka): create (with Kafka's
//! errors for bad names, bad configs and existing topics), add partitions, describe
//! configs (set and default values), delete.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;
use support::Playground;
use support::kafka::{self, block_on};

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

#[test]
fn topics_are_created_grown_described_and_deleted() {
    let playground = Playground::start_with(&["--no-auto-create-topics"], &[]);
    let bootstrap = playground.bootstrap();
    let admin = kafka::admin(&bootstrap);

    let good =
        NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let bad_name = NewTopic::new("bad name!", 1, TopicReplication::Fixed(1));
    let bad_config =
        NewTopic::new("badconfig", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon");
    let created = block_on(admin.create_topics([&good, &bad_name, &bad_config], &options()))
        .expect("CreateTopics");
    assert_eq!(created[0], Ok("orders".to_string()));
    assert_eq!(
        created[1],
        Err(("bad name!".to_string(), RDKafkaErrorCode::InvalidTopic))
    );
    assert_eq!(
        created[2],
        Err(("badconfig".to_string(), RDKafkaErrorCode::InvalidConfig))
    );
    let again = block_on(admin.create_topics([&good], &options())).expect("CreateTopics");
    assert_eq!(
        again[0],
        Err(("orders".to_string(), RDKafkaErrorCode::TopicAlreadyExists))
    );

    let grown = block_on(admin.create_partitions([&NewPartitions::new("orders", 5)], &options()))
        .expect("CreatePartitions");
    assert_eq!(grown[0], Ok("orders".to_string()));
    let shrunk = block_on(admin.create_partitions([&NewPartitions::new("orders", 2)], &options()))
        .expect("CreatePartitions");
    assert_eq!(
        shrunk[0],
        Err(("orders".to_string(), RDKafkaErrorCode::InvalidPartitions))
    );
    let consumer = kafka::consumer(&bootstrap);
    let metadata = consumer
        .fetch_metadata(Some("orders"), kafka::PATIENCE)
        .expect("Metadata");
    assert_eq!(
        metadata.topics()[0].partitions().len(),
        5,
        "the topic has its new partitions"
    );

    let described =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic("orders")], &options()))
            .expect("DescribeConfigs");
    let resource = described[0].as_ref().expect("orders' configs");
    let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
    assert_eq!(
        value("retention.ms").as_deref(),
        Some("3600000"),
        "the value set at creation"
    );
    assert_eq!(
        value("cleanup.policy").as_deref(),
        Some("delete"),
        "Kafka's default"
    );
    assert_eq!(
        value("max.message.bytes").as_deref(),
        Some("1048588"),
        "Kafka's default"
    );
    let missing =
        block_on(admin.describe_configs([&ResourceSpecifier::Topic("missing")], &options()))
            .expect("DescribeConfigs");
    // The agent answers UNKNOWN_TOPIC_OR_PARTITION (confluent-kafka raises it); the Rust
    // wrapper of librdkafka 0.39 reports such a resource as empty rather than failed.
    assert!(
        missing[0].as_ref().map_or(true, |r| r.entries.is_empty()),
        "no configs for a topic that does not exist: {:?}",
        missing[0]
    );

    let deleted =
        block_on(admin.delete_topics(&["orders", "missing"], &options())).expect("DeleteTopics");
    assert_eq!(deleted[0], Ok("orders".to_string()));
    assert_eq!(
        deleted[1],
        Err((
            "missing".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    let after = consumer
        .fetch_metadata(None, kafka::PATIENCE)
        .expect("Metadata");
    assert!(
        after.topics().iter().all(|t| t.name() != "orders"),
        "the deleted topic is gone"
    );
}
