//! Metadata: the agents of the client's zone as brokers, partition leadership spread
//! over them by hash (any agent accepts any partition), and topics — created on
//! first mention when auto-creation is on.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::{str_bytes, topic_name};
use crate::brokers::{self, Broker, client_zone};
use crate::context::Context;
use crate::topics::TopicInfo;

pub async fn handle(
    ctx: &Context,
    client_id: Option<&str>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let zone = client_zone(client_id).unwrap_or(&ctx.config.zone);
    let brokers = ctx.brokers.in_zone(zone).await;
    // v0: an empty list means every topic; later versions say so with null.
    let wanted = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let auto_create =
        ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);

    let topics = match wanted {
        None => match ctx.topics.all().await {
            Ok(all) => all.iter().map(|t| described(t, &brokers)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "list topics for metadata");
                Vec::new()
            }
        },
        Some(wanted) => {
            let mut topics = Vec::with_capacity(wanted.len());
            for topic in wanted {
                let answer = match (&topic.name, topic.topic_id) {
                    (Some(name), _) => by_name(ctx, name.0.as_str(), auto_create, &brokers).await,
                    (None, id) => by_id(ctx, id, &brokers).await,
                };
                topics.push(answer);
            }
            topics
        }
    };
    MetadataResponse::default()
        .with_brokers(
            brokers
                .iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.node_id))
                        .with_host(str_bytes(b.host.clone()))
                        .with_port(b.port)
                        .with_rack(Some(str_bytes(b.zone.clone())))
                })
                .collect(),
        )
        .with_cluster_id(Some(str_bytes(ctx.config.cluster_id.clone())))
        .with_controller_id(BrokerId(brokers.first().map_or(-1, |b| b.node_id)))
        .with_topics(topics)
}

fn error_topic(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(topic_name))
        .with_topic_id(id)
}

async fn by_name(
    ctx: &Context,
    name: &str,
    auto_create: bool,
    brokers: &[Broker],
) -> MetadataResponseTopic {
    match ctx.topics.by_name(name).await {
        Ok(Some(topic)) => described(&topic, brokers),
        Ok(None) if auto_create => {
            match super::topics::create_one(ctx, name, ctx.config.default_partitions).await {
                Ok(topic) => described(&topic, brokers),
                Err(code) => error_topic(Some(name), Uuid::nil(), code),
            }
        }
        Ok(None) => {
            let error = if weir_control_plane_api::names::check_topic_name(name).is_err() {
                ResponseError::InvalidTopicException
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            error_topic(Some(name), Uuid::nil(), error)
        }
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "describe topic for metadata");
            error_topic(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable)
        }
    }
}

async fn by_id(ctx: &Context, id: Uuid, brokers: &[Broker]) -> MetadataResponseTopic {
    match ctx.topics.by_id(weir_metadata::TopicId(id)).await {
        Ok(Some(topic)) => described(&topic, brokers),
        Ok(None) => error_topic(None, id, ResponseError::UnknownTopicId),
        Err(e) => {
            tracing::warn!(topic_id = %id, error = %e, "describe topic for metadata");
            error_topic(None, id, ResponseError::LeaderNotAvailable)
        }
    }
}

fn described(topic: &Arc<TopicInfo>, brokers: &[Broker]) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|p| {
            let leader = brokers::leader(brokers, topic.id.as_bytes(), p).map_or(-1, |b| b.node_id);
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(leader)])
                .with_isr_nodes(vec![BrokerId(leader)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id.0)
        .with_partitions(partitions)
}
