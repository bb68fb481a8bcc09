//! The group coordinator: Kafka's classic consumer-group protocol for every agent,
//! with committed offsets in the metadata store.
//!
//! Agents forward the group APIs here, so all members of a group meet in one place
//! whichever agents they talk to. Each group is a [`Group`] state machine behind its
//! own lock; a JoinGroup or a follower's SyncGroup waits on a `oneshot` (not a thread)
//! until the group answers it. One ticker applies deadlines: expired sessions, the end
//! of a join phase, members that never synced.
//!
//! Only the control plane holding the sequencer lease coordinates; a standby answers
//! COORDINATOR_NOT_AVAILABLE (clients then look for the coordinator again). What a new
//! coordinator needs to carry on — each stable generation with its members and
//! assignments, and every committed offset — is in the store, written before any
//! member is told the generation is stable, so a control-plane restart costs members
//! at most a rebalance, never their offsets.

mod group;
mod store;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_metadata::keyspace::GroupRecord;

pub use group::{GroupConfig, State};

use crate::error::{ItemError, Result};
use crate::lease::Lease;
use crate::metrics::GroupMetrics;
use crate::proto::{
    CommitOffsetsRequest, CommitOffsetsResponse, DeleteOffsetsRequest, DeleteOffsetsResponse,
    DeletedGroup, DescribedGroup, DescribedMember, ErrorCode, GroupHeartbeatRequest, GroupOffsets,
    GroupOffsetsQuery, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListedGroup, SyncGroupRequest, SyncGroupResponse, TopicOffsets,
};
use crate::store::Store;
use group::{Group, JoinOutcome, SyncOutcome, join_error, sync_error};

pub use weir_control_plane_api::GROUP_TYPE;

/// A group's place in the coordinator. `None` until read from the store; a slot
/// dropped from the map is marked `evicted` so a caller that raced the eviction looks
/// the group up again instead of changing a copy nobody will see.
#[derive(Debug, Default)]
struct Slot {
    group: Option<Group>,
    evicted: bool,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

/// A cloneable front to the coordinator.
#[derive(Clone, Debug)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    lease: Lease,
    config: GroupConfig,
    metrics: GroupMetrics,
    groups: Mutex<HashMap<String, SlotRef>>,
}

impl GroupCoordinator {
    pub fn new(store: Store, lease: Lease, config: GroupConfig, metrics: GroupMetrics) -> Self {
        GroupCoordinator {
            inner: Arc::new(Inner {
                store,
                lease,
                config,
                metrics,
                groups: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts the ticker that applies deadlines; it stops when `cancel` fires.
    pub fn spawn_ticker(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(this.inner.config.tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticker.tick() => this.tick().await,
                }
            }
        })
    }

    async fn tick(&self) {
        if !self.inner.lease.holds() {
            self.drop_all();
            return;
        }
        let slots: Vec<(String, SlotRef)> = self
            .inner
            .groups
            .lock()
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        let now = Instant::now();
        let (mut loaded, mut members) = (0, 0);
        for (id, slot) in slots {
            let mut slot = slot.lock().await;
            let Some(group) = slot.group.as_mut() else {
                continue;
            };
            let generation = group.generation;
            group.tick(&self.inner.config, now);
            self.count_rebalance(generation, group);
            self.save_if_dirty(group).await;
            if group.is_idle() {
                slot.evicted = true;
                self.inner.groups.lock().remove(&id);
            } else {
                loaded += 1;
                members += group.members.len() as i64;
            }
        }
        self.inner.metrics.groups.set(loaded);
        self.inner.metrics.members.set(members);
    }

    /// Counts a join phase that ended while the group was in hand.
    fn count_rebalance(&self, generation_before: i32, group: &Group) {
        if group.generation != generation_before {
            self.inner.metrics.rebalances.inc();
        }
    }

    /// Forgets every group in memory (this instance lost the lease): anyone waiting is
    /// told to find the coordinator again.
    fn drop_all(&self) {
        let slots: Vec<SlotRef> = self.inner.groups.lock().drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Ok(mut slot) = slot.try_lock() {
                if let Some(group) = slot.group.as_mut() {
                    group.kill();
                }
                slot.evicted = true;
            } else {
                // Busy: whoever holds it finishes, and the group is read afresh next time.
                tokio::spawn(async move {
                    let mut slot = slot.lock().await;
                    if let Some(group) = slot.group.as_mut() {
                        group.kill();
                    }
                    slot.evicted = true;
                });
            }
        }
    }

