//! The data lifecycle in the metadata store (docs/lifecycle.md): retention by time and
//! size, DeleteRecords, topic deletion, compaction swaps racing all three, and the
//! deletion queue — with the reverse index checked against the index after each step.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, batch, object};
use weir_control_plane::clock::ManualClock;
use weir_control_plane::index::{self, OffsetSpec, PartitionRead};
use weir_control_plane::lifecycle::{CompactionConfig, LifecycleConfig, compaction, deletion};
use weir_control_plane::proto::ErrorCode;
use weir_control_plane::topics::{self, TopicRef, TopicSpec};
use weir_control_plane::{ControlPlaneConfig, ItemError};
use weir_control_plane_api::jobs::{Job, JobOutput, OutputEntry, OutputRun};
use weir_metadata::keyspace::{self, IndexEntry, ObjectRecord};
use weir_metadata::{AgentId, ObjectId, Offset, Partition, TopicId, decode_counter};

const START_MS: i64 = 1_800_000_000_000;
const GRACE_MS: i64 = 60_000;

struct Lifecycle {
    h: Harness,
    clock: ManualClock,
}

async fn start() -> Lifecycle {
    start_with(CompactionConfig::default()).await
}

async fn start_with(compaction: CompactionConfig) -> Lifecycle {
    let clock = ManualClock::new(START_MS);
    let config = ControlPlaneConfig {
        lifecycle: LifecycleConfig {
            // The tests run passes themselves.
            retention_interval: Duration::from_secs(3600),
            tick: Duration::from_secs(3600),
            delete_grace: Duration::from_millis(GRACE_MS as u64),
            compaction,
            ..LifecycleConfig::default()
        },
        // The tests move the clock past job leases; the sequencer's must outlast that.
        lease_ttl: Duration::from_secs(365 * 24 * 3600),
        ..ControlPlaneConfig::default()
    };
    let h = Harness::start_with(config, Arc::new(clock.clone())).await;
    Lifecycle { h, clock }
}

