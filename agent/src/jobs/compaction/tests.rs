//! Compaction against an in-memory bucket: outputs read back with the object reader
//! and checked against the batches that went into the inputs.

use std::collections::{BTreeSet, HashMap};

use bytes::BytesMut;
use futures::TryStreamExt;
use weir_control_plane_api::jobs::{Job, JobOutput};
use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use super::*;
use crate::batch::testing::{Spec, encode, reseal};
use crate::jobs::testing::{Inputs, bucket, listed, three_inputs, topic, valid};
use crate::object::read_object;

async fn run(inputs: &Inputs, job: &Job, config: &CompactionConfig) -> Vec<JobOutput> {
    let written = Counter::default();
    let outputs = compact(job, &inputs.bucket, config, &written)
        .await
        .expect("compact");
    let sizes: u64 = outputs.iter().map(|o| o.size).sum();
    assert_eq!(written.get(), sizes, "bytes written are counted");
    outputs
}

fn config(object_bytes: u64, entry_bytes: u64) -> CompactionConfig {
    CompactionConfig {
        object_bytes,
        entry_bytes,
        reads_in_flight: 2,
    }
}

/// The input entries a job lists, as (topic, partition, last offset, object), with
/// each one's base offset.
fn listed_entries(job: &Job) -> HashMap<(TopicId, Partition, Offset, ObjectId), Offset> {
    job.inputs
        .iter()
        .flat_map(|input| &input.entries)
        .map(|e| {
            let last = Offset(e.entry.end().0 - 1);
            (
                (e.topic, e.partition, last, e.entry.object),
                e.entry.base_offset,
            )
        })
        .collect()
}

/// Checks outputs as the control plane and a fetch would rely on them, and returns
/// each output's runs as (topic, partition, first offset, end offset).
async fn check(
    inputs: &Inputs,
    job: &Job,
    outputs: &[JobOutput],
    config: &CompactionConfig,
) -> Vec<Vec<(TopicId, i32, i64, i64)>> {
    let listed = listed_entries(job);
    let mut replaced = BTreeSet::new();
    let mut shapes = Vec::new();
    for output in outputs {
        assert_eq!(output.key, Bucket::relative_key(output.object));
        let bytes = inputs
            .bucket
            .store
            .get(&inputs.bucket.path(output.object))
            .await
            .expect("the output was uploaded")
            .bytes()
            .await
            .expect("read the output");
        assert_eq!(bytes.len() as u64, output.size);
        let view = read_object(&bytes).expect("an output is a valid object");
        assert_eq!(u32::from(view.level().get()), job.output_level);
        assert_eq!(view.entries().len(), output.batch_count as usize);
        let pieces: usize = output.runs.iter().map(|r| r.replaces.len()).sum();
        assert!(
            output.size <= config.object_bytes || pieces == 1,
            "an output of {} bytes holds {pieces} input entries",
            output.size
        );

        // The runs' entries tile the data section, in the object's order.
        let mut position = crate::object::HEADER_LEN as u64;
        let mut shape = Vec::new();
        for run in &output.runs {
            let (first_last, first_object) = run.replaces[0];
            let mut expected = listed[&(run.topic, run.partition, first_last, first_object)];
            let first = expected;
            for &(last, object) in &run.replaces {
                let key = (run.topic, run.partition, last, object);
                let base = listed
                    .get(&key)
                    .expect("a run replaces entries the job listed");
                assert_eq!(*base, expected, "a run's entries are consecutive");
                assert!(replaced.insert(key), "{key:?} is replaced once");
                expected = Offset(last.0 + 1);
            }
            let mut offset = first.0;
            for entry in &run.entries {
                assert_eq!(entry.position, position, "entries lie back to back");
                assert_eq!(
                    entry.base_offset.0, offset,
                    "entries tile the run's offsets"
                );
                assert!(
                    entry.length <= config.entry_bytes || entry.batch_count == 1,
                    "an entry of {} bytes in {} batches",
                    entry.length,
                    entry.batch_count
                );
                let in_entry: Vec<_> = view
                    .batches()
                    .filter(|(e, _)| {
                        entry.position <= e.position && e.end() <= entry.position + entry.length
                    })
                    .collect();
                assert_eq!(in_entry.len(), entry.batch_count as usize);
                let mut max_timestamp = i64::MIN;
                for (footer, batch) in in_entry {
                    assert_eq!((footer.topic, footer.partition), (run.topic, run.partition));
                    let header = BatchHeader::parse(batch).expect("a batch");
                    assert_eq!(
                        header.base_offset, offset,
                        "the real base offset is written in"
                    );
                    let sent = &inputs.sent[&(run.topic, run.partition, offset)];
                    assert_eq!(
                        batch[8..],
                        sent[8..],
                        "copied byte for byte but the base offset"
                    );
                    max_timestamp = max_timestamp.max(footer.max_timestamp);
                    offset = header.last_offset() + 1;
                }
                assert_eq!(offset - entry.base_offset.0, entry.record_count);
                assert_eq!(entry.max_timestamp, max_timestamp);
                position += entry.length;
            }
            assert_eq!(
                Offset(offset),
                expected,
                "the entries end where the run does"
            );
            shape.push((run.topic, run.partition.0, first.0, offset));
        }
        assert_eq!(
            position,
            view.trailer().footer_position,
            "entries cover every batch"
        );
        shapes.push(shape);
    }
    let all: BTreeSet<_> = listed.keys().copied().collect();
    assert_eq!(replaced, all, "every listed entry is replaced, once");
    shapes
}

