//! The sequencer's guarantees: offsets per partition are dense, strictly increasing in
//! commit order and never reused — under concurrency, injected conflicts and unknown
//! commit results — and bad batches fail alone.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Harness, batch, laid_out, object};
use proptest::prelude::*;
use weir_control_plane::ErrorKind;
use weir_control_plane::index::{self, OffsetSpec, PartitionRead};
use weir_control_plane::proto::ErrorCode;
use weir_control_plane::sequencer::{ObjectCommit, SequencerConfig};
use weir_control_plane::{ControlPlaneConfig, Error};
use weir_metadata::{Offset, Partition, TopicId};

/// Reads a partition's whole index from offset 0.
async fn whole_index(h: &Harness, topic: TopicId, partition: i32) -> index::PartitionIndex {
    let reads = [PartitionRead {
        topic,
        partition: Partition(partition),
        from: Offset(0),
        max_bytes: u64::MAX,
    }];
    index::read_index(h.control_plane.store(), &reads)
        .await
        .expect("read index")
        .pop()
        .expect("one answer")
        .expect("partition exists")
}

/// Checks that a partition's index tiles `0..hwm` exactly, in order.
async fn assert_dense(h: &Harness, topic: TopicId, partition: i32) -> i64 {
    let index = whole_index(h, topic, partition).await;
    let mut next = 0;
    for entry in &index.entries {
        assert_eq!(
            entry.base_offset, next,
            "entries tile the log without gaps or overlap"
        );
        assert!(entry.record_count > 0);
        next += entry.record_count;
    }
    assert_eq!(
        next, index.watermarks.high_watermark.0,
        "the high watermark ends the log"
    );
    next
}

