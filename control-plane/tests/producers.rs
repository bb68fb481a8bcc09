//! Idempotent producers: the sequence check against a model, and through the sequencer
//! (duplicates get their first offset and no second copy; batches ahead of the sequence,
//! behind it and of stale epochs are refused; state survives a restart and injected
//! store faults; idle state expires), and InitProducerId.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, batch, object};
use proptest::prelude::*;
use weir_control_plane::clock::{ManualClock, SystemClock};
use weir_control_plane::index::{self, PartitionRead};
use weir_control_plane::producers::{
    self, ProducerBatch, RECENT_BATCHES, Verdict, last_sequence, next_sequence,
};
use weir_control_plane::proto::ErrorCode;
use weir_control_plane::sequencer::{BatchOutcome, BatchRef};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::keyspace::{self, ProducerRecord};
use weir_metadata::{
    Database, EmbeddedConfig, EmbeddedStore, Offset, Partition, ProducerId, TopicId,
};

// ---- The pure check against a model ----

/// What a producer does next, in the model test.
#[derive(Clone, Debug)]
enum Step {
    /// Sends its next batch of this many records.
    Next(i32),
    /// Sends again the batch this many back among those accepted (0: the last).
    Retry(usize),
    /// Skips this many sequence numbers and sends a batch.
    Gap(i32),
    /// Moves to the next epoch and starts at sequence 0.
    Bump,
    /// Sends a batch with an epoch older than the partition's.
    Stale,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => (1i32..50).prop_map(Step::Next),
            3 => (0usize..8).prop_map(Step::Retry),
            1 => (1i32..5).prop_map(Step::Gap),
            1 => Just(Step::Bump),
            1 => Just(Step::Stale),
        ],
        1..60,
    )
}

/// The model: every batch accepted in the current epoch, in order, kept forever.
#[derive(Default)]
struct Model {
    epoch: i16,
    accepted: Vec<(i32, i32, i64)>,
    next_offset: i64,
}

