//! Index entries in and out, with their reverse keys, and objects dereferenced when the
//! last entry naming them goes (docs/lifecycle.md, "References").
//!
//! Every writer of the index goes through here: the sequencer adds entries, and
//! retention, DeleteRecords, topic deletion and compaction swaps remove them. So the
//! reverse index (`object_ref`) is always the exact inverse of the index, and "is this
//! object still referenced" is one range read.

use weir_metadata::keyspace::{self, IndexEntry, ObjectRecord, PartitionRecord};
use weir_metadata::{ObjectId, Offset, Partition, TopicId, Transaction, decode_counter};

use crate::error::Result;
use crate::store::Store;

/// The counter of index entries held, cluster-wide.
pub(crate) const INDEX_ENTRIES: &str = "index_entries";

/// The counter of dereferenced objects whose deletion no agent has confirmed yet.
pub(crate) const DELETIONS_PENDING: &str = "deletions_pending";

/// The counters of compaction candidates (objects, bytes) at `level`.
pub(crate) fn candidate_counters(level: u32) -> (String, String) {
    (
        format!("candidates/{level}"),
        format!("candidate_bytes/{level}"),
    )
}

/// The object an entry names.
pub(crate) fn entry_object(entry: &IndexEntry, key: &[u8]) -> Result<ObjectId> {
    Ok(
        ObjectId::from_slice(&entry.object_id)
            .map_err(|e| weir_metadata::Error::corrupt(key, e))?,
    )
}

/// The last offset an entry holds.
pub(crate) fn last_offset(entry: &IndexEntry) -> Offset {
    Offset(entry.base_offset + entry.record_count - 1)
}

/// Writes an index entry and its reverse key.
pub(crate) fn add_entry(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    entry: &IndexEntry,
    object: ObjectId,
) {
    let last = last_offset(entry);
    tx.set(
        &store.ks.index_entry(topic, partition, last),
        &keyspace::encode(entry),
    );
    tx.set(&store.ks.object_ref(object, topic, partition, last), &[]);
    tx.atomic_add(&store.ks.count(INDEX_ENTRIES), 1);
}

/// Clears an index entry and its reverse key; the object is dereferenced if nothing
/// names it any more. Returns whether it was.
pub(crate) async fn remove_entry(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    entry: &IndexEntry,
    object: ObjectId,
    grace_ms: i64,
) -> Result<bool> {
    let last = last_offset(entry);
    tx.clear(&store.ks.index_entry(topic, partition, last));
    tx.clear(&store.ks.object_ref(object, topic, partition, last));
    tx.atomic_add(&store.ks.count(INDEX_ENTRIES), -1);
    dereference_if_unreferenced(tx, store, object, grace_ms).await
}

/// If no index entry names `object`, marks it dereferenced and queues its deletion
/// `grace_ms` from now; a compaction candidate stops being one. Returns whether it did.
pub(crate) async fn dereference_if_unreferenced(
    tx: &Transaction,
    store: &Store,
    object: ObjectId,
    grace_ms: i64,
) -> Result<bool> {
    let ks = &store.ks;
    if !tx
        .get_range(&ks.object_refs(object).limit(1))
        .await?
        .is_empty()
    {
        return Ok(false);
    }
    let key = ks.object(object);
    let Some(value) = tx.get(&key).await? else {
        return Ok(false);
    };
    let mut record: ObjectRecord = keyspace::decode(&key, &value)?;
    if record.dereferenced_ms != 0 {
        return Ok(false);
    }
    let now_ms = store.clock.now_ms();
    record.dereferenced_ms = now_ms;
    record.deletion_due_ms = now_ms.saturating_add(grace_ms);
    record.live_bytes = 0;
    tx.set(&key, &keyspace::encode(&record));
    tx.set(&ks.deletion(record.deletion_due_ms, object), &[]);
    tx.atomic_add(&ks.count(DELETIONS_PENDING), 1);
    uncandidate(tx, store, object, record.level).await?;
    Ok(true)
}

/// The compaction backlog of a level counts the objects of that level that will be
/// merged: candidates, and the inputs of jobs planned and not yet ended. These keep the
/// candidate keys and the counters together.
///
/// A new object of `level` waits for compaction: a candidate, counted.
pub(crate) fn candidate(tx: &Transaction, store: &Store, object: ObjectId, level: u32, size: u64) {
    tx.set(&store.ks.candidate(level, object), &encode_size(size));
    count_pending(tx, store, level, 1, size);
}

/// A job took a candidate as input: no longer a candidate, still counted.
pub(crate) fn candidate_taken(tx: &Transaction, store: &Store, object: ObjectId, level: u32) {
    tx.clear(&store.ks.candidate(level, object));
}

/// A job ended and its input still waits (a run of it was skipped): a candidate again,
/// counted as it was.
pub(crate) fn candidate_returned(
    tx: &Transaction,
    store: &Store,
    object: ObjectId,
    level: u32,
    size: u64,
) {
    tx.set(&store.ks.candidate(level, object), &encode_size(size));
}

/// An object of `level` no longer waits for compaction (merged, or gone).
pub(crate) fn count_pending(tx: &Transaction, store: &Store, level: u32, objects: i64, size: u64) {
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let (count, bytes) = candidate_counters(level);
    tx.atomic_add(&store.ks.count(&count), objects);
    tx.atomic_add(&store.ks.count(&bytes), objects.signum() * size);
}

fn encode_size(size: u64) -> [u8; 8] {
    i64::try_from(size).unwrap_or(i64::MAX).to_le_bytes()
}

/// Removes `object` from the compaction candidates of `level` (it was dereferenced
/// while it waited), if it is one.
pub(crate) async fn uncandidate(
    tx: &Transaction,
    store: &Store,
    object: ObjectId,
    level: u32,
) -> Result<()> {
    let key = store.ks.candidate(level, object);
    if let Some(size) = tx.get(&key).await? {
        tx.clear(&key);
        count_pending(tx, store, level, -1, decode_counter(&size).max(0) as u64);
    }
    Ok(())
}

/// A partition's record as stored, or the empty one.
pub(crate) async fn partition_record(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
) -> Result<Option<PartitionRecord>> {
    let key = store.ks.partition(topic, partition);
    match tx.get(&key).await? {
        Some(value) => Ok(Some(keyspace::decode(&key, &value)?)),
        None => Ok(None),
    }
}

/// An empty partition's record.
pub(crate) fn empty_partition() -> PartitionRecord {
    PartitionRecord {
        high_watermark: 0,
        log_start_offset: 0,
        max_timestamp: -1,
        bytes: 0,
        first_timestamp: -1,
        first_end: 0,
        trimmed_max_timestamp: -1,
    }
}

/// Keeps a partition record's head (`first_*`) after its first entries changed: `first`
/// is now its first entry, or `None` when it holds none.
pub(crate) fn set_head(record: &mut PartitionRecord, first: Option<&IndexEntry>) {
    match first {
        Some(entry) => {
            record.first_timestamp = entry.max_timestamp;
            record.first_end = entry.base_offset + entry.record_count;
        }
        None => {
            record.first_timestamp = -1;
            record.first_end = record.high_watermark;
        }
    }
}