impl Lifecycle {
    async fn topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) -> TopicId {
        let results = topics::create_topics(
            self.h.control_plane.store(),
            vec![TopicSpec {
                name: name.into(),
                partitions,
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }],
            false,
        )
        .await
        .expect("create topic");
        results[0].1.as_ref().expect("created").id
    }

    /// Commits one object with a batch of `records` records, `length` bytes, for each
    /// partition given, timestamped `ts`; returns its id.
    async fn commit(&self, topic: TopicId, partitions: &[i32], records: i32, ts: i64) -> ObjectId {
        let length = 100;
        let batches = partitions
            .iter()
            .enumerate()
            .map(|(i, &p)| batch(topic, p, 8 + i as u64 * length, length as u32, records, ts))
            .collect();
        let commit = object(batches);
        let id = commit.object;
        let outcomes = self
            .h
            .control_plane
            .sequencer()
            .commit(commit)
            .await
            .expect("commit");
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        id
    }

    async fn read(
        &self,
        topic: TopicId,
        partition: i32,
        from: i64,
    ) -> index::PartitionOutcome<index::PartitionIndex> {
        index::read_index(
            self.h.control_plane.store(),
            &[PartitionRead {
                topic,
                partition: Partition(partition),
                from: Offset(from),
                max_bytes: u64::MAX,
            }],
        )
        .await
        .expect("read index")
        .pop()
        .expect("one answer")
    }

    /// The partition's index from its log start: (log start, hwm, entries).
    async fn log(&self, topic: TopicId, partition: i32) -> (i64, i64, Vec<IndexEntry>) {
        let start = self.earliest(topic, partition).await;
        let index = self.read(topic, partition, start).await.expect("in range");
        (
            index.watermarks.log_start_offset.0,
            index.watermarks.high_watermark.0,
            index.entries,
        )
    }

    async fn earliest(&self, topic: TopicId, partition: i32) -> i64 {
        self.offset(topic, partition, OffsetSpec::Earliest)
            .await
            .expect("earliest")
    }

    async fn offset(&self, topic: TopicId, partition: i32, spec: OffsetSpec) -> Option<i64> {
        index::list_offsets(
            self.h.control_plane.store(),
            &[(topic, Partition(partition), spec)],
        )
        .await
        .expect("list offsets")
        .pop()
        .expect("one")
        .expect("ok")
        .offset
        .map(|o| o.0)
    }

    async fn object_record(&self, id: ObjectId) -> Option<ObjectRecord> {
        let store = self.h.control_plane.store();
        store
            .db
            .run(|tx| async move {
                let key = store.ks.object(id);
                Ok::<_, weir_control_plane::Error>(match tx.get(&key).await? {
                    Some(v) => Some(keyspace::decode(&key, &v)?),
                    None => None,
                })
            })
            .await
            .expect("read object")
    }

    async fn counter(&self, name: &str) -> i64 {
        let store = self.h.control_plane.store();
        store
            .db
            .run(|tx| async move {
                Ok::<_, weir_control_plane::Error>(
                    tx.get(&store.ks.count(name))
                        .await?
                        .map_or(0, |v| decode_counter(&v)),
                )
            })
            .await
            .expect("read counter")
    }

    /// Checks the reverse index is the exact inverse of the index, the entry counter
    /// matches, each partition's entries tile its log start to its high watermark, and
    /// its record's byte count is theirs.
    async fn assert_consistent(&self) {
        let store = self.h.control_plane.store();
        let (index, refs, partitions) = store
            .db
            .run(|tx| async move {
                let mut index = Vec::new();
                let mut partitions = Vec::new();
                for topic in tx.get_range(&store.ks.topics()).await? {
                    let record: keyspace::TopicRecord = keyspace::decode(&topic.key, &topic.value)?;
                    let id = TopicId::from_slice(&record.id).expect("id");
                    for kv in tx.get_range(&store.ks.index_of_topic(id)).await? {
                        let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
                        let (p, last) = store.ks.index_entry_of_key(&kv.key)?;
                        index.push((
                            ObjectId::from_slice(&entry.object_id).expect("object"),
                            id,
                            p,
                            last,
                            entry,
                        ));
                    }
                    for kv in tx.get_range(&store.ks.partitions(id)).await? {
                        let p = store.ks.partition_of_key(&kv.key)?;
                        let record: keyspace::PartitionRecord =
                            keyspace::decode(&kv.key, &kv.value)?;
                        partitions.push((id, p, record));
                    }
                }
                let mut refs = BTreeSet::new();
                for (object, ..) in &index {
                    for kv in tx.get_range(&store.ks.object_refs(*object)).await? {
                        refs.insert((*object, store.ks.object_ref_entry(&kv.key)?));
                    }
                }
                Ok::<_, weir_control_plane::Error>((index, refs, partitions))
            })
            .await
            .expect("read the keyspace");
        let inverse: BTreeSet<_> = index
            .iter()
            .map(|(o, t, p, last, _)| (*o, (*t, *p, *last)))
            .collect();
        assert_eq!(inverse, refs, "object_ref is the index's exact inverse");
        assert_eq!(
            self.counter("index_entries").await,
            index.len() as i64,
            "the entry counter counts the entries"
        );
        // The backlog counts each level's candidates and the inputs of unfinished jobs.
        let (waiting, in_jobs) = store
            .db
            .run(|tx| async move {
                let mut waiting = [0i64; 2];
                for (level, count) in waiting.iter_mut().enumerate() {
                    *count = tx
                        .get_range(&store.ks.candidates(level as u32))
                        .await?
                        .len() as i64;
                }
                let mut in_jobs = [0i64; 2];
                for kv in tx.get_range(&store.ks.jobs()).await? {
                    let job: keyspace::JobRecord = keyspace::decode(&kv.key, &kv.value)?;
                    in_jobs[(job.output_level - 1) as usize] += job.inputs.len() as i64;
                }
                Ok::<_, weir_control_plane::Error>((waiting, in_jobs))
            })
            .await
            .expect("read candidates and jobs");
        let queued = store
            .db
            .run(|tx| async move {
                Ok::<_, weir_control_plane::Error>(
                    tx.get_range(&store.ks.deletions()).await?.len() as i64
                )
            })
            .await
            .expect("read the deletion queue");
        assert_eq!(
            self.counter("deletions_pending").await,
            queued,
            "the pending-deletions counter counts the queue"
        );
        for level in 0..2 {
            assert_eq!(
                self.counter(&format!("candidates/{level}")).await,
                waiting[level] + in_jobs[level],
                "level {level}: the backlog counter counts candidates and jobs' inputs"
            );
        }
        for (topic, partition, record) in partitions {
            let mut entries: Vec<&IndexEntry> = index
                .iter()
                .filter(|(_, t, p, ..)| *t == topic && *p == partition)
                .map(|(.., e)| e)
                .collect();
            entries.sort_by_key(|e| e.base_offset);
            let bytes: u64 = entries.iter().map(|e| e.length).sum();
            assert_eq!(record.bytes, bytes, "{partition}: bytes of its entries");
            if let Some(first) = entries.first() {
                assert!(first.base_offset <= record.log_start_offset.max(first.base_offset));
                assert!(
                    first.base_offset + first.record_count > record.log_start_offset,
                    "{partition}: no entry lies wholly below the log start after a pass"
                );
                assert_eq!(
                    record.first_timestamp, first.max_timestamp,
                    "{partition}: head timestamp"
                );
                assert_eq!(
                    record.first_end,
                    first.base_offset + first.record_count,
                    "{partition}: head end"
                );
            } else {
                assert_eq!(
                    record.log_start_offset, record.high_watermark,
                    "{partition}: empty"
                );
            }
            let mut next = entries
                .first()
                .map_or(record.high_watermark, |e| e.base_offset);
            for e in &entries {
                assert_eq!(e.base_offset, next, "{partition}: entries tile the log");
                next += e.record_count;
            }
            assert_eq!(
                next, record.high_watermark,
                "{partition}: up to the high watermark"
            );
        }
    }

    async fn retention(&self) -> weir_control_plane::lifecycle::PassReport {
        self.h
            .control_plane
            .lifecycle()
            .retention_pass()
            .await
            .expect("retention pass")
    }

    async fn delete_records(
        &self,
        topic: TopicId,
        partition: i32,
        offset: i64,
    ) -> Result<i64, ItemError> {
        self.h
            .control_plane
            .lifecycle()
            .delete_records(topic, Partition(partition), Offset(offset))
            .await
            .expect("delete records")
            .map(|o| o.0)
    }

    async fn due_deletions(&self) -> Vec<ObjectId> {
        let mut due: Vec<_> = deletion::claim(self.h.control_plane.store(), 1000, 60_000)
            .await
            .expect("claim")
            .into_iter()
            .map(|d| d.object)
            .collect();
        due.sort();
        due
    }
}

