//! Produce, in two phases. `prepare` validates every batch and submits the valid ones
//! to the writer; a connection runs it for its requests one at a time, in order, so a
//! partition's batches reach the object in the order the producer sent them (as a
//! Kafka broker appends them). `answer` then waits for the commits, concurrently with
//! later requests: acks=1 is treated as acks=all (there is no weaker durability point),
//! and acks=0 gets no answer.
//!
//! A partition whose batches are not committed in time is answered REQUEST_TIMED_OUT:
//! after the agent's produce timeout, or sooner when the request's own `timeout_ms`
//! (the client's `request.timeout.ms`) is shorter, as a Kafka broker answers by then.
//! A client that times a request out itself closes the connection and cannot tell a
//! late success from a failure; one that gets the error retries with the same producer
//! sequence, which the sequencer recognises if the first attempt was committed after
//! all.

use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use weir_metadata::Partition;

use super::str_bytes;
use crate::batch;
use crate::context::Context;
use crate::produce_rules::ProduceRules;
use crate::topics::TopicInfo;
use crate::writer::PendingAck;

/// One partition's answer before encoding.
#[derive(Debug)]
struct Answer {
    error: i16,
    message: Option<String>,
    base_offset: i64,
    /// The append time given to a LogAppendTime topic's batches, else -1.
    log_append_time_ms: i64,
    /// The records that made the partition fail, by index in their batch (KIP-467).
    record_errors: Vec<(i32, String)>,
}

impl Answer {
    fn error(error: ResponseError, message: impl Into<String>) -> Self {
        Answer::failed(error.code(), message)
    }

    fn failed(code: i16, message: impl Into<String>) -> Self {
        Answer {
            error: code,
            message: Some(message.into()),
            base_offset: -1,
            log_append_time_ms: -1,
            record_errors: Vec::new(),
        }
    }
}

/// A partition's outcome: decided at validation, or waiting for commits.
#[derive(Debug)]
enum Outcome {
    Decided(Answer),
    Submitted {
        pending: Vec<PendingAck>,
        log_append_time_ms: i64,
    },
}

/// A produce request whose batches are with the writer.
#[derive(Debug)]
pub struct Prepared {
    acks: i16,
    /// How long the answer may wait for commits.
    timeout: Duration,
    /// How long to hold the answer back while compaction is behind (Kafka's
    /// `throttle_time_ms`).
    throttle: Duration,
    topics: Vec<(TopicName, Vec<(i32, Outcome)>)>,
}

pub async fn prepare(ctx: &Context, request: ProduceRequest) -> Prepared {
    let names: Vec<String> = request
        .topic_data
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let backlog = ctx.writer.backlog();
    let refused = if request.transactional_id.is_some() {
        Some(Answer::error(
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported yet",
        ))
    } else if backlog.full {
        Some(Answer::error(
            ResponseError::NotEnoughReplicas,
            "compaction is too far behind to take more records; retry later (docs/lifecycle.md)",
        ))
    } else {
        None
    };
    let topics = match refused {
        Some(_) => Ok(vec![None; names.len()]),
        None => ctx.topics.by_names(&names).await,
    };
    let mut prepared = Prepared {
        acks: request.acks,
        timeout: answer_timeout(ctx.config.produce_timeout, request.timeout_ms),
        throttle: backlog.throttle,
        topics: Vec::with_capacity(request.topic_data.len()),
    };
    for (t, data) in request.topic_data.into_iter().enumerate() {
        let mut partitions = Vec::with_capacity(data.partition_data.len());
        for partition in data.partition_data {
            let outcome = match (&refused, &topics) {
                (Some(answer), _) => Outcome::Decided(Answer::failed(
                    answer.error,
                    answer.message.clone().unwrap_or_default(),
                )),
                (None, Err(e)) => {
                    tracing::warn!(error = %e, "resolve topics for produce");
                    Outcome::Decided(Answer::error(
                        ResponseError::NotEnoughReplicas,
                        format!("control plane: {e}"),
                    ))
                }
                (None, Ok(topics)) => {
                    let topic = topics[t].as_deref();
                    validate_and_submit(
                        ctx,
                        &data.name.0,
                        topic,
                        partition.index,
                        partition.records,
                    )
                    .await
                }
            };
            partitions.push((partition.index, outcome));
        }
        prepared.topics.push((data.name, partitions));
    }
    prepared
}

