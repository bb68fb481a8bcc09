//! Weir's keyspace: every key the control plane reads or writes, in one place.
//!
//! Keys are FoundationDB tuples under `("weir", <cluster>)`, so one FoundationDB
//! cluster can hold several Weir clusters and every key sorts the way range reads
//! need. Values are protobuf records from `proto/weir/metadata/v1/records.proto`.
//!
//! | key (after the cluster prefix)                 | value            |
//! |------------------------------------------------|------------------|
//! | `("topic_name", name)`                         | topic id, 16 bytes |
//! | `("topic", topic_id)`                          | [`TopicRecord`]  |
//! | `("partition", topic_id, partition)`           | [`PartitionRecord`] |
//! | `("index", topic_id, partition, last_offset)`  | [`IndexEntry`]   |
//! | `("time", topic_id, partition, max_timestamp)` | base offset (i64 LE) of the first index entry whose batches reach that timestamp |
//! | `("object", object_id)`                        | [`ObjectRecord`] |
//! | `("object_results", object_id, chunk)`         | [`CommitResults`] |
//! | `("agent", agent_id)`                          | [`AgentRecord`]  |
//! | `("lease", name)`                              | [`LeaseRecord`]  |
//! | `("producer_ids",)`                            | the last producer id allocated (i64 LE) |
//! | `("producer", producer_id)`                    | [`ProducerRecord`] |
//! | `("producer_state", topic_id, partition, producer_id)` | [`ProducerStateRecord`] |
//! | `("group", group_id)`                          | [`GroupRecord`]  |
//! | `("group_member", group_id, member_id)`        | [`GroupMemberRecord`] |
//! | `("group_offset", group_id, topic, partition)` | [`CommittedOffset`] |
//! | `("object_ref", object_id, topic_id, partition, last_offset)` | empty: the reverse of an index entry |
//! | `("deletion", due_ms, object_id)`              | empty: a dereferenced object, to delete from the bucket once due |
//! | `("candidate", level, object_id)`              | size (i64 LE): an object waiting for compaction at its level |
//! | `("job", job_id)`                              | [`JobRecord`]    |
//! | `("deleted_topic", topic_id)`                  | [`TopicRecord`]: a deleted topic whose keys are still being cleared |
//! | `("count", name)`                              | i64 LE, kept with atomic adds: `index_entries`, `candidates/L`, `candidate_bytes/L` |
//!
//! Index entries are keyed by their *last* offset, so the entry that holds offset `o`
//! is the first key at or after `("index", t, p, o)`. The time index holds a key only
//! when an entry raises the partition's largest timestamp, so the first key at or after
//! `("time", t, p, ts)` names the first entry with a timestamp `>= ts`.
//!
//! Producer states sort under their topic, so deleting a topic clears them with one
//! range, and the expiry pass pages through all of them in one range.
//!
//! Every index entry has its reverse under `object_ref`, written and cleared with it,
//! so "does anything still reference this object" is one range read (see
//! docs/lifecycle.md). Deletions sort by when they are due, candidates by level and then
//! by object id, which is time order.

use foundationdb_tuple::{Subspace, TuplePack, TupleUnpack, Uuid};
use prost::Message;

pub use crate::error::printable;
use crate::error::{Error, Result};
use crate::ids::{AgentId, JobId, ObjectId, Offset, Partition, ProducerId, TopicId};
use crate::transaction::RangeOption;

pub use crate::records::{
    AgentRecord, CommitResults, CommittedOffset, GroupMemberRecord, GroupProtocol, GroupRecord,
    IndexEntry, JobRecord, LeaseRecord, ObjectRecord, PartitionRecord, ProducerRecord,
    ProducerStateRecord, SequenceRange, TopicRecord,
};

const TOPIC_NAME: &str = "topic_name";
const TOPIC: &str = "topic";
const PARTITION: &str = "partition";
const INDEX: &str = "index";
const TIME: &str = "time";
const OBJECT: &str = "object";
const OBJECT_RESULTS: &str = "object_results";
const AGENT: &str = "agent";
const LEASE: &str = "lease";
const PRODUCER_IDS: &str = "producer_ids";
const PRODUCER: &str = "producer";
const PRODUCER_STATE: &str = "producer_state";
const GROUP: &str = "group";
const GROUP_MEMBER: &str = "group_member";
const GROUP_OFFSET: &str = "group_offset";
const OBJECT_REF: &str = "object_ref";
const DELETION: &str = "deletion";
const CANDIDATE: &str = "candidate";
const JOB: &str = "job";
const DELETED_TOPIC: &str = "deleted_topic";
const COUNT: &str = "count";

/// The keys of one Weir cluster.
#[derive(Clone, Debug)]
pub struct Keyspace {
    root: Subspace,
}