#[tokio::test]
async fn time_retention_removes_whole_old_entries_and_moves_the_log_start() {
    let l = start().await;
    let topic = l.topic("aged", 2, &[("retention.ms", "60000")]).await;
    let old = [
        l.commit(topic, &[0, 1], 5, START_MS - 120_000).await,
        l.commit(topic, &[0, 1], 5, START_MS - 90_000).await,
    ];
    let young = l.commit(topic, &[0], 5, START_MS - 10_000).await;
    // Not expired, but behind the young one: time retention stops at the first kept.
    l.commit(topic, &[0, 1], 5, START_MS - 100_000).await;
    let report = l.retention().await;
    assert_eq!(
        report.entries,
        2 + 3,
        "two old entries in partition 0, all three in 1"
    );
    let (start0, hwm0, entries0) = l.log(topic, 0).await;
    assert_eq!((start0, hwm0), (10, 20));
    assert_eq!(
        entries0.len(),
        2,
        "the young entry and the one after it stay"
    );
    assert_eq!(
        l.log(topic, 1).await,
        (15, 15, vec![]),
        "partition 1 had no young entry: all of it went"
    );
    assert_eq!(
        l.read(topic, 0, 9)
            .await
            .expect_err("below the log start")
            .0
            .code,
        ErrorCode::OffsetOutOfRange
    );
    // The old objects held only removed entries: dereferenced, queued after the grace.
    for id in old {
        let record = l.object_record(id).await.expect("kept until deleted");
        assert_eq!(record.dereferenced_ms, START_MS);
        assert_eq!(record.deletion_due_ms, START_MS + GRACE_MS);
    }
    assert!(l.object_record(young).await.expect("live").dereferenced_ms == 0);
    assert!(l.due_deletions().await.is_empty(), "not before the grace");
    l.clock.advance_ms(GRACE_MS);
    let mut expected = old.to_vec();
    expected.sort();
    assert_eq!(l.due_deletions().await, expected);
    l.assert_consistent().await;
    // A second pass later, with everything expired, empties both partitions.
    l.clock.advance_ms(200_000);
    l.retention().await;
    assert_eq!(l.log(topic, 0).await, (20, 20, vec![]));
    assert_eq!(l.log(topic, 1).await, (15, 15, vec![]));
    l.assert_consistent().await;
}

