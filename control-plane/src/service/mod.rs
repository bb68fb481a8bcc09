//! The gRPC services: conversions between the wire messages and the control plane's
//! own types, nothing more. The jobs role's service is in [`jobs`].

mod jobs;

use std::future::Future;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use weir_metadata::keyspace::IndexEntry;
use weir_metadata::{AgentId, ObjectId, Offset, Partition, ProducerId, TopicId};

use crate::error::ItemError;
use crate::groups::GroupCoordinator;
use crate::index::{self, OffsetSpec, PartitionOutcome, PartitionRead, Watermarks};
use crate::lease::Lease;
use crate::lifecycle::Lifecycle;
use crate::producers::{self, ProducerBatch};
use crate::proto::{self, ErrorCode};
use crate::registry::{self, RegistryConfig};
use crate::sequencer::{BatchRef, ObjectCommit, SequencerHandle};
use crate::store::Store;
use crate::topic_config::ConfigOp;
use crate::topics::{self, ConfigChanges, Topic, TopicOutcome, TopicRef, TopicSpec};
use crate::watch::{WatermarkHub, WatermarkUpdate};

/// One value serving every service.
#[derive(Clone, Debug)]
pub struct ControlPlaneService {
    pub(crate) store: Store,
    pub(crate) sequencer: SequencerHandle,
    pub(crate) hub: WatermarkHub,
    pub(crate) registry: RegistryConfig,
    pub(crate) groups: GroupCoordinator,
    pub(crate) lease: Lease,
    pub(crate) lifecycle: Lifecycle,
}

fn topic_message(topic: Topic) -> proto::Topic {
    proto::Topic {
        id: topic.id.as_bytes().to_vec(),
        name: topic.name,
        partitions: topic.partitions,
        configs: topic.configs.into_iter().collect(),
    }
}

fn topic_result(name: String, outcome: TopicOutcome) -> proto::TopicResult {
    match outcome {
        Ok(topic) => proto::TopicResult {
            name: topic.name.clone(),
            error: ErrorCode::None as i32,
            message: String::new(),
            topic: Some(topic_message(topic)),
        },
        Err(e) => proto::TopicResult {
            name,
            error: e.code as i32,
            message: e.message,
            topic: None,
        },
    }
}

/// Topics named by name, then by id, in request order.
fn topic_refs(names: Vec<String>, ids: Vec<Vec<u8>>) -> Result<Vec<TopicRef>, Status> {
    let mut refs: Vec<TopicRef> = names.into_iter().map(TopicRef::Name).collect();
    for id in ids {
        let id = TopicId::from_slice(&id)
            .map_err(|e| Status::invalid_argument(format!("topic id: {e}")))?;
        refs.push(TopicRef::Id(id));
    }
    Ok(refs)
}

/// One result per topic named, in request order; a topic named by id has no name
/// to echo unless it was found.
fn results_for(refs: &[TopicRef], outcomes: Vec<TopicOutcome>) -> Vec<proto::TopicResult> {
    refs.iter()
        .zip(outcomes)
        .map(|(topic, outcome)| {
            let name = match topic {
                TopicRef::Name(name) => name.clone(),
                TopicRef::Id(_) => String::new(),
            };
            topic_result(name, outcome)
        })
        .collect()
}

#[tonic::async_trait]
impl proto::topics_server::Topics for ControlPlaneService {
    async fn create_topics(
        &self,
        request: Request<proto::CreateTopicsRequest>,
    ) -> Result<Response<proto::CreateTopicsResponse>, Status> {
        let request = request.into_inner();
        let specs = request
            .topics
            .into_iter()
            .map(|t| TopicSpec {
                name: t.name,
                partitions: t.partitions,
                configs: t.configs.into_iter().collect(),
            })
            .collect();
        let results = topics::create_topics(&self.store, specs, request.validate_only).await?;
        Ok(Response::new(proto::CreateTopicsResponse {
            results: results
                .into_iter()
                .map(|(name, outcome)| topic_result(name, outcome))
                .collect(),
        }))
    }

