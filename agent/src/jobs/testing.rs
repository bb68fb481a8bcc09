//! Input objects for compaction tests: real objects in an in-memory bucket, their
//! batches given offsets as the sequencer would, and jobs listing their entries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use uuid::Uuid;
use weir_control_plane_api::data::IndexEntry;
use weir_control_plane_api::jobs::{InputEntry, Job, JobInput};
use weir_metadata::{JobId, ObjectId, Offset, Partition, TopicId};

use crate::batch::testing::{Spec, encode};
use crate::batch::{self, ValidBatch};
use crate::bucket::Bucket;
use crate::object::{Level, ObjectBuilder};

pub(crate) fn topic(n: u8) -> TopicId {
    TopicId(Uuid::from_bytes([n; 16]))
}

pub(crate) fn bucket() -> Bucket {
    Bucket {
        store: Arc::new(InMemory::new()),
        prefix: Path::from("cluster"),
    }
}

/// One index entry's worth of an input: a partition's batches, the first at `base`,
/// each holding `records[i]` records; `listed` when the job names the entry (one not
/// listed was removed from the index: retention, DeleteRecords).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) topic: TopicId,
    pub(crate) partition: i32,
    pub(crate) base: i64,
    pub(crate) records: Vec<usize>,
    pub(crate) listed: bool,
}

pub(crate) fn listed(topic: TopicId, partition: i32, base: i64, records: &[usize]) -> Group {
    Group {
        topic,
        partition,
        base,
        records: records.to_vec(),
        listed: true,
    }
}

pub(crate) fn unlisted(topic: TopicId, partition: i32, base: i64, records: &[usize]) -> Group {
    Group {
        listed: false,
        ..listed(topic, partition, base, records)
    }
}

/// A producer's batch as stored: its bytes (baseOffset 0, as sent), and the offset the
/// sequencer gave it.
pub(crate) type Sent = HashMap<(TopicId, Partition, i64), Bytes>;

/// Input objects in a bucket, and what went into them.
#[derive(Debug)]
pub(crate) struct Inputs {
    pub(crate) bucket: Bucket,
    pub(crate) inputs: Vec<JobInput>,
    /// Every batch by (topic, partition, real base offset).
    pub(crate) sent: Sent,
}

impl Inputs {
    pub(crate) fn new(bucket: Bucket) -> Self {
        Inputs {
            bucket,
            inputs: Vec::new(),
            sent: HashMap::new(),
        }
    }

    /// Writes an object of `groups` (a writer's object: level 0) and adds it as an
    /// input listing the listed groups' entries.
    pub(crate) async fn add(&mut self, groups: &[Group]) -> ObjectId {
        let batches: Vec<Vec<ValidBatch>> = groups
            .iter()
            .map(|g| {
                let mut offset = g.base;
                g.records
                    .iter()
                    .map(|&n| {
                        let batch = producer_batch(offset, n);
                        offset += n as i64;
                        batch
                    })
                    .collect()
            })
            .collect();
        self.add_batches(groups, batches).await
    }

    /// As [`Inputs::add`], with each group's batches given.
    pub(crate) async fn add_batches(
        &mut self,
        groups: &[Group],
        batches: Vec<Vec<ValidBatch>>,
    ) -> ObjectId {
        let mut builder = ObjectBuilder::new(Level::WRITER);
        for (g, (group, batches)) in groups.iter().zip(batches).enumerate() {
            let mut offset = group.base;
            for batch in batches {
                let records = i64::from(batch.header.last_offset_delta) + 1;
                let key = (group.topic, Partition(group.partition), offset);
                self.sent.insert(key, batch.bytes.clone());
                builder.push(group.topic, Partition(group.partition), batch, (g, offset));
                offset += records;
            }
        }
        let sealed = builder.finish();
        let object = ObjectId::new();
        self.bucket
            .store
            .put(
                &self.bucket.path(object),
                PutPayload::from_iter(sealed.parts.iter().cloned()),
            )
            .await
            .expect("put an input object");

        let mut entries = Vec::new();
        for (g, group) in groups.iter().enumerate().filter(|(_, g)| g.listed) {
            let batches: Vec<_> = sealed.batches.iter().filter(|(_, t)| t.0 == g).collect();
            let (first, last) = (batches[0], batches[batches.len() - 1]);
            let records: i64 = group.records.iter().map(|&n| n as i64).sum();
            entries.push(InputEntry {
                topic: group.topic,
                partition: Partition(group.partition),
                entry: IndexEntry {
                    object,
                    object_size: sealed.size,
                    position: first.0.position,
                    length: last.0.end() - first.0.position,
                    base_offset: Offset(first.1.1),
                    record_count: records,
                    max_timestamp: batches
                        .iter()
                        .map(|(e, _)| e.max_timestamp)
                        .max()
                        .expect("a group holds a batch"),
                    batch_count: batches.len() as u32,
                },
            });
        }
        entries.sort_by_key(|e| (e.topic, e.partition, e.entry.base_offset));
        self.inputs.push(JobInput {
            object,
            key: Bucket::relative_key(object),
            size: sealed.size,
            entries,
        });
        object
    }

    pub(crate) fn job(&self, output_level: u32) -> Job {
        Job {
            id: JobId::new(),
            attempt: 1,
            output_level,
            lease: Duration::from_secs(60),
            inputs: self.inputs.clone(),
        }
    }
}

/// A producer's batch of `records` records, timestamped and valued after `offset` so
/// that no two batches of a test are alike.
pub(crate) fn producer_batch(offset: i64, records: usize) -> ValidBatch {
    let timestamps: Vec<i64> = (0..records as i64)
        .map(|i| 1_000_000 + offset * 10 + i)
        .collect();
    valid(encode(&Spec::plain(&timestamps)))
}

pub(crate) fn valid(bytes: Bytes) -> ValidBatch {
    let mut batches = batch::split(&bytes, usize::MAX).expect("a producer's batch");
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

/// Three writers' objects: partitions interleaved across them, a gap in one
/// partition's offsets (two runs), and entries of each that the job does not list.
pub(crate) async fn three_inputs(bucket: Bucket) -> Inputs {
    let (a, b, c, d) = (topic(1), topic(2), topic(3), topic(4));
    let mut inputs = Inputs::new(bucket);
    inputs
        .add(&[
            listed(a, 0, 0, &[3, 2]),
            listed(a, 1, 10, &[2]),
            unlisted(c, 0, 0, &[3]),
        ])
        .await;
    inputs
        .add(&[
            listed(a, 0, 5, &[1]),
            listed(a, 1, 20, &[2]),
            listed(b, 0, 100, &[2]),
        ])
        .await;
    inputs
        .add(&[
            listed(a, 0, 6, &[2]),
            listed(b, 0, 96, &[1, 3]),
            unlisted(d, 0, 0, &[2]),
            listed(d, 0, 2, &[1, 1, 1]),
        ])
        .await;
    inputs
}