#[tokio::test]
async fn size_retention_keeps_a_partition_within_one_entry_of_its_bound() {
    let l = start().await;
    // Entries of 100 bytes; bound 250: Kafka keeps at least the bound, so three stay.
    let topic = l.topic("sized", 1, &[("retention.bytes", "250")]).await;
    for _ in 0..10 {
        l.commit(topic, &[0], 2, START_MS).await;
    }
    l.retention().await;
    let (start, hwm, entries) = l.log(topic, 0).await;
    assert_eq!(entries.len(), 3);
    assert_eq!((start, hwm), (14, 20));
    let bytes: u64 = entries.iter().map(|e| e.length).sum();
    assert!((250..250 + 100).contains(&bytes), "{bytes} bytes kept");
    l.assert_consistent().await;
    // A topic with the defaults (7 days, unlimited bytes) keeps everything.
    let kept = l.topic("kept", 1, &[]).await;
    for _ in 0..3 {
        l.commit(kept, &[0], 2, START_MS - 1000).await;
    }
    l.retention().await;
    assert_eq!(l.log(kept, 0).await.0, 0);
}

#[tokio::test]
async fn delete_records_follows_kafkas_rules_and_never_moves_the_start_back() {
    let l = start().await;
    let topic = l.topic("purged", 1, &[]).await;
    for _ in 0..4 {
        l.commit(topic, &[0], 5, START_MS).await;
    }
    assert_eq!(
        l.delete_records(topic, 0, 7).await,
        Ok(7),
        "inside the second entry"
    );
    let (start, _, entries) = l.log(topic, 0).await;
    assert_eq!(start, 7);
    assert_eq!(
        entries[0].base_offset, 5,
        "the entry straddling the start is kept whole"
    );
    assert_eq!(l.earliest(topic, 0).await, 7);
    assert_eq!(
        l.delete_records(topic, 0, 3).await,
        Ok(7),
        "never backwards"
    );
    for bad in [21, -2] {
        assert_eq!(
            l.delete_records(topic, 0, bad)
                .await
                .expect_err("out of range")
                .code,
            ErrorCode::OffsetOutOfRange,
            "{bad}"
        );
    }
    assert_eq!(
        l.delete_records(topic, 0, -1).await,
        Ok(20),
        "-1 is the high watermark"
    );
    assert_eq!(l.log(topic, 0).await, (20, 20, vec![]));
    l.assert_consistent().await;
    // The next record still gets the next offset.
    l.commit(topic, &[0], 1, START_MS).await;
    assert_eq!(l.log(topic, 0).await.1, 21);
    let compacted = l
        .topic("compacted", 1, &[("cleanup.policy", "compact")])
        .await;
    assert_eq!(
        l.delete_records(compacted, 0, 0)
            .await
            .expect_err("refused")
            .code,
        ErrorCode::PolicyViolation
    );
    assert_eq!(
        l.delete_records(topic, 5, 0)
            .await
            .expect_err("no partition 5")
            .code,
        ErrorCode::UnknownPartition
    );
}