    async fn delete_topics(
        &self,
        request: Request<proto::DeleteTopicsRequest>,
    ) -> Result<Response<proto::DeleteTopicsResponse>, Status> {
        let request = request.into_inner();
        let refs = topic_refs(request.names, request.ids)?;
        let outcomes = topics::delete_topics(&self.store, &refs).await?;
        self.lifecycle.nudge();
        Ok(Response::new(proto::DeleteTopicsResponse {
            results: results_for(&refs, outcomes),
        }))
    }

    async fn list_topics(
        &self,
        _request: Request<proto::ListTopicsRequest>,
    ) -> Result<Response<proto::ListTopicsResponse>, Status> {
        let topics = topics::list_topics(&self.store).await?;
        Ok(Response::new(proto::ListTopicsResponse {
            topics: topics.into_iter().map(topic_message).collect(),
        }))
    }

    async fn describe_topics(
        &self,
        request: Request<proto::DescribeTopicsRequest>,
    ) -> Result<Response<proto::DescribeTopicsResponse>, Status> {
        let request = request.into_inner();
        let refs = topic_refs(request.names, request.ids)?;
        let outcomes = topics::describe_topics(&self.store, &refs).await?;
        Ok(Response::new(proto::DescribeTopicsResponse {
            results: results_for(&refs, outcomes),
        }))
    }

    async fn create_partitions(
        &self,
        request: Request<proto::CreatePartitionsRequest>,
    ) -> Result<Response<proto::CreatePartitionsResponse>, Status> {
        let request = request.into_inner();
        let increases: Vec<(String, i32)> = request
            .topics
            .into_iter()
            .map(|t| (t.name, t.total))
            .collect();
        let outcomes =
            topics::create_partitions(&self.store, &increases, request.validate_only).await?;
        Ok(Response::new(proto::CreatePartitionsResponse {
            results: increases
                .into_iter()
                .zip(outcomes)
                .map(|((name, _), outcome)| topic_result(name, outcome))
                .collect(),
        }))
    }

