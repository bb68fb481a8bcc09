//! One module per Kafka API: `handle(ctx, header, version, request) -> response`.

pub mod api_versions;
pub mod configs;
pub mod describe_cluster;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod topics;

use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Request;
use crate::context::Context;

/// Handles a decoded request; `None` when no answer is due (produce with acks=0).
pub async fn dispatch(ctx: &Context, request: Request) -> Option<ResponseKind> {
    let Request {
        header,
        version,
        body,
        ..
    } = request;
    let client_id = header.client_id.as_deref();
    Some(match body {
        RequestKind::ApiVersions(_) => api_versions::handle().into(),
        RequestKind::Metadata(r) => metadata::handle(ctx, client_id, version, r).await.into(),
        RequestKind::Produce(r) => return produce::handle(ctx, r).await.map(Into::into),
        RequestKind::Fetch(r) => fetch::handle(ctx, version, r).await.into(),
        RequestKind::ListOffsets(r) => list_offsets::handle(ctx, r).await.into(),
        RequestKind::CreateTopics(r) => topics::create(ctx, r).await.into(),
        RequestKind::DeleteTopics(r) => topics::delete(ctx, version, r).await.into(),
        RequestKind::CreatePartitions(r) => topics::create_partitions(ctx, r).await.into(),
        RequestKind::DescribeConfigs(r) => configs::describe(ctx, r).await.into(),
        RequestKind::DescribeCluster(_) => describe_cluster::handle(ctx, client_id).await.into(),
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