#[tokio::test]
async fn a_by_time_lookup_after_retention_finds_the_first_live_entry_reaching_it() {
    let l = start().await;
    let topic = l.topic("timed", 1, &[("retention.ms", "60000")]).await;
    // A future-stamped entry raises the running maximum, then expires by DeleteRecords.
    l.commit(topic, &[0], 5, START_MS + 500_000).await;
    l.commit(topic, &[0], 5, START_MS + 1_000).await;
    l.commit(topic, &[0], 5, START_MS + 2_000).await;
    l.delete_records(topic, 0, 5).await.expect("delete records");
    // The time index names only the first entry for these; live entries reach them.
    assert_eq!(
        l.offset(topic, 0, OffsetSpec::Timestamp(START_MS + 1_500))
            .await,
        Some(10)
    );
    assert_eq!(
        l.offset(topic, 0, OffsetSpec::Timestamp(START_MS)).await,
        Some(5)
    );
    assert_eq!(
        l.offset(topic, 0, OffsetSpec::Timestamp(START_MS + 3_000))
            .await,
        None
    );
}

#[tokio::test]
async fn a_deleted_topic_leaves_nothing_and_its_namesake_starts_empty() {
    let l = start().await;
    let topic = l.topic("doomed", 3, &[]).await;
    let mut objects = Vec::new();
    for _ in 0..5 {
        objects.push(l.commit(topic, &[0, 1, 2], 3, START_MS).await);
    }
    let other = l.topic("other", 1, &[]).await;
    objects.push(l.commit(topic, &[0], 1, START_MS).await);
    let survivor = {
        // An object holding both topics outlives the deleted one.
        let batches = vec![
            batch(topic, 0, 8, 100, 1, START_MS),
            batch(other, 0, 108, 100, 1, START_MS),
        ];
        let commit = object(batches);
        let id = commit.object;
        l.h.control_plane
            .sequencer()
            .commit(commit)
            .await
            .expect("commit");
        id
    };
    let store = l.h.control_plane.store();
    topics::delete_topics(store, &[TopicRef::Name("doomed".into())])
        .await
        .expect("delete");
    let recreated = l.topic("doomed", 3, &[]).await;
    assert_ne!(recreated, topic);
    l.h.control_plane.lifecycle().round().await.expect("round");
    assert_eq!(
        l.log(recreated, 0).await,
        (0, 0, vec![]),
        "the namesake starts empty"
    );
    for id in &objects {
        assert_ne!(
            l.object_record(*id).await.expect("queued").dereferenced_ms,
            0
        );
    }
    assert_eq!(
        l.object_record(survivor)
            .await
            .expect("live")
            .dereferenced_ms,
        0
    );
    assert_eq!(
        l.read(topic, 0, 0).await.expect_err("gone").0.code,
        ErrorCode::UnknownTopic
    );
    l.assert_consistent().await;
    // After the grace every one of its objects is due, and confirmed deletions forget them.
    l.clock.advance_ms(GRACE_MS);
    let due = l.due_deletions().await;
    let mut expected = objects.clone();
    expected.sort();
    assert_eq!(due, expected, "every object of it alone, and no other");
    let forgotten = deletion::confirm(store, &due).await.expect("confirm");
    assert_eq!(forgotten, due.len() as u64);
    for id in due {
        assert!(l.object_record(id).await.is_none());
    }
    l.clock.advance_ms(120_000);
    assert!(
        l.due_deletions().await.is_empty(),
        "confirmed ones are not handed out again"
    );
}

