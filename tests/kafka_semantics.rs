//! Kafka behaviour clients rely on without saying so: a connection's requests take
//! effect in the order they were sent (pipelined asynchronous commits end at the last
//! one), and a Fetch answer stays within the request's byte limits.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::Playground;
use support::kafka::{self, PATIENCE, Record};
use support::protocol::Connection;

fn group_id(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The reproduction, with librdkafka: 200 asynchronous commits sent back to
/// back, then a synchronous one. Kafka applies them in order, so the group's committed
/// offset is the last one; Weir used to apply them concurrently and end anywhere.
#[test]
fn the_last_of_many_pipelined_async_commits_is_the_committed_offset() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, "co", 1);
    for trial in 0..10 {
        let group = format!("async-commits-{trial}");
        let consumer: BaseConsumer = kafka::consumer_config(&bootstrap)
            .set("group.id", &group)
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition("co", 0);
        consumer.assign(&assignment).expect("assign");
        let at = |offset: i64| {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset("co", 0, Offset::Offset(offset))
                .expect("offset");
            list
        };
        for offset in 1..=200 {
            consumer
                .commit(&at(offset), CommitMode::Async)
                .expect("send an async commit");
        }
        consumer
            .commit(&at(201), CommitMode::Sync)
            .expect("sync commit");
        let committed = consumer
            .committed_offsets(at(0), PATIENCE)
            .expect("OffsetFetch");
        assert_eq!(
            committed.elements()[0].offset(),
            Offset::Offset(201),
            "trial {trial}: the committed offset is the last one committed"
        );
    }
}

/// One member's connection pipelines, without waiting for answers, rounds of an offset
/// commit, a heartbeat, a long-polling fetch of an empty partition and an offset fetch.
/// Each offset fetch sees exactly the commit sent just before it, every heartbeat
/// succeeds, and the fetches (which wait up to 300 ms each) hold nothing back.
#[test]
fn pipelined_commits_heartbeats_and_fetches_take_effect_in_the_order_sent() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, "mixed", 1);
    let mut connection = Connection::open(&bootstrap);

    let join = |member: &StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(group_id("pipelined"))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(member.clone())
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0")),
            ])
    };
    let first = connection.call(5, &join(&StrBytes::from_static_str("")));
    let joined = connection.call(5, &join(&first.member_id));
    assert_eq!(joined.error_code, 0, "join");
    let (member, generation) = (joined.member_id.clone(), joined.generation_id);
    let synced = connection.call(
        3,
        &SyncGroupRequest::default()
            .with_group_id(group_id("pipelined"))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default().with_member_id(member.clone()),
            ]),
    );
    assert_eq!(synced.error_code, 0, "sync");

    let commit = |offset: i64| {
        OffsetCommitRequest::default()
            .with_group_id(group_id("pipelined"))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member.clone())
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name("mixed"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset),
                    ]),
            ])
    };
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group_id("pipelined"))
        .with_generation_id(generation)
        .with_member_id(member.clone());
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(300)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name("mixed"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let offset_fetch = OffsetFetchRequest::default()
        .with_group_id(group_id("pipelined"))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(topic_name("mixed"))
                .with_partition_indexes(vec![0]),
        ]));

    const ROUNDS: i64 = 40;
    for offset in 1..=ROUNDS {
        connection.send(8, &commit(offset));
        connection.send(4, &heartbeat);
        connection.send(12, &fetch);
        connection.send(7, &offset_fetch);
    }
    for offset in 1..=ROUNDS {
        let committed = connection.receive::<OffsetCommitRequest>(8);
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "commit {offset}"
        );
        let beat = connection.receive::<HeartbeatRequest>(4);
        assert_eq!(beat.error_code, 0, "heartbeat after commit {offset}");
        let fetched = connection.receive::<FetchRequest>(12);
        assert_eq!(fetched.responses[0].partitions[0].error_code, 0, "fetch");
        let read = connection.receive::<OffsetFetchRequest>(7);
        assert_eq!(
            read.topics[0].partitions[0].committed_offset, offset,
            "the offset fetch sent after commit {offset} sees that commit"
        );
    }
    // And the group ends at the last commit.
    let read = connection.call(7, &offset_fetch);
    assert_eq!(read.topics[0].partitions[0].committed_offset, ROUNDS);
}

/// Three partitions of 300 KB records, produced fast enough that each partition's
/// records share objects: far more than a megabyte per partition in one index entry.
fn large_records(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<Record>> {
    kafka::create_topic(bootstrap, topic, 3);
    let producer: FutureProducer = kafka::producer_config(bootstrap)
        .set("linger.ms", "100")
        .set("message.max.bytes", "4000000")
        .create()
        .expect("producer");
    let mut written = BTreeMap::new();
    for partition in 0..3 {
        let records: Vec<Record> = (0..12)
            .map(|i| {
                Record::new(
                    format!("{partition}-{i}"),
                    vec![b'a' + (i % 26) as u8; 300_000],
                )
            })
            .collect();
        for outcome in kafka::produce(&producer, topic, Some(partition), &records) {
            outcome.expect("delivered");
        }
        written.insert(partition, records);
    }
    written
}

/// The sizes of the whole record batches in a fetched partition's records.
fn batch_sizes(records: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut at = 0;
    while at + 12 <= records.len() {
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("4 bytes"));
        let size = 12 + length as usize;
        assert!(at + size <= records.len(), "a fetch answers whole batches");
        sizes.push(size);
        at += size;
    }
    assert_eq!(at, records.len(), "a fetch answers whole batches");
    sizes
}

