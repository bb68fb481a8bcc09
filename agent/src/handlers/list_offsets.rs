//! ListOffsets: earliest, latest, by timestamp and the largest timestamp (v7's
//! MAX_TIMESTAMP) — the control plane finds the index entry, the agent finds the exact
//! record inside it.

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use weir_control_plane_api::data::OffsetSpec;
use weir_metadata::{Partition, TopicId};

use crate::batch;
use crate::context::Context;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(ctx: &Context, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        // A lookup that fails (the control plane unreachable) says nothing of whether
        // the topic exists: the answer is retriable, as Fetch's is, never UNKNOWN_TOPIC.
        let info = match ctx.topics.by_name(topic.name.0.as_str()).await {
            Ok(Some(info)) => Ok(info),
            Ok(None) => Err(ResponseError::UnknownTopicOrPartition),
            Err(e) => {
                tracing::warn!(topic = %topic.name.0, error = %e, "look up a topic for list offsets");
                Err(ResponseError::NotLeaderOrFollower)
            }
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let mut answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            match &info {
                Ok(info) if info.has_partition(Partition(partition.partition_index)) => {
                    match lookup(ctx, info.id, partition.partition_index, partition.timestamp).await
                    {
                        Ok((offset, timestamp)) => {
                            answer.offset = offset;
                            answer.timestamp = timestamp;
                        }
                        Err(code) => answer.error_code = code.code(),
                    }
                }
                Ok(_) => answer.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Err(code) => answer.error_code = code.code(),
            }
            tracing::debug!(
                topic = %topic.name.0,
                partition = partition.partition_index,
                asked = partition.timestamp,
                offset = answer.offset,
                timestamp = answer.timestamp,
                error_code = answer.error_code,
                "list offsets answer"
            );
            partitions.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The offset and timestamp a query asks for.
async fn lookup(
    ctx: &Context,
    topic: TopicId,
    partition: i32,
    timestamp: i64,
) -> Result<(i64, i64), ResponseError> {
    let spec = match timestamp {
        LATEST | LATEST_TIERED => OffsetSpec::Latest,
        EARLIEST | EARLIEST_LOCAL => OffsetSpec::Earliest,
        MAX_TIMESTAMP => OffsetSpec::MaxTimestamp,
        ts if ts >= 0 => OffsetSpec::Timestamp(ts),
        _ => return Err(ResponseError::InvalidRequest),
    };
    let answer = ctx
        .control
        .list_offset(topic, Partition(partition), spec)
        .await
        .map_err(|status| {
            tracing::warn!(error = %status, "list offsets");
            ResponseError::NotLeaderOrFollower
        })?
        .map_err(|refused| crate::error::kafka_error(refused.code as i32))?;
    let offset = answer.offset.map_or(-1, |o| o.0);
    let Some(entry) = answer.entry else {
        return Ok((offset, -1));
    };
    // The entry holds the first batch reaching the timestamp: find the record in it.
    let mut bytes = BytesMut::new();
    ctx.reader
        .read_entry(&entry, entry.base_offset, &mut bytes)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "read batches for a timestamp lookup");
            ResponseError::KafkaStorageError
        })?;
    // For the largest timestamp, the first record that carries it.
    let target = if timestamp == MAX_TIMESTAMP {
        entry.max_timestamp
    } else {
        timestamp
    };
    match batch::first_record_at_or_after(&bytes, target) {
        // An entry may start below the log start (DeleteRecords moves it inside one):
        // the answer is never below it.
        Ok(Some((found, ts))) => Ok((found.max(offset), ts)),
        Ok(None) => Ok((offset, entry.max_timestamp)),
        Err(e) => {
            tracing::warn!(error = %e, "decode batches for a timestamp lookup");
            Err(ResponseError::CorruptMessage)
        }
    }
}
