//! Topics, producer ids and the agent registry, typed: the calls an agent makes to
//! administer topics, look them up, get producer ids and keep its place in the
//! registry, in the domain's types, with the protocol's messages kept in here.
//!
//! As in [`crate::data`], a whole call fails with a `tonic::Status`; one item the
//! control plane refused comes back as a [`Refusal`].

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::Status;
use weir_metadata::{Partition, TopicId};

use crate::client::ControlPlaneClient;
pub use crate::data::Refusal;
use crate::proto;
/// How a config change applies (Kafka's IncrementalAlterConfigs operations).
pub use crate::proto::ConfigOperation;

/// A topic as the control plane keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub id: TopicId,
    pub name: String,
    pub partitions: i32,
    /// The configs set explicitly, at creation or since.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    pub fn has_partition(&self, partition: Partition) -> bool {
        (0..self.partitions).contains(&partition.0)
    }

    fn from_message(topic: proto::Topic) -> Result<Topic, Status> {
        Ok(Topic {
            id: TopicId::from_slice(&topic.id).map_err(|e| {
                Status::data_loss(format!("topic {:?} has a bad id: {e}", topic.name))
            })?,
            name: topic.name,
            partitions: topic.partitions,
            configs: topic.configs.into_iter().collect(),
        })
    }
}

/// What one topic call did: the topic it concerns (absent when the call names none, as
/// after a validation), or why it was refused.
pub type TopicOutcome = Result<Option<Topic>, Refusal>;

/// A topic by name or by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(TopicId),
}

/// One config change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: String,
    pub operation: ConfigOperation,
    pub value: String,
}

/// An idempotent producer's id and epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

/// This agent's place in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub agent_id: Vec<u8>,
    pub heartbeat_interval: Duration,
}

/// An agent in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredAgent {
    pub id: Vec<u8>,
    /// host:port Kafka clients connect to.
    pub address: String,
    pub zone: String,
}

fn one(results: Vec<proto::TopicResult>) -> Result<TopicOutcome, Status> {
    let Some(result) = results.into_iter().next() else {
        return Err(Status::internal("a topic call answered nothing"));
    };
    outcome(result)
}

fn outcome(result: proto::TopicResult) -> Result<TopicOutcome, Status> {
    if let Some(refusal) = Refusal::of(result.error, result.message) {
        return Ok(Err(refusal));
    }
    Ok(Ok(result.topic.map(Topic::from_message).transpose()?))
}

