//! DescribeConfigs: a topic's effective configs (what was set, else Kafka's defaults),
//! which clients and tools read before they produce or compact.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use weir_control_plane::topic_config::{ConfigType, TOPIC_CONFIGS};

use super::str_bytes;
use crate::context::Context;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
/// Kafka's `ConfigSource` values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` values, as DescribeConfigs v3+ reports them.
fn config_type(kind: ConfigType) -> i8 {
    match kind {
        ConfigType::Boolean => 1,
        ConfigType::OneOf(_) => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::ListOf(_) => 7,
    }
}

pub async fn describe(ctx: &Context, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match resource.resource_type {
            TOPIC => match ctx.topics.by_name(&resource.resource_name).await {
                Ok(Some(topic)) => {
                    let wanted = resource.configuration_keys.as_ref();
                    result.configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|c| {
                            wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == c.name))
                        })
                        .map(|c| {
                            let (value, source) = match topic.configs.get(c.name) {
                                Some(value) => (value.clone(), DYNAMIC_TOPIC_CONFIG),
                                None => (c.default.to_string(), DEFAULT_CONFIG),
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(c.name))
                                .with_value(Some(str_bytes(value)))
                                .with_config_source(source)
                                .with_config_type(config_type(c.kind))
                        })
                        .collect();
                }
                Ok(None) => {
                    result.error_code = ResponseError::UnknownTopicOrPartition.code();
                    result.error_message = Some(str_bytes(format!(
                        "Topic {} does not exist",
                        resource.resource_name.as_str()
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "describe topic configs");
                    result.error_code = ResponseError::RequestTimedOut.code();
                    result.error_message = Some(str_bytes(format!("control plane: {e}")));
                }
            },
            // Agents have no broker configs worth setting; answer with none rather than fail.
            BROKER | BROKER_LOGGER => {}
            other => {
                result.error_code = ResponseError::InvalidRequest.code();
                result.error_message =
                    Some(str_bytes(format!("unknown config resource type {other}")));
            }
        }
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}