fn run_concurrent(
    committers: usize,
    objects_each: usize,
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
        let topic = h.create_topic("t", 4).await;
        h.inject(faults.0, faults.1, seed);
        let sequencer = h.control_plane.sequencer().clone();
        let tasks: Vec<_> = (0..committers)
            .map(|c| {
                let sequencer = sequencer.clone();
                tokio::spawn(async move {
                    // Each committer's own commits, in order: (partition, base, records).
                    let mut seen = Vec::new();
                    for i in 0..objects_each {
                        let records = 1 + ((c * 7 + i * 3) % 5) as i32;
                        let partitions = [((c + i) % 4) as i32, ((c + 2 * i + 1) % 4) as i32];
                        let commit = object(laid_out(topic, &partitions, records, 100));
                        let outcomes = sequencer.commit(commit).await.expect("commit");
                        for (p, outcome) in partitions.iter().zip(outcomes) {
                            seen.push((*p, outcome.expect("batch committed").0, records));
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut by_partition: BTreeMap<i32, Vec<(i64, i32)>> = BTreeMap::new();
        for task in tasks {
            let seen = task.await.expect("committer");
            // Strictly increasing in each committer's commit order.
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            for &(p, base, records) in &seen {
                if let Some(prev) = last.insert(p, base) {
                    prop_assert!(base > prev, "offsets grow in commit order");
                }
                by_partition.entry(p).or_default().push((base, records));
            }
        }
        h.inject(0.0, 0.0, 0);
        for (p, mut ranges) in by_partition {
            ranges.sort();
            let mut next = 0;
            for (base, records) in ranges {
                prop_assert_eq!(base, next, "partition {}: offsets dense, none reused", p);
                next += i64::from(records);
            }
            prop_assert_eq!(assert_dense(&h, topic, p).await, next);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn offsets_are_dense_and_ordered_under_concurrency_and_faults(
        committers in 1usize..6,
        objects_each in 1usize..12,
        conflict_rate in prop_oneof![Just(0.0), 0.0f64..0.4],
        unknown_rate in prop_oneof![Just(0.0), 0.0f64..0.3],
        seed in any::<u64>(),
    ) {
        run_concurrent(committers, objects_each, (conflict_rate, unknown_rate), seed)?;
    }
}

#[test]
fn many_committers_with_heavy_faults() {
    run_concurrent(16, 20, (0.3, 0.2), 42).expect("dense and ordered");
}

#[tokio::test]
async fn a_retried_commit_gets_the_first_answer_and_commits_nothing_twice() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 2).await;
    let commit = object(vec![
        batch(topic, 0, 0, 100, 3, 10),
        batch(topic, 1, 100, 50, 2, 20),
        batch(topic, 7, 150, 50, 2, 20),
    ]);
    let sequencer = h.control_plane.sequencer();
    let first = sequencer.commit(commit.clone()).await.expect("commit");
    sequencer
        .commit(object(laid_out(topic, &[0], 5, 10)))
        .await
        .expect("another object");
    let again = sequencer.commit(commit.clone()).await.expect("retry");
    assert_eq!(first, again, "the retry is answered as the first call was");
    assert_eq!(
        first[2]
            .as_ref()
            .expect_err("partition 7 does not exist")
            .code,
        ErrorCode::UnknownPartition
    );
    assert_eq!(
        assert_dense(&h, topic, 0).await,
        8,
        "3 + 5 records, not 3 + 5 + 3"
    );

    let mut different = commit;
    different.batches.pop();
    let err = sequencer
        .commit(different)
        .await
        .expect_err("same id, other batches");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("already committed"), "{err}");
}

/// An object older than its commit's `max_age` is refused whole and changes nothing:
/// its writer has stopped waiting and committed its next objects, so a late copy of
/// the request (held in a paused process) must not apply after them. A commit that
/// already applied is still answered as it was, however old.
#[tokio::test]
async fn an_object_past_its_max_age_is_refused_and_a_committed_one_still_replays() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let sequencer = h.control_plane.sequencer();
    let ten_seconds_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
    let old = |batches| ObjectCommit {
        object: weir_metadata::ObjectId(ulid::Ulid::from_datetime(ten_seconds_ago)),
        max_age: Some(std::time::Duration::from_secs(5)),
        ..object(batches)
    };

    let late = old(laid_out(topic, &[0], 3, 10));
    let refused = sequencer.commit(late.clone()).await.expect("answered");
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(e) if e.code == ErrorCode::ObjectTooOld
                && e.message.contains("past the 5000 ms"))),
        "{refused:?}"
    );
    assert_eq!(assert_dense(&h, topic, 0).await, 0, "nothing committed");

    // Committed while young (no age limit here), then asked again with one: replayed.
    let committed = ObjectCommit {
        max_age: None,
        ..old(laid_out(topic, &[0], 4, 10))
    };
    let first = sequencer.commit(committed.clone()).await.expect("commit");
    assert_eq!(first, vec![Ok(Offset(0))]);
    let again = ObjectCommit {
        max_age: Some(std::time::Duration::from_secs(5)),
        ..committed
    };
    assert_eq!(sequencer.commit(again).await.expect("replay"), first);
    assert_eq!(assert_dense(&h, topic, 0).await, 4);
}

#[tokio::test]
async fn bad_batches_fail_alone() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let unknown = TopicId::random();
    let commit = ObjectCommit {
        size: 400,
        ..object(vec![
            batch(topic, 0, 0, 100, 2, 1),
            batch(unknown, 0, 100, 100, 2, 1),
            batch(topic, 1, 200, 50, 2, 1),
            batch(topic, 0, 250, 50, 0, 1),
            batch(topic, 0, 300, 200, 1, 1),
            batch(topic, -1, 300, 10, 1, 1),
            batch(topic, 0, 300, 100, 4, 1),
        ])
    };
    let outcomes = h
        .control_plane
        .sequencer()
        .commit(commit)
        .await
        .expect("commit");
    let codes: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map_or_else(|e| e.code, |_| ErrorCode::None))
        .collect();
    assert_eq!(
        codes,
        [
            ErrorCode::None,
            ErrorCode::UnknownTopic,
            ErrorCode::UnknownPartition,
            ErrorCode::InvalidBatch,
            ErrorCode::InvalidBatch,
            ErrorCode::UnknownPartition,
            ErrorCode::None,
        ]
    );
    let zero = outcomes[3].as_ref().expect_err("zero records");
    assert!(zero.message.contains("0 records"), "{}", zero.message);
    let outside = outcomes[4].as_ref().expect_err("outside the object");
    assert!(outside.message.contains("400 bytes"), "{}", outside.message);
    assert_eq!(
        outcomes[6].as_ref().expect("committed").0,
        2,
        "offsets skip nothing for failed batches"
    );
    assert_eq!(assert_dense(&h, topic, 0).await, 6);
}