impl ControlPlaneClient {
    /// Creates a topic (or only checks that it could be, with `validate_only`).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicOutcome, Status> {
        let request = proto::CreateTopicsRequest {
            topics: vec![proto::TopicSpec {
                name: name.to_string(),
                partitions,
                configs: configs.into_iter().collect(),
            }],
            validate_only,
        };
        one(self
            .topics
            .clone()
            .create_topics(request)
            .await?
            .into_inner()
            .results)
    }

    /// Deletes a topic, named or by id.
    pub async fn delete_topic(&self, topic: TopicRef) -> Result<TopicOutcome, Status> {
        let request = match topic {
            TopicRef::Name(name) => proto::DeleteTopicsRequest {
                names: vec![name],
                ids: Vec::new(),
            },
            TopicRef::Id(id) => proto::DeleteTopicsRequest {
                names: Vec::new(),
                ids: vec![id.as_bytes().to_vec()],
            },
        };
        one(self
            .topics
            .clone()
            .delete_topics(request)
            .await?
            .into_inner()
            .results)
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<TopicOutcome, Status> {
        let request = proto::CreatePartitionsRequest {
            topics: vec![proto::PartitionIncrease {
                name: name.to_string(),
                total,
            }],
            validate_only,
        };
        one(self
            .topics
            .clone()
            .create_partitions(request)
            .await?
            .into_inner()
            .results)
    }

    /// Changes a topic's configs in one transaction: each change applied to the configs
    /// as they are, or, with `replace`, the configs become exactly those set.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace: bool,
        validate_only: bool,
    ) -> Result<TopicOutcome, Status> {
        let request = proto::AlterTopicConfigsRequest {
            topics: vec![proto::TopicConfigChanges {
                name: name.to_string(),
                changes: changes
                    .into_iter()
                    .map(|c| proto::ConfigChange {
                        name: c.name,
                        operation: c.operation as i32,
                        value: c.value,
                    })
                    .collect(),
                replace,
            }],
            validate_only,
        };
        one(self
            .topics
            .clone()
            .alter_topic_configs(request)
            .await?
            .into_inner()
            .results)
    }

    /// The topics with these names and ids that exist (the others are left out).
    pub async fn describe_topics(
        &self,
        names: Vec<String>,
        ids: Vec<TopicId>,
    ) -> Result<Vec<Topic>, Status> {
        let request = proto::DescribeTopicsRequest {
            names,
            ids: ids.iter().map(|id| id.as_bytes().to_vec()).collect(),
        };
        let mut topics = Vec::new();
        for result in self
            .topics
            .clone()
            .describe_topics(request)
            .await?
            .into_inner()
            .results
        {
            if let Ok(Some(topic)) = outcome(result)? {
                topics.push(topic);
            }
        }
        Ok(topics)
    }

    /// Every topic.
    pub async fn list_topics(&self) -> Result<Vec<Topic>, Status> {
        self.topics
            .clone()
            .list_topics(proto::ListTopicsRequest {})
            .await?
            .into_inner()
            .topics
            .into_iter()
            .map(Topic::from_message)
            .collect()
    }

    /// A new producer id (epoch 0), or, given the producer's current one, its epoch
    /// bumped (KIP-360).
    pub async fn init_producer_id(
        &self,
        current: Option<ProducerIdentity>,
    ) -> Result<Result<ProducerIdentity, Refusal>, Status> {
        let request = match current {
            Some(current) => proto::InitProducerIdRequest {
                producer_id: current.id,
                producer_epoch: i32::from(current.epoch),
            },
            None => proto::InitProducerIdRequest {
                producer_id: -1,
                producer_epoch: -1,
            },
        };
        let response = self
            .producers
            .clone()
            .init_producer_id(request)
            .await?
            .into_inner();
        if let Some(refusal) = Refusal::of(response.error, response.message) {
            return Ok(Err(refusal));
        }
        let epoch = i16::try_from(response.producer_epoch)
            .map_err(|_| Status::internal("a producer epoch out of range"))?;
        Ok(Ok(ProducerIdentity {
            id: response.producer_id,
            epoch,
        }))
    }

    /// Registers an agent serving Kafka clients at `address` in `zone`.
    pub async fn register_agent(
        &self,
        address: &str,
        zone: &str,
        version: &str,
    ) -> Result<Registration, Status> {
        let response = self
            .agents
            .clone()
            .register_agent(proto::RegisterAgentRequest {
                address: address.to_string(),
                zone: zone.to_string(),
                version: version.to_string(),
            })
            .await?
            .into_inner();
        Ok(Registration {
            agent_id: response.agent_id,
            heartbeat_interval: Duration::from_millis(u64::from(
                response.heartbeat_interval_ms.max(100),
            )),
        })
    }

    /// Keeps a registered agent alive; `NOT_FOUND` when the registry forgot it.
    pub async fn heartbeat(&self, agent_id: &[u8]) -> Result<(), Status> {
        self.agents
            .clone()
            .heartbeat(proto::HeartbeatRequest {
                agent_id: agent_id.to_vec(),
            })
            .await?;
        Ok(())
    }

    /// Every live agent.
    pub async fn list_agents(&self) -> Result<Vec<RegisteredAgent>, Status> {
        Ok(self
            .agents
            .clone()
            .list_agents(proto::ListAgentsRequest {
                zone: String::new(),
            })
            .await?
            .into_inner()
            .agents
            .into_iter()
            .map(|a| RegisteredAgent {
                id: a.id,
                address: a.address,
                zone: a.zone,
            })
            .collect())
    }
}
