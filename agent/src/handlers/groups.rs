//! The consumer-group APIs: FindCoordinator names an agent of the client's zone, and
//! every other group call is forwarded to the control plane's coordinator, so members
//! connected to different agents meet in one group. Its answers are mapped to Kafka's
//! error codes here.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use weir_control_plane_api::GROUP_TYPE;
use weir_control_plane_api::proto::{self, ErrorCode};

use super::{str_bytes, topic_name};
use crate::brokers::{Broker, client_zone};
use crate::context::Context;
use crate::error::kafka_error;

/// Kafka's FindCoordinator key types.
const GROUP_KEY: i8 = 0;

/// What a client connection tells the group calls about itself.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub client_id: Option<&'a str>,
    pub peer: SocketAddr,
}

/// The Kafka error for a control-plane call that failed as a whole: the coordinator
/// cannot be reached, so the client looks it up again and retries.
fn unreachable(status: &tonic::Status) -> (i16, Option<StrBytes>) {
    tracing::warn!(error = %status, "control plane group call");
    (
        ResponseError::CoordinatorNotAvailable.code(),
        Some(str_bytes(format!(
            "group coordinator: {}",
            status.message()
        ))),
    )
}

fn code(error: i32) -> i16 {
    match ErrorCode::try_from(error) {
        Ok(ErrorCode::None) => 0,
        _ => kafka_error(error).code(),
    }
}

fn message(text: String) -> Option<StrBytes> {
    (!text.is_empty()).then(|| str_bytes(text))
}

fn opt(s: Option<&StrBytes>) -> Option<String> {
    s.map(|s| s.to_string())
}

// ---- FindCoordinator ----

/// Every agent can serve every group (it forwards to the control plane), so the
/// coordinator is an agent of the client's zone chosen by the key's hash: a group's
/// members share connections without any cross-zone hop.
pub async fn find_coordinator(
    ctx: &Context,
    caller: Caller<'_>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let zone = client_zone(caller.client_id).unwrap_or(&ctx.config.zone);
    let brokers = ctx.brokers.in_zone(zone).await;
    let answer = |key: &str| -> Result<Broker, (i16, String)> {
        if request.key_type != GROUP_KEY {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!(
                    "key type {} is not served: Weir coordinates consumer groups, not transactions or share groups yet",
                    request.key_type
                ),
            ));
        }
        coordinator(&brokers, key).cloned().ok_or_else(|| {
            (
                ResponseError::CoordinatorNotAvailable.code(),
                "no agent is registered in this zone".to_string(),
            )
        })
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let base = Coordinator::default().with_key(key.clone());
                match answer(key) {
                    Ok(b) => base
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(str_bytes(b.host))
                        .with_port(b.port),
                    Err((code, text)) => base
                        .with_node_id(BrokerId(-1))
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(text))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match answer(&request.key) {
        Ok(b) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(b.node_id))
            .with_host(str_bytes(b.host))
            .with_port(b.port),
        Err((code, text)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_error_code(code)
            .with_error_message(Some(str_bytes(text))),
    }
}

/// The agent a group's members are sent to: spread by hash, the same on every agent.
fn coordinator<'a>(brokers: &'a [Broker], key: &str) -> Option<&'a Broker> {
    if brokers.is_empty() {
        return None;
    }
    let hash = crc32c::crc32c(key.as_bytes());
    Some(&brokers[(hash as usize) % brokers.len()])
}

// ---- JoinGroup, SyncGroup, Heartbeat, LeaveGroup ----

/// The topics a "consumer" member subscribes to, read from its subscription; empty
/// for other protocol types or undecodable metadata.
fn subscribed_topics(protocol_type: &str, request: &JoinGroupRequest) -> Vec<String> {
    if protocol_type != "consumer" {
        return Vec::new();
    }
    let mut topics: Vec<String> = Vec::new();
    for protocol in &request.protocols {
        let mut metadata = protocol.metadata.clone();
        if metadata.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        let _ = bytes::Buf::get_i16(&mut metadata);
        // Newer versions only add fields after the topics: decode as the newest known.
        let version = version.clamp(0, 3);
        if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
            for topic in subscription.topics {
                let topic = topic.to_string();
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
        }
    }
    topics
}