/// A compaction output describing `job`'s inputs' entries re-laid in one object, one
/// entry per run, as an agent would report it (the control plane never reads objects).
fn merged_output(job: &Job) -> JobOutput {
    let mut by_partition: BTreeMap<(TopicId, Partition), Vec<(IndexEntry2, ObjectId)>> =
        BTreeMap::new();
    for input in &job.inputs {
        for e in &input.entries {
            by_partition
                .entry((e.topic, e.partition))
                .or_default()
                .push((IndexEntry2::of(&e.entry), input.object));
        }
    }
    let mut runs = Vec::new();
    let mut position = 8;
    for ((topic, partition), mut entries) in by_partition {
        entries.sort_by_key(|(e, _)| e.base);
        let mut run: Vec<(IndexEntry2, ObjectId)> = Vec::new();
        let mut flush = |run: &mut Vec<(IndexEntry2, ObjectId)>, runs: &mut Vec<OutputRun>| {
            if run.is_empty() {
                return;
            }
            let length: u64 = run.iter().map(|(e, _)| e.length).sum();
            let records: i64 = run.iter().map(|(e, _)| e.records).sum();
            runs.push(OutputRun {
                topic,
                partition,
                replaces: run
                    .iter()
                    .map(|(e, o)| (Offset(e.base + e.records - 1), *o))
                    .collect(),
                entries: vec![OutputEntry {
                    position,
                    length,
                    base_offset: Offset(run[0].0.base),
                    record_count: records,
                    max_timestamp: run.iter().map(|(e, _)| e.max_ts).max().unwrap_or(-1),
                    batch_count: run.len() as u32,
                }],
            });
            position += length;
            run.clear();
        };
        for (e, o) in entries {
            if run
                .last()
                .is_some_and(|(last, _)| last.base + last.records != e.base)
            {
                flush(&mut run, &mut runs);
            }
            run.push((e, o));
        }
        flush(&mut run, &mut runs);
    }
    // Named at the control plane's (manual) time, as an agent's clock would name it.
    let object = ObjectId(ulid::Ulid::from_parts(START_MS as u64, rand_bits()));
    JobOutput {
        object,
        key: format!("data/{object}.weir"),
        size: position + 100,
        batch_count: runs.iter().map(|r| r.replaces.len() as u32).sum(),
        runs,
    }
}

fn rand_bits() -> u128 {
    ulid::Ulid::new().random()
}

#[derive(Clone, Copy)]
struct IndexEntry2 {
    base: i64,
    records: i64,
    length: u64,
    max_ts: i64,
}

impl IndexEntry2 {
    fn of(e: &weir_control_plane_api::data::IndexEntry) -> Self {
        IndexEntry2 {
            base: e.base_offset.0,
            records: e.record_count,
            length: e.length,
            max_ts: e.max_timestamp,
        }
    }
}

fn small_jobs() -> CompactionConfig {
    CompactionConfig {
        fan_in: 4,
        ..CompactionConfig::default()
    }
}

#[tokio::test]
async fn a_job_swaps_consecutive_runs_for_one_entry_each_and_dereferences_its_inputs() {
    let l = start_with(small_jobs()).await;
    let topic = l.topic("merged", 3, &[]).await;
    let mut inputs = Vec::new();
    for i in 0..4 {
        let partitions: &[i32] = if i == 2 { &[0, 2] } else { &[0, 1, 2] };
        inputs.push(l.commit(topic, partitions, 2, START_MS + i).await);
    }
    assert_eq!(l.counter("candidates/0").await, 4);
    let store = l.h.control_plane.store();
    let planned = compaction::plan(store, &small_jobs(), 0)
        .await
        .expect("plan");
    assert!(planned.is_some(), "four candidates at a fan-in of four");
    assert_eq!(
        l.counter("candidates/0").await,
        4,
        "the backlog counts a planned job's inputs until it ends"
    );
    let agent = AgentId::new();
    let job = compaction::claim(store, &small_jobs(), agent)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(job.inputs.len(), 4);
    assert!(
        compaction::claim(store, &small_jobs(), AgentId::new())
            .await
            .expect("claim")
            .is_none(),
        "leased"
    );
    let output = merged_output(&job);
    let committed = compaction::commit(
        store,
        &job,
        agent,
        std::slice::from_ref(&output),
        Duration::from_secs(600),
    )
    .await
    .expect("commit")
    .expect("held")
    .committed;
    assert_eq!(
        committed.runs_swapped, 3,
        "one run per partition (offsets are consecutive)"
    );
    assert_eq!(committed.runs_skipped, 0);
    for p in 0..3 {
        let (start, hwm, entries) = l.log(topic, p).await;
        assert_eq!(entries.len(), 1, "partition {p}: one entry");
        assert_eq!(
            (
                start,
                entries[0].base_offset,
                entries[0].base_offset + entries[0].record_count
            ),
            (0, 0, hwm)
        );
        assert_eq!(entries[0].object_id, output.object.to_bytes());
    }
    for id in inputs {
        assert_eq!(
            l.object_record(id).await.expect("queued").dereferenced_ms,
            START_MS
        );
    }
    let out = l
        .object_record(output.object)
        .await
        .expect("output recorded");
    assert_eq!(out.level, 1);
    assert_eq!(
        l.counter("candidates/0").await,
        0,
        "merged: out of the backlog"
    );
    assert_eq!(
        l.counter("candidates/1").await,
        1,
        "the output waits at level 1"
    );
    l.assert_consistent().await;
    // The job is over: a late commit of the same attempt is refused.
    let late = compaction::commit(
        store,
        &job,
        agent,
        &[merged_output(&job)],
        Duration::from_secs(600),
    )
    .await
    .expect("commit");
    assert_eq!(late.expect_err("lost").code, ErrorCode::JobLost);
}