    /// Stores the group if it changed. A failure is logged and retried on the next
    /// change or tick; members learn of it through the calls that need the write.
    async fn save_if_dirty(&self, group: &mut Group) -> bool {
        if !group.take_dirty() {
            return true;
        }
        match store::save(&self.inner.store, group).await {
            Ok(()) => {
                group.stored = true;
                true
            }
            Err(err) => {
                tracing::warn!(group = %group.id, error = %err, "store consumer group");
                false
            }
        }
    }

    fn check_active(&self) -> Result<(), ItemError> {
        if self.inner.lease.holds() {
            Ok(())
        } else {
            Err(ItemError::new(
                ErrorCode::CoordinatorNotAvailable,
                "this control plane is a standby; the active one coordinates groups",
            ))
        }
    }

    fn check_group_id(&self, id: &str, allow_empty: bool) -> Result<(), ItemError> {
        if id.is_empty() && !allow_empty {
            return Err(ItemError::new(
                ErrorCode::InvalidGroupId,
                "the group id must not be empty",
            ));
        }
        let max = self.inner.config.max_group_id_bytes;
        if id.len() > max {
            return Err(ItemError::new(
                ErrorCode::InvalidGroupId,
                format!("group id is {} bytes; at most {max} are allowed", id.len()),
            ));
        }
        Ok(())
    }

    /// Runs `f` on the group, read from the store (or created empty) first if needed.
    async fn with_group<T>(&self, id: &str, f: impl AsyncFnOnce(&mut Group) -> T) -> Result<T> {
        loop {
            let slot = self
                .inner
                .groups
                .lock()
                .entry(id.to_string())
                .or_default()
                .clone();
            let mut slot = slot.lock().await;
            if slot.evicted {
                continue;
            }
            if slot.group.is_none() {
                let loaded = store::load(&self.inner.store, id).await?;
                slot.group = Some(loaded.unwrap_or_else(|| Group::new(id.to_string())));
            }
            let group = slot.group.as_mut().expect("loaded above");
            return Ok(f(group).await);
        }
    }

    /// The group if it is in memory or in the store, without creating it.
    async fn peek<T>(&self, id: &str, f: impl FnOnce(Option<&Group>) -> T) -> Result<T> {
        let slot = self.inner.groups.lock().get(id).cloned();
        if let Some(slot) = slot {
            let slot = slot.lock().await;
            if !slot.evicted
                && let Some(group) = &slot.group
            {
                return Ok(f(Some(group)));
            }
        }
        let loaded = store::load(&self.inner.store, id).await?;
        Ok(f(loaded.as_ref()))
    }

    // ---- the API ----

