//! Reads of the index: which object bytes hold a partition's offsets, and offset
//! lookups (earliest, latest, by timestamp).

use weir_metadata::keyspace::{self, IndexEntry, PartitionRecord};
use weir_metadata::{
    ObjectId, Offset, Partition, RangeOption, TopicId, Transaction, decode_counter,
};

use crate::error::{ItemError, Result};
use crate::proto::ErrorCode;
use crate::store::{Store, topic_by_id};

/// Index entries read per page while filling a partition's read.
const ENTRIES_PER_PAGE: usize = 256;

/// A partition's offsets as the index knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// The largest timestamp of the entries retention and DeleteRecords removed.
    pub trimmed_max_timestamp: i64,
}

/// A read of one partition's index, and what an offset query asks for: the API's.
pub use weir_control_plane_api::data::{OffsetSpec, PartitionRead};

/// The entries covering `from` onwards, and the partition's watermarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionIndex {
    pub entries: Vec<IndexEntry>,
    pub watermarks: Watermarks,
}

/// An offset query's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAnswer {
    /// `None` when no batch reaches the timestamp.
    pub offset: Option<Offset>,
    /// For timestamp queries, the index entry holding `offset`, so the agent can find
    /// the exact record inside it.
    pub entry: Option<IndexEntry>,
    pub watermarks: Watermarks,
}

/// Errors of one partition: unknown topic or partition, or an offset out of range.
pub type PartitionOutcome<T> = Result<T, (ItemError, Option<Watermarks>)>;

async fn watermarks(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
) -> Result<Result<Watermarks, ItemError>> {
    let Some(record) = topic_by_id(tx, &store.ks, topic).await? else {
        return Ok(Err(ItemError::new(
            ErrorCode::UnknownTopic,
            format!("topic id {topic} does not exist"),
        )));
    };
    if !(0..record.partitions).contains(&partition.0) {
        return Ok(Err(ItemError::new(
            ErrorCode::UnknownPartition,
            format!(
                "partition {partition} is out of range: topic {} has {} partitions",
                record.name, record.partitions
            ),
        )));
    }
    let key = store.ks.partition(topic, partition);
    let state = match tx.get(&key).await? {
        Some(value) => keyspace::decode::<PartitionRecord>(&key, &value)?,
        None => crate::lifecycle::entries::empty_partition(),
    };
    Ok(Ok(Watermarks {
        high_watermark: Offset(state.high_watermark),
        log_start_offset: Offset(state.log_start_offset),
        trimmed_max_timestamp: state.trimmed_max_timestamp,
    }))
}

/// Reads the index for several partitions at one consistent version.
pub async fn read_index(
    store: &Store,
    reads: &[PartitionRead],
) -> Result<Vec<PartitionOutcome<PartitionIndex>>> {
    store
        .db
        .run(|tx| async move {
            let mut results = Vec::with_capacity(reads.len());
            for read in reads {
                results.push(read_partition(&tx, store, read).await?);
            }
            Ok(results)
        })
        .await
}

async fn read_partition(
    tx: &Transaction,
    store: &Store,
    read: &PartitionRead,
) -> Result<PartitionOutcome<PartitionIndex>> {
    let marks = match watermarks(tx, store, read.topic, read.partition).await? {
        Ok(marks) => marks,
        Err(e) => return Ok(Err((e, None))),
    };
    if read.from < marks.log_start_offset || read.from > marks.high_watermark {
        return Ok(Err((
            ItemError::new(
                ErrorCode::OffsetOutOfRange,
                format!(
                    "offset {} is outside {}..={} of partition {}",
                    read.from, marks.log_start_offset, marks.high_watermark, read.partition
                ),
            ),
            Some(marks),
        )));
    }
    let mut entries = Vec::new();
    let mut bytes = 0;
    let mut range = Some(
        store
            .ks
            .index_from(read.topic, read.partition, read.from)
            .limit(ENTRIES_PER_PAGE),
    );
    'pages: while let Some(r) = range {
        let page = tx.get_range_page(&r, false).await?;
        for kv in &page.kvs {
            if bytes >= read.max_bytes && !entries.is_empty() {
                break 'pages;
            }
            let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
            bytes += entry.length;
            entries.push(entry);
        }
        range = r.next_page(&page).map(|next| next.limit(ENTRIES_PER_PAGE));
    }
    Ok(Ok(PartitionIndex {
        entries,
        watermarks: marks,
    }))
}