impl Keyspace {
    pub fn new(cluster: &str) -> Self {
        Keyspace {
            root: Subspace::all().subspace(&("weir", cluster)),
        }
    }

    fn key<T: TuplePack>(&self, tuple: &T) -> Vec<u8> {
        self.root.pack(tuple)
    }

    fn range<T: TuplePack>(&self, prefix: &T) -> RangeOption {
        let (begin, end) = self.root.subspace(prefix).range();
        RangeOption::new(begin..end)
    }

    fn unpack<'de, T: TupleUnpack<'de>>(&self, key: &'de [u8]) -> Result<T> {
        self.root.unpack(key).map_err(|e| Error::corrupt(key, e))
    }

    pub fn topic_name(&self, name: &str) -> Vec<u8> {
        self.key(&(TOPIC_NAME, name))
    }

    pub fn topic_names(&self) -> RangeOption {
        self.range(&(TOPIC_NAME,))
    }

    pub fn topic(&self, id: TopicId) -> Vec<u8> {
        self.key(&(TOPIC, id.0))
    }

    pub fn topics(&self) -> RangeOption {
        self.range(&(TOPIC,))
    }

    pub fn partition(&self, topic: TopicId, partition: Partition) -> Vec<u8> {
        self.key(&(PARTITION, topic.0, partition.0))
    }

    pub fn partitions(&self, topic: TopicId) -> RangeOption {
        self.range(&(PARTITION, topic.0))
    }

    /// The partition a key in [`Keyspace::partitions`] names.
    pub fn partition_of_key(&self, key: &[u8]) -> Result<Partition> {
        let (_, _, partition): (String, Uuid, i32) = self.unpack(key)?;
        Ok(Partition(partition))
    }

    pub fn index_entry(&self, topic: TopicId, partition: Partition, last: Offset) -> Vec<u8> {
        self.key(&(INDEX, topic.0, partition.0, last.0))
    }

    /// The index entries of a partition holding offsets `>= from`, in offset order.
    pub fn index_from(&self, topic: TopicId, partition: Partition, from: Offset) -> RangeOption {
        let mut range = self.range(&(INDEX, topic.0, partition.0));
        range.begin = self.index_entry(topic, partition, from);
        range
    }

    /// Every index entry of a topic.
    pub fn index_of_topic(&self, topic: TopicId) -> RangeOption {
        self.range(&(INDEX, topic.0))
    }

    /// Every index entry of a partition, in offset order.
    pub fn index_of_partition(&self, topic: TopicId, partition: Partition) -> RangeOption {
        self.range(&(INDEX, topic.0, partition.0))
    }

    /// The index entries of a partition whose last offset is in `first..=last`.
    pub fn index_between(
        &self,
        topic: TopicId,
        partition: Partition,
        first: Offset,
        last: Offset,
    ) -> RangeOption {
        RangeOption::new(
            self.index_entry(topic, partition, first)
                ..self.index_entry(topic, partition, Offset(last.0.saturating_add(1))),
        )
    }

    /// The partition and last offset a key in [`Keyspace::index_of_topic`] names.
    pub fn index_entry_of_key(&self, key: &[u8]) -> Result<(Partition, Offset)> {
        let (_, _, partition, last): (String, Uuid, i32, i64) = self.unpack(key)?;
        Ok((Partition(partition), Offset(last)))
    }

    /// The last offset an index entry's key names.
    pub fn index_entry_last_offset(&self, key: &[u8]) -> Result<Offset> {
        let (_, _, _, last): (String, Uuid, i32, i64) = self.unpack(key)?;
        Ok(Offset(last))
    }

    pub fn time_entry(&self, topic: TopicId, partition: Partition, timestamp: i64) -> Vec<u8> {
        self.key(&(TIME, topic.0, partition.0, timestamp))
    }

    /// The time-index keys of a partition for timestamps `>= from`.
    pub fn time_from(&self, topic: TopicId, partition: Partition, from: i64) -> RangeOption {
        let mut range = self.range(&(TIME, topic.0, partition.0));
        range.begin = self.time_entry(topic, partition, from);
        range
    }

    pub fn time_of_topic(&self, topic: TopicId) -> RangeOption {
        self.range(&(TIME, topic.0))
    }

    pub fn time_of_partition(&self, topic: TopicId, partition: Partition) -> RangeOption {
        self.range(&(TIME, topic.0, partition.0))
    }

    pub fn object(&self, object: ObjectId) -> Vec<u8> {
        self.key(&(OBJECT, object.to_bytes().as_slice()))
    }

    pub fn object_results(&self, object: ObjectId, chunk: u32) -> Vec<u8> {
        self.key(&(OBJECT_RESULTS, object.to_bytes().as_slice(), chunk))
    }

