//! One module per Kafka API: `handle(ctx, header, version, request) -> response`.

pub mod api_versions;
pub mod configs;
pub mod delete_records;
pub mod describe_cluster;
pub mod fetch;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod topics;

use std::net::SocketAddr;

use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::context::Context;

/// A request past the part of its handling that must follow the connection's order.
#[derive(Debug)]
pub enum Admitted {
    Request(Box<RequestKind>),
    /// Its batches are already with the writer, in request order.
    Produce(produce::Prepared),
}

/// Runs, in request order on a connection, what must keep that order: a produce
/// request's hand-over of its batches to the writer.
pub async fn admit(ctx: &Context, body: RequestKind) -> Admitted {
    match body {
        RequestKind::Produce(r) => Admitted::Produce(produce::prepare(ctx, r).await),
        other => Admitted::Request(Box::new(other)),
    }
}

/// Handles an admitted request; `None` when no answer is due (produce with acks=0).
pub async fn dispatch(
    ctx: &Context,
    header: &RequestHeader,
    peer: SocketAddr,
    version: i16,
    admitted: Admitted,
) -> Option<ResponseKind> {
    let client_id = header.client_id.as_deref();
    let caller = groups::Caller { client_id, peer };
    let body = match admitted {
        Admitted::Produce(prepared) => return produce::answer(prepared).await.map(Into::into),
        Admitted::Request(body) => *body,
    };
    Some(match body {
        RequestKind::ApiVersions(_) => api_versions::handle().into(),
        RequestKind::Metadata(r) => metadata::handle(ctx, client_id, version, r).await.into(),
        RequestKind::Fetch(r) => fetch::handle(ctx, version, r).await.into(),
        RequestKind::ListOffsets(r) => list_offsets::handle(ctx, r).await.into(),
        RequestKind::CreateTopics(r) => topics::create(ctx, r).await.into(),
        RequestKind::DeleteTopics(r) => topics::delete(ctx, version, r).await.into(),
        RequestKind::CreatePartitions(r) => topics::create_partitions(ctx, r).await.into(),
        RequestKind::DescribeConfigs(r) => configs::describe(ctx, r).await.into(),
        RequestKind::IncrementalAlterConfigs(r) => configs::incremental_alter(ctx, r).await.into(),
        RequestKind::AlterConfigs(r) => configs::alter_replacing(ctx, r).await.into(),
        RequestKind::DeleteRecords(r) => delete_records::handle(ctx, r).await.into(),
        RequestKind::DescribeCluster(_) => describe_cluster::handle(ctx, client_id).await.into(),
        RequestKind::InitProducerId(r) => init_producer_id::handle(ctx, r).await.into(),
        RequestKind::FindCoordinator(r) => groups::find_coordinator(ctx, caller, version, r)
            .await
            .into(),
        RequestKind::JoinGroup(r) => groups::join(ctx, caller, version, r).await.into(),
        RequestKind::SyncGroup(r) => groups::sync(ctx, r).await.into(),
        RequestKind::Heartbeat(r) => groups::heartbeat(ctx, r).await.into(),
        RequestKind::LeaveGroup(r) => groups::leave(ctx, version, r).await.into(),
        RequestKind::OffsetCommit(r) => groups::offset_commit(ctx, r).await.into(),
        RequestKind::OffsetFetch(r) => groups::offset_fetch(ctx, version, r).await.into(),
        RequestKind::OffsetDelete(r) => groups::offset_delete(ctx, r).await.into(),
        RequestKind::DescribeGroups(r) => groups::describe(ctx, r).await.into(),
        RequestKind::ListGroups(r) => groups::list(ctx, r).await.into(),
        RequestKind::DeleteGroups(r) => groups::delete(ctx, r).await.into(),
        other => {
            // The version table admits only the APIs above; reaching here is a bug.
            tracing::error!(request = ?std::mem::discriminant(&other), "no handler for an admitted API");
            return None;
        }
    })
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