#[tokio::test]
async fn retention_racing_a_job_wins_and_a_job_past_its_lease_commits_nothing() {
    let l = start_with(CompactionConfig {
        fan_in: 2,
        lease: Duration::from_secs(60),
        ..CompactionConfig::default()
    })
    .await;
    let config = CompactionConfig {
        fan_in: 2,
        ..CompactionConfig::default()
    };
    let topic = l.topic("raced", 2, &[]).await;
    l.commit(topic, &[0, 1], 3, START_MS).await;
    l.commit(topic, &[0, 1], 3, START_MS).await;
    let store = l.h.control_plane.store();
    compaction::plan(store, &config, 0)
        .await
        .expect("plan")
        .expect("planned");
    let agent = AgentId::new();
    let job = compaction::claim(store, &config, agent)
        .await
        .expect("claim")
        .expect("job");
    let output = merged_output(&job);
    // While the job runs, DeleteRecords removes partition 0's first entry.
    l.delete_records(topic, 0, 3).await.expect("delete records");
    let committed = compaction::commit(
        store,
        &job,
        agent,
        std::slice::from_ref(&output),
        Duration::from_secs(600),
    )
    .await
    .expect("commit")
    .expect("held")
    .committed;
    assert_eq!((committed.runs_swapped, committed.runs_skipped), (1, 1));
    let (start, _, entries) = l.log(topic, 0).await;
    assert_eq!(start, 3, "the purged records do not come back");
    assert_eq!(entries.len(), 1);
    assert_ne!(
        entries[0].object_id,
        output.object.to_bytes(),
        "partition 0 kept its input entry"
    );
    assert_eq!(
        l.log(topic, 1).await.2[0].object_id,
        output.object.to_bytes()
    );
    l.assert_consistent().await;

    // A second job, whose lease expires before it commits.
    l.commit(topic, &[0, 1], 3, START_MS).await;
    l.commit(topic, &[0, 1], 3, START_MS).await;
    while compaction::plan(store, &config, 0)
        .await
        .expect("plan")
        .is_some()
    {}
    let job = compaction::claim(store, &config, agent)
        .await
        .expect("claim")
        .expect("job");
    l.clock.advance_ms(61_000);
    let before: Vec<_> = [l.log(topic, 0).await, l.log(topic, 1).await].to_vec();
    let lost = compaction::commit(
        store,
        &job,
        agent,
        &[merged_output(&job)],
        Duration::from_secs(600),
    )
    .await
    .expect("commit");
    assert_eq!(lost.expect_err("expired").code, ErrorCode::JobLost);
    assert_eq!(
        [l.log(topic, 0).await, l.log(topic, 1).await].to_vec(),
        before,
        "nothing swapped"
    );
    // Another agent takes it over with a new attempt; the old attempt stays refused.
    let taker = AgentId::new();
    let again = compaction::claim(store, &config, taker)
        .await
        .expect("claim")
        .expect("re-leased");
    assert_eq!(again.id, job.id);
    assert_eq!(again.attempt, job.attempt + 1);
    assert!(
        !compaction::renew(store, &config, job.id, job.attempt, agent)
            .await
            .expect("renew")
    );
    compaction::commit(
        store,
        &again,
        taker,
        &[merged_output(&again)],
        Duration::from_secs(600),
    )
    .await
    .expect("commit")
    .expect("held");
    l.assert_consistent().await;
}