#[tokio::test]
async fn an_object_over_the_batch_limit_is_refused_whole() {
    let config = ControlPlaneConfig {
        sequencer: SequencerConfig {
            max_batches_per_object: 10,
            ..SequencerConfig::default()
        },
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(weir_control_plane::clock::SystemClock)).await;
    let topic = h.create_topic("t", 1).await;
    let err = h
        .control_plane
        .sequencer()
        .commit(object(laid_out(topic, &[0; 11], 1, 10)))
        .await
        .expect_err("11 batches");
    assert!(
        matches!(err, Error::TooManyBatches { count: 11, max: 10 }),
        "{err}"
    );
    assert!(err.to_string().contains("at most 10"), "{err}");
    assert_eq!(assert_dense(&h, topic, 0).await, 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_over_the_transaction_limit_fails_clearly_and_spares_its_group() {
    // Allow objects larger than one transaction can hold, to meet the store's limit.
    let config = ControlPlaneConfig {
        sequencer: SequencerConfig {
            max_batches_per_object: 200_000,
            max_batches_per_group: 400_000,
            ..SequencerConfig::default()
        },
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(weir_control_plane::clock::SystemClock)).await;
    let huge_topic = h.create_topic("huge", 100_000).await;
    let small_topic = h.create_topic("small", 1).await;
    let partitions: Vec<i32> = (0..100_000).collect();
    let huge = object(laid_out(huge_topic, &partitions, 1, 64));
    let small = object(laid_out(small_topic, &[0], 1, 64));
    let sequencer = h.control_plane.sequencer().clone();
    let (huge_result, small_result) = tokio::join!(sequencer.commit(huge), sequencer.commit(small));
    let err = huge_result.expect_err("over 10 MB of metadata");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(
        err.to_string().contains("10000000"),
        "names the limit: {err}"
    );
    assert_eq!(
        small_result.expect("the small object commits")[0]
            .as_ref()
            .expect("ok")
            .0,
        0
    );
    assert_eq!(
        assert_dense(&h, huge_topic, 0).await,
        0,
        "no partial write of the huge object"
    );
}

#[tokio::test]
async fn index_reads_return_exactly_the_covering_entries() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 2).await;
    let sequencer = h.control_plane.sequencer();
    // Object 1: two contiguous batches of p0 (one entry), one of p1.
    // Object 2: p0 again. Object 3: p0 twice, not contiguous (two entries).
    let o1 = object(vec![
        batch(topic, 0, 0, 100, 5, 100),
        batch(topic, 0, 100, 100, 5, 150),
        batch(topic, 1, 200, 100, 1, 100),
    ]);
    let o2 = object(vec![batch(topic, 0, 0, 80, 4, 300)]);
    let o3 = ObjectCommit {
        size: 1000,
        ..object(vec![
            batch(topic, 0, 0, 50, 1, 200),
            batch(topic, 0, 500, 50, 2, 400),
        ])
    };
    for o in [&o1, &o2, &o3] {
        sequencer.commit(o.clone()).await.expect("commit");
    }
    let read = |from: i64, max_bytes: u64| PartitionRead {
        topic,
        partition: Partition(0),
        from: Offset(from),
        max_bytes,
    };
    let store = h.control_plane.store();
    let all = index::read_index(store, &[read(0, u64::MAX)])
        .await
        .expect("read")
        .remove(0)
        .expect("ok");
    let spans: Vec<_> = all
        .entries
        .iter()
        .map(|e| (e.base_offset, e.record_count, e.length, e.batch_count))
        .collect();
    assert_eq!(
        spans,
        [
            (0, 10, 200, 2),
            (10, 4, 80, 1),
            (14, 1, 50, 1),
            (15, 2, 50, 1)
        ]
    );
    assert_eq!(all.watermarks.high_watermark, Offset(17));
    assert_eq!(all.entries[0].object_id, o1.object.to_bytes().to_vec());

    // From inside an entry: that entry first.
    let mid = index::read_index(store, &[read(12, u64::MAX)])
        .await
        .expect("read")
        .remove(0)
        .expect("ok");
    assert_eq!(
        mid.entries
            .iter()
            .map(|e| e.base_offset)
            .collect::<Vec<_>>(),
        [10, 14, 15]
    );
    // max_bytes stops after the entry that reaches it, but returns at least one.
    let capped = index::read_index(store, &[read(0, 1)])
        .await
        .expect("read")
        .remove(0)
        .expect("ok");
    assert_eq!(capped.entries.len(), 1);
    let capped = index::read_index(store, &[read(0, 250)])
        .await
        .expect("read")
        .remove(0)
        .expect("ok");
    assert_eq!(capped.entries.len(), 2);
    // At the high watermark: nothing yet. Past it: out of range.
    let tail = index::read_index(store, &[read(17, u64::MAX)])
        .await
        .expect("read")
        .remove(0)
        .expect("ok");
    assert!(tail.entries.is_empty());
    let (err, marks) = index::read_index(store, &[read(18, u64::MAX)])
        .await
        .expect("read")
        .remove(0)
        .expect_err("past the end");
    assert_eq!(err.code, ErrorCode::OffsetOutOfRange);
    assert_eq!(marks.expect("watermarks").high_watermark, Offset(17));
}

