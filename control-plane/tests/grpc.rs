//! The gRPC API as an agent or an admin tool meets it: authentication, per-item
//! errors, topics, commits, index reads, the watermark watch and the agent registry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use futures::StreamExt;
use tonic::Code;
use weir_control_plane::ControlPlaneConfig;
use weir_control_plane::clock::ManualClock;
use weir_control_plane::proto::{self, ErrorCode};
use weir_control_plane::registry::RegistryConfig;
use weir_metadata::{ObjectId, TopicId};

fn spec(name: &str, partitions: i32, configs: &[(&str, &str)]) -> proto::TopicSpec {
    proto::TopicSpec {
        name: name.into(),
        partitions,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn code(result: &proto::TopicResult) -> ErrorCode {
    ErrorCode::try_from(result.error).expect("known code")
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_service_keeps_serving() {
    let config = ControlPlaneConfig {
        token: Some("s3cret".into()),
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(weir_control_plane::clock::SystemClock)).await;
    let (url, _stop) = h.serve().await;
    // The client checks its token when it connects, so a wrong one fails at start.
    for token in [Some("wrong"), None] {
        let err = weir_control_plane::ControlPlaneClient::connect(&url, token)
            .await
            .expect_err("refused");
        let message = err.to_string();
        assert!(
            message.contains("refused the token") && message.contains(&url),
            "{token:?}: {message}"
        );
    }
    let mut client = h.client(&url, Some("s3cret")).await;
    let listed = client
        .topics
        .list_topics(proto::ListTopicsRequest {})
        .await
        .expect("accepted");
    assert!(listed.into_inner().topics.is_empty());
}

#[tokio::test]
async fn topics_are_created_described_grown_and_deleted_with_per_topic_errors() {
    let h = Harness::start().await;
    let (url, _stop) = h.serve().await;
    let mut client = h.client(&url, None).await;

    let created = client
        .topics
        .create_topics(proto::CreateTopicsRequest {
            topics: vec![
                spec("orders", 3, &[("retention.ms", "3600000")]),
                spec("bad name!", 1, &[]),
                spec("zero", 0, &[]),
                spec("badconfig", 1, &[("retention.ms", "soon")]),
                spec("unknownconfig", 1, &[("no.such", "1")]),
            ],
            validate_only: false,
        })
        .await
        .expect("create")
        .into_inner()
        .results;
    let codes: Vec<_> = created.iter().map(code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::None,
            ErrorCode::InvalidTopicName,
            ErrorCode::InvalidPartitions,
            ErrorCode::InvalidConfig,
            ErrorCode::InvalidConfig
        ]
    );
    assert!(
        created[4]
            .message
            .contains("Unknown topic config name: no.such"),
        "{}",
        created[4].message
    );
    let orders = created[0].topic.clone().expect("topic");
    assert_eq!(orders.partitions, 3);
    assert_eq!(
        orders.configs.get("retention.ms").map(String::as_str),
        Some("3600000")
    );

    let again = client
        .topics
        .create_topics(proto::CreateTopicsRequest {
            topics: vec![spec("orders", 1, &[]), spec("dry", 1, &[])],
            validate_only: true,
        })
        .await
        .expect("create")
        .into_inner()
        .results;
    assert_eq!(code(&again[0]), ErrorCode::TopicAlreadyExists);
    assert!(again[0].message.contains("already exists"));
    assert_eq!(
        code(&again[1]),
        ErrorCode::None,
        "validate_only says it would work"
    );

    let listed = client
        .topics
        .list_topics(proto::ListTopicsRequest {})
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders"], "validate_only created nothing");

    let described = client
        .topics
        .describe_topics(proto::DescribeTopicsRequest {
            names: vec!["orders".into(), "missing".into()],
            ids: vec![orders.id.clone()],
        })
        .await
        .expect("describe")
        .into_inner()
        .results;
    assert_eq!(code(&described[0]), ErrorCode::None);
    assert_eq!(code(&described[1]), ErrorCode::UnknownTopic);
    assert_eq!(described[2].topic.as_ref().expect("by id").name, "orders");

    let grown = client
        .topics
        .create_partitions(proto::CreatePartitionsRequest {
            topics: vec![
                proto::PartitionIncrease {
                    name: "orders".into(),
                    total: 6,
                },
                proto::PartitionIncrease {
                    name: "orders".into(),
                    total: 2,
                },
                proto::PartitionIncrease {
                    name: "missing".into(),
                    total: 2,
                },
            ],
            validate_only: false,
        })
        .await
        .expect("grow")
        .into_inner()
        .results;
    assert_eq!(grown[0].topic.as_ref().expect("grown").partitions, 6);
    assert_eq!(code(&grown[1]), ErrorCode::InvalidPartitions);
    assert!(
        grown[1].message.contains("higher than the requested 2"),
        "{}",
        grown[1].message
    );
    assert_eq!(code(&grown[2]), ErrorCode::UnknownTopic);

    let deleted = client
        .topics
        .delete_topics(proto::DeleteTopicsRequest {
            names: vec!["orders".into(), "orders".into()],
            ids: vec![],
        })
        .await
        .expect("delete")
        .into_inner()
        .results;
    assert_eq!(code(&deleted[0]), ErrorCode::None);
    assert_eq!(code(&deleted[1]), ErrorCode::UnknownTopic, "already gone");

    let bad_id = client
        .topics
        .describe_topics(proto::DescribeTopicsRequest {
            names: vec![],
            ids: vec![vec![1, 2, 3]],
        })
        .await
        .expect_err("malformed id");
    assert_eq!(bad_id.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn commits_over_grpc_are_indexed_and_watched() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 2).await;
    let (url, _stop) = h.serve().await;
    let mut client = h.client(&url, None).await;
    let mut watch = client
        .index
        .watch_high_watermarks(proto::WatchHighWatermarksRequest {})
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("an update").expect("ok");
    assert!(first.resync, "a watch starts with a resync");

    let object_id = ObjectId::new();
    let batch = |partition, position, records| proto::BatchRef {
        topic_id: topic.as_bytes().to_vec(),
        partition,
        position,
        length: 100,
        record_count: records,
        max_timestamp: 1_700_000_000_000,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    let committed = client
        .sequencer
        .commit_object(proto::CommitObjectRequest {
            object_id: object_id.to_bytes().to_vec(),
            key: format!("data/{object_id}.weir"),
            size: 300,
            max_age_ms: 60_000,
            batches: vec![
                batch(0, 0, 10),
                batch(1, 100, 5),
                proto::BatchRef {
                    topic_id: vec![9; 3],
                    ..batch(0, 200, 1)
                },
            ],
        })
        .await
        .expect("commit")
        .into_inner()
        .results;
    assert_eq!(committed[0].base_offset, 0);
    assert_eq!(committed[1].base_offset, 0);
    assert_eq!(
        ErrorCode::try_from(committed[2].error),
        Ok(ErrorCode::UnknownTopic)
    );

    let update = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an advance arrives promptly")
        .expect("stream open")
        .expect("ok");
    let mut advances: Vec<_> = update
        .advances
        .iter()
        .map(|a| (a.partition, a.high_watermark))
        .collect();
    advances.sort();
    assert_eq!(advances, [(0, 10), (1, 5)]);

    let index = client
        .index
        .read_index(proto::ReadIndexRequest {
            partitions: vec![
                proto::PartitionRead {
                    topic_id: topic.as_bytes().to_vec(),
                    partition: 0,
                    from_offset: 3,
                    max_bytes: 1 << 20,
                },
                proto::PartitionRead {
                    topic_id: vec![1],
                    partition: 0,
                    from_offset: 0,
                    max_bytes: 1,
                },
                proto::PartitionRead {
                    topic_id: TopicId::random().as_bytes().to_vec(),
                    partition: 0,
                    from_offset: 0,
                    max_bytes: 1,
                },
            ],
        })
        .await
        .expect("read index")
        .into_inner()
        .partitions;
    assert_eq!(index[0].high_watermark, 10);
    assert_eq!(index[0].entries.len(), 1);
    assert_eq!(index[0].entries[0].object_id, object_id.to_bytes().to_vec());
    assert_eq!(
        ErrorCode::try_from(index[1].error),
        Ok(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        ErrorCode::try_from(index[2].error),
        Ok(ErrorCode::UnknownTopic)
    );

    use proto::offset_query::Spec;
    let offsets = client
        .index
        .list_offsets(proto::ListOffsetsRequest {
            queries: vec![
                proto::OffsetQuery {
                    topic_id: topic.as_bytes().to_vec(),
                    partition: 0,
                    spec: Some(Spec::Latest(true)),
                },
                proto::OffsetQuery {
                    topic_id: topic.as_bytes().to_vec(),
                    partition: 0,
                    spec: Some(Spec::Timestamp(1_800_000_000_000)),
                },
                proto::OffsetQuery {
                    topic_id: topic.as_bytes().to_vec(),
                    partition: 0,
                    spec: None,
                },
            ],
        })
        .await
        .expect("list offsets")
        .into_inner()
        .answers;
    assert_eq!(offsets[0].offset, 10);
    assert_eq!(offsets[1].offset, -1, "no batch is that recent");
    assert_eq!(
        ErrorCode::try_from(offsets[2].error),
        Ok(ErrorCode::InvalidRequest)
    );

    let malformed = client
        .sequencer
        .commit_object(proto::CommitObjectRequest {
            object_id: vec![1, 2],
            ..Default::default()
        })
        .await
        .expect_err("bad object id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(
        malformed.message().contains("16-byte"),
        "{}",
        malformed.message()
    );

    // What garbage collection asks: committed objects say so, others do not.
    let never_committed = ObjectId::new();
    let checked = client
        .index
        .check_objects(proto::CheckObjectsRequest {
            object_ids: vec![
                never_committed.to_bytes().to_vec(),
                object_id.to_bytes().to_vec(),
            ],
        })
        .await
        .expect("check objects")
        .into_inner()
        .committed;
    assert_eq!(checked, [false, true]);
    let malformed = client
        .index
        .check_objects(proto::CheckObjectsRequest {
            object_ids: vec![vec![7; 3]],
        })
        .await
        .expect_err("bad object id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn agents_are_listed_while_they_heartbeat() {
    let clock = ManualClock::new(1_000_000);
    let config = ControlPlaneConfig {
        registry: RegistryConfig {
            heartbeat_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(5),
        },
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(clock.clone())).await;
    let (url, _stop) = h.serve().await;
    let mut client = h.client(&url, None).await;
    let register = |address: &str, zone: &str| proto::RegisterAgentRequest {
        address: address.into(),
        zone: zone.into(),
        version: "test".into(),
    };
    let a = client
        .agents
        .register_agent(register("10.0.0.1:9092", "az1"))
        .await
        .expect("register")
        .into_inner();
    assert_eq!(a.heartbeat_interval_ms, 1000);
    client
        .agents
        .register_agent(register("10.0.0.2:9092", "az2"))
        .await
        .expect("register");
    let bad = client
        .agents
        .register_agent(register("nowhere", "az1"))
        .await
        .expect_err("no port");
    assert_eq!(bad.code(), Code::InvalidArgument);

    let list = |zone: &str| proto::ListAgentsRequest { zone: zone.into() };
    let all = client
        .agents
        .list_agents(list(""))
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert_eq!(
        all.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(),
        ["10.0.0.1:9092", "10.0.0.2:9092"]
    );
    let az1 = client
        .agents
        .list_agents(list("az1"))
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert_eq!(az1.len(), 1);

    clock.advance_ms(4_000);
    client
        .agents
        .heartbeat(proto::HeartbeatRequest {
            agent_id: a.agent_id.clone(),
        })
        .await
        .expect("heartbeat");
    clock.advance_ms(2_000);
    let alive = client
        .agents
        .list_agents(list(""))
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert_eq!(
        alive.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(),
        ["10.0.0.1:9092"],
        "the silent agent expired"
    );

    clock.advance_ms(60_000);
    weir_control_plane::registry::prune(
        h.control_plane.store(),
        &RegistryConfig {
            heartbeat_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(5),
        },
    )
    .await
    .expect("prune");
    let gone = client
        .agents
        .heartbeat(proto::HeartbeatRequest {
            agent_id: a.agent_id,
        })
        .await
        .expect_err("pruned");
    assert_eq!(gone.code(), Code::NotFound);
    assert!(
        gone.message().contains("register again"),
        "{}",
        gone.message()
    );
}