#[tokio::test]
async fn inputs_merge_into_one_output_in_partition_and_offset_order() {
    let inputs = three_inputs(bucket()).await;
    let job = inputs.job(1);
    let config = CompactionConfig::default();
    let outputs = run(&inputs, &job, &config).await;
    let shapes = check(&inputs, &job, &outputs, &config).await;
    let (a, b, d) = (topic(1), topic(2), topic(4));
    assert_eq!(
        shapes,
        [vec![
            (a, 0, 0, 8),
            (a, 1, 10, 12),
            (a, 1, 20, 22),
            (b, 0, 96, 102),
            (d, 0, 2, 5),
        ]]
    );
    // A partition whose entries were all released is not copied.
    let view_bytes = inputs
        .bucket
        .store
        .get(&inputs.bucket.path(outputs[0].object))
        .await
        .expect("output")
        .bytes()
        .await
        .expect("read");
    let view = read_object(&view_bytes).expect("valid");
    assert!(view.entries().iter().all(|e| e.topic != topic(3)));
    assert_eq!(
        outputs[0].runs[0].entries.len(),
        1,
        "one entry under entry_bytes"
    );
}

#[tokio::test]
async fn small_limits_split_runs_between_input_entries_and_entries_between_batches() {
    let inputs = three_inputs(bucket()).await;
    let job = inputs.job(2);
    // A few batches per object, one batch per entry.
    let config = config(700, 1);
    let outputs = run(&inputs, &job, &config).await;
    assert!(outputs.len() > 2, "{} outputs", outputs.len());
    let shapes = check(&inputs, &job, &outputs, &config).await;
    let a0: Vec<_> = shapes
        .iter()
        .flatten()
        .filter(|(t, p, _, _)| (*t, *p) == (topic(1), 0))
        .collect();
    assert!(a0.len() > 1, "the run of a/0 is split: {a0:?}");
    for output in &outputs {
        for run in &output.runs {
            assert!(run.entries.iter().all(|e| e.batch_count == 1));
        }
    }
}

#[tokio::test]
async fn an_input_entry_bigger_than_an_output_gets_one_of_its_own() {
    let inputs = three_inputs(bucket()).await;
    let job = inputs.job(1);
    let config = config(200, 100);
    let outputs = run(&inputs, &job, &config).await;
    let entries: usize = job.inputs.iter().map(|i| i.entries.len()).sum();
    assert_eq!(outputs.len(), entries, "one output per input entry");
    check(&inputs, &job, &outputs, &config).await;
}

