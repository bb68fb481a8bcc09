//! One consumer group's state machine: Kafka's classic group protocol.
//!
//! ```text
//!            join                all joined / rebalance timeout        leader's sync
//!   Empty ──────────▶ PreparingRebalance ─────────────────▶ CompletingRebalance ─────▶ Stable
//!     ▲                   ▲    │ nobody left                        │                    │
//!     └───────────────────┼────┘                                    │ join, leave,       │
//!                         └─────────────────────────────────────────┴── expiry ──────────┘
//! ```
//!
//! Everything here is synchronous and in memory; the coordinator around it holds the
//! group's lock, supplies the time, persists what [`Group::take_dirty`] says changed,
//! and delivers the answers that wait in members' `oneshot` senders (a JoinGroup waits
//! for the join phase to end, a follower's SyncGroup for the leader's assignment).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use weir_metadata::keyspace::GroupMemberRecord;

mod join;
mod sync;

use crate::error::ItemError;
use crate::proto::{
    ErrorCode, JoinGroupRequest, JoinGroupResponse, JoinedMember, LeavingMember, MemberLeft,
    ProtocolMetadata, SyncGroupResponse,
};

/// Kafka's group states, by Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    /// Deleted: whoever still holds it must look the group up again.
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// The bounds a member's session timeout must fall in (Kafka's
/// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`) and the
/// coordinator's other knobs.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// How long a new group's first rebalance waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`), so a group starting together rebalances once.
    pub initial_rebalance_delay: Duration,
    /// Kafka's `offset.metadata.max.bytes`.
    pub max_offset_metadata_bytes: usize,
    /// Longer group ids are refused: every key of a group holds its id, and keys are
    /// bounded (10 kB).
    pub max_group_id_bytes: usize,
    /// How often deadlines (sessions, rebalances) are checked.
    pub tick: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            max_offset_metadata_bytes: 4096,
            max_group_id_bytes: 4096,
            tick: Duration::from_millis(100),
        }
    }
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    pub(super) protocols: Vec<ProtocolMetadata>,
    pub(super) subscribed_topics: Vec<String>,
    pub(super) assignment: Vec<u8>,
    /// When the member is dropped unless it heartbeats (or joins, or syncs) again.
    pub(super) session_deadline: Instant,
    awaiting_join: Option<oneshot::Sender<JoinGroupResponse>>,
    awaiting_sync: Option<oneshot::Sender<SyncGroupResponse>>,
}

impl Member {
    fn from_join(id: String, request: &JoinGroupRequest, now: Instant) -> Self {
        let session_timeout = millis(request.session_timeout_ms);
        Member {
            id,
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout,
            rebalance_timeout: millis(request.rebalance_timeout_ms),
            protocols: request.protocols.clone(),
            subscribed_topics: request.subscribed_topics.clone(),
            assignment: Vec::new(),
            session_deadline: now + session_timeout,
            awaiting_join: None,
            awaiting_sync: None,
        }
    }

    /// Restores a member of a stored stable generation; its session starts now.
    pub(super) fn restored(record: GroupMemberRecord, now: Instant) -> Self {
        let session_timeout = millis(record.session_timeout_ms);
        Member {
            id: record.member_id,
            instance_id: record.instance_id,
            client_id: record.client_id,
            client_host: record.client_host,
            session_timeout,
            rebalance_timeout: millis(record.rebalance_timeout_ms),
            protocols: record
                .protocols
                .into_iter()
                .map(|p| ProtocolMetadata {
                    name: p.name,
                    metadata: p.metadata,
                })
                .collect(),
            subscribed_topics: record.subscribed_topics,
            assignment: record.assignment,
            session_deadline: now + session_timeout,
            awaiting_join: None,
            awaiting_sync: None,
        }
    }

    fn matches(&self, protocols: &[ProtocolMetadata]) -> bool {
        self.protocols == protocols
    }

    fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    fn touch(&mut self, now: Instant) {
        self.session_deadline = now + self.session_timeout;
    }

