//! The group coordinator as members see it: Kafka's classic protocol (member ids,
//! generations, leaders, assignments), its errors, static membership, deadlines, and
//! state that survives a control-plane restart. Timeouts are shortened so the
//! deadlines pass in real time within a test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use weir_control_plane::clock::SystemClock;
use weir_control_plane::groups::{GroupConfig, GroupCoordinator};
use weir_control_plane::proto::{
    CommitOffsetsRequest, ErrorCode, GroupHeartbeatRequest, GroupOffsetsQuery, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeavingMember, MemberAssignment, PartitionOffset,
    ProtocolMetadata, SyncGroupRequest, TopicOffsets, TopicPartitions,
};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::Database;

const SESSION_MS: i32 = 1_000;
const REBALANCE_MS: i32 = 2_000;

fn config() -> ControlPlaneConfig {
    ControlPlaneConfig {
        groups: GroupConfig {
            min_session_timeout: Duration::from_millis(100),
            initial_rebalance_delay: Duration::from_millis(0),
            tick: Duration::from_millis(10),
            ..GroupConfig::default()
        },
        ..ControlPlaneConfig::default()
    }
}

async fn harness() -> Harness {
    Harness::start_with(config(), Arc::new(SystemClock)).await
}

fn join_request(group: &str, member: &str, metadata: &[u8]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![
            ProtocolMetadata {
                name: "range".into(),
                metadata: metadata.to_vec(),
            },
            ProtocolMetadata {
                name: "roundrobin".into(),
                metadata: metadata.to_vec(),
            },
        ],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        client_id: "test-client".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
        ..Default::default()
    }
}

fn code(error: i32) -> ErrorCode {
    ErrorCode::try_from(error).expect("a known error code")
}

/// The MEMBER_ID_REQUIRED round trip, then the real join.
async fn join_new(groups: &GroupCoordinator, group: &str, metadata: &[u8]) -> JoinGroupResponse {
    let first = groups
        .join(join_request(group, "", metadata))
        .await
        .expect("join");
    assert_eq!(code(first.error), ErrorCode::MemberIdRequired);
    assert!(first.member_id.starts_with("test-client-"), "{first:?}");
    groups
        .join(join_request(group, &first.member_id, metadata))
        .await
        .expect("join")
}

async fn sync(
    groups: &GroupCoordinator,
    group: &str,
    member: &str,
    generation: i32,
    assignments: Vec<(&str, &[u8])>,
) -> weir_control_plane::proto::SyncGroupResponse {
    sync_as(groups, group, member, None, generation, assignments).await
}

async fn sync_as(
    groups: &GroupCoordinator,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    assignments: Vec<(&str, &[u8])>,
) -> weir_control_plane::proto::SyncGroupResponse {
    groups
        .sync(SyncGroupRequest {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            instance_id: instance.map(Into::into),
            assignments: assignments
                .into_iter()
                .map(|(m, a)| MemberAssignment {
                    member_id: m.into(),
                    assignment: a.to_vec(),
                })
                .collect(),
            ..Default::default()
        })
        .await
        .expect("sync")
}

async fn heartbeat(
    groups: &GroupCoordinator,
    group: &str,
    member: &str,
    generation: i32,
) -> ErrorCode {
    let outcome = groups
        .heartbeat(GroupHeartbeatRequest {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            ..Default::default()
        })
        .await
        .expect("heartbeat");
    match outcome {
        Ok(()) => ErrorCode::None,
        Err(e) => e.code,
    }
}

/// A one-member group, stable: (member id, generation).
async fn stable_single(groups: &GroupCoordinator, group: &str) -> (String, i32) {
    let joined = join_new(groups, group, b"sub-a").await;
    assert_eq!(code(joined.error), ErrorCode::None, "{joined:?}");
    let synced = sync(
        groups,
        group,
        &joined.member_id,
        joined.generation,
        vec![(&joined.member_id, b"assign-a")],
    )
    .await;
    assert_eq!(code(synced.error), ErrorCode::None);
    (joined.member_id, joined.generation)
}