/// One step of the interleaving property test.
#[derive(Clone, Debug)]
enum Step {
    Commit { partitions: Vec<i32>, records: i32 },
    PlanAndClaim,
    CommitJob(usize),
    DeleteRecords { partition: i32, eighths: i64 },
    Retention,
    ExpireLeases,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (proptest::sample::subsequence(vec![0, 1, 2], 1..=3), 1..4i32)
            .prop_map(|(partitions, records)| Step::Commit { partitions, records }),
        2 => Just(Step::PlanAndClaim),
        2 => (0..3usize).prop_map(Step::CommitJob),
        1 => (0..3i32, 0..=8i64).prop_map(|(partition, eighths)| Step::DeleteRecords { partition, eighths }),
        1 => Just(Step::Retention),
        1 => Just(Step::ExpireLeases),
    ]
}

async fn run_steps(steps: Vec<Step>) {
    let config = CompactionConfig {
        fan_in: 3,
        max_wait: Duration::ZERO,
        ..CompactionConfig::default()
    };
    let l = start_with(config.clone()).await;
    // Size retention keeps about six entries of 100 bytes.
    let topic = l
        .topic("interleaved", 3, &[("retention.bytes", "600")])
        .await;
    let store = l.h.control_plane.store();
    let agent = AgentId::new();
    let mut hwm = [0i64; 3];
    let mut log_start = [0i64; 3];
    let mut jobs: Vec<Job> = Vec::new();
    for step in steps {
        match step {
            Step::Commit {
                partitions,
                records,
            } => {
                l.commit(topic, &partitions, records, START_MS).await;
                for p in partitions {
                    hwm[p as usize] += i64::from(records);
                }
            }
            Step::PlanAndClaim => {
                for level in 0..2 {
                    compaction::plan(store, &config, level).await.expect("plan");
                }
                if let Some(job) = compaction::claim(store, &config, agent)
                    .await
                    .expect("claim")
                {
                    jobs.retain(|j| j.id != job.id);
                    jobs.push(job);
                }
            }
            Step::CommitJob(i) => {
                if i < jobs.len() {
                    let job = jobs.remove(i);
                    let output = merged_output(&job);
                    let _ = compaction::commit(
                        store,
                        &job,
                        agent,
                        &[output],
                        Duration::from_secs(3600),
                    )
                    .await
                    .expect("commit");
                }
            }
            Step::DeleteRecords { partition, eighths } => {
                let p = partition as usize;
                let target = log_start[p] + (hwm[p] - log_start[p]) * eighths / 8;
                let low = l
                    .delete_records(topic, partition, target)
                    .await
                    .expect("in range");
                assert_eq!(low, target.max(log_start[p]));
            }
            Step::Retention => {
                l.retention().await;
            }
            Step::ExpireLeases => l.clock.advance_ms(61_000),
        }
        l.assert_consistent().await;
        for p in 0..3 {
            let (start, high, _) = l.log(topic, p as i32).await;
            assert_eq!(
                high, hwm[p],
                "partition {p}: every committed record is counted"
            );
            assert!(
                start >= log_start[p],
                "partition {p}: the log start never moves back"
            );
            log_start[p] = start;
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Commits, compaction jobs (planned, claimed, committed late or after their lease),
    /// DeleteRecords and size retention, in any order: the index and its reverse agree,
    /// every partition tiles its log from its log start to its high watermark, and no
    /// log start moves back.
    #[test]
    fn compaction_retention_and_delete_records_interleave_safely(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_steps(steps));
    }
}