#[tokio::test]
async fn offsets_by_timestamp_find_the_first_batch_reaching_it() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let sequencer = h.control_plane.sequencer();
    // Max timestamps per batch, one object each, out of order as producers may send.
    let stamps = [100, 300, 200, 300, 500, 400];
    for ts in stamps {
        sequencer
            .commit(object(vec![batch(topic, 0, 0, 10, 2, ts)]))
            .await
            .expect("commit");
    }
    let store = h.control_plane.store();
    let query = |spec| (topic, Partition(0), spec);
    let expect =
        |ts: i64| -> Option<i64> { stamps.iter().position(|&s| s >= ts).map(|i| i as i64 * 2) };
    for ts in [0, 100, 101, 200, 250, 300, 301, 450, 500, 501] {
        let answer = index::list_offsets(store, &[query(OffsetSpec::Timestamp(ts))])
            .await
            .expect("list")
            .remove(0)
            .expect("ok");
        assert_eq!(answer.offset.map(|o| o.0), expect(ts), "timestamp {ts}");
        if let Some(entry) = answer.entry {
            assert!(entry.max_timestamp >= ts);
        }
    }
    let answers = index::list_offsets(
        store,
        &[query(OffsetSpec::Earliest), query(OffsetSpec::Latest)],
    )
    .await
    .expect("list");
    assert_eq!(answers[0].as_ref().expect("ok").offset, Some(Offset(0)));
    assert_eq!(answers[1].as_ref().expect("ok").offset, Some(Offset(12)));
    let unknown = index::list_offsets(store, &[(topic, Partition(1), OffsetSpec::Latest)])
        .await
        .expect("list")
        .remove(0)
        .expect_err("no partition 1");
    assert_eq!(unknown.0.code, ErrorCode::UnknownPartition);
}

#[tokio::test]
async fn a_deleted_topic_takes_its_index_and_rejects_late_batches() {
    let h = Harness::start().await;
    let topic = h.create_topic("t", 1).await;
    let sequencer = h.control_plane.sequencer();
    sequencer
        .commit(object(laid_out(topic, &[0], 3, 10)))
        .await
        .expect("commit");
    let store = h.control_plane.store();
    let deleted = weir_control_plane::topics::delete_topics(
        store,
        &[weir_control_plane::topics::TopicRef::Name("t".into())],
    )
    .await
    .expect("delete");
    assert!(deleted[0].is_ok());
    let late = sequencer
        .commit(object(laid_out(topic, &[0], 3, 10)))
        .await
        .expect("commit");
    assert_eq!(
        late[0].as_ref().expect_err("topic gone").code,
        ErrorCode::UnknownTopic
    );
    // A new topic of the same name starts from offset 0.
    let again = h.create_topic("t", 1).await;
    assert_ne!(again, topic);
    let first = sequencer
        .commit(object(laid_out(again, &[0], 3, 10)))
        .await
        .expect("commit");
    assert_eq!(first[0].as_ref().expect("ok").0, 0);
}