pub async fn join(
    ctx: &Context,
    caller: Caller<'_>,
    version: i16,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let protocol_type = request.protocol_type.to_string();
    let call = proto::JoinGroupRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: opt(request.group_instance_id.as_ref()),
        subscribed_topics: subscribed_topics(&protocol_type, &request),
        protocol_type,
        protocols: request
            .protocols
            .iter()
            .map(|p| proto::ProtocolMetadata {
                name: p.name.to_string(),
                metadata: p.metadata.to_vec(),
            })
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves as both.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        client_id: caller.client_id.unwrap_or_default().to_string(),
        client_host: format!("/{}", caller.peer.ip()),
        require_known_member_id: version >= 4,
        reason: opt(request.reason.as_ref()).unwrap_or_default(),
    };
    let answer = match ctx.control.groups.clone().join_group(call).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            let (error, _) = unreachable(&status);
            return JoinGroupResponse::default()
                .with_error_code(error)
                .with_generation_id(-1)
                .with_member_id(request.member_id);
        }
    };
    JoinGroupResponse::default()
        .with_error_code(code(answer.error))
        .with_generation_id(answer.generation)
        .with_protocol_type(
            (!answer.protocol_type.is_empty()).then(|| str_bytes(answer.protocol_type)),
        )
        .with_protocol_name(Some(str_bytes(answer.protocol_name)))
        .with_leader(str_bytes(answer.leader))
        .with_skip_assignment(answer.skip_assignment && version >= 9)
        .with_member_id(str_bytes(answer.member_id))
        .with_members(
            answer
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.instance_id.map(str_bytes))
                        .with_metadata(Bytes::from(m.metadata))
                })
                .collect(),
        )
}

pub async fn sync(ctx: &Context, request: SyncGroupRequest) -> SyncGroupResponse {
    let call = proto::SyncGroupRequest {
        group_id: request.group_id.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: opt(request.group_instance_id.as_ref()),
        protocol_type: opt(request.protocol_type.as_ref()),
        protocol_name: opt(request.protocol_name.as_ref()),
        assignments: request
            .assignments
            .iter()
            .map(|a| proto::MemberAssignment {
                member_id: a.member_id.to_string(),
                assignment: a.assignment.to_vec(),
            })
            .collect(),
    };
    match ctx.control.groups.clone().sync_group(call).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            SyncGroupResponse::default()
                .with_error_code(code(answer.error))
                .with_protocol_type(
                    (!answer.protocol_type.is_empty()).then(|| str_bytes(answer.protocol_type)),
                )
                .with_protocol_name(
                    (!answer.protocol_name.is_empty()).then(|| str_bytes(answer.protocol_name)),
                )
                .with_assignment(Bytes::from(answer.assignment))
        }
        Err(status) => SyncGroupResponse::default().with_error_code(unreachable(&status).0),
    }
}

pub async fn heartbeat(ctx: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let call = proto::GroupHeartbeatRequest {
        group_id: request.group_id.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: opt(request.group_instance_id.as_ref()),
    };
    let error = match ctx.control.groups.clone().heartbeat(call).await {
        Ok(answer) => code(answer.into_inner().error),
        Err(status) => unreachable(&status).0,
    };
    HeartbeatResponse::default().with_error_code(error)
}

pub async fn leave(ctx: &Context, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
    // v0–2 name one member at the top level; v3+ a batch (KIP-345).
    let members = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| proto::LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: opt(m.group_instance_id.as_ref()),
                reason: opt(m.reason.as_ref()).unwrap_or_default(),
            })
            .collect()
    } else {
        vec![proto::LeavingMember {
            member_id: request.member_id.to_string(),
            ..Default::default()
        }]
    };
    let call = proto::LeaveGroupRequest {
        group_id: request.group_id.to_string(),
        members,
    };
    let answer = match ctx.control.groups.clone().leave_group(call).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            return LeaveGroupResponse::default().with_error_code(unreachable(&status).0);
        }
    };
    if answer.error != ErrorCode::None as i32 {
        return LeaveGroupResponse::default().with_error_code(code(answer.error));
    }
    if version < 3 {
        let error = answer.members.first().map_or(0, |m| code(m.error));
        return LeaveGroupResponse::default().with_error_code(error);
    }
    LeaveGroupResponse::default().with_members(
        answer
            .members
            .into_iter()
            .map(|m| {
                MemberResponse::default()
                    .with_member_id(str_bytes(m.member_id))
                    .with_group_instance_id(m.instance_id.map(str_bytes))
                    .with_error_code(code(m.error))
            })
            .collect(),
    )
}