impl Model {
    fn expect(&self, started: bool, epoch: i16, first: i32, count: i32) -> Expected {
        if !started {
            return Expected::Append;
        }
        let last = last_sequence(first, count);
        if epoch < self.epoch {
            return Expected::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if epoch > self.epoch {
            return if first == 0 {
                Expected::Append
            } else {
                Expected::Reject(ErrorCode::SequenceAhead)
            };
        }
        let recent = self.accepted.iter().rev().take(RECENT_BATCHES);
        if let Some(&(_, _, base)) = recent.into_iter().find(|a| a.0 == first && a.1 == last) {
            return Expected::Duplicate(base);
        }
        match self.accepted.last() {
            Some(&(_, newest, _)) if next_sequence(newest) != first => {
                // Up to a quarter of the way round the wrapping space is ahead.
                let forward =
                    (first as u32).wrapping_sub(next_sequence(newest) as u32) & (u32::MAX >> 1);
                if forward < 1 << 30 {
                    Expected::Reject(ErrorCode::SequenceAhead)
                } else {
                    Expected::Reject(ErrorCode::OutOfOrderSequence)
                }
            }
            _ => Expected::Append,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Append,
    Duplicate(i64),
    Reject(ErrorCode),
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_check_agrees_with_a_model_that_remembers_everything(
        steps in steps(),
        start in prop_oneof![Just(0i32), Just(i32::MAX - 20), any::<i32>().prop_map(|s| s.max(0))],
    ) {
        let mut model = Model { epoch: 1, ..Model::default() };
        let mut state = None;
        let mut next = start;
        let mut sent: Vec<(i32, i32)> = Vec::new(); // (first sequence, count) accepted
        for step in steps {
            let (epoch, first, count) = match step {
                Step::Next(count) => (model.epoch, next, count),
                Step::Retry(back) => match sent.iter().rev().nth(back) {
                    Some(&(first, count)) => (model.epoch, first, count),
                    None => continue,
                },
                Step::Gap(skip) => (model.epoch, next.wrapping_add(skip).max(0), 1),
                Step::Bump => (model.epoch + 1, 0, 1),
                Step::Stale => (model.epoch - 1, next, 1),
            };
            let batch = ProducerBatch { id: ProducerId(9), epoch, base_sequence: first };
            let verdict = producers::check(state.as_ref(), batch, count);
            let expected = model.expect(state.is_some(), epoch, first, count);
            let got = match &verdict {
                Verdict::Append => Expected::Append,
                Verdict::Duplicate(o) => Expected::Duplicate(o.0),
                Verdict::Reject(e) => Expected::Reject(e.code),
            };
            prop_assert_eq!(&got, &expected, "step {:?} at epoch {} seq {}", step, epoch, first);
            if verdict == Verdict::Append {
                let base = model.next_offset;
                state = Some(producers::appended(state, batch, count, Offset(base)));
                if epoch != model.epoch {
                    model.epoch = epoch;
                    model.accepted.clear();
                    sent.clear();
                }
                let last = last_sequence(first, count);
                model.accepted.push((first, last, base));
                model.next_offset += i64::from(count);
                sent.push((first, count));
                next = next_sequence(last);
            }
            let kept = state.as_ref().map_or(0, |s| s.recent.len());
            prop_assert!(kept <= RECENT_BATCHES, "state stays bounded");
        }
    }
}

// ---- Through the sequencer ----

fn idempotent(b: BatchRef, id: i64, epoch: i16, base_sequence: i32) -> BatchRef {
    BatchRef {
        producer: Some(ProducerBatch {
            id: ProducerId(id),
            epoch,
            base_sequence,
        }),
        ..b
    }
}

async fn commit_one(h: &Harness, b: BatchRef) -> BatchOutcome {
    h.control_plane
        .sequencer()
        .commit(object(vec![b]))
        .await
        .expect("commit")
        .pop()
        .expect("one outcome")
}

/// (base offset, record count) of every index entry, and the high watermark.
async fn log_of(h: &Harness, topic: TopicId, partition: i32) -> (Vec<(i64, i64)>, i64) {
    let reads = [PartitionRead {
        topic,
        partition: Partition(partition),
        from: Offset(0),
        max_bytes: u64::MAX,
    }];
    let index = index::read_index(h.control_plane.store(), &reads)
        .await
        .expect("read index")
        .pop()
        .expect("one answer")
        .expect("partition exists");
    let entries = index
        .entries
        .iter()
        .map(|e| (e.base_offset, e.record_count))
        .collect();
    (entries, index.watermarks.high_watermark.0)
}

fn code(outcome: &BatchOutcome) -> ErrorCode {
    outcome
        .as_ref()
        .map_or_else(|e| e.code, |_| ErrorCode::None)
}

#[tokio::test]
async fn a_duplicate_gets_its_first_offset_and_no_second_copy() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let first = idempotent(batch(topic, 0, 0, 100, 5, 10), 1, 0, 0);
    assert_eq!(commit_one(&h, first.clone()).await, Ok(Offset(0)));
    let other = batch(topic, 0, 0, 100, 3, 10);
    assert_eq!(commit_one(&h, other).await, Ok(Offset(5)));
    // The same batch again, in another object (a client retry after a lost answer).
    assert_eq!(commit_one(&h, first).await, Ok(Offset(0)));
    assert_eq!(
        log_of(&h, topic, 0).await,
        (vec![(0, 5), (5, 3)], 8),
        "the retry added no entry and did not move the high watermark"
    );
}

#[tokio::test]
async fn a_batch_ahead_waits_for_the_ones_before_it_and_one_behind_is_out_of_order() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let b = |seq| idempotent(batch(topic, 0, 0, 100, 2, 10), 1, 0, seq);
    assert_eq!(commit_one(&h, b(0)).await, Ok(Offset(0)));
    // Sequence 2 may still be on its way through another agent: retriable.
    let ahead = commit_one(&h, b(3)).await;
    assert_eq!(code(&ahead), ErrorCode::SequenceAhead);
    let message = ahead.expect_err("refused").message;
    assert!(
        message.contains("sequence 3 came before sequence 2"),
        "{message}"
    );
    assert_eq!(commit_one(&h, b(2)).await, Ok(Offset(2)));
    assert_eq!(commit_one(&h, b(4)).await, Ok(Offset(4)), "then it goes in");
    // Sequences 1..=2 overlap what was appended but are none of its batches.
    let behind = commit_one(&h, b(1)).await;
    assert_eq!(code(&behind), ErrorCode::OutOfOrderSequence);
    let message = behind.expect_err("refused").message;
    assert!(message.contains("expected sequence 6, got 1"), "{message}");
    assert_eq!(log_of(&h, topic, 0).await.1, 6);
}

#[tokio::test]
async fn a_stale_epoch_is_refused_and_a_new_one_starts_at_zero() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let b = |epoch, seq| idempotent(batch(topic, 0, 0, 100, 1, 10), 4, epoch, seq);
    assert_eq!(commit_one(&h, b(1, 0)).await, Ok(Offset(0)));
    assert_eq!(
        code(&commit_one(&h, b(0, 1)).await),
        ErrorCode::InvalidProducerEpoch
    );
    assert_eq!(
        code(&commit_one(&h, b(2, 1)).await),
        ErrorCode::SequenceAhead,
        "sequence 0 of epoch 2 may still be on its way"
    );
    assert_eq!(commit_one(&h, b(2, 0)).await, Ok(Offset(1)));
    assert_eq!(
        code(&commit_one(&h, b(1, 1)).await),
        ErrorCode::InvalidProducerEpoch,
        "epoch 1 is now fenced"
    );
}

