//! The order in which a connection's requests take effect.
//!
//! A Kafka broker handles a connection's requests one at a time, so clients may
//! pipeline requests whose effects depend on each other: librdkafka and the Java client
//! send asynchronous offset commits back to back and rely on the last one winning, and
//! a group member's JoinGroup, SyncGroup, Heartbeat and OffsetCommit follow each other
//! on one connection. The agent handles a connection's requests concurrently (produce
//! and fetch throughput need it) and answers them in order; this module keeps their
//! effects in order too:
//!
//! - **Produce** hands its batches to the writer in request order (in the connection's
//!   read loop, before the next frame is read), so a partition's offsets follow the
//!   producer's order; its wait for the commit runs concurrently with what follows.
//! - **Fetch** changes nothing and runs concurrently: a long poll never holds back a
//!   heartbeat.
//! - **Every other request** takes a [`Turn`] in the connection's order and runs only
//!   when the request before it in that lane has finished, effects and all: offset
//!   commits, group membership, topic administration, producer ids, and the reads
//!   (OffsetFetch, Metadata, ListOffsets…) that must see what the connection did
//!   before them.
//!
//! Produce and Fetch never wait for the lane and the lane never waits for them: that is
//! what clients' dedicated coordinator connections assume of a broker anyway.

use kafka_protocol::messages::ApiKey;
use tokio::sync::oneshot;

/// Whether a request of `key` takes effect in the connection's order, after every
/// earlier such request has finished.
pub fn in_order(key: ApiKey) -> bool {
    !matches!(key, ApiKey::Produce | ApiKey::Fetch)
}

/// Hands out turns, in the order requests are read from one connection.
#[derive(Debug, Default)]
pub struct Lane {
    /// Fires when the latest turn handed out is over.
    last: Option<oneshot::Receiver<()>>,
}

impl Lane {
    /// The next turn: it may start once every turn handed out before it is over.
    pub fn take_turn(&mut self) -> Turn {
        let (done, over) = oneshot::channel();
        Turn {
            after: self.last.replace(over),
            _done: done,
        }
    }
}

/// One request's place in its connection's lane. Dropping it (when the request's
/// handling ends, however it ends) lets the next one start.
#[derive(Debug)]
pub struct Turn {
    after: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Turn {
    /// Waits until the turn before this one is over.
    pub async fn wait(&mut self) {
        if let Some(after) = self.after.take() {
            // The sender is only ever dropped, never used: an error means "over".
            let _ = after.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    /// The shape of one pipelined request in a property case: whether it is in the
    /// lane, how long it takes to be picked up by its task, and how long its effect takes.
    #[derive(Clone, Debug)]
    struct Step {
        ordered: bool,
        start_after_ms: u64,
        work_ms: u64,
    }

    fn step() -> impl Strategy<Value = Step> {
        (any::<bool>(), 0u64..20, 0u64..20).prop_map(|(ordered, start_after_ms, work_ms)| Step {
            ordered,
            start_after_ms,
            work_ms,
        })
    }

    /// Runs `steps` as the connection does: a turn taken in read order for each ordered
    /// one, each handled on its own task that starts late by a random delay; returns
    /// when each ordered one began (`true`) and finished (`false`) its effect, in order.
    async fn run(steps: Vec<Step>) -> Vec<(usize, bool)> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut lane = Lane::default();
        let mut tasks = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let turn = step.ordered.then(|| lane.take_turn());
            let events = events.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(step.start_after_ms)).await;
                let mut turn = turn;
                if let Some(turn) = &mut turn {
                    turn.wait().await;
                }
                let log = |begun| {
                    if step.ordered {
                        events.lock().expect("lock").push((i, begun));
                    }
                };
                log(true);
                tokio::time::sleep(Duration::from_millis(step.work_ms)).await;
                log(false);
                drop(turn);
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        events.lock().expect("lock").clone()
    }

    proptest! {
        /// Ordered requests take effect one at a time, in the order they were read, however
        /// their tasks are scheduled.
        #[test]
        fn ordered_requests_take_effect_one_at_a_time_in_read_order(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let expected: Vec<(usize, bool)> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.ordered)
                .flat_map(|(i, _)| [(i, true), (i, false)])
                .collect();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            prop_assert_eq!(runtime.block_on(run(steps)), expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_whose_request_failed_still_lets_the_next_one_run() {
        let mut lane = Lane::default();
        let first = lane.take_turn();
        let mut second = lane.take_turn();
        let task = tokio::spawn(async move {
            let _turn = first;
            panic!("the handler failed");
        });
        assert!(task.await.is_err());
        tokio::time::timeout(Duration::from_secs(1), second.wait())
            .await
            .expect("the second turn starts once the failed one is over");
    }

    #[test]
    fn produce_and_fetch_are_pipelined_and_everything_else_is_ordered() {
        assert!(!in_order(ApiKey::Produce));
        assert!(!in_order(ApiKey::Fetch));
        for key in [
            ApiKey::OffsetCommit,
            ApiKey::Heartbeat,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::OffsetFetch,
            ApiKey::CreateTopics,
            ApiKey::InitProducerId,
            ApiKey::Metadata,
        ] {
            assert!(in_order(key), "{key:?}");
        }
    }
}