#[tokio::test]
async fn a_first_member_joins_leads_and_gets_its_assignment() {
    let h = harness().await;
    let groups = h.control_plane.groups();
    let joined = join_new(groups, "g", b"sub-a").await;
    assert_eq!(code(joined.error), ErrorCode::None);
    assert_eq!(joined.generation, 1);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(
        joined.protocol_name, "range",
        "the first protocol all members share"
    );
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata, b"sub-a");

    let synced = sync(
        groups,
        "g",
        &joined.member_id,
        1,
        vec![(&joined.member_id, b"assign-a")],
    )
    .await;
    assert_eq!(code(synced.error), ErrorCode::None);
    assert_eq!(synced.assignment, b"assign-a");
    assert_eq!(synced.protocol_name, "range");
    assert_eq!(
        heartbeat(groups, "g", &joined.member_id, 1).await,
        ErrorCode::None
    );

    let described = groups.describe(vec!["g".into()]).await.expect("describe");
    assert_eq!(described[0].state, "Stable");
    assert_eq!(described[0].members.len(), 1);
    assert_eq!(described[0].members[0].assignment, b"assign-a");
}

#[tokio::test]
async fn a_second_member_makes_the_group_rebalance_and_both_get_assignments() {
    let h = harness().await;
    let groups = h.control_plane.groups().clone();
    let (a, generation) = stable_single(&groups, "g").await;

    // B's join waits for A to join again.
    let b_first = groups
        .join(join_request("g", "", b"sub-b"))
        .await
        .expect("join");
    let b_id = b_first.member_id.clone();
    let b_join = tokio::spawn({
        let groups = groups.clone();
        let b_id = b_id.clone();
        async move { groups.join(join_request("g", &b_id, b"sub-b")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        heartbeat(&groups, "g", &a, generation).await,
        ErrorCode::RebalanceInProgress,
        "A learns of the rebalance from its heartbeat"
    );
    let a_join = groups
        .join(join_request("g", &a, b"sub-a"))
        .await
        .expect("join");
    let b_join = b_join.await.expect("task").expect("join");
    assert_eq!(a_join.generation, generation + 1);
    assert_eq!(b_join.generation, generation + 1);
    assert_eq!(a_join.leader, a, "the old leader stays leader");
    assert_eq!(a_join.members.len(), 2, "the leader learns every member");
    assert!(b_join.members.is_empty(), "followers learn no members");

    // B's sync waits for the leader's assignment.
    let b_sync = tokio::spawn({
        let groups = groups.clone();
        let b_id = b_id.clone();
        async move { sync(&groups, "g", &b_id, generation + 1, vec![]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !b_sync.is_finished(),
        "a follower's sync waits for the leader"
    );
    let a_sync = sync(
        &groups,
        "g",
        &a,
        generation + 1,
        vec![(&a, b"for-a"), (&b_id, b"for-b")],
    )
    .await;
    assert_eq!(a_sync.assignment, b"for-a");
    assert_eq!(b_sync.await.expect("task").assignment, b"for-b");
    assert_eq!(
        heartbeat(&groups, "g", &b_id, generation + 1).await,
        ErrorCode::None
    );

    // Operators see both generations.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.control_plane.metrics_registry())
        .expect("encode metrics");
    assert!(
        text.lines().any(|l| l == "weir_group_rebalances_total 2"),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_members_generations_and_protocols_get_kafkas_errors_and_change_nothing() {
    let h = harness().await;
    h.create_topic("t", 2).await;
    let groups = h.control_plane.groups();
    let (a, generation) = stable_single(groups, "g").await;

    assert_eq!(
        heartbeat(groups, "g", "nobody", generation).await,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        heartbeat(groups, "g", &a, generation + 7).await,
        ErrorCode::IllegalGeneration
    );
    let stranger = sync(groups, "g", "nobody", generation, vec![]).await;
    assert_eq!(code(stranger.error), ErrorCode::UnknownMemberId);
    let unknown = groups
        .join(join_request("g", "nobody", b"x"))
        .await
        .expect("join");
    assert_eq!(code(unknown.error), ErrorCode::UnknownMemberId);

    let mut other_type = join_request("g", "", b"x");
    other_type.protocol_type = "connect".into();
    let answer = groups.join(other_type).await.expect("join");
    assert_eq!(code(answer.error), ErrorCode::InconsistentGroupProtocol);

    let mut bad_session = join_request("g2", "", b"x");
    bad_session.session_timeout_ms = 10;
    let answer = groups.join(bad_session).await.expect("join");
    assert_eq!(code(answer.error), ErrorCode::InvalidSessionTimeout);

    let huge = "g".repeat(300 * 1024);
    let answer = groups
        .join(join_request(&huge, "", b"x"))
        .await
        .expect("join");
    assert_eq!(code(answer.error), ErrorCode::InvalidGroupId);
    let answer = groups.join(join_request("", "", b"x")).await.expect("join");
    assert_eq!(code(answer.error), ErrorCode::InvalidGroupId);

    let commit = |topic: &str, generation: i32, member: &str| CommitOffsetsRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        topics: vec![TopicOffsets {
            topic: topic.into(),
            partitions: vec![PartitionOffset {
                partition: 0,
                offset: 5,
                leader_epoch: -1,
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let answer = groups
        .commit_offsets(commit("no-such-topic", generation, &a))
        .await
        .expect("commit");
    assert_eq!(
        code(answer.topics[0].partitions[0].error),
        ErrorCode::UnknownTopic
    );
    // Kafka's rules for a classic group, each refusal leaving the offsets as they were.
    for (generation, member, wanted, why) in [
        (
            -1,
            "",
            ErrorCode::UnknownMemberId,
            "a commit from outside an active group names no member of it",
        ),
        (
            -1,
            a.as_str(),
            ErrorCode::IllegalGeneration,
            "a member without its generation",
        ),
        (
            generation - 1,
            a.as_str(),
            ErrorCode::IllegalGeneration,
            "a member at a fenced generation",
        ),
        (
            generation,
            "nobody",
            ErrorCode::UnknownMemberId,
            "a stranger at the current generation",
        ),
    ] {
        let answer = groups
            .commit_offsets(commit("t", generation, member))
            .await
            .expect("commit");
        assert_eq!(code(answer.error), wanted, "{why}");
    }

    // The group is as it was: the member heartbeats, and nothing was committed.
    assert_eq!(
        heartbeat(groups, "g", &a, generation).await,
        ErrorCode::None
    );
    let fetched = groups
        .fetch_offsets(vec![GroupOffsetsQuery {
            group_id: "g".into(),
            all_topics: true,
            ..Default::default()
        }])
        .await
        .expect("fetch");
    assert!(fetched[0].topics.is_empty(), "{fetched:?}");
    let described = groups.describe(vec!["g".into()]).await.expect("describe");
    assert_eq!(described[0].state, "Stable");
    assert_eq!(described[0].members.len(), 1);
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_is_dropped_and_the_rest_rebalance() {
    let h = harness().await;
    let groups = h.control_plane.groups().clone();
    let (a, generation) = stable_single(&groups, "g").await;
    let b = groups
        .join(join_request("g", "", b"sub-b"))
        .await
        .expect("join")
        .member_id;
    let b_join = tokio::spawn({
        let groups = groups.clone();
        let b = b.clone();
        async move { groups.join(join_request("g", &b, b"sub-b")).await }
    });
    let a_join = groups
        .join(join_request("g", &a, b"sub-a"))
        .await
        .expect("join");
    let b_join = b_join.await.expect("task").expect("join");
    let generation2 = a_join.generation;
    assert_eq!(generation2, generation + 1);
    sync(&groups, "g", &a, generation2, vec![(&a, b"a"), (&b, b"b")]).await;
    sync(&groups, "g", &b, b_join.generation, vec![]).await;

    // B goes silent; A keeps heartbeating and is told to rejoin once B's session ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let error = heartbeat(&groups, "g", &a, generation2).await;
        if error == ErrorCode::RebalanceInProgress {
            break;
        }
        assert_eq!(error, ErrorCode::None);
        assert!(
            tokio::time::Instant::now() < deadline,
            "B was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rejoined = groups
        .join(join_request("g", &a, b"sub-a"))
        .await
        .expect("join");
    assert_eq!(rejoined.generation, generation2 + 1);
    assert_eq!(rejoined.members.len(), 1, "only A is left");
    assert_eq!(
        heartbeat(&groups, "g", &b, generation2).await,
        ErrorCode::UnknownMemberId
    );

    // A leaves: the group is empty, and can then be deleted.
    let left = groups
        .leave(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![LeavingMember {
                member_id: a.clone(),
                ..Default::default()
            }],
        })
        .await
        .expect("leave");
    assert_eq!(code(left.members[0].error), ErrorCode::None);
    let described = groups.describe(vec!["g".into()]).await.expect("describe");
    assert_eq!(described[0].state, "Empty");
    let deleted = groups
        .delete(vec!["g".into(), "never".into()])
        .await
        .expect("delete");
    assert_eq!(code(deleted[0].error), ErrorCode::None);
    assert_eq!(code(deleted[1].error), ErrorCode::GroupIdNotFound);
    let described = groups.describe(vec!["g".into()]).await.expect("describe");
    assert_eq!(described[0].state, "Dead");
}

#[tokio::test]
async fn a_group_with_members_cannot_be_deleted() {
    let h = harness().await;
    let groups = h.control_plane.groups();
    stable_single(groups, "g").await;
    let deleted = groups.delete(vec!["g".into()]).await.expect("delete");
    assert_eq!(code(deleted[0].error), ErrorCode::NonEmptyGroup);
    let listed = groups.list(&["Stable".into()], &[]).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_id, "g");
    // Types are Kafka's group types, any case, not protocol types: what
    // `kafka-consumer-groups --list` sends (["Classic", "Consumer"]) lists the group.
    for (types, listed) in [
        (vec!["Classic".to_string(), "Consumer".to_string()], 1),
        (vec!["classic".to_string()], 1),
        (vec!["consumer".to_string()], 0),
        (vec!["share".to_string()], 0),
    ] {
        let found = groups.list(&[], &types).await.expect("list");
        assert_eq!(found.len(), listed, "types {types:?}");
    }
    assert!(
        groups
            .list(&["Empty".into()], &[])
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_static_member_rejoining_keeps_its_assignment_without_a_rebalance() {
    let h = harness().await;
    let groups = h.control_plane.groups().clone();
    let mut static_join = join_request("g", "", b"sub-s");
    static_join.instance_id = Some("instance-1".into());
    let s = groups.join(static_join.clone()).await.expect("join");
    assert_eq!(
        code(s.error),
        ErrorCode::None,
        "static members need no member-id round trip"
    );
    let generation = s.generation;
    let anonymous = sync(&groups, "g", &s.member_id, generation, vec![]).await;
    assert_eq!(
        code(anonymous.error),
        ErrorCode::FencedInstanceId,
        "a static member must say which instance it is"
    );
    let synced = sync_as(
        &groups,
        "g",
        &s.member_id,
        Some("instance-1"),
        generation,
        vec![(&s.member_id, b"for-s")],
    )
    .await;
    assert_eq!(code(synced.error), ErrorCode::None);

    // The same instance comes back (a restart) with the same subscription.
    let back = groups.join(static_join.clone()).await.expect("join");
    assert_eq!(code(back.error), ErrorCode::None);
    assert_eq!(back.generation, generation, "no rebalance");
    assert_ne!(back.member_id, s.member_id, "a fresh member id");
    let synced = sync_as(
        &groups,
        "g",
        &back.member_id,
        Some("instance-1"),
        generation,
        vec![],
    )
    .await;
    assert_eq!(synced.assignment, b"for-s", "its assignment is kept");

    // The old incarnation is fenced.
    let old = groups
        .heartbeat(GroupHeartbeatRequest {
            group_id: "g".into(),
            generation,
            member_id: s.member_id.clone(),
            instance_id: Some("instance-1".into()),
        })
        .await
        .expect("heartbeat");
    assert_eq!(old.expect_err("fenced").code, ErrorCode::FencedInstanceId);
}

#[tokio::test]
async fn offsets_and_the_stable_generation_survive_a_control_plane_restart() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = Arc::new(
        weir_metadata::EmbeddedStore::open(weir_metadata::EmbeddedConfig::new(dir.path()))
            .expect("open"),
    );
    let start = || async {
        ControlPlane::start(config(), Database::new(store.clone()))
            .await
            .expect("start")
    };
    let first = start().await;
    weir_control_plane::topics::create_topics(
        first.store(),
        vec![weir_control_plane::topics::TopicSpec {
            name: "t".into(),
            partitions: 3,
            ..Default::default()
        }],
        false,
    )
    .await
    .expect("create topic");
    let (a, generation) = stable_single(first.groups(), "g").await;
    let answer = first
        .groups()
        .commit_offsets(CommitOffsetsRequest {
            group_id: "g".into(),
            generation,
            member_id: a.clone(),
            topics: vec![TopicOffsets {
                topic: "t".into(),
                partitions: vec![
                    PartitionOffset {
                        partition: 0,
                        offset: 42,
                        leader_epoch: -1,
                        metadata: Some("m0".into()),
                        ..Default::default()
                    },
                    PartitionOffset {
                        partition: 2,
                        offset: 7,
                        leader_epoch: -1,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        })
        .await
        .expect("commit");
    assert!(answer.topics[0].partitions.iter().all(|p| p.error == 0));
    first.shutdown().await;

    let second = start().await;
    let groups = second.groups();
    assert_eq!(
        heartbeat(groups, "g", &a, generation).await,
        ErrorCode::None,
        "the member carries on in the same generation"
    );
    let fetched = groups
        .fetch_offsets(vec![GroupOffsetsQuery {
            group_id: "g".into(),
            topics: vec![TopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 1, 2],
            }],
            ..Default::default()
        }])
        .await
        .expect("fetch");
    let offsets: Vec<(i32, i64)> = fetched[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    assert_eq!(offsets, vec![(0, 42), (1, -1), (2, 7)]);
    assert_eq!(
        fetched[0].topics[0].partitions[0].metadata.as_deref(),
        Some("m0")
    );
    second.shutdown().await;
}

#[tokio::test]
async fn a_member_that_does_not_rejoin_in_time_is_left_behind() {
    let h = harness().await;
    let groups = h.control_plane.groups().clone();
    let (a, _) = stable_single(&groups, "g").await;
    let b_id = groups
        .join(join_request("g", "", b"sub-b"))
        .await
        .expect("join")
        .member_id;
    // A keeps heartbeating (so its session lives) but never joins again: the join
    // phase ends at the rebalance timeout without it.
    let keepalive = tokio::spawn({
        let groups = groups.clone();
        let a = a.clone();
        async move {
            loop {
                let _ = heartbeat(&groups, "g", &a, 1).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let b = groups
        .join(join_request("g", &b_id, b"sub-b"))
        .await
        .expect("join");
    keepalive.abort();
    assert_eq!(code(b.error), ErrorCode::None);
    assert_eq!(b.leader, b_id, "B leads the new generation alone");
    assert_eq!(b.members.len(), 1);
    assert_eq!(
        heartbeat(&groups, "g", &a, b.generation).await,
        ErrorCode::UnknownMemberId,
        "A was dropped at the end of the join phase"
    );
}

#[tokio::test]
async fn a_standby_control_plane_sends_members_to_the_active_one() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store = Arc::new(
        weir_metadata::EmbeddedStore::open(weir_metadata::EmbeddedConfig::new(dir.path()))
            .expect("open"),
    );
    let named = |instance: &str| ControlPlaneConfig {
        instance: instance.into(),
        ..config()
    };
    let active = ControlPlane::start(named("one"), Database::new(store.clone()))
        .await
        .expect("start");
    let standby = ControlPlane::start(named("two"), Database::new(store.clone()))
        .await
        .expect("start");

    let answer = standby
        .groups()
        .join(join_request("g", "", b"x"))
        .await
        .expect("join");
    assert_eq!(code(answer.error), ErrorCode::CoordinatorNotAvailable);
    let (member, generation) = stable_single(active.groups(), "g").await;
    assert_eq!(
        heartbeat(standby.groups(), "g", &member, generation).await,
        ErrorCode::CoordinatorNotAvailable,
        "the standby never serves a group, even one it could read"
    );
    assert_eq!(
        heartbeat(active.groups(), "g", &member, generation).await,
        ErrorCode::None
    );
    standby.shutdown().await;
    active.shutdown().await;
}

#[tokio::test]
async fn offsets_of_a_deleted_topic_are_not_those_of_its_namesake() {
    let h = harness().await;
    h.create_topic("t", 2).await;
    let groups = h.control_plane.groups();
    let commit = CommitOffsetsRequest {
        group_id: "g".into(),
        generation: -1,
        topics: vec![TopicOffsets {
            topic: "t".into(),
            partitions: vec![PartitionOffset {
                partition: 1,
                offset: 500,
                leader_epoch: -1,
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let answer = groups.commit_offsets(commit).await.expect("commit");
    assert_eq!(code(answer.topics[0].partitions[0].error), ErrorCode::None);
    let fetch = || async {
        groups
            .fetch_offsets(vec![GroupOffsetsQuery {
                group_id: "g".into(),
                topics: vec![TopicPartitions {
                    topic: "t".into(),
                    partitions: vec![1],
                }],
                ..Default::default()
            }])
            .await
            .expect("fetch")[0]
            .topics[0]
            .partitions[0]
            .offset
    };
    assert_eq!(fetch().await, 500);

    weir_control_plane::topics::delete_topics(
        h.control_plane.store(),
        &[weir_control_plane::topics::TopicRef::Name("t".into())],
    )
    .await
    .expect("delete topic");
    assert_eq!(fetch().await, -1, "the topic is gone");
    h.create_topic("t", 2).await;
    assert_eq!(
        fetch().await,
        -1,
        "a new topic of the same name starts without the old one's offsets"
    );
    let all = groups
        .fetch_offsets(vec![GroupOffsetsQuery {
            group_id: "g".into(),
            all_topics: true,
            ..Default::default()
        }])
        .await
        .expect("fetch");
    assert!(all[0].topics.is_empty(), "{all:?}");
}
