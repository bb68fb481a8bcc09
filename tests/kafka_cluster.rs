//! Weir as separate processes: `weir control-plane` and two `weir agent`s sharing one
//! `file://` bucket. Records produced by a client of one agent are read by a client of
//! the other, which finds them through the control plane's index and reads the objects
//! the first agent wrote. The agents are in different zones, so each client's Metadata
//! names only the agent it bootstrapped from: the write really goes through one agent
//! and the read through the other.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use rdkafka::consumer::Consumer;
use support::Cluster;
use support::kafka::{self, Record};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 4_000;

#[test]
fn records_produced_through_one_agent_are_consumed_through_another() {
    let cluster = Cluster::start(&["zone-a", "zone-b"]);
    let (writer, reader) = (&cluster.agents[0], &cluster.agents[1]);
    let topic = "shared";
    kafka::create_topic(&writer.bootstrap(), topic, PARTITIONS);

    // Each client sees only the agent of its zone, leading every partition.
    for agent in &cluster.agents {
        let client = kafka::consumer(&agent.bootstrap());
        let metadata = client
            .fetch_metadata(Some(topic), kafka::PATIENCE)
            .unwrap_or_else(|e| panic!("Metadata from the agent of {}: {e}", agent.zone));
        let brokers: Vec<(String, i32)> = metadata
            .brokers()
            .iter()
            .map(|b| (b.host().to_string(), b.port()))
            .collect();
        assert_eq!(
            brokers,
            vec![("127.0.0.1".to_string(), i32::from(agent.port))],
            "a client in {} is told of that zone's agent only",
            agent.zone
        );
        let broker_id = metadata.brokers()[0].id();
        let topics = metadata.topics();
        assert_eq!(topics.len(), 1);
        assert_eq!(
            topics[0].partitions().len(),
            PARTITIONS as usize,
            "the topic created through one agent has its {PARTITIONS} partitions at every agent"
        );
        assert!(
            topics[0]
                .partitions()
                .iter()
                .all(|p| p.leader() == broker_id),
            "the agent of {} leads every partition for its zone's clients",
            agent.zone
        );
    }

    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            key: Some(format!("key-{}", i % 100).into_bytes()),
            value: Some(format!("written through zone-a, record {i}").into_bytes()),
            headers: vec![("i".to_string(), Some(i.to_string().into_bytes()))],
            timestamp: Some(support::recent_ms() + i as i64),
        })
        .collect();
    let producer = kafka::producer(&writer.bootstrap());
    let mut expected: BTreeMap<i32, Vec<(i64, Record)>> = BTreeMap::new();
    for ((partition, offset), record) in kafka::produce_ok(&producer, topic, None, &records)
        .into_iter()
        .zip(&records)
    {
        expected
            .entry(partition)
            .or_default()
            .push((offset, record.clone()));
    }

    let consumer = kafka::consumer(&reader.bootstrap());
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let mut acked = expected.remove(&partition).unwrap_or_default();
        acked.sort_by_key(|(offset, _)| *offset);
        assert_eq!(
            kafka::watermarks(&consumer, topic, partition),
            (0, acked.len() as i64),
            "{topic}/{partition}: watermarks through the other agent"
        );
        ends.insert(partition, acked.len() as i64);
        expected.insert(partition, acked);
    }
    assert!(
        !support::process::files_under(&cluster.bucket_dir).is_empty(),
        "the objects are in the shared bucket"
    );
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    for (partition, acked) in &expected {
        let records: Vec<Record> = acked.iter().map(|(_, r)| r.clone()).collect();
        kafka::assert_partition(topic, *partition, &consumed[partition], &records);
    }
}

/// The ports of the brokers a client of `bootstrap` is told about.
fn broker_ports(bootstrap: &str) -> Vec<i32> {
    let client = kafka::consumer(bootstrap);
    let metadata = client
        .fetch_metadata(None, kafka::PATIENCE)
        .unwrap_or_else(|e| panic!("Metadata from {bootstrap}: {e}"));
    let mut ports: Vec<i32> = metadata.brokers().iter().map(|b| b.port()).collect();
    ports.sort();
    ports
}

#[test]
fn an_agent_cut_off_from_the_control_plane_still_names_the_agents_it_last_knew() {
    let mut cluster = Cluster::start(&["zone-a", "zone-a"]);
    let mut both: Vec<i32> = cluster.agents.iter().map(|a| i32::from(a.port)).collect();
    both.sort();
    let bootstrap = cluster.agents[0].bootstrap();
    let deadline = std::time::Instant::now() + kafka::PATIENCE;
    while broker_ports(&bootstrap) != both {
        assert!(
            std::time::Instant::now() < deadline,
            "the agents never saw each other: {:?}",
            broker_ports(&bootstrap)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    cluster.control_plane.kill9();
    // Past the agent's 2 s cache of the list, so it asks the control plane and fails.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        broker_ports(&bootstrap),
        both,
        "an agent that cannot reach the control plane, and so cannot commit, must not \
         name itself the only broker and draw every producer to itself; its log:\n{}",
        cluster.agents[0].process.log_tail()
    );
}

#[test]
fn an_agent_cut_off_from_the_control_plane_answers_list_offsets_with_a_retriable_error() {
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut cluster = Cluster::start(&["zone-a", "zone-b"]);
    let topic = "offsets-while-cut-off";
    // Created through the first agent: the second has never looked the topic up.
    kafka::create_topic(&cluster.agents[0].bootstrap(), topic, 2);
    let readyz = format!("127.0.0.1:{}", cluster.agents[1].http_port);
    let (code, body) = support::http::get(&readyz, "/readyz");
    assert_eq!(
        code, 200,
        "an agent the control plane answers is ready: {body}"
    );
    cluster.control_plane.kill9();

    let mut connection = support::protocol::Connection::open(&cluster.agents[1].bootstrap());
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    [-2, -1]
                        .into_iter()
                        .enumerate()
                        .map(|(partition, timestamp)| {
                            ListOffsetsPartition::default()
                                .with_partition_index(partition as i32)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                ),
        ]);
    let response = connection.call(5, &request);
    // Its readiness follows: not ready once the control plane stops answering.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, body) = support::http::get(&readyz, "/readyz");
        if code == 503 {
            assert!(body.contains("has not answered"), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent still says it is ready a minute after the control plane died: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let answers: Vec<(i32, i16, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.offset))
        .collect();
    let retriable = ResponseError::NotLeaderOrFollower.code();
    assert_eq!(
        answers,
        vec![(0, retriable, -1), (1, retriable, -1)],
        "an agent that cannot reach the control plane cannot say whether the topic exists: \
         its answer must be retriable (clients refresh metadata and ask again), not \
         UNKNOWN_TOPIC_OR_PARTITION; its log:\n{}",
        cluster.agents[1].process.log_tail()
    );
}
