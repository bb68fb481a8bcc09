//! Topic configs: DescribeConfigs (what was set, else Kafka's defaults), which clients
//! and tools read before they produce or compact; IncrementalAlterConfigs and
//! AlterConfigs, which the control plane applies and validates as at creation
//! (docs/topic-configs.md). This agent sees a change at once; the others within their
//! topic cache's few seconds.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use weir_control_plane_api::admin::{ConfigChange, ConfigOperation};
use weir_control_plane_api::topic_config::{ConfigType, TOPIC_CONFIGS};

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

/// One resource's changes, whichever API they came in.
struct Alteration {
    resource_type: i8,
    resource_name: StrBytes,
    /// (name, operation, value)
    changes: Vec<(String, ConfigOperation, String)>,
    /// Why the request itself is malformed for this resource, if it is.
    malformed: Option<String>,
}

/// One resource's answer: (resource type, name, error code, message).
type Altered = (i8, StrBytes, i16, Option<StrBytes>);

/// The answers of [`alter`] as one API's resource responses (the two APIs' types are
/// alike but for their module).
macro_rules! resource_responses {
    ($response:ty, $results:expr) => {
        $results
            .into_iter()
            .map(
                |(resource_type, resource_name, error_code, error_message)| {
                    <$response>::default()
                        .with_resource_type(resource_type)
                        .with_resource_name(resource_name)
                        .with_error_code(error_code)
                        .with_error_message(error_message)
                },
            )
            .collect()
    };
}

pub async fn incremental_alter(
    ctx: &Context,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let mut alterations = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let mut changes = Vec::with_capacity(resource.configs.len());
        let mut malformed = None;
        for config in resource.configs {
            let operation = match config.config_operation {
                0 => ConfigOperation::ConfigSet,
                1 => ConfigOperation::ConfigDelete,
                2 => ConfigOperation::ConfigAppend,
                3 => ConfigOperation::ConfigSubtract,
                other => {
                    malformed = Some(format!(
                        "unknown config operation {other} for {}",
                        config.name.as_str()
                    ));
                    continue;
                }
            };
            let value = config.value.map(|v| v.to_string()).unwrap_or_default();
            changes.push((config.name.to_string(), operation, value));
        }
        alterations.push(Alteration {
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            changes,
            malformed,
        });
    }
    let results = alter(ctx, alterations, false, request.validate_only).await;
    IncrementalAlterConfigsResponse::default()
        .with_responses(resource_responses!(AlterConfigsResourceResponse, results))
}

/// AlterConfigs: each resource's configs become exactly those given, the rest back to
/// their defaults.
pub async fn alter_replacing(ctx: &Context, request: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let alterations = request
        .resources
        .into_iter()
        .map(|resource| Alteration {
            resource_type: resource.resource_type,
            resource_name: resource.resource_name,
            changes: resource
                .configs
                .into_iter()
                .map(|c| {
                    let value = c.value.map(|v| v.to_string()).unwrap_or_default();
                    (c.name.to_string(), ConfigOperation::ConfigSet, value)
                })
                .collect(),
            malformed: None,
        })
        .collect();
    let results = alter(ctx, alterations, true, request.validate_only).await;
    AlterConfigsResponse::default()
        .with_responses(resource_responses!(AlterConfigsResourceResponse, results))
}

/// Sends each topic's changes to the control plane.
async fn alter(
    ctx: &Context,
    alterations: Vec<Alteration>,
    replace: bool,
    validate_only: bool,
) -> Vec<Altered> {
    let mut results = Vec::with_capacity(alterations.len());
    for alteration in alterations {
        let Alteration {
            resource_type,
            resource_name,
            changes,
            malformed,
        } = alteration;
        let failed = |error: ResponseError, message: String| {
            (
                resource_type,
                resource_name.clone(),
                error.code(),
                Some(str_bytes(message)),
            )
        };
        if let Some(message) = malformed {
            results.push(failed(ResponseError::InvalidRequest, message));
            continue;
        }
        match resource_type {
            TOPIC => {}
            BROKER | BROKER_LOGGER => {
                results.push(failed(
                    ResponseError::InvalidRequest,
                    "Weir agents have no broker configs to alter; topic configs can be altered"
                        .to_string(),
                ));
                continue;
            }
            other => {
                results.push(failed(
                    ResponseError::InvalidRequest,
                    format!("unknown config resource type {other}"),
                ));
                continue;
            }
        }
        let changes = changes
            .into_iter()
            .map(|(name, operation, value)| ConfigChange {
                name,
                operation,
                value,
            })
            .collect();
        let outcome = ctx
            .control
            .alter_topic_configs(resource_name.as_str(), changes, replace, validate_only)
            .await;
        let result = match outcome {
            Ok(Ok(topic)) => {
                if !validate_only && let Some(topic) = topic {
                    ctx.topics.remember(topic);
                }
                (resource_type, resource_name, 0, None)
            }
            Ok(Err(refused)) => failed(
                crate::error::kafka_error(refused.code as i32),
                refused.message,
            ),
            Err(status) => {
                tracing::warn!(error = %status, "alter topic configs");
                failed(
                    ResponseError::RequestTimedOut,
                    format!("control plane: {status}"),
                )
            }
        };
        results.push(result);
    }
    results
}