#[tokio::test]
async fn interleaved_producers_in_one_object_are_checked_in_order() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 2).await;
    let b = |position, partition, producer, seq| {
        idempotent(
            batch(topic, partition, position, 10, 2, 10),
            producer,
            0,
            seq,
        )
    };
    let outcomes = h
        .control_plane
        .sequencer()
        .commit(object(vec![
            b(0, 0, 1, 0),
            b(10, 0, 2, 0),
            b(20, 0, 1, 2),
            b(30, 0, 1, 2), // a repeat of the batch two back, in the same object
            b(40, 0, 2, 4), // ahead of producer 2's next (2)
            b(50, 0, 2, 2),
            b(60, 1, 1, 0), // producer 1 on another partition: its own sequence
        ]))
        .await
        .expect("commit");
    assert_eq!(
        outcomes.iter().map(code).collect::<Vec<_>>(),
        [
            ErrorCode::None,
            ErrorCode::None,
            ErrorCode::None,
            ErrorCode::None,
            ErrorCode::SequenceAhead,
            ErrorCode::None,
            ErrorCode::None,
        ]
    );
    let offsets: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(
        offsets,
        [
            &Offset(0),
            &Offset(2),
            &Offset(4),
            &Offset(4),
            &Offset(6),
            &Offset(0)
        ]
    );
    assert_eq!(
        log_of(&h, topic, 0).await.1,
        8,
        "four batches of two appended"
    );
}

#[tokio::test]
async fn producer_state_survives_a_control_plane_restart() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let first = idempotent(batch(topic, 0, 0, 100, 3, 10), 1, 0, 0);
    assert_eq!(commit_one(&h, first.clone()).await, Ok(Offset(0)));

    let Harness {
        control_plane,
        store,
        dir,
    } = h;
    Arc::try_unwrap(control_plane)
        .expect("the only handle")
        .shutdown()
        .await;
    drop(store);
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("reopen"));
    let control_plane = ControlPlane::start_with_clock(
        ControlPlaneConfig::default(),
        Database::new(store.clone()),
        Arc::new(SystemClock),
    )
    .await
    .expect("restart");
    let h = Harness {
        control_plane: Arc::new(control_plane),
        store,
        dir,
    };
    assert_eq!(
        commit_one(&h, first).await,
        Ok(Offset(0)),
        "still a duplicate"
    );
    let ahead = idempotent(batch(topic, 0, 0, 100, 1, 10), 1, 0, 5);
    assert_eq!(code(&commit_one(&h, ahead).await), ErrorCode::SequenceAhead);
    assert_eq!(log_of(&h, topic, 0).await.1, 3);
}

