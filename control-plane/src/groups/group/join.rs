//! JoinGroup: members join, a join phase gathers them, and the group picks a protocol
//! and a leader when everyone is in or the rebalance timeout ends the wait.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Group, GroupConfig, JoinOutcome, Member, State, join_error, millis, sync_error};
use crate::error::ItemError;
use crate::proto::{ErrorCode, JoinGroupRequest};

impl Group {
    pub(in crate::groups) fn join(
        &mut self,
        request: &JoinGroupRequest,
        config: &GroupConfig,
        new_member_id: impl FnOnce(&JoinGroupRequest) -> String,
        now: Instant,
    ) -> JoinOutcome {
        let fail = |code, message: String| {
            JoinOutcome::Now(join_error(code, &message, &request.member_id))
        };
        if self.state == State::Dead {
            return fail(
                ErrorCode::CoordinatorNotAvailable,
                format!("group {:?} was just deleted", self.id),
            );
        }
        let session = millis(request.session_timeout_ms);
        if session < config.min_session_timeout || session > config.max_session_timeout {
            return fail(
                ErrorCode::InvalidSessionTimeout,
                format!(
                    "session timeout {} ms is outside the allowed {}..={} ms",
                    request.session_timeout_ms,
                    config.min_session_timeout.as_millis(),
                    config.max_session_timeout.as_millis()
                ),
            );
        }
        if let Err(e) = self.check_protocols(request) {
            return fail(e.code, e.message);
        }
        if self.members.is_empty() {
            self.protocol_type = request.protocol_type.clone();
        }

        if request.member_id.is_empty() {
            let member_id = new_member_id(request);
            if let Some(instance) = &request.instance_id {
                return self.join_static(request, instance, member_id, config, now);
            }
            if request.require_known_member_id {
                // The member must come back with this id; until then it holds up the
                // join phase like a member that has not rejoined.
                self.pending.insert(member_id.clone(), now + session);
                return JoinOutcome::Now(join_error(
                    ErrorCode::MemberIdRequired,
                    "join again with the member id given",
                    &member_id,
                ));
            }
            return self.add_member(Member::from_join(member_id, request, now), config, now);
        }

        if self.pending.remove(&request.member_id).is_some() {
            let member = Member::from_join(request.member_id.clone(), request, now);
            return self.add_member(member, config, now);
        }
        if let Err(e) = self.check_member(&request.member_id, request.instance_id.as_deref()) {
            return JoinOutcome::Now(join_error(e.code, &e.message, &request.member_id));
        }
        self.join_current_member(request, config, now)
    }

    /// A JoinGroup with no member id from a `group.instance.id`: a static member
    /// joining for the first time, or coming back under a new member id — which fences
    /// the one it had, and keeps its assignment without a rebalance when nothing it
    /// subscribes to changed.
    pub(super) fn join_static(
        &mut self,
        request: &JoinGroupRequest,
        instance: &str,
        member_id: String,
        config: &GroupConfig,
        now: Instant,
    ) -> JoinOutcome {
        let Some(old_id) = self.static_members.get(instance).cloned() else {
            return self.add_member(Member::from_join(member_id, request, now), config, now);
        };
        let Some(mut member) = self.members.remove(&old_id) else {
            self.static_members.remove(instance);
            return self.add_member(Member::from_join(member_id, request, now), config, now);
        };
        member.fail_waiters(
            ErrorCode::FencedInstanceId,
            "a newer member joined with this group.instance.id",
        );
        member.id = member_id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = millis(request.session_timeout_ms);
        member.rebalance_timeout = millis(request.rebalance_timeout_ms);
        member.touch(now);
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(member_id.clone());
        }
        self.static_members
            .insert(instance.to_string(), member_id.clone());
        let unchanged = member.matches(&request.protocols);
        self.members.insert(member_id.clone(), member);

