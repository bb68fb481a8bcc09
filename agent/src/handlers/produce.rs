//! Produce: validate every batch, hand the valid ones to the writer, and answer once
//! they are committed (acks=1 is treated as acks=all: there is no weaker durability
//! point); acks=0 gets no answer.

use std::collections::HashMap;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_metadata::Partition;

use super::str_bytes;
use crate::batch;
use crate::context::Context;
use crate::writer::Rejected;

/// One partition's answer before encoding.
struct Answer {
    error: i16,
    message: Option<String>,
    base_offset: i64,
}

impl Answer {
    fn error(error: ResponseError, message: impl Into<String>) -> Self {
        Answer {
            error: error.code(),
            message: Some(message.into()),
            base_offset: -1,
        }
    }
}

pub async fn handle(ctx: &Context, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    if request.transactional_id.is_some() {
        return (acks != 0)
            .then(|| rejected_all(&request, ResponseError::TransactionalIdAuthorizationFailed));
    }
    let names: Vec<String> = request
        .topic_data
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let topics = match ctx.topics.by_names(&names).await {
        Ok(topics) => topics,
        Err(e) => {
            tracing::warn!(error = %e, "resolve topics for produce");
            return (acks != 0).then(|| rejected_all(&request, ResponseError::NotEnoughReplicas));
        }
    };

    // Validate everything first, then wait for every partition's batches together.
    let mut pending = Vec::new();
    let mut answers: HashMap<(usize, usize), Answer> = HashMap::new();
    for (t, (data, topic)) in request.topic_data.iter().zip(&topics).enumerate() {
        for (p, partition) in data.partition_data.iter().enumerate() {
            let answer = match topic {
                None => Some(Answer::error(
                    ResponseError::UnknownTopicOrPartition,
                    format!(
                        "This server does not host this topic-partition: {}",
                        data.name.0.as_str()
                    ),
                )),
                Some(topic) if !topic.has_partition(partition.index) => Some(Answer::error(
                    ResponseError::UnknownTopicOrPartition,
                    format!(
                        "topic {} has {} partitions; there is no partition {}",
                        topic.name, topic.partitions, partition.index
                    ),
                )),
                Some(topic) => match partition
                    .records
                    .as_ref()
                    .map(|r| batch::split(r, ctx.config.max_batch_bytes))
                {
                    None => Some(Answer::error(ResponseError::InvalidRecord, "no records")),
                    Some(Err(e)) => Some(Answer {
                        error: e.kafka_error_code(),
                        message: Some(e.to_string()),
                        base_offset: -1,
                    }),
                    Some(Ok(batches)) => {
                        let (id, index) = (topic.id, Partition(partition.index));
                        pending.push(async move {
                            let acks = join_all(
                                batches.into_iter().map(|b| ctx.writer.append(id, index, b)),
                            )
                            .await;
                            ((t, p), acks)
                        });
                        None
                    }
                },
            };
            if let Some(answer) = answer {
                answers.insert((t, p), answer);
            }
        }
    }
    let timeout = ctx.config.produce_timeout;
    match tokio::time::timeout(timeout, join_all(pending)).await {
        Ok(done) => {
            for (at, acks) in done {
                answers.insert(at, combine(acks));
            }
        }
        Err(_) => {
            tracing::warn!(?timeout, "produce timed out waiting for commits");
        }
    }
    if acks == 0 {
        return None;
    }
    let responses = request
        .topic_data
        .iter()
        .enumerate()
        .map(|(t, data)| {
            TopicProduceResponse::default()
                .with_name(data.name.clone())
                .with_partition_responses(
                    data.partition_data
                        .iter()
                        .enumerate()
                        .map(|(p, partition)| {
                            let answer = answers.remove(&(t, p)).unwrap_or_else(|| {
                                Answer::error(
                                    ResponseError::RequestTimedOut,
                                    "the batch was not committed in time",
                                )
                            });
                            PartitionProduceResponse::default()
                                .with_index(partition.index)
                                .with_error_code(answer.error)
                                .with_error_message(answer.message.map(str_bytes))
                                .with_base_offset(answer.base_offset)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(0)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(ProduceResponse::default().with_responses(responses))
}

/// A partition's batches succeed together or report the first failure.
fn combine(acks: Vec<Result<weir_metadata::Offset, Rejected>>) -> Answer {
    let mut base = None;
    for ack in acks {
        match ack {
            Ok(offset) => {
                base.get_or_insert(offset.0);
            }
            Err(rejected) => {
                return Answer {
                    error: rejected.code,
                    message: Some(rejected.message),
                    base_offset: -1,
                };
            }
        }
    }
    Answer {
        error: 0,
        message: None,
        base_offset: base.unwrap_or(-1),
    }
}

fn rejected_all(request: &ProduceRequest, error: ResponseError) -> ProduceResponse {
    ProduceResponse::default().with_responses(
        request
            .topic_data
            .iter()
            .map(|data| {
                TopicProduceResponse::default()
                    .with_name(data.name.clone())
                    .with_partition_responses(
                        data.partition_data
                            .iter()
                            .map(|p| {
                                PartitionProduceResponse::default()
                                    .with_index(p.index)
                                    .with_error_code(error.code())
                                    .with_base_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
