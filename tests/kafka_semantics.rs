//! Kafka behaviour clients rely on without saying so: a connection's requests take
//! effect in the order they were sent (pipelined asynchronous commits end at the last
//! one).

#[path = "support/mod.rs"]
mod support;

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
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::Playground;
use support::kafka::{self, PATIENCE};
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