/// Producers that resend every batch (some in the same object, some later) while the
/// store injects conflicts and unknown commit results: each batch lands once, in order.
fn run_retrying_producers(
    producers: i64,
    batches_each: i32,
    faults: (f64, f64),
    seed: u64,
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let h = Harness::start().await;
        let topic = h.create_topic("t", 2).await;
        h.inject(faults.0, faults.1, seed);
        let sequencer = h.control_plane.sequencer().clone();
        let tasks: Vec<_> = (0..producers)
            .map(|id| {
                let sequencer = sequencer.clone();
                tokio::spawn(async move {
                    let mut seq = [0i32; 2];
                    let mut pending: VecDeque<BatchRef> = VecDeque::new();
                    // The first answer to each (partition, first sequence).
                    let mut answers: BTreeMap<(i32, i32), i64> = BTreeMap::new();
                    let mut landed = Vec::new();
                    for i in 0..batches_each {
                        let partition = i % 2;
                        let records = 1 + (i % 3);
                        let p = partition as usize;
                        let b =
                            idempotent(batch(topic, partition, 0, 10, records, 10), id, 0, seq[p]);
                        seq[p] = next_sequence(last_sequence(seq[p], records));
                        // This batch, and a resend of the previous one in the same object.
                        let mut batches = vec![b.clone()];
                        if let Some(previous) = pending.back() {
                            batches.push(BatchRef {
                                position: 10,
                                ..previous.clone()
                            });
                        }
                        pending.push_back(b);
                        if pending.len() > 2 {
                            pending.pop_front();
                        }
                        let outcomes = sequencer
                            .commit(object(batches.clone()))
                            .await
                            .expect("commit");
                        for (b, outcome) in batches.iter().zip(outcomes) {
                            let base = outcome.expect("appended or a duplicate").0;
                            let first = b.producer.expect("idempotent").base_sequence;
                            let key = (b.partition.0, first);
                            match answers.get(&key) {
                                Some(&seen) => {
                                    assert_eq!(seen, base, "a duplicate gets the first offset")
                                }
                                None => {
                                    answers.insert(key, base);
                                    landed.push((b.partition.0, base, b.record_count));
                                }
                            }
                        }
                    }
                    landed
                })
            })
            .collect();
        let mut by_partition: BTreeMap<i32, Vec<(i64, i32)>> = BTreeMap::new();
        for task in tasks {
            let landed = task.await.expect("producer");
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for (p, base, records) in landed {
                if let Some(prev) = last.insert(p, base) {
                    prop_assert!(base > prev, "a producer's batches land in order");
                }
                by_partition.entry(p).or_default().push((base, records));
            }
        }
        h.inject(0.0, 0.0, 0);
        for (p, mut ranges) in by_partition {
            ranges.sort();
            let mut next = 0;
            for (base, records) in ranges {
                prop_assert_eq!(base, next, "partition {}: each batch once, no gaps", p);
                next += i64::from(records);
            }
            prop_assert_eq!(log_of(&h, topic, p).await.1, next, "no second copies");
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn retries_land_once_under_injected_faults(
        producers in 1i64..5,
        batches_each in 1i32..15,
        conflict_rate in prop_oneof![Just(0.0), 0.0f64..0.4],
        unknown_rate in prop_oneof![Just(0.0), 0.0f64..0.3],
        seed in any::<u64>(),
    ) {
        run_retrying_producers(producers, batches_each, (conflict_rate, unknown_rate), seed)?;
    }
}

#[tokio::test]
async fn idle_producer_state_expires_and_the_producer_is_then_taken_at_its_word() {
    let clock = ManualClock::new(1_000_000);
    let config = ControlPlaneConfig {
        producer_state_expiry: Duration::from_secs(60),
        // The manual clock does not renew the sequencer's lease: make it outlast the test.
        lease_ttl: Duration::from_secs(3600),
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(clock.clone())).await;
    let topic = h.create_topic("t", 1).await;
    let b = |seq| idempotent(batch(topic, 0, 0, 100, 1, 10), 1, 0, seq);
    let (busy, _) = producers::init_producer_id(h.control_plane.store(), None)
        .await
        .expect("init")
        .expect("allocated");
    assert_eq!(commit_one(&h, b(0)).await, Ok(Offset(0)));
    let store = h.control_plane.store();
    assert_eq!(
        producers::expire(store, Duration::from_secs(60))
            .await
            .expect("expire"),
        0,
        "nothing is idle yet"
    );
    clock.advance_ms(61_000);
    assert_eq!(
        producers::expire(store, Duration::from_secs(60))
            .await
            .expect("expire"),
        2,
        "the partition state and the producer record"
    );
    assert_eq!(
        commit_one(&h, b(5)).await,
        Ok(Offset(1)),
        "forgotten: any first sequence is taken"
    );
    assert_eq!(
        commit_one(&h, b(5)).await,
        Ok(Offset(1)),
        "and tracked again"
    );
    let (again, epoch) = producers::init_producer_id(store, Some((busy, 0)))
        .await
        .expect("init")
        .expect("a new id");
    assert_ne!(
        again, busy,
        "an expired producer asking for a bump gets a new id"
    );
    assert_eq!(epoch, 0);
}

#[tokio::test]
async fn init_producer_id_allocates_bumps_and_fences() {
    let h = Harness::start().await;
    let store = h.control_plane.store();
    let init = |current| async move {
        producers::init_producer_id(store, current)
            .await
            .expect("init")
    };
    let (a, epoch) = init(None).await.expect("allocated");
    let (b, _) = init(None).await.expect("allocated");
    assert_eq!((a, epoch), (ProducerId(0), 0));
    assert_eq!(b, ProducerId(1), "ids come from one counter");
    assert_eq!(init(Some((a, 0))).await, Ok((a, 1)), "KIP-360 bump");
    let fenced = init(Some((a, 0))).await.expect_err("epoch 0 is stale");
    assert_eq!(fenced.code, ErrorCode::ProducerFenced);
    assert!(
        fenced.message.contains("its epoch is 1"),
        "{}",
        fenced.message
    );
}

#[tokio::test]
async fn an_exhausted_epoch_gets_a_new_producer_id() {
    let h = Harness::start().await;
    let store = h.control_plane.store();
    let (id, _) = producers::init_producer_id(store, None)
        .await
        .expect("init")
        .expect("allocated");
    let last = i16::MAX - 1;
    store
        .db
        .run(|tx| async move {
            tx.set(
                &store.ks.producer(id),
                &keyspace::encode(&ProducerRecord {
                    epoch: i32::from(last),
                    updated_ms: 0,
                }),
            );
            Ok::<_, weir_control_plane::Error>(())
        })
        .await
        .expect("set the epoch");
    let (next, epoch) = producers::init_producer_id(store, Some((id, last)))
        .await
        .expect("init")
        .expect("a new id");
    assert_ne!(next, id);
    assert_eq!(epoch, 0);
}

#[tokio::test]
async fn init_producer_id_over_grpc() {
    use weir_control_plane::proto::InitProducerIdRequest;
    let h = Harness::start().await;
    let (url, stop) = h.serve().await;
    let client = h.client(&url, None).await;
    let call = |producer_id, producer_epoch| {
        let mut producers = client.producers.clone();
        async move {
            producers
                .init_producer_id(InitProducerIdRequest {
                    producer_id,
                    producer_epoch,
                })
                .await
                .expect("call")
                .into_inner()
        }
    };
    let first = call(-1, -1).await;
    assert_eq!(first.error, ErrorCode::None as i32);
    assert_eq!((first.producer_id, first.producer_epoch), (0, 0));
    let bumped = call(0, 0).await;
    assert_eq!((bumped.producer_id, bumped.producer_epoch), (0, 1));
    let fenced = call(0, 0).await;
    assert_eq!(fenced.error, ErrorCode::ProducerFenced as i32);
    assert_eq!(fenced.producer_id, -1);
    assert!(
        fenced.message.contains("another instance"),
        "{}",
        fenced.message
    );
    stop.cancel();
}