#[tokio::test]
async fn a_missing_input_abandons_the_job_naming_it() {
    let mut inputs = three_inputs(bucket()).await;
    let gone = inputs.inputs[1].object;
    inputs
        .bucket
        .store
        .delete(&inputs.bucket.path(gone))
        .await
        .expect("delete an input");
    let job = inputs.job(1);
    let err = compact(
        &job,
        &inputs.bucket,
        &CompactionConfig::default(),
        &Counter::default(),
    )
    .await
    .expect_err("an input is missing");
    assert!(
        matches!(&err, JobError::InputMissing { object, .. } if *object == gone),
        "{err:?}"
    );
    assert!(err.to_string().contains(&gone.to_string()), "{err}");
    inputs.inputs.remove(1);
    assert_eq!(objects(&inputs.bucket).await, 2, "no output was uploaded");
}

async fn objects(bucket: &Bucket) -> usize {
    let listed: Vec<_> = bucket
        .store
        .list(Some(&bucket.prefix))
        .try_collect()
        .await
        .expect("list");
    listed.len()
}

#[tokio::test]
async fn an_entry_that_does_not_match_its_batches_fails_the_job() {
    let inputs = three_inputs(bucket()).await;
    let mut job = inputs.job(1);
    job.inputs[2].entries[0].entry.record_count += 1;
    let err = compact(
        &job,
        &inputs.bucket,
        &CompactionConfig::default(),
        &Counter::default(),
    )
    .await
    .expect_err("the entry says one record more than its batches hold");
    let JobError::BadInput {
        object,
        topic: t,
        offset,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*object, *t, *offset),
        (job.inputs[2].object, topic(1), Offset(6))
    );
    assert!(
        reason.contains("2 offsets in 1 batches; the entry says 3"),
        "{reason}"
    );
    assert_eq!(objects(&inputs.bucket).await, 3, "no output was uploaded");

    let mut overlapping = inputs.job(1);
    overlapping.inputs[1].entries[0].entry.base_offset = Offset(4);
    let err = compact(
        &overlapping,
        &inputs.bucket,
        &CompactionConfig::default(),
        &Counter::default(),
    )
    .await
    .expect_err("overlapping entries");
    assert!(err.to_string().contains("overlaps"), "{err}");

    let mut past_the_end = inputs.job(1);
    past_the_end.inputs[0].entries[0].entry.length = past_the_end.inputs[0].size;
    let err = compact(
        &past_the_end,
        &inputs.bucket,
        &CompactionConfig::default(),
        &Counter::default(),
    )
    .await
    .expect_err("an entry past its object");
    assert!(matches!(err, JobError::BadInput { .. }), "{err:?}");

    let level = inputs.job(16);
    let err = compact(
        &level,
        &inputs.bucket,
        &CompactionConfig::default(),
        &Counter::default(),
    )
    .await
    .expect_err("level 16");
    assert!(matches!(err, JobError::BadLevel(16)), "{err:?}");
}

/// Sarama before 1.27 sends -1 as maxTimestamp; the writer's footer carries the one
/// computed from the records, and so must the output's.
#[tokio::test]
async fn a_batch_without_a_max_timestamp_keeps_the_computed_one() {
    let mut bytes = BytesMut::from(&encode(&Spec::plain(&[500, 700, 600]))[..]);
    bytes[35..43].copy_from_slice(&(-1i64).to_be_bytes());
    reseal(&mut bytes);
    let unset = valid(bytes.freeze());
    assert_eq!(unset.header.max_timestamp, 700, "split computes it");
    let mut inputs = Inputs::new(bucket());
    let group = listed(topic(1), 0, 40, &[3]);
    inputs.add_batches(&[group], vec![vec![unset]]).await;
    let job = inputs.job(1);
    let config = CompactionConfig::default();
    let outputs = run(&inputs, &job, &config).await;
    check(&inputs, &job, &outputs, &config).await;
    assert_eq!(outputs[0].runs[0].entries[0].max_timestamp, 700);
}

#[tokio::test]
async fn a_job_without_entries_writes_nothing() {
    let mut inputs = Inputs::new(bucket());
    inputs
        .add(&[crate::jobs::testing::unlisted(topic(1), 0, 0, &[1])])
        .await;
    let outputs = run(&inputs, &inputs.job(1), &CompactionConfig::default()).await;
    assert!(outputs.is_empty());
}
