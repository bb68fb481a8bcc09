//! SyncGroup: the leader hands in the assignment, every member waiting gets its share,
//! and the group is stable.

use std::collections::HashMap;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Group, GroupConfig, State, SyncOutcome, sync_error};
use crate::error::ItemError;
use crate::proto::{ErrorCode, SyncGroupRequest};

impl Group {
    pub(in crate::groups) fn sync(
        &mut self,
        request: &SyncGroupRequest,
        now: Instant,
    ) -> SyncOutcome {
        let now_error = |e: ItemError| SyncOutcome::Now(sync_error(e.code, &e.message));
        if let Err(e) = self.check_generation(
            &request.member_id,
            request.instance_id.as_deref(),
            request.generation,
        ) {
            return now_error(e);
        }
        let mismatch = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| *t != self.protocol_type)
            || request
                .protocol_name
                .as_ref()
                .is_some_and(|n| *n != self.protocol_name);
        if mismatch {
            return now_error(ItemError::new(
                ErrorCode::InconsistentGroupProtocol,
                format!(
                    "the generation's protocol is {:?}/{:?}",
                    self.protocol_type, self.protocol_name
                ),
            ));
        }
        match self.state {
            State::PreparingRebalance => now_error(ItemError::new(
                ErrorCode::RebalanceInProgress,
                "the group is rebalancing: join again",
            )),
            State::Stable => {
                let member = self
                    .members
                    .get_mut(&request.member_id)
                    .expect("checked above");
                member.touch(now);
                SyncOutcome::Now(self.sync_response(&request.member_id))
            }
            State::CompletingRebalance => {
                let (reply, answer) = oneshot::channel();
                let member = self
                    .members
                    .get_mut(&request.member_id)
                    .expect("checked above");
                member.touch(now);
                member.awaiting_sync = Some(reply);
                if self.leader.as_deref() == Some(request.member_id.as_str()) {
                    let mut assignments: HashMap<&str, &[u8]> = request
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.as_str(), a.assignment.as_slice()))
                        .collect();
                    for member in self.members.values_mut() {
                        member.assignment = assignments
                            .remove(member.id.as_str())
                            .map(<[u8]>::to_vec)
                            .unwrap_or_default();
                    }
                    self.state = State::Stable;
                    self.sync_deadline = None;
                    self.dirty = true;
                    // Answered once the coordinator has stored the generation: see
                    // `answer_syncs`.
                }
                SyncOutcome::Wait(answer)
            }
            State::Empty | State::Dead => now_error(ItemError::new(
                ErrorCode::UnknownMemberId,
                "the group has no members",
            )),
        }
    }

    /// Answers every waiting SyncGroup of a stable generation with its assignment
    /// (once the generation is stored), or with `error` when storing it failed.
    pub(in crate::groups) fn answer_syncs(
        &mut self,
        error: Option<ItemError>,
        config: &GroupConfig,
        now: Instant,
    ) {
        if let Some(error) = error {
            for member in self.members.values_mut() {
                if let Some(reply) = member.awaiting_sync.take() {
                    let _ = reply.send(sync_error(error.code, &error.message));
                }
            }
            self.prepare_rebalance(config, now);
            return;
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.sync_response(&id);
            if let Some(reply) = self
                .members
                .get_mut(&id)
                .and_then(|m| m.awaiting_sync.take())
            {
                let _ = reply.send(response);
            }
        }
    }
}