    /// Every chunk of an object's commit answers.
    pub fn object_results_of(&self, object: ObjectId) -> RangeOption {
        self.range(&(OBJECT_RESULTS, object.to_bytes().as_slice()))
    }

    /// The reverse of the index entry `(topic, partition, last)` naming `object`.
    pub fn object_ref(
        &self,
        object: ObjectId,
        topic: TopicId,
        partition: Partition,
        last: Offset,
    ) -> Vec<u8> {
        self.key(&(
            OBJECT_REF,
            object.to_bytes().as_slice(),
            topic.0,
            partition.0,
            last.0,
        ))
    }

    /// Every index entry naming `object`, as reverse keys.
    pub fn object_refs(&self, object: ObjectId) -> RangeOption {
        self.range(&(OBJECT_REF, object.to_bytes().as_slice()))
    }

    /// The topic, partition and last offset a key in [`Keyspace::object_refs`] names.
    pub fn object_ref_entry(&self, key: &[u8]) -> Result<(TopicId, Partition, Offset)> {
        let (_, _, topic, partition, last): (String, Vec<u8>, Uuid, i32, i64) = self.unpack(key)?;
        Ok((TopicId(topic), Partition(partition), Offset(last)))
    }

    /// An object queued for deletion from the bucket, due at `due_ms`.
    pub fn deletion(&self, due_ms: i64, object: ObjectId) -> Vec<u8> {
        self.key(&(DELETION, due_ms, object.to_bytes().as_slice()))
    }

    /// Deletions due at or before `now_ms`, soonest first.
    pub fn deletions_due(&self, now_ms: i64) -> RangeOption {
        let mut range = self.range(&(DELETION,));
        range.end = self.key(&(DELETION, now_ms.saturating_add(1)));
        range
    }

    /// Every queued deletion.
    pub fn deletions(&self) -> RangeOption {
        self.range(&(DELETION,))
    }

    /// The due time and object of a key in [`Keyspace::deletions`].
    pub fn deletion_of_key(&self, key: &[u8]) -> Result<(i64, ObjectId)> {
        let (_, due, object): (String, i64, Vec<u8>) = self.unpack(key)?;
        let object = ObjectId::from_slice(&object).map_err(|e| Error::corrupt(key, e))?;
        Ok((due, object))
    }

    /// An object waiting for compaction at `level`.
    pub fn candidate(&self, level: u32, object: ObjectId) -> Vec<u8> {
        self.key(&(CANDIDATE, level, object.to_bytes().as_slice()))
    }

    /// The objects waiting at `level`, oldest first.
    pub fn candidates(&self, level: u32) -> RangeOption {
        self.range(&(CANDIDATE, level))
    }

    /// The object of a key in [`Keyspace::candidates`].
    pub fn candidate_of_key(&self, key: &[u8]) -> Result<ObjectId> {
        let (_, _, object): (String, u32, Vec<u8>) = self.unpack(key)?;
        ObjectId::from_slice(&object).map_err(|e| Error::corrupt(key, e))
    }

    pub fn job(&self, job: JobId) -> Vec<u8> {
        self.key(&(JOB, job.to_bytes().as_slice()))
    }

    /// Every compaction job, oldest first.
    pub fn jobs(&self) -> RangeOption {
        self.range(&(JOB,))
    }

    /// The job of a key in [`Keyspace::jobs`].
    pub fn job_of_key(&self, key: &[u8]) -> Result<JobId> {
        let (_, job): (String, Vec<u8>) = self.unpack(key)?;
        JobId::from_slice(&job).map_err(|e| Error::corrupt(key, e))
    }

    /// A deleted topic whose keys are still being cleared.
    pub fn deleted_topic(&self, topic: TopicId) -> Vec<u8> {
        self.key(&(DELETED_TOPIC, topic.0))
    }

    pub fn deleted_topics(&self) -> RangeOption {
        self.range(&(DELETED_TOPIC,))
    }

    /// A counter kept with atomic adds (read it with [`crate::decode_counter`]).
    pub fn count(&self, name: &str) -> Vec<u8> {
        self.key(&(COUNT, name))
    }

    pub fn agent(&self, agent: AgentId) -> Vec<u8> {
        self.key(&(AGENT, agent.to_bytes().as_slice()))
    }

    pub fn agents(&self) -> RangeOption {
        self.range(&(AGENT,))
    }

    pub fn lease(&self, name: &str) -> Vec<u8> {
        self.key(&(LEASE, name))
    }

    /// The counter of producer ids: the last one allocated.
    pub fn producer_ids(&self) -> Vec<u8> {
        self.key(&(PRODUCER_IDS,))
    }

    pub fn producer(&self, id: ProducerId) -> Vec<u8> {
        self.key(&(PRODUCER, id.0))
    }

