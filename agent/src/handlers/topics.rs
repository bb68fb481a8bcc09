//! CreateTopics, DeleteTopics, CreatePartitions: forwarded to the control plane, its
//! per-topic answers mapped to Kafka's error codes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use weir_control_plane_api::admin::{TopicOutcome, TopicRef};
use weir_control_plane_api::data::ErrorCode;
use weir_metadata::TopicId;

use super::{str_bytes, topic_name};
use crate::context::Context;
use crate::error::kafka_error;
use crate::topics::TopicInfo;

/// A Kafka error code and message for one topic.
type Failure = (i16, Option<StrBytes>);

/// The one result of a control-plane topic call: the topic (if it names one), or the
/// Kafka error to answer with.
fn one_topic(outcome: Result<TopicOutcome, tonic::Status>) -> Result<Option<TopicInfo>, Failure> {
    match outcome {
        Ok(Ok(topic)) => Ok(topic),
        Ok(Err(refused)) => Err((
            kafka_error(refused.code as i32).code(),
            Some(str_bytes(refused.message)),
        )),
        Err(status) => {
            tracing::warn!(error = %status, "control plane call for topic administration");
            Err((
                ResponseError::RequestTimedOut.code(),
                Some(str_bytes(format!("control plane: {status}"))),
            ))
        }
    }
}

/// Creates one topic for auto-creation.
pub async fn create_one(
    ctx: &Context,
    name: &str,
    partitions: i32,
) -> Result<Arc<TopicInfo>, ResponseError> {
    let outcome = ctx
        .control
        .create_topic(name, partitions, BTreeMap::new(), false)
        .await
        .map_err(|_| ResponseError::LeaderNotAvailable)?;
    match outcome {
        Ok(Some(topic)) => {
            tracing::info!(topic = name, partitions, "auto-created topic");
            Ok(ctx.topics.remember(topic))
        }
        // Another agent created it first: use theirs.
        Err(refused) if refused.code == ErrorCode::TopicAlreadyExists => ctx
            .topics
            .by_name(name)
            .await
            .ok()
            .flatten()
            .ok_or(ResponseError::LeaderNotAvailable),
        Err(refused) => Err(kafka_error(refused.code as i32)),
        Ok(None) => Err(ResponseError::UnknownServerError),
    }
}

pub async fn create(ctx: &Context, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let partitions = match (topic.num_partitions, topic.assignments.len()) {
            (-1, 0) => ctx.config.default_partitions,
            (-1, n) => i32::try_from(n).unwrap_or(i32::MAX),
            (n, _) => n,
        };
        let replication = topic.replication_factor;
        if replication == 0 || replication < -1 {
            results.push(
                CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(ResponseError::InvalidReplicationFactor.code())
                    .with_error_message(Some(str_bytes(format!(
                        "Replication factor must be larger than 0, or -1 to use the default value; got {replication}"
                    )))),
            );
            continue;
        }
        let configs = topic
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        results.push(CreatableTopicResult::default().with_name(topic.name.clone()));
        let outcome = ctx
            .control
            .create_topic(&name, partitions, configs, request.validate_only)
            .await;
        let last = results.last_mut().expect("pushed above");
        match one_topic(outcome) {
            Ok(Some(topic)) => {
                last.topic_id = topic.id.0;
                last.num_partitions = topic.partitions;
                last.replication_factor = if replication > 0 { replication } else { 1 };
                if !request.validate_only {
                    ctx.topics.remember(topic);
                }
            }
            Ok(None) => {}
            Err((code, message)) => (last.error_code, last.error_message) = (code, message),
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub async fn delete(
    ctx: &Context,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id; earlier versions by name only.
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let topic = match &name {
            Some(name) => TopicRef::Name(name.clone()),
            None => TopicRef::Id(TopicId(id)),
        };
        let mut answer = DeletableTopicResult::default()
            .with_name(name.as_deref().map(topic_name))
            .with_topic_id(id);
        match one_topic(ctx.control.delete_topic(topic).await) {
            Ok(Some(topic)) => {
                answer.topic_id = topic.id.0;
                answer.name = Some(topic_name(&topic.name));
                ctx.topics.forget(&topic);
            }
            Ok(None) => {}
            // A topic named by id that does not exist is an unknown topic id.
            Err((code, message))
                if code == ResponseError::UnknownTopicOrPartition.code() && name.is_none() =>
            {
                (answer.error_code, answer.error_message) =
                    (ResponseError::UnknownTopicId.code(), message);
            }
            Err((code, message)) => (answer.error_code, answer.error_message) = (code, message),
        }
        responses.push(answer);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub async fn create_partitions(
    ctx: &Context,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut answer = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let outcome = ctx
            .control
            .create_partitions(topic.name.0.as_str(), topic.count, request.validate_only)
            .await;
        match one_topic(outcome) {
            Ok(Some(topic)) if !request.validate_only => {
                ctx.topics.remember(topic);
            }
            Ok(_) => {}
            Err((code, message)) => (answer.error_code, answer.error_message) = (code, message),
        }
        results.push(answer);
    }
    CreatePartitionsResponse::default().with_results(results)
}