/// Whether each object has an object record, i.e. was committed, at one consistent
/// version. Garbage collection deletes the objects of an agent's bucket for which this
/// says `false` once they are older than its grace period.
pub async fn committed_objects(store: &Store, objects: &[ObjectId]) -> Result<Vec<bool>> {
    store
        .db
        .run(|tx| async move {
            let reads = objects.iter().map(|id| {
                let tx = tx.clone();
                async move { tx.get(&store.ks.object(*id)).await }
            });
            let found = futures::future::try_join_all(reads).await?;
            Ok(found.into_iter().map(|value| value.is_some()).collect())
        })
        .await
}

/// Answers offset queries for several partitions at one consistent version.
pub async fn list_offsets(
    store: &Store,
    queries: &[(TopicId, Partition, OffsetSpec)],
) -> Result<Vec<PartitionOutcome<OffsetAnswer>>> {
    store
        .db
        .run(|tx| async move {
            let mut answers = Vec::with_capacity(queries.len());
            for &(topic, partition, spec) in queries {
                answers.push(list_offset(&tx, store, topic, partition, spec).await?);
            }
            Ok(answers)
        })
        .await
}

async fn list_offset(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    spec: OffsetSpec,
) -> Result<PartitionOutcome<OffsetAnswer>> {
    let marks = match watermarks(tx, store, topic, partition).await? {
        Ok(marks) => marks,
        Err(e) => return Ok(Err((e, None))),
    };
    let answer = |offset, entry| OffsetAnswer {
        offset,
        entry,
        watermarks: marks,
    };
    let timestamp = match spec {
        OffsetSpec::Earliest => return Ok(Ok(answer(Some(marks.log_start_offset), None))),
        OffsetSpec::Latest => return Ok(Ok(answer(Some(marks.high_watermark), None))),
        OffsetSpec::Timestamp(ts) => Some(ts),
        OffsetSpec::MaxTimestamp => None,
    };
    let ks = &store.ks;
    // Retention removed entries whose timestamps reached this one: a live entry before
    // the one the time index names may reach it too (the removed ones raised the
    // running maximum the time index follows), so look from the log start.
    if let Some(ts) = timestamp
        && ts <= marks.trimmed_max_timestamp
    {
        let found = first_reaching(tx, store, topic, partition, marks.log_start_offset, ts).await?;
        return Ok(Ok(match found {
            Some(entry) => answer(
                Some(Offset(entry.base_offset.max(marks.log_start_offset.0))),
                Some(entry),
            ),
            None => answer(None, None),
        }));
    }
    // The time index holds the entries that raised the partition's largest timestamp:
    // the first at or past a timestamp, or the last of all for the largest.
    let range: RangeOption = match timestamp {
        Some(timestamp) => ks.time_from(topic, partition, timestamp).limit(1),
        None => ks
            .time_from(topic, partition, i64::MIN)
            .limit(1)
            .reverse(true),
    };
    let Some(time) = tx.get_range(&range).await?.into_iter().next() else {
        return Ok(Ok(answer(None, None)));
    };
    let last = Offset(decode_counter(&time.value));
    // The entry may have been removed since; the next one then answers.
    let range = ks
        .index_from(topic, partition, last.max(marks.log_start_offset))
        .limit(1);
    let found = match tx.get_range(&range).await?.into_iter().next() {
        Some(kv) => Some(keyspace::decode::<IndexEntry>(&kv.key, &kv.value)?),
        None => None,
    };
    let Some(entry) = found else {
        return Ok(Ok(answer(None, None)));
    };
    Ok(Ok(answer(
        Some(Offset(entry.base_offset.max(marks.log_start_offset.0))),
        Some(entry),
    )))
}

/// The first entry from `from` on whose largest timestamp reaches `ts`: a scan that
/// ends at the first such entry (the one the time index names, if it is live).
async fn first_reaching(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    from: Offset,
    ts: i64,
) -> Result<Option<IndexEntry>> {
    let mut range = Some(
        store
            .ks
            .index_from(topic, partition, from)
            .limit(ENTRIES_PER_PAGE),
    );
    while let Some(r) = range {
        let page = tx.get_range_page(&r, false).await?;
        for kv in &page.kvs {
            let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
            if entry.max_timestamp >= ts {
                return Ok(Some(entry));
            }
        }
        range = r.next_page(&page).map(|next| next.limit(ENTRIES_PER_PAGE));
    }
    Ok(None)
}