// ---- Offsets ----

pub async fn offset_commit(ctx: &Context, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let call = proto::CommitOffsetsRequest {
        group_id: request.group_id.to_string(),
        generation: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        instance_id: opt(request.group_instance_id.as_ref()),
        topics: request
            .topics
            .iter()
            .map(|t| proto::TopicOffsets {
                topic: t.name.to_string(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| proto::PartitionOffset {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: opt(p.committed_metadata.as_ref()),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
    };
    let answer = ctx
        .control
        .groups
        .clone()
        .commit_offsets(call)
        .await
        .map(tonic::Response::into_inner);
    // A refusal of the whole commit is every partition's error, as Kafka answers it.
    let whole = match &answer {
        Ok(a) if a.error != ErrorCode::None as i32 => Some(code(a.error)),
        Ok(_) => None,
        Err(status) => Some(unreachable(status).0),
    };
    let topics = match (whole, answer) {
        (None, Ok(answer)) => answer
            .topics
            .into_iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(topic_name(&t.topic))
                    .with_partitions(
                        t.partitions
                            .into_iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition)
                                    .with_error_code(code(p.error))
                            })
                            .collect(),
                    )
            })
            .collect(),
        (error, _) => {
            let error = error.unwrap_or_else(|| ResponseError::UnknownServerError.code());
            request
                .topics
                .iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect()
        }
    };
    OffsetCommitResponse::default().with_topics(topics)
}