    pub fn producers(&self) -> RangeOption {
        self.range(&(PRODUCER,))
    }

    pub fn producer_state(&self, topic: TopicId, partition: Partition, id: ProducerId) -> Vec<u8> {
        self.key(&(PRODUCER_STATE, topic.0, partition.0, id.0))
    }

    /// Every producer state, of every topic.
    pub fn producer_states(&self) -> RangeOption {
        self.range(&(PRODUCER_STATE,))
    }

    pub fn producer_states_of_topic(&self, topic: TopicId) -> RangeOption {
        self.range(&(PRODUCER_STATE, topic.0))
    }

    pub fn group(&self, group: &str) -> Vec<u8> {
        self.key(&(GROUP, group))
    }

    pub fn groups(&self) -> RangeOption {
        self.range(&(GROUP,))
    }

    /// The group id of a key in [`Keyspace::groups`].
    pub fn group_of_key(&self, key: &[u8]) -> Result<String> {
        let (_, group): (String, String) = self.unpack(key)?;
        Ok(group)
    }

    pub fn group_member(&self, group: &str, member: &str) -> Vec<u8> {
        self.key(&(GROUP_MEMBER, group, member))
    }

    pub fn group_members(&self, group: &str) -> RangeOption {
        self.range(&(GROUP_MEMBER, group))
    }

    pub fn group_offset(&self, group: &str, topic: &str, partition: Partition) -> Vec<u8> {
        self.key(&(GROUP_OFFSET, group, topic, partition.0))
    }

    /// Every committed offset of a group.
    pub fn group_offsets(&self, group: &str) -> RangeOption {
        self.range(&(GROUP_OFFSET, group))
    }

    /// A group's committed offsets for one topic.
    pub fn group_topic_offsets(&self, group: &str, topic: &str) -> RangeOption {
        self.range(&(GROUP_OFFSET, group, topic))
    }

    /// Every committed offset of every group.
    pub fn all_group_offsets(&self) -> RangeOption {
        self.range(&(GROUP_OFFSET,))
    }

    /// The topic and partition of a key in [`Keyspace::group_offsets`].
    pub fn group_offset_of_key(&self, key: &[u8]) -> Result<(String, Partition)> {
        let (_, _, topic, partition): (String, String, String, i32) = self.unpack(key)?;
        Ok((topic, Partition(partition)))
    }
}

/// Decodes a record stored under `key`.
pub fn decode<M: Message + Default>(key: &[u8], value: &[u8]) -> Result<M> {
    M::decode(value).map_err(|e| Error::corrupt(key, e))
}

/// Encodes a record.
pub fn encode<M: Message>(record: &M) -> Vec<u8> {
    record.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_offset_and_range_from_an_offset() {
        let ks = Keyspace::new("test");
        let topic = TopicId::random();
        let p = Partition(3);
        let keys: Vec<_> = [-1i64, 0, 9, 10, 1 << 40]
            .iter()
            .map(|&o| ks.index_entry(topic, p, Offset(o)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "tuple encoding keeps numeric order");
        let range = ks.index_from(topic, p, Offset(10));
        assert!(range.begin <= keys[3] && keys[3] < range.end);
        assert!(keys[2] < range.begin);
        let other = ks.index_entry(topic, Partition(4), Offset(0));
        assert!(other >= range.end, "another partition is outside the range");
        assert_eq!(
            ks.index_entry_last_offset(&keys[4]).expect("decodes"),
            Offset(1 << 40)
        );
    }

    #[test]
    fn producer_keys_stay_apart() {
        let ks = Keyspace::new("test");
        let topic = TopicId::random();
        let state = ks.producer_state(topic, Partition(0), ProducerId(7));
        let of_topic = ks.producer_states_of_topic(topic);
        assert!(of_topic.begin <= state && state < of_topic.end);
        let all = ks.producer_states();
        assert!(all.begin <= of_topic.begin && of_topic.end <= all.end);
        // ("producer", id) must not fall inside ("producer_state", ...) nor the reverse.
        let producer = ks.producer(ProducerId(7));
        assert!(producer < all.begin || producer >= all.end);
        let producers = ks.producers();
        assert!(state < producers.begin || state >= producers.end);
        assert!(ks.producer_ids() < producers.begin || ks.producer_ids() >= producers.end);
    }

    #[test]
    fn clusters_do_not_share_keys() {
        let topic = TopicId::random();
        let a = Keyspace::new("a").topics();
        let b = Keyspace::new("b").topic(topic);
        assert!(b < a.begin || b >= a.end);
    }

    #[test]
    fn printable_escapes_binary() {
        assert_eq!(printable(b"ab\x00\xff"), "ab\\x00\\xff");
    }
}