    pub async fn join(&self, request: JoinGroupRequest) -> Result<JoinGroupResponse> {
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, false))
        {
            return Ok(join_error(e.code, &e.message, &request.member_id));
        }
        let config = &self.inner.config;
        let outcome = self
            .with_group(&request.group_id, async |group| {
                let generation = group.generation;
                let outcome = group.join(&request, config, new_member_id, Instant::now());
                self.count_rebalance(generation, group);
                self.save_if_dirty(group).await;
                outcome
            })
            .await?;
        Ok(match outcome {
            JoinOutcome::Now(response) => response,
            JoinOutcome::Wait(answer) => answer.await.unwrap_or_else(|_| {
                join_error(
                    ErrorCode::CoordinatorNotAvailable,
                    "the coordinator moved while the member waited",
                    &request.member_id,
                )
            }),
        })
    }

    pub async fn sync(&self, request: SyncGroupRequest) -> Result<SyncGroupResponse> {
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, false))
        {
            return Ok(sync_error(e.code, &e.message));
        }
        let config = &self.inner.config;
        let outcome = self
            .with_group(&request.group_id, async |group| {
                let outcome = group.sync(&request, Instant::now());
                if group.state == State::Stable && matches!(outcome, SyncOutcome::Wait(_)) {
                    // The leader's assignment: stored before anyone is told.
                    let error = (!self.save_if_dirty(group).await).then(|| {
                        ItemError::new(
                            ErrorCode::CoordinatorNotAvailable,
                            "could not store the group's assignment",
                        )
                    });
                    group.answer_syncs(error, config, Instant::now());
                }
                outcome
            })
            .await?;
        Ok(match outcome {
            SyncOutcome::Now(response) => response,
            SyncOutcome::Wait(answer) => answer.await.unwrap_or_else(|_| {
                sync_error(
                    ErrorCode::CoordinatorNotAvailable,
                    "the coordinator moved while the member waited",
                )
            }),
        })
    }

    pub async fn heartbeat(&self, request: GroupHeartbeatRequest) -> Result<Result<(), ItemError>> {
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, false))
        {
            return Ok(Err(e));
        }
        self.with_group(&request.group_id, async |group| {
            group.heartbeat(
                &request.member_id,
                request.instance_id.as_deref(),
                request.generation,
                Instant::now(),
            )
        })
        .await
    }

    pub async fn leave(&self, request: LeaveGroupRequest) -> Result<LeaveGroupResponse> {
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, false))
        {
            return Ok(LeaveGroupResponse {
                error: e.code as i32,
                message: e.message,
                members: Vec::new(),
            });
        }
        let config = &self.inner.config;
        let members = self
            .with_group(&request.group_id, async |group| {
                let generation = group.generation;
                let answers = group.leave(&request.members, config, Instant::now());
                self.count_rebalance(generation, group);
                self.save_if_dirty(group).await;
                answers
            })
            .await?;
        Ok(LeaveGroupResponse {
            error: ErrorCode::None as i32,
            message: String::new(),
            members,
        })
    }

    pub async fn commit_offsets(
        &self,
        request: CommitOffsetsRequest,
    ) -> Result<CommitOffsetsResponse> {
        let refused = |e: ItemError| CommitOffsetsResponse {
            error: e.code as i32,
            message: e.message,
            topics: Vec::new(),
        };
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, true))
        {
            return Ok(refused(e));
        }
        let store = &self.inner.store;
        let max_metadata = self.inner.config.max_offset_metadata_bytes;
        self.with_group(&request.group_id, async |group| {
            if let Err(e) = group.check_commit(
                &request.member_id,
                request.instance_id.as_deref(),
                request.generation,
            ) {
                return Ok(refused(e));
            }
            // A commit from outside any group makes the group exist (empty), as in
            // Kafka: it is listed and its offsets can be fetched and deleted.
            let create = (!group.stored).then(|| GroupRecord {
                updated_ms: store.clock.now_ms(),
                ..Default::default()
            });
            let topics =
                store::commit(store, &group.id, &request.topics, max_metadata, create).await?;
            group.stored = true;
            Ok(CommitOffsetsResponse {
                error: ErrorCode::None as i32,
                message: String::new(),
                topics,
            })
        })
        .await?
    }

    /// OffsetFetch for each group asked about.
    pub async fn fetch_offsets(
        &self,
        queries: Vec<GroupOffsetsQuery>,
    ) -> Result<Vec<GroupOffsets>> {
        let mut out = Vec::with_capacity(queries.len());
        for query in queries {
            let checked = self
                .check_active()
                .and_then(|()| self.check_group_id(&query.group_id, true));
            let answer = match checked {
                Err(e) => GroupOffsets {
                    group_id: query.group_id,
                    error: e.code as i32,
                    message: e.message,
                    topics: Vec::new(),
                },
                Ok(()) => {
                    let topics = (!query.all_topics).then_some(query.topics.as_slice());
                    GroupOffsets {
                        topics: store::fetch(&self.inner.store, &query.group_id, topics).await?,
                        group_id: query.group_id,
                        error: ErrorCode::None as i32,
                        message: String::new(),
                    }
                }
            };
            out.push(answer);
        }
        Ok(out)
    }

    /// OffsetDelete: refused per partition while a member subscribes to the topic.
    pub async fn delete_offsets(
        &self,
        request: DeleteOffsetsRequest,
    ) -> Result<DeleteOffsetsResponse> {
        let refused = |e: ItemError| DeleteOffsetsResponse {
            error: e.code as i32,
            message: e.message,
            topics: Vec::new(),
        };
        if let Err(e) = self
            .check_active()
            .and_then(|()| self.check_group_id(&request.group_id, false))
        {
            return Ok(refused(e));
        }
        let store = &self.inner.store;
        self.with_group(&request.group_id, async |group| {
            if !group.stored && group.members.is_empty() {
                return Ok(refused(ItemError::new(
                    ErrorCode::GroupIdNotFound,
                    format!("no group {:?}", group.id),
                )));
            }
            let (busy, free): (Vec<_>, Vec<_>) = request
                .topics
                .iter()
                .cloned()
                .partition(|t| group.state != State::Empty && group.subscribes_to(&t.topic));
            store::delete_offsets(store, &group.id, &free).await?;
            let answers = |topics: &[crate::proto::TopicPartitions], error: Option<ItemError>| {
                topics
                    .iter()
                    .map(|t| TopicOffsets {
                        topic: t.topic.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|&p| store::answer(p, error.clone()))
                            .collect(),
                    })
                    .collect::<Vec<_>>()
            };
            let mut topics = answers(&free, None);
            topics.extend(answers(
                &busy,
                Some(ItemError::new(
                    ErrorCode::GroupSubscribedToTopic,
                    "a member of the group subscribes to this topic",
                )),
            ));
            Ok(DeleteOffsetsResponse {
                error: ErrorCode::None as i32,
                message: String::new(),
                topics,
            })
        })
        .await?
    }

    pub async fn describe(&self, ids: Vec<String>) -> Result<Vec<DescribedGroup>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Err(e) = self
                .check_active()
                .and_then(|()| self.check_group_id(&id, false))
            {
                out.push(DescribedGroup {
                    group_id: id,
                    error: e.code as i32,
                    message: e.message,
                    state: State::Dead.name().to_string(),
                    ..Default::default()
                });
                continue;
            }
            let described = self
                .peek(&id, |group| match group {
                    // Kafka describes a group it does not know as Dead, without error.
                    None => DescribedGroup {
                        group_id: id.clone(),
                        state: State::Dead.name().to_string(),
                        ..Default::default()
                    },
                    Some(group) => describe_group(group),
                })
                .await?;
            out.push(described);
        }
        Ok(out)
    }

    /// Every group, in memory or in the store, filtered by state and protocol type.
    /// The groups in any of `states` and of any of `types` (Kafka's group types,
    /// `classic` or `consumer`, any case); an empty filter lets every group through.
    pub async fn list(&self, states: &[String], types: &[String]) -> Result<Vec<ListedGroup>> {
        if self.check_active().is_err() {
            return Ok(Vec::new());
        }
        let mut groups: HashMap<String, ListedGroup> = store::list(&self.inner.store)
            .await?
            .into_iter()
            .map(|(id, record)| {
                let state = if record.leader.is_empty() {
                    State::Empty
                } else {
                    State::Stable
                };
                let listed = ListedGroup {
                    group_id: id.clone(),
                    protocol_type: record.protocol_type,
                    state: state.name().to_string(),
                };
                (id, listed)
            })
            .collect();
        let slots: Vec<SlotRef> = self.inner.groups.lock().values().cloned().collect();
        for slot in slots {
            let slot = slot.lock().await;
            if let Some(group) = &slot.group
                && !slot.evicted
                && (group.stored || !group.members.is_empty())
            {
                groups.insert(
                    group.id.clone(),
                    ListedGroup {
                        group_id: group.id.clone(),
                        protocol_type: group.protocol_type.clone(),
                        state: group.state.name().to_string(),
                    },
                );
            }
        }
        let mut listed: Vec<ListedGroup> = groups
            .into_values()
            .filter(|g| {
                states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state))
            })
            // Kafka filters on the group's type, ignoring case; every group here is classic.
            .filter(|_| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(GROUP_TYPE))
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listed)
    }

    pub async fn delete(&self, ids: Vec<String>) -> Result<Vec<DeletedGroup>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let checked = self
                .check_active()
                .and_then(|()| self.check_group_id(&id, false));
            let outcome = match checked {
                Err(e) => Err(e),
                Ok(()) => {
                    let store = &self.inner.store;
                    self.with_group(&id, async |group| {
                        if group.state != State::Empty {
                            return Ok::<_, crate::Error>(Err(ItemError::new(
                                ErrorCode::NonEmptyGroup,
                                format!(
                                    "group {:?} has members ({})",
                                    group.id,
                                    group.state.name()
                                ),
                            )));
                        }
                        if !group.stored {
                            return Ok(Err(ItemError::new(
                                ErrorCode::GroupIdNotFound,
                                format!("no group {:?}", group.id),
                            )));
                        }
                        store::delete(store, &group.id).await?;
                        group.kill();
                        Ok(Ok(()))
                    })
                    .await??
                }
            };
            if outcome.is_ok() {
                // Dead groups are read afresh (as new) by the next call.
                if let Some(slot) = self.inner.groups.lock().remove(&id)
                    && let Ok(mut slot) = slot.try_lock()
                {
                    slot.evicted = true;
                }
            }
            let (error, message) = match outcome {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(e) => (e.code, e.message),
            };
            out.push(DeletedGroup {
                group_id: id,
                error: error as i32,
                message,
            });
        }
        Ok(out)
    }
}

/// Kafka's member ids: the client id (or the static instance id) and a UUID.
fn new_member_id(request: &JoinGroupRequest) -> String {
    let prefix = request.instance_id.as_deref().unwrap_or(&request.client_id);
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn describe_group(group: &Group) -> DescribedGroup {
    let stable = group.state == State::Stable;
    DescribedGroup {
        group_id: group.id.clone(),
        error: ErrorCode::None as i32,
        message: String::new(),
        state: group.state.name().to_string(),
        protocol_type: group.protocol_type.clone(),
        protocol_name: if stable {
            group.protocol_name.clone()
        } else {
            String::new()
        },
        members: group
            .members
            .values()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                // As Kafka: subscriptions and assignments only once they are settled.
                metadata: if stable {
                    group.member_metadata(m)
                } else {
                    Vec::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Vec::new()
                },
            })
            .collect(),
    }
}