pub async fn offset_fetch(
    ctx: &Context,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // v8+ ask for several groups at once; older versions for one, at the top level.
    let queries: Vec<proto::GroupOffsetsQuery> = if version >= 8 {
        request
            .groups
            .iter()
            .map(|g| {
                query(
                    &g.group_id,
                    g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                            .collect()
                    }),
                )
            })
            .collect()
    } else {
        vec![query(
            &request.group_id,
            request.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            }),
        )]
    };
    let call = proto::FetchOffsetsRequest {
        groups: queries.clone(),
    };
    let answers: Vec<proto::GroupOffsets> =
        match ctx.control.groups.clone().fetch_offsets(call).await {
            Ok(answer) => answer.into_inner().groups,
            Err(status) => {
                let error = unreachable(&status).0;
                let response = OffsetFetchResponse::default();
                return if version >= 8 {
                    response.with_groups(
                        queries
                            .into_iter()
                            .map(|q| {
                                OffsetFetchResponseGroup::default()
                                    .with_group_id(GroupId(str_bytes(q.group_id)))
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
                } else {
                    response.with_error_code(error)
                };
            }
        };
    if version >= 8 {
        return OffsetFetchResponse::default().with_groups(
            answers
                .into_iter()
                .map(|g| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(str_bytes(g.group_id)))
                        .with_error_code(code(g.error))
                        .with_topics(
                            g.topics
                                .into_iter()
                                .map(|t| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(topic_name(&t.topic))
                                        .with_partitions(
                                            t.partitions
                                                .into_iter()
                                                .map(|p| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(p.partition)
                                                        .with_committed_offset(p.offset)
                                                        .with_committed_leader_epoch(p.leader_epoch)
                                                        .with_metadata(p.metadata.map(str_bytes))
                                                        .with_error_code(code(p.error))
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    }
    let Some(group) = answers.into_iter().next() else {
        return OffsetFetchResponse::default()
            .with_error_code(ResponseError::UnknownServerError.code());
    };
    let error = code(group.error);
    let topics = group
        .topics
        .into_iter()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&t.topic))
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p.partition)
                                .with_committed_offset(p.offset)
                                .with_committed_leader_epoch(p.leader_epoch)
                                .with_metadata(p.metadata.map(str_bytes))
                                // Before v2 there is no top-level error: it goes on
                                // every partition.
                                .with_error_code(if version < 2 && error != 0 {
                                    error
                                } else {
                                    code(p.error)
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_error_code(error)
        .with_topics(topics)
}

fn query(group: &GroupId, topics: Option<Vec<(String, Vec<i32>)>>) -> proto::GroupOffsetsQuery {
    proto::GroupOffsetsQuery {
        group_id: group.to_string(),
        all_topics: topics.is_none(),
        topics: topics
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partitions)| proto::TopicPartitions { topic, partitions })
            .collect(),
    }
}

pub async fn offset_delete(ctx: &Context, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let call = proto::DeleteOffsetsRequest {
        group_id: request.group_id.to_string(),
        topics: request
            .topics
            .iter()
            .map(|t| proto::TopicPartitions {
                topic: t.name.to_string(),
                partitions: t.partitions.iter().map(|p| p.partition_index).collect(),
            })
            .collect(),
    };
    let answer = match ctx.control.groups.clone().delete_offsets(call).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            return OffsetDeleteResponse::default().with_error_code(unreachable(&status).0);
        }
    };
    OffsetDeleteResponse::default()
        .with_error_code(code(answer.error))
        .with_topics(
            answer
                .topics
                .into_iter()
                .map(|t| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(&t.topic))
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code(p.error))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

// ---- DescribeGroups, ListGroups, DeleteGroups ----

pub async fn describe(ctx: &Context, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let ids: Vec<String> = request.groups.iter().map(|g| g.to_string()).collect();
    let call = proto::DescribeGroupsRequest {
        group_ids: ids.clone(),
    };
    let groups = match ctx.control.groups.clone().describe_groups(call).await {
        Ok(answer) => answer
            .into_inner()
            .groups
            .into_iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_error_code(code(g.error))
                    .with_error_message(message(g.message))
                    .with_group_id(GroupId(str_bytes(g.group_id)))
                    .with_group_state(str_bytes(g.state))
                    .with_protocol_type(str_bytes(g.protocol_type))
                    .with_protocol_data(str_bytes(g.protocol_name))
                    .with_authorized_operations(i32::MIN)
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(m.instance_id.map(str_bytes))
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(Bytes::from(m.metadata))
                                    .with_member_assignment(Bytes::from(m.assignment))
                            })
                            .collect(),
                    )
            })
            .collect(),
        Err(status) => {
            let (error, text) = unreachable(&status);
            ids.into_iter()
                .map(|id| {
                    DescribedGroup::default()
                        .with_error_code(error)
                        .with_error_message(text.clone())
                        .with_group_id(GroupId(str_bytes(id)))
                        .with_authorized_operations(i32::MIN)
                })
                .collect()
        }
    };
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn list(ctx: &Context, request: ListGroupsRequest) -> ListGroupsResponse {
    let call = proto::ListGroupsRequest {
        states: request
            .states_filter
            .iter()
            .map(|s| s.to_string())
            .collect(),
        types: request.types_filter.iter().map(|s| s.to_string()).collect(),
    };
    match ctx.control.groups.clone().list_groups(call).await {
        Ok(answer) => ListGroupsResponse::default().with_groups(
            answer
                .into_inner()
                .groups
                .into_iter()
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(GroupId(str_bytes(g.group_id)))
                        .with_protocol_type(str_bytes(g.protocol_type))
                        .with_group_state(str_bytes(g.state))
                        .with_group_type(str_bytes(GROUP_TYPE))
                })
                .collect(),
        ),
        Err(status) => ListGroupsResponse::default().with_error_code(unreachable(&status).0),
    }
}

pub async fn delete(ctx: &Context, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = request.groups_names.iter().map(|g| g.to_string()).collect();
    let call = proto::DeleteGroupsRequest {
        group_ids: ids.clone(),
    };
    let results = match ctx.control.groups.clone().delete_groups(call).await {
        Ok(answer) => answer
            .into_inner()
            .results
            .into_iter()
            .map(|r| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(str_bytes(r.group_id)))
                    .with_error_code(code(r.error))
            })
            .collect(),
        Err(status) => {
            let error = unreachable(&status).0;
            ids.into_iter()
                .map(|id| {
                    DeletableGroupResult::default()
                        .with_group_id(GroupId(str_bytes(id)))
                        .with_error_code(error)
                })
                .collect()
        }
    };
    DeleteGroupsResponse::default().with_results(results)
}