    /// Answers a waiting JoinGroup or SyncGroup with an error: the member was removed,
    /// fenced, or the rebalance moved on.
    fn fail_waiters(&mut self, code: ErrorCode, message: &str) {
        if let Some(reply) = self.awaiting_join.take() {
            let _ = reply.send(join_error(code, message, &self.id));
        }
        if let Some(reply) = self.awaiting_sync.take() {
            let _ = reply.send(sync_error(code, message));
        }
    }
}

/// What a JoinGroup gets: an answer now, or one when the join phase ends.
#[derive(Debug)]
pub(super) enum JoinOutcome {
    Now(JoinGroupResponse),
    Wait(oneshot::Receiver<JoinGroupResponse>),
}

/// What a SyncGroup gets: an answer now, or one when the leader's assignment arrives.
#[derive(Debug)]
pub(super) enum SyncOutcome {
    Now(SyncGroupResponse),
    Wait(oneshot::Receiver<SyncGroupResponse>),
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: State,
    pub(super) protocol_type: String,
    /// The protocol (assignor) of the current generation.
    pub(super) protocol_name: String,
    pub(super) generation: i32,
    pub(super) leader: Option<String>,
    /// By member id; ordered, so answers list members the same way every time.
    pub(super) members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id, for static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join with them.
    pending: HashMap<String, Instant>,
    /// PreparingRebalance: when the join phase ends at the latest.
    join_deadline: Option<Instant>,
    /// The join phase of a new group waits the whole delay even if everyone joined.
    initial_delay: bool,
    /// CompletingRebalance: when members that have not synced are dropped.
    sync_deadline: Option<Instant>,
    /// Whether the group exists in the store (a record or offsets).
    pub(super) stored: bool,
    /// What must be written to the store: the group record and its stable members.
    dirty: bool,
}

impl Group {
    pub(super) fn new(id: String) -> Self {
        Group {
            id,
            state: State::Empty,
            protocol_type: String::new(),
            protocol_name: String::new(),
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline: None,
            initial_delay: false,
            sync_deadline: None,
            stored: false,
            dirty: false,
        }
    }

    /// A group as stored: stable if it had members, else empty.
    pub(super) fn restore(
        id: String,
        protocol_type: String,
        protocol_name: String,
        generation: i32,
        leader: String,
        members: Vec<Member>,
    ) -> Self {
        let mut group = Group::new(id);
        group.stored = true;
        group.protocol_type = protocol_type;
        group.protocol_name = protocol_name;
        group.generation = generation;
        if !members.is_empty() {
            group.state = State::Stable;
            group.leader = members
                .iter()
                .any(|m| m.id == leader)
                .then_some(leader)
                .or_else(|| members.first().map(|m| m.id.clone()));
            for member in members {
                if let Some(instance) = &member.instance_id {
                    group
                        .static_members
                        .insert(instance.clone(), member.id.clone());
                }
                group.members.insert(member.id.clone(), member);
            }
        }
        group
    }

    /// Whether the group record and members must be written, clearing the flag.
    pub(super) fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Whether nothing about the group lives only in memory: it can be dropped from the
    /// coordinator and read back from the store when next asked for.
    pub(super) fn is_idle(&self) -> bool {
        self.state == State::Empty && self.pending.is_empty() && !self.dirty
    }

