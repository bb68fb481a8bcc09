//! DeleteRecords (KIP-107): raises partitions' log start offsets, as Kafka Streams does
//! to purge its repartition topics. The control plane moves the log start and removes
//! the index entries below it (docs/lifecycle.md); the answer carries each partition's
//! new low watermark. Any agent answers for any partition: none leads.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use weir_metadata::{Offset, Partition};

use crate::context::Context;
use crate::error::kafka_error;

fn result(
    partition: i32,
    error: ResponseError,
    low_watermark: i64,
) -> DeleteRecordsPartitionResult {
    DeleteRecordsPartitionResult::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_low_watermark(low_watermark)
}

pub async fn handle(ctx: &Context, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let names: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let topics = ctx.topics.by_names(&names).await;
    // Partitions of known topics go to the control plane in one call; the rest are
    // answered here.
    let mut asks = Vec::new();
    let mut answers: Vec<Vec<Option<DeleteRecordsPartitionResult>>> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let mut row = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let answer = match &topics {
                Err(e) => {
                    tracing::warn!(error = %e, "resolve topics for DeleteRecords");
                    Some(result(
                        p.partition_index,
                        ResponseError::NotLeaderOrFollower,
                        -1,
                    ))
                }
                Ok(found) => match found[t].as_deref() {
                    Some(info) if info.has_partition(Partition(p.partition_index)) => {
                        asks.push((t, row.len(), info.id, p.partition_index, p.offset));
                        None
                    }
                    _ => Some(result(
                        p.partition_index,
                        ResponseError::UnknownTopicOrPartition,
                        -1,
                    )),
                },
            };
            row.push(answer);
        }
        answers.push(row);
    }
    if !asks.is_empty() {
        let deletions: Vec<_> = asks
            .iter()
            .map(|&(_, _, topic, partition, offset)| (topic, Partition(partition), Offset(offset)))
            .collect();
        let outcomes = ctx.control.delete_records(&deletions).await;
        for (i, &(t, slot, _, partition, _)) in asks.iter().enumerate() {
            answers[t][slot] = Some(match &outcomes {
                Ok(outcomes) => match &outcomes[i] {
                    Ok(low) => {
                        result(partition, ResponseError::Unknown(0), low.0).with_error_code(0)
                    }
                    Err(refusal) => {
                        tracing::info!(partition, message = %refusal.message, "DeleteRecords refused");
                        result(partition, kafka_error(refusal.code as i32), -1)
                    }
                },
                Err(status) => {
                    tracing::warn!(error = %status, "DeleteRecords");
                    result(partition, ResponseError::NotLeaderOrFollower, -1)
                }
            });
        }
    }
    DeleteRecordsResponse::default().with_topics(
        request
            .topics
            .into_iter()
            .zip(answers)
            .map(|(topic, row)| {
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(row.into_iter().flatten().collect())
            })
            .collect(),
    )
}