    async fn alter_topic_configs(
        &self,
        request: Request<proto::AlterTopicConfigsRequest>,
    ) -> Result<Response<proto::AlterTopicConfigsResponse>, Status> {
        let request = request.into_inner();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut changes = Vec::with_capacity(topic.changes.len());
            for change in topic.changes {
                let op = match proto::ConfigOperation::try_from(change.operation) {
                    Ok(proto::ConfigOperation::ConfigSet) => ConfigOp::Set(change.value),
                    Ok(proto::ConfigOperation::ConfigDelete) => ConfigOp::Delete,
                    Ok(proto::ConfigOperation::ConfigAppend) => ConfigOp::Append(change.value),
                    Ok(proto::ConfigOperation::ConfigSubtract) => ConfigOp::Subtract(change.value),
                    Err(_) => {
                        return Err(Status::invalid_argument(format!(
                            "unknown config operation {} for {}",
                            change.operation, change.name
                        )));
                    }
                };
                changes.push((change.name, op));
            }
            topics.push(ConfigChanges {
                name: topic.name,
                changes,
                replace: topic.replace,
            });
        }
        let outcomes = topics::alter_configs(&self.store, &topics, request.validate_only).await?;
        Ok(Response::new(proto::AlterTopicConfigsResponse {
            results: topics
                .into_iter()
                .zip(outcomes)
                .map(|(topic, outcome)| topic_result(topic.name, outcome))
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl proto::sequencer_server::Sequencer for ControlPlaneService {
    async fn commit_object(
        &self,
        request: Request<proto::CommitObjectRequest>,
    ) -> Result<Response<proto::CommitObjectResponse>, Status> {
        let request = request.into_inner();
        let object = ObjectId::from_slice(&request.object_id)
            .map_err(|e| Status::invalid_argument(format!("object id: {e}")))?;
        let batches = request
            .batches
            .into_iter()
            .map(|b| BatchRef {
                // A malformed id names no topic: the batch fails alone as unknown.
                topic: TopicId::from_slice(&b.topic_id).unwrap_or(TopicId(uuid::Uuid::nil())),
                partition: Partition(b.partition),
                position: b.position,
                length: b.length,
                record_count: b.record_count,
                max_timestamp: b.max_timestamp,
                producer: producer_batch(&b),
            })
            .collect();
        let commit = ObjectCommit {
            object,
            key: request.key,
            size: request.size,
            batches,
            max_age: (request.max_age_ms > 0)
                .then(|| std::time::Duration::from_millis(request.max_age_ms)),
        };
        let outcomes = self.sequencer.commit(commit).await?;
        let (throttle, backlog_full) = self.lifecycle.throttle();
        Ok(Response::new(proto::CommitObjectResponse {
            throttle_ms: u32::try_from(throttle.as_millis()).unwrap_or(u32::MAX),
            backlog_full,
            results: outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Ok(offset) => proto::BatchResult {
                        error: ErrorCode::None as i32,
                        message: String::new(),
                        base_offset: offset.0,
                    },
                    Err(e) => proto::BatchResult {
                        error: e.code as i32,
                        message: e.message,
                        base_offset: -1,
                    },
                })
                .collect(),
        }))
    }
}

fn entry_message(entry: IndexEntry) -> proto::IndexEntry {
    proto::IndexEntry {
        object_id: entry.object_id,
        position: entry.position,
        length: entry.length,
        base_offset: entry.base_offset,
        record_count: entry.record_count,
        max_timestamp: entry.max_timestamp,
        batch_count: entry.batch_count,
        object_size: entry.object_size,
    }
}

fn bad_topic_id(id: &[u8]) -> ItemError {
    ItemError::new(
        ErrorCode::InvalidRequest,
        format!("topic id must be 16 bytes, got {}", id.len()),
    )
}

fn marks_or_unknown(marks: Option<Watermarks>) -> (i64, i64) {
    marks.map_or((-1, -1), |m| (m.high_watermark.0, m.log_start_offset.0))
}

/// Runs a batched read on the items that parsed, and returns one outcome per item in
/// request order: the read's answers, and the parse errors where items did not parse.
async fn per_item<T: Clone, U, Fut>(
    parsed: &[Result<T, ItemError>],
    run: impl FnOnce(Vec<T>) -> Fut,
) -> Result<Vec<PartitionOutcome<U>>, Status>
where
    Fut: Future<Output = crate::Result<Vec<PartitionOutcome<U>>>>,
{
    let valid = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let mut outcomes = run(valid).await?.into_iter();
    Ok(parsed
        .iter()
        .map(|p| match p {
            Ok(_) => outcomes.next().expect("one outcome per item that parsed"),
            Err(e) => Err((e.clone(), None)),
        })
        .collect())
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::HighWatermarks, Status>> + Send>>;

/// Object ids one `CheckObjects` call may name.
const MAX_CHECKED_OBJECTS: usize = 10_000;

#[tonic::async_trait]
impl proto::index_server::Index for ControlPlaneService {
    async fn check_objects(
        &self,
        request: Request<proto::CheckObjectsRequest>,
    ) -> Result<Response<proto::CheckObjectsResponse>, Status> {
        let ids = request.into_inner().object_ids;
        if ids.len() > MAX_CHECKED_OBJECTS {
            return Err(Status::invalid_argument(format!(
                "{} object ids in one call; at most {MAX_CHECKED_OBJECTS}",
                ids.len()
            )));
        }
        let ids = ids
            .iter()
            .map(|id| {
                ObjectId::from_slice(id).map_err(|_| {
                    Status::invalid_argument(format!(
                        "object id of {} bytes; expected a 16-byte ULID",
                        id.len()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let committed = index::committed_objects(&self.store, &ids).await?;
        Ok(Response::new(proto::CheckObjectsResponse { committed }))
    }

    async fn read_index(
        &self,
        request: Request<proto::ReadIndexRequest>,
    ) -> Result<Response<proto::ReadIndexResponse>, Status> {
        let partitions = request.into_inner().partitions;
        let reads: Vec<Result<PartitionRead, ItemError>> = partitions
            .iter()
            .map(|p| {
                Ok(PartitionRead {
                    topic: TopicId::from_slice(&p.topic_id)
                        .map_err(|_| bad_topic_id(&p.topic_id))?,
                    partition: Partition(p.partition),
                    from: Offset(p.from_offset),
                    max_bytes: p.max_bytes,
                })
            })
            .collect();
        let outcomes = per_item(&reads, |valid| async move {
            index::read_index(&self.store, &valid).await
        })
        .await?;
        let answers = partitions
            .into_iter()
            .zip(outcomes)
            .map(|(p, outcome)| {
                let mut answer = proto::PartitionIndex {
                    topic_id: p.topic_id,
                    partition: p.partition,
                    ..Default::default()
                };
                match outcome {
                    Ok(index) => {
                        answer.entries = index.entries.into_iter().map(entry_message).collect();
                        answer.high_watermark = index.watermarks.high_watermark.0;
                        answer.log_start_offset = index.watermarks.log_start_offset.0;
                    }
                    Err((e, marks)) => {
                        answer.error = e.code as i32;
                        answer.message = e.message;
                        (answer.high_watermark, answer.log_start_offset) = marks_or_unknown(marks);
                    }
                }
                answer
            })
            .collect();
        Ok(Response::new(proto::ReadIndexResponse {
            partitions: answers,
        }))
    }

    async fn list_offsets(
        &self,
        request: Request<proto::ListOffsetsRequest>,
    ) -> Result<Response<proto::ListOffsetsResponse>, Status> {
        use proto::offset_query::Spec;
        let queries = request.into_inner().queries;
        let parsed: Vec<Result<(TopicId, Partition, OffsetSpec), ItemError>> = queries
            .iter()
            .map(|q| {
                let topic =
                    TopicId::from_slice(&q.topic_id).map_err(|_| bad_topic_id(&q.topic_id))?;
                let spec = match q.spec {
                    Some(Spec::Earliest(_)) => OffsetSpec::Earliest,
                    Some(Spec::Latest(_)) => OffsetSpec::Latest,
                    Some(Spec::Timestamp(ts)) => OffsetSpec::Timestamp(ts),
                    Some(Spec::MaxTimestamp(_)) => OffsetSpec::MaxTimestamp,
                    None => {
                        return Err(ItemError::new(
                            ErrorCode::InvalidRequest,
                            "an offset query needs earliest, latest or timestamp",
                        ));
                    }
                };
                Ok((topic, Partition(q.partition), spec))
            })
            .collect();
        let outcomes = per_item(&parsed, |valid| async move {
            index::list_offsets(&self.store, &valid).await
        })
        .await?;
        let answers = queries
            .into_iter()
            .zip(outcomes)
            .map(|(q, outcome)| {
                let mut answer = proto::OffsetAnswer {
                    topic_id: q.topic_id,
                    partition: q.partition,
                    offset: -1,
                    ..Default::default()
                };
                match outcome {
                    Ok(found) => {
                        answer.offset = found.offset.map_or(-1, |o| o.0);
                        answer.entry = found.entry.map(entry_message);
                        answer.high_watermark = found.watermarks.high_watermark.0;
                        answer.log_start_offset = found.watermarks.log_start_offset.0;
                    }
                    Err((e, marks)) => {
                        answer.error = e.code as i32;
                        answer.message = e.message;
                        (answer.high_watermark, answer.log_start_offset) = marks_or_unknown(marks);
                    }
                }
                answer
            })
            .collect();
        Ok(Response::new(proto::ListOffsetsResponse { answers }))
    }

    async fn delete_records(
        &self,
        request: Request<proto::DeleteRecordsRequest>,
    ) -> Result<Response<proto::DeleteRecordsResponse>, Status> {
        let mut answers = Vec::new();
        for p in request.into_inner().partitions {
            let outcome = match TopicId::from_slice(&p.topic_id) {
                Err(_) => Err(bad_topic_id(&p.topic_id)),
                Ok(topic) => {
                    self.lifecycle
                        .delete_records(topic, Partition(p.partition), Offset(p.offset))
                        .await?
                }
            };
            answers.push(match outcome {
                Ok(low) => proto::RecordsDeleted {
                    error: ErrorCode::None as i32,
                    message: String::new(),
                    low_watermark: low.0,
                },
                Err(e) => proto::RecordsDeleted {
                    error: e.code as i32,
                    message: e.message,
                    low_watermark: -1,
                },
            });
        }
        Ok(Response::new(proto::DeleteRecordsResponse {
            partitions: answers,
        }))
    }

    type WatchHighWatermarksStream = WatchStream;

    async fn watch_high_watermarks(
        &self,
        _request: Request<proto::WatchHighWatermarksRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        // Only the holder's sequencer advances watermarks: a standby's watch would stay
        // silent, so it is refused, and a holder's ends when it loses the lease (the
        // agent watches again, wherever the lease went).
        if !self.lease.holds() {
            return Err(Status::unavailable(self.lease.describe()));
        }
        let lease = self.lease.clone();
        let lost = futures::stream::unfold(lease, |lease| async move {
            let mut check = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                check.tick().await;
                if !lease.holds() {
                    return Some((Err(Status::unavailable(lease.describe())), lease));
                }
            }
        });
        let updates = self.hub.subscribe().map(|update| {
            Ok(match update {
                WatermarkUpdate::Resync => proto::HighWatermarks {
                    advances: Vec::new(),
                    resync: true,
                },
                WatermarkUpdate::Advances(advances) => proto::HighWatermarks {
                    advances: advances
                        .iter()
                        .map(|a| proto::PartitionWatermark {
                            topic_id: a.topic.as_bytes().to_vec(),
                            partition: a.partition.0,
                            high_watermark: a.high_watermark.0,
                            log_start_offset: a.log_start_offset.0,
                            entries_replaced: a.entries_replaced,
                        })
                        .collect(),
                    resync: false,
                },
            })
        });
        let stream = futures::stream::select(updates, lost.take(1));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl proto::agents_server::Agents for ControlPlaneService {
    async fn register_agent(
        &self,
        request: Request<proto::RegisterAgentRequest>,
    ) -> Result<Response<proto::RegisterAgentResponse>, Status> {
        let request = request.into_inner();
        let id = registry::register(
            &self.store,
            &request.address,
            &request.zone,
            &request.version,
        )
        .await?;
        tracing::info!(agent = %id, address = %request.address, zone = %request.zone, "agent registered");
        Ok(Response::new(proto::RegisterAgentResponse {
            agent_id: id.to_bytes().to_vec(),
            heartbeat_interval_ms: self.registry.heartbeat_interval.as_millis() as u32,
            session_timeout_ms: self.registry.session_timeout.as_millis() as u32,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        let id = AgentId::from_slice(&request.into_inner().agent_id)
            .map_err(|e| Status::invalid_argument(format!("agent id: {e}")))?;
        if registry::heartbeat(&self.store, id).await? {
            Ok(Response::new(proto::HeartbeatResponse {}))
        } else {
            Err(Status::not_found(format!(
                "agent {id} is not registered (it expired); register again"
            )))
        }
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        let zone = request.into_inner().zone;
        let zone = (!zone.is_empty()).then_some(zone.as_str());
        let agents = registry::list(&self.store, &self.registry, zone).await?;
        Ok(Response::new(proto::ListAgentsResponse {
            agents: agents
                .into_iter()
                .map(|a| proto::Agent {
                    id: a.id.to_bytes().to_vec(),
                    address: a.address,
                    zone: a.zone,
                    heartbeat_ms: a.heartbeat_ms,
                    version: a.version,
                })
                .collect(),
        }))
    }
}

/// The producer fields of a batch, when an idempotent producer sent it. An epoch outside
/// i16 cannot come from a Kafka batch header; such a batch is treated as having none.
fn producer_batch(batch: &proto::BatchRef) -> Option<ProducerBatch> {
    let epoch = i16::try_from(batch.producer_epoch).ok()?;
    (batch.producer_id >= 0).then_some(ProducerBatch {
        id: ProducerId(batch.producer_id),
        epoch,
        base_sequence: batch.base_sequence,
    })
}

#[tonic::async_trait]
impl proto::producers_server::Producers for ControlPlaneService {
    async fn init_producer_id(
        &self,
        request: Request<proto::InitProducerIdRequest>,
    ) -> Result<Response<proto::InitProducerIdResponse>, Status> {
        let request = request.into_inner();
        let current = if request.producer_id >= 0 {
            let epoch = i16::try_from(request.producer_epoch).map_err(|_| {
                Status::invalid_argument(format!(
                    "producer epoch {} is outside Kafka's i16 range",
                    request.producer_epoch
                ))
            })?;
            Some((ProducerId(request.producer_id), epoch))
        } else {
            None
        };
        let outcome = producers::init_producer_id(&self.store, current).await?;
        Ok(Response::new(match outcome {
            Ok((id, epoch)) => proto::InitProducerIdResponse {
                error: ErrorCode::None as i32,
                message: String::new(),
                producer_id: id.0,
                producer_epoch: i32::from(epoch),
            },
            Err(e) => proto::InitProducerIdResponse {
                error: e.code as i32,
                message: e.message,
                producer_id: -1,
                producer_epoch: -1,
            },
        }))
    }
}

#[tonic::async_trait]
impl proto::groups_server::Groups for ControlPlaneService {
    async fn join_group(
        &self,
        request: Request<proto::JoinGroupRequest>,
    ) -> Result<Response<proto::JoinGroupResponse>, Status> {
        Ok(Response::new(self.groups.join(request.into_inner()).await?))
    }

    async fn sync_group(
        &self,
        request: Request<proto::SyncGroupRequest>,
    ) -> Result<Response<proto::SyncGroupResponse>, Status> {
        Ok(Response::new(self.groups.sync(request.into_inner()).await?))
    }

    async fn heartbeat(
        &self,
        request: Request<proto::GroupHeartbeatRequest>,
    ) -> Result<Response<proto::GroupHeartbeatResponse>, Status> {
        let (error, message) = match self.groups.heartbeat(request.into_inner()).await? {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(e) => (e.code, e.message),
        };
        Ok(Response::new(proto::GroupHeartbeatResponse {
            error: error as i32,
            message,
        }))
    }

    async fn leave_group(
        &self,
        request: Request<proto::LeaveGroupRequest>,
    ) -> Result<Response<proto::LeaveGroupResponse>, Status> {
        Ok(Response::new(
            self.groups.leave(request.into_inner()).await?,
        ))
    }

    async fn commit_offsets(
        &self,
        request: Request<proto::CommitOffsetsRequest>,
    ) -> Result<Response<proto::CommitOffsetsResponse>, Status> {
        Ok(Response::new(
            self.groups.commit_offsets(request.into_inner()).await?,
        ))
    }

    async fn fetch_offsets(
        &self,
        request: Request<proto::FetchOffsetsRequest>,
    ) -> Result<Response<proto::FetchOffsetsResponse>, Status> {
        let groups = self
            .groups
            .fetch_offsets(request.into_inner().groups)
            .await?;
        Ok(Response::new(proto::FetchOffsetsResponse { groups }))
    }

    async fn delete_offsets(
        &self,
        request: Request<proto::DeleteOffsetsRequest>,
    ) -> Result<Response<proto::DeleteOffsetsResponse>, Status> {
        Ok(Response::new(
            self.groups.delete_offsets(request.into_inner()).await?,
        ))
    }

    async fn describe_groups(
        &self,
        request: Request<proto::DescribeGroupsRequest>,
    ) -> Result<Response<proto::DescribeGroupsResponse>, Status> {
        let groups = self.groups.describe(request.into_inner().group_ids).await?;
        Ok(Response::new(proto::DescribeGroupsResponse { groups }))
    }

    async fn list_groups(
        &self,
        request: Request<proto::ListGroupsRequest>,
    ) -> Result<Response<proto::ListGroupsResponse>, Status> {
        let request = request.into_inner();
        let groups = self.groups.list(&request.states, &request.types).await?;
        Ok(Response::new(proto::ListGroupsResponse { groups }))
    }

    async fn delete_groups(
        &self,
        request: Request<proto::DeleteGroupsRequest>,
    ) -> Result<Response<proto::DeleteGroupsResponse>, Status> {
        let results = self.groups.delete(request.into_inner().group_ids).await?;
        Ok(Response::new(proto::DeleteGroupsResponse { results }))
    }
}