        match self.state {
            State::Stable if unchanged => {
                // Same subscription: the generation stands; the member syncs to get its
                // assignment back. The stored member id must follow.
                self.dirty = true;
                let mut response = self.join_response(&member_id);
                if self.leader.as_deref() == Some(member_id.as_str()) {
                    // The leader learns the members, but must not assign again.
                    response.members = self.member_list();
                    response.skip_assignment = true;
                }
                JoinOutcome::Now(response)
            }
            _ => {
                let member = self.members.get_mut(&member_id).expect("inserted above");
                member.protocols = request.protocols.clone();
                member.subscribed_topics = request.subscribed_topics.clone();
                self.await_join(&member_id, config, now)
            }
        }
    }

    pub(super) fn join_current_member(
        &mut self,
        request: &JoinGroupRequest,
        config: &GroupConfig,
        now: Instant,
    ) -> JoinOutcome {
        let id = request.member_id.clone();
        let member = self.members.get_mut(&id).expect("checked by check_member");
        member.touch(now);
        let unchanged = member.matches(&request.protocols);
        match self.state {
            State::PreparingRebalance => {
                member.protocols = request.protocols.clone();
                member.subscribed_topics = request.subscribed_topics.clone();
                self.await_join(&id, config, now)
            }
            State::CompletingRebalance if unchanged => {
                // A repeated join (a lost answer): answer as the join phase did.
                let mut response = self.join_response(&id);
                if self.leader.as_deref() == Some(id.as_str()) {
                    response.members = self.member_list();
                }
                JoinOutcome::Now(response)
            }
            State::Stable if unchanged && self.leader.as_deref() != Some(id.as_str()) => {
                JoinOutcome::Now(self.join_response(&id))
            }
            State::CompletingRebalance | State::Stable => {
                member.protocols = request.protocols.clone();
                member.subscribed_topics = request.subscribed_topics.clone();
                self.await_join(&id, config, now)
            }
            State::Empty | State::Dead => JoinOutcome::Now(join_error(
                ErrorCode::UnknownMemberId,
                "the group has no members",
                &id,
            )),
        }
    }

    pub(super) fn add_member(
        &mut self,
        member: Member,
        config: &GroupConfig,
        now: Instant,
    ) -> JoinOutcome {
        let id = member.id.clone();
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(id.clone(), member);
        self.await_join(&id, config, now)
    }

    /// Parks the member's JoinGroup until the join phase ends, starting a rebalance if
    /// none is under way.
    pub(super) fn await_join(
        &mut self,
        id: &str,
        config: &GroupConfig,
        now: Instant,
    ) -> JoinOutcome {
        let (reply, answer) = oneshot::channel();
        if let Some(member) = self.members.get_mut(id)
            && let Some(previous) = member.awaiting_join.replace(reply)
        {
            // The same member joined twice in one phase: the newer call answers.
            let _ = previous.send(join_error(
                ErrorCode::RebalanceInProgress,
                "superseded by a newer JoinGroup from the same member",
                id,
            ));
        }
        match self.state {
            State::PreparingRebalance => {
                if self.initial_delay {
                    // Each member arriving during a new group's first rebalance buys the
                    // others another delay, up to the rebalance timeout.
                    let limit = now + self.rebalance_timeout();
                    let extended = now + config.initial_rebalance_delay;
                    self.join_deadline = Some(extended.min(limit));
                }
                self.maybe_complete_join(now);
            }
            _ => self.prepare_rebalance(config, now),
        }
        JoinOutcome::Wait(answer)
    }

    /// Starts a rebalance: every member must join again within the rebalance timeout.
    pub(super) fn prepare_rebalance(&mut self, config: &GroupConfig, now: Instant) {
        if self.state == State::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(reply) = member.awaiting_sync.take() {
                    let _ = reply.send(sync_error(
                        ErrorCode::RebalanceInProgress,
                        "the group is rebalancing again",
                    ));
                }
            }
        }
        self.initial_delay = self.state == State::Empty;
        self.state = State::PreparingRebalance;
        self.sync_deadline = None;
        let delay = if self.initial_delay {
            config.initial_rebalance_delay.min(self.rebalance_timeout())
        } else {
            self.rebalance_timeout()
        };
        self.join_deadline = Some(now + delay);
        self.maybe_complete_join(now);
    }

    pub(super) fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    pub(super) fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let due = self.join_deadline.is_none_or(|deadline| now >= deadline);
        if due || (!self.initial_delay && self.all_joined()) {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not join again are dropped (static
    /// members keep their place until their session expires), a protocol and a leader
    /// are chosen, and every waiting JoinGroup is answered with the new generation.
    pub(super) fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.join_deadline = None;
        self.initial_delay = false;
        self.generation = self.generation.wrapping_add(1).max(1);
        self.dirty = true;

        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol_name.clear();
            self.leader = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        let joined_leader = self.leader.as_ref().is_some_and(|l| {
            self.members
                .get(l)
                .is_some_and(|m| m.awaiting_join.is_some())
        });
        if !joined_leader {
            self.leader = self
                .members
                .values()
                .find(|m| m.awaiting_join.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.id.clone());
        }
        self.state = State::CompletingRebalance;
        self.sync_deadline = Some(now + self.rebalance_timeout());

        let member_list = self.member_list();
        let leader = self.leader.clone();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let mut response = self.join_response(&id);
            if leader.as_deref() == Some(id.as_str()) {
                response.members = member_list.clone();
            }
            let member = self.members.get_mut(&id).expect("listed above");
            member.touch(now);
            if let Some(reply) = member.awaiting_join.take() {
                let _ = reply.send(response);
            }
        }
    }

    /// Kafka's choice: among the protocols every member supports, each member votes for
    /// the first it lists; the most votes wins (ties go to the earliest in the leader's
    /// — or first member's — preference).
    pub(super) fn select_protocol(&self) -> String {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return String::new();
        };
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|p| p.name == *name))
            })
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some(vote) = member
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()))
            {
                *votes.entry(vote.name.as_str()).or_default() += 1;
            }
        }
        let best = candidates
            .iter()
            .map(|c| votes.get(c).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        candidates
            .into_iter()
            .find(|c| votes.get(c).copied().unwrap_or(0) == best)
            .unwrap_or_default()
            .to_string()
    }

    /// A joining member must speak the group's protocol type and share at least one
    /// protocol with every current member.
    pub(super) fn check_protocols(&self, request: &JoinGroupRequest) -> Result<(), ItemError> {
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(ItemError::new(
                ErrorCode::InconsistentGroupProtocol,
                "a JoinGroup must name a protocol type and at least one protocol",
            ));
        }
        let others = self
            .members
            .values()
            .filter(|m| m.id != request.member_id)
            .collect::<Vec<_>>();
        if others.is_empty() {
            return Ok(());
        }
        if request.protocol_type != self.protocol_type {
            return Err(ItemError::new(
                ErrorCode::InconsistentGroupProtocol,
                format!(
                    "the group's protocol type is {:?}, not {:?}",
                    self.protocol_type, request.protocol_type
                ),
            ));
        }
        let shared = request.protocols.iter().any(|p| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|q| q.name == p.name))
        });
        if !shared {
            return Err(ItemError::new(
                ErrorCode::InconsistentGroupProtocol,
                "none of the member's protocols (assignors) is supported by every other member",
            ));
        }
        Ok(())
    }
}