async fn validate_and_submit(
    ctx: &Context,
    name: &str,
    topic: Option<&TopicInfo>,
    index: i32,
    records: Option<bytes::Bytes>,
) -> Outcome {
    let Some(topic) = topic else {
        return Outcome::Decided(Answer::error(
            ResponseError::UnknownTopicOrPartition,
            format!("This server does not host this topic-partition: {name}"),
        ));
    };
    if !topic.has_partition(Partition(index)) {
        return Outcome::Decided(Answer::error(
            ResponseError::UnknownTopicOrPartition,
            format!(
                "topic {name} has {} partitions; there is no partition {index}",
                topic.partitions
            ),
        ));
    }
    let Some(records) = records else {
        return Outcome::Decided(Answer::error(ResponseError::InvalidRecord, "no records"));
    };
    let rules = ProduceRules::of(topic, ctx.config.max_batch_bytes);
    let batches = match batch::split(&records, rules.max_message_bytes) {
        Ok(batches) => batches,
        Err(e) => {
            return Outcome::Decided(Answer::failed(e.kafka_error_code(), e.to_string()));
        }
    };
    if batches
        .iter()
        .any(|b| b.header.is_control() || b.header.is_transactional())
    {
        return Outcome::Decided(Answer::error(
            ResponseError::InvalidRecord,
            "control and transactional batches are not accepted from producers (transactions are not supported yet)",
        ));
    }
    let now_ms = now_ms();
    let stored = match rules.apply(batches, now_ms, name, index) {
        Ok(stored) => stored,
        Err(refusal) => {
            return Outcome::Decided(Answer {
                record_errors: refusal.record_errors,
                ..Answer::failed(refusal.code, refusal.message)
            });
        }
    };
    let mut pending = Vec::with_capacity(stored.len());
    for batch in stored {
        pending.push(ctx.writer.submit(topic.id, Partition(index), batch).await);
    }
    Outcome::Submitted {
        pending,
        log_append_time_ms: if rules.log_append_time { now_ms } else { -1 },
    }
}

/// Wall-clock milliseconds since the Unix epoch: the append time, as a broker's clock
/// gives it.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Waits for every submitted batch, then answers (nothing for acks=0).
pub async fn answer(prepared: Prepared) -> Option<ProduceResponse> {
    let Prepared {
        acks,
        timeout,
        throttle,
        topics,
    } = prepared;
    let answered = join_all(topics.into_iter().map(|(name, partitions)| async move {
        let partitions = join_all(partitions.into_iter().map(|(index, outcome)| async move {
            let answer = match outcome {
                Outcome::Decided(answer) => answer,
                Outcome::Submitted {
                    pending,
                    log_append_time_ms,
                } => {
                    match tokio::time::timeout(
                        timeout,
                        join_all(pending.into_iter().map(PendingAck::wait)),
                    )
                    .await
                    {
                        Ok(acks) => Answer {
                            log_append_time_ms,
                            ..combine(acks)
                        },
                        Err(_) => Answer::error(
                            ResponseError::RequestTimedOut,
                            format!("the batch was not committed within {timeout:?}"),
                        ),
                    }
                }
            };
            let record_errors = answer
                .record_errors
                .into_iter()
                .map(|(index, message)| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(index)
                        .with_batch_index_error_message(Some(str_bytes(message)))
                })
                .collect();
            PartitionProduceResponse::default()
                .with_index(index)
                .with_error_code(answer.error)
                .with_error_message(answer.message.map(str_bytes))
                .with_base_offset(answer.base_offset)
                .with_log_append_time_ms(answer.log_append_time_ms)
                .with_log_start_offset(0)
                .with_record_errors(record_errors)
        }))
        .await;
        TopicProduceResponse::default()
            .with_name(name)
            .with_partition_responses(partitions)
    }))
    .await;
    if !throttle.is_zero() {
        tokio::time::sleep(throttle).await;
    }
    (acks != 0).then(|| {
        ProduceResponse::default()
            .with_responses(answered)
            .with_throttle_time_ms(i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX))
    })
}

/// The agent's produce timeout, or the request's `timeout_ms` when it is positive and
/// shorter.
fn answer_timeout(produce_timeout: Duration, timeout_ms: i32) -> Duration {
    match u64::try_from(timeout_ms) {
        Ok(ms) if ms > 0 => produce_timeout.min(Duration::from_millis(ms)),
        _ => produce_timeout,
    }
}

/// A partition's batches succeed together or report the first failure.
fn combine(acks: Vec<crate::writer::Ack>) -> Answer {
    let mut base = None;
    for ack in acks {
        match ack {
            Ok(offset) => {
                base.get_or_insert(offset.0);
            }
            Err(rejected) => {
                return Answer::failed(rejected.code, rejected.message);
            }
        }
    }
    Answer {
        error: 0,
        message: None,
        base_offset: base.unwrap_or(-1),
        log_append_time_ms: -1,
        record_errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_timeout_shortens_the_wait_and_never_lengthens_it() {
        let agent = Duration::from_secs(30);
        assert_eq!(answer_timeout(agent, 4_000), Duration::from_secs(4));
        assert_eq!(answer_timeout(agent, 60_000), agent);
        // 0 and negative: no timeout given; Kafka's acks=0 requests send 0.
        assert_eq!(answer_timeout(agent, 0), agent);
        assert_eq!(answer_timeout(agent, -1), agent);
    }
}