/// A Fetch of three partitions, each with megabytes from offset 0, with a total limit
/// of 1,000,000 bytes and a per-partition limit of 20,000,000 (the consumer):
/// the answer holds at most `max_bytes`, or exactly one batch if that one batch is
/// larger; with a per-partition limit below one batch, only the first partition with
/// records gets its one oversized batch.
#[test]
fn a_fetch_answer_stays_within_max_bytes_but_for_one_first_batch() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    large_records(&bootstrap, "large");
    let mut connection = Connection::open(&bootstrap);
    let fetch = |max_bytes: i32, partition_max_bytes: i32, from: [i64; 3]| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name("large"))
                    .with_partitions(
                        (0..3)
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(from[p as usize])
                                    .with_partition_max_bytes(partition_max_bytes)
                            })
                            .collect(),
                    ),
            ])
    };
    let sizes = |response: &kafka_protocol::messages::FetchResponse| -> Vec<Vec<usize>> {
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0, "partition {}", p.partition_index);
                batch_sizes(p.records.as_deref().unwrap_or_default())
            })
            .collect()
    };

    // The limits: 1,000,000 in all, 20,000,000 per partition.
    let answer = sizes(&connection.call(12, &fetch(1_000_000, 20_000_000, [0; 3])));
    let total: usize = answer.iter().flatten().sum();
    assert!(
        !answer[0].is_empty(),
        "the first partition has records: {answer:?}"
    );
    assert!(
        total <= 1_000_000 || (answer[0].len() == 1 && answer[1..].iter().all(Vec::is_empty)),
        "at most max_bytes, or one first batch: {answer:?}"
    );

    // Room for more than one batch: several whole batches, never past the limit.
    let answer = sizes(&connection.call(12, &fetch(5_000_000, 20_000_000, [0; 3])));
    let total: usize = answer.iter().flatten().sum();
    assert!(total <= 5_000_000, "{answer:?}");
    assert!(answer[0].len() > 1, "several batches fit: {answer:?}");

    // A per-partition limit below any batch: the first partition's first batch only.
    let answer = sizes(&connection.call(12, &fetch(50_000_000, 1_000, [0; 3])));
    assert_eq!(answer[0].len(), 1, "{answer:?}");
    assert!(answer[1].is_empty() && answer[2].is_empty(), "{answer:?}");

    // From the middle of the first partition: its batch holding offset 5 comes first.
    let response = connection.call(12, &fetch(1_000, 1_000, [5, 0, 0]));
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let base = i64::from_be_bytes(records[..8].try_into().expect("8 bytes"));
    let last_delta = i32::from_be_bytes(records[23..27].try_into().expect("4 bytes"));
    assert!(
        base <= 5 && 5 <= base + i64::from(last_delta),
        "the first batch answered holds offset 5: {base}..={}",
        base + i64::from(last_delta)
    );
}

/// librdkafka with the settings (`fetch.max.bytes` 1,000,000 and
/// `receive.message.max.bytes` 1,000,512, far below one partition's 3.6 MB) reads every
/// record of every partition; it used to get 9 MB answers, drop the connection and read
/// nothing.
#[test]
fn librdkafka_with_a_small_fetch_max_bytes_reads_every_large_record() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let written = large_records(&bootstrap, "large-read");
    let consumer: BaseConsumer = kafka::consumer_config(&bootstrap)
        .set("fetch.max.bytes", "1000000")
        .set("receive.message.max.bytes", "1000512")
        .set("max.partition.fetch.bytes", "20000000")
        .create()
        .expect("consumer");
    let ends: BTreeMap<i32, i64> = written.iter().map(|(p, r)| (*p, r.len() as i64)).collect();
    let consumed = kafka::consume_until(&consumer, "large-read", &ends);
    for (partition, records) in &written {
        let got: Vec<(i64, Option<&Vec<u8>>, bool)> = consumed[partition]
            .iter()
            .zip(records)
            .map(|(c, r)| (c.offset, c.record.key.as_ref(), c.record.value == r.value))
            .collect();
        let want: Vec<(i64, Option<&Vec<u8>>, bool)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (i as i64, r.key.as_ref(), true))
            .collect();
        assert_eq!(
            got, want,
            "partition {partition}: (offset, key, value as produced) of every record, in order"
        );
    }
}

/// ListOffsets v7's MAX_TIMESTAMP (-3): the offset and timestamp of the first record
/// holding the partition's largest timestamp, as Kafka answers it; an empty partition
/// answers -1 for both.
#[test]
fn list_offsets_max_timestamp_finds_the_first_record_with_the_largest_timestamp() {
    use kafka_protocol::messages::ListOffsetsRequest;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, "stamped", 2);
    let producer = kafka::producer(&bootstrap);
    // Separate sends, so the largest timestamp appears in two batches, and twice in the
    // first of them.
    let base = support::recent_ms();
    for timestamps in [&[5_000, 9_000, 7_000, 9_000][..], &[9_000, 8_000]] {
        let records: Vec<Record> = timestamps
            .iter()
            .map(|&ts| Record {
                timestamp: Some(base + ts),
                ..Record::new("k", format!("at {ts}"))
            })
            .collect();
        for outcome in kafka::produce(&producer, "stamped", Some(0), &records) {
            outcome.expect("delivered");
        }
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name("stamped"))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-3),
                    ListOffsetsPartition::default()
                        .with_partition_index(1)
                        .with_timestamp(-3),
                ]),
        ]);
    let response = Connection::open(&bootstrap).call(8, &request);
    let answers: Vec<(i16, i64, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset, p.timestamp))
        .collect();
    assert_eq!(
        answers,
        vec![(0, 1, base + 9_000), (0, -1, -1)],
        "partition 0: the first record at 9000 is offset 1; partition 1 is empty"
    );
}