    /// Whether any member, in its subscription, names `topic`.
    pub(super) fn subscribes_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| m.subscribed_topics.iter().any(|t| t == topic))
    }

    // ---- Heartbeat ----

    pub(super) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ItemError> {
        if self.state == State::Empty {
            return Err(ItemError::new(
                ErrorCode::UnknownMemberId,
                "the group has no members",
            ));
        }
        self.check_generation(member_id, instance_id, generation)?;
        let member = self.members.get_mut(member_id).expect("checked above");
        member.touch(now);
        match self.state {
            State::PreparingRebalance => Err(ItemError::new(
                ErrorCode::RebalanceInProgress,
                "the group is rebalancing: join again",
            )),
            _ => Ok(()),
        }
    }

    // ---- LeaveGroup ----

    pub(super) fn leave(
        &mut self,
        leaving: &[LeavingMember],
        config: &GroupConfig,
        now: Instant,
    ) -> Vec<MemberLeft> {
        let mut answers = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for member in leaving {
            let found = match &member.instance_id {
                Some(instance) => match self.static_members.get(instance) {
                    Some(current)
                        if member.member_id.is_empty() || *current == member.member_id =>
                    {
                        Ok(current.clone())
                    }
                    Some(_) => Err(ErrorCode::FencedInstanceId),
                    None => Err(ErrorCode::UnknownMemberId),
                },
                None if self.pending.remove(&member.member_id).is_some() => {
                    answers.push(left(member, ErrorCode::None));
                    continue;
                }
                None => match self.members.get(&member.member_id) {
                    Some(m) if m.instance_id.is_none() => Ok(member.member_id.clone()),
                    Some(_) => Err(ErrorCode::FencedInstanceId),
                    None => Err(ErrorCode::UnknownMemberId),
                },
            };
            match found {
                Ok(id) => {
                    if let Some(mut gone) = self.remove_member(&id) {
                        gone.fail_waiters(ErrorCode::UnknownMemberId, "the member left the group");
                    }
                    removed = true;
                    answers.push(left(member, ErrorCode::None));
                }
                Err(code) => answers.push(left(member, code)),
            }
        }
        if removed {
            self.after_removal(config, now);
        }
        answers
    }

    fn remove_member(&mut self, id: &str) -> Option<Member> {
        let member = self.members.remove(id)?;
        if let Some(instance) = &member.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(id)
        {
            self.static_members.remove(instance);
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(member)
    }

    /// After members left or expired: a stable group rebalances; a rebalancing one may
    /// now have everyone it waits for.
    fn after_removal(&mut self, config: &GroupConfig, now: Instant) {
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(config, now),
            State::PreparingRebalance => {
                if self.members.is_empty() {
                    self.complete_join(now);
                } else {
                    self.maybe_complete_join(now);
                }
            }
            State::Empty | State::Dead => {}
        }
    }

    // ---- Checks shared by the calls ----

    /// A group deleted while a call waited for it is gone.
    fn check_alive(&self) -> Result<(), ItemError> {
        if self.state == State::Dead {
            return Err(ItemError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("group {:?} was just deleted", self.id),
            ));
        }
        Ok(())
    }

    /// The member exists, and a static member is who it says it is.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ItemError> {
        if let Some(instance) = instance_id
            && let Some(current) = self.static_members.get(instance)
            && current != member_id
        {
            return Err(ItemError::new(
                ErrorCode::FencedInstanceId,
                format!(
                    "group.instance.id {instance:?} now belongs to another member; this one was fenced"
                ),
            ));
        }
        let Some(member) = self.members.get(member_id) else {
            return Err(ItemError::new(
                ErrorCode::UnknownMemberId,
                format!("no member {member_id:?} in group {:?}", self.id),
            ));
        };
        if member.instance_id.is_some() && member.instance_id.as_deref() != instance_id {
            return Err(ItemError::new(
                ErrorCode::FencedInstanceId,
                format!("member {member_id:?} is static; its group.instance.id must be given"),
            ));
        }
        Ok(())
    }

    /// Member and generation checks shared by SyncGroup, Heartbeat and OffsetCommit.
    pub(super) fn check_generation(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ItemError> {
        self.check_alive()?;
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(ItemError::new(
                ErrorCode::IllegalGeneration,
                format!(
                    "generation {generation} is not the group's current generation {}",
                    self.generation
                ),
            ));
        }
        Ok(())
    }

    // ---- Offsets ----

    /// Whether a member (or, with generation -1 and no member, a client outside the
    /// group) may commit offsets now. Kafka's rules for a classic group, in its order:
    /// a deleted group is gone; a commit outside group management (generation -1) is
    /// taken only while the group is empty, else it names no member; a member must be
    /// known and at the current generation; none commits while the group completes a
    /// rebalance (the members have their new generation but not yet their partitions).
    pub(super) fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ItemError> {
        self.check_alive()?;
        if generation < 0 && self.state == State::Empty {
            return Ok(());
        }
        if self.pending.contains_key(member_id) {
            return Err(ItemError::new(
                ErrorCode::RebalanceInProgress,
                "the member has not finished joining",
            ));
        }
        if generation < 0 && member_id.is_empty() && instance_id.is_none() {
            return Err(ItemError::new(
                ErrorCode::UnknownMemberId,
                format!(
                    "group {:?} has active members: commit as one of them, with its generation",
                    self.id
                ),
            ));
        }
        self.check_generation(member_id, instance_id, generation)?;
        match self.state {
            State::CompletingRebalance => Err(ItemError::new(
                ErrorCode::RebalanceInProgress,
                "the group is completing a rebalance",
            )),
            _ => Ok(()),
        }
    }

    // ---- Deadlines ----

    /// Applies whatever deadlines have passed: expired sessions and pending members,
    /// the end of a join phase, members that never synced.
    pub(super) fn tick(&mut self, config: &GroupConfig, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now && m.awaiting_join.is_none() && m.awaiting_sync.is_none()
            })
            .map(|m| m.id.clone())
            .collect();
        let mut removed = false;
        for id in &expired {
            if let Some(mut gone) = self.remove_member(id) {
                tracing::info!(group = %self.id, member = %id, "member's session expired");
                gone.fail_waiters(ErrorCode::UnknownMemberId, "the member's session expired");
                removed = true;
            }
        }
        if self.state == State::CompletingRebalance
            && self.sync_deadline.is_some_and(|deadline| now >= deadline)
        {
            // The leader's assignment never came (or some members never synced): drop
            // those that did not sync and start over.
            let stalled: Vec<String> = self
                .members
                .values()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in &stalled {
                if let Some(mut gone) = self.remove_member(id) {
                    gone.fail_waiters(ErrorCode::UnknownMemberId, "the member never synced");
                }
            }
            removed = true;
        }
        if removed {
            self.after_removal(config, now);
        } else {
            self.maybe_complete_join(now);
        }
    }

    /// Marks the group deleted, answering anyone waiting.
    pub(super) fn kill(&mut self) {
        for member in self.members.values_mut() {
            member.fail_waiters(
                ErrorCode::CoordinatorNotAvailable,
                "the group was deleted or moved to another coordinator",
            );
        }
        self.state = State::Dead;
    }

    // ---- Answers ----

    fn join_response(&self, member_id: &str) -> JoinGroupResponse {
        JoinGroupResponse {
            error: ErrorCode::None as i32,
            message: String::new(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }

    fn member_list(&self) -> Vec<JoinedMember> {
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&self.protocol_name),
            })
            .collect()
    }

    fn sync_response(&self, member_id: &str) -> SyncGroupResponse {
        SyncGroupResponse {
            error: ErrorCode::None as i32,
            message: String::new(),
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// The metadata a member subscribed with, for the generation's protocol.
    pub(super) fn member_metadata(&self, member: &Member) -> Vec<u8> {
        member.metadata_for(&self.protocol_name)
    }
}

fn left(member: &LeavingMember, code: ErrorCode) -> MemberLeft {
    MemberLeft {
        member_id: member.member_id.clone(),
        instance_id: member.instance_id.clone(),
        error: code as i32,
    }
}

pub(super) fn join_error(code: ErrorCode, message: &str, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error: code as i32,
        message: message.to_string(),
        generation: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub(super) fn sync_error(code: ErrorCode, message: &str) -> SyncGroupResponse {
    SyncGroupResponse {
        error: code as i32,
        message: message.to_string(),
        ..Default::default()
    }
}

pub(super) fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
