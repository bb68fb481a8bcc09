//! Retention and DeleteRecords: removing a partition's oldest index entries, with
//! Kafka's rules and an index entry in the place of a segment (docs/lifecycle.md).
//!
//! Both move the log start offset forward only, never split an entry, and remove at
//! most [`ENTRIES_PER_TRANSACTION`] entries per transaction, so no transaction nears the
//! metadata store's limits however far behind a partition is.

use std::collections::BTreeMap;

use weir_metadata::keyspace::{self, IndexEntry, PartitionRecord};
use weir_metadata::{Offset, Partition, TopicId, Transaction, decode_counter};

use super::entries::{self, entry_object};
use crate::error::{ItemError, Result};
use crate::proto::ErrorCode;
use crate::store::{Store, topic_by_id};
use crate::topic_config;

/// Index entries one transaction removes at most.
pub const ENTRIES_PER_TRANSACTION: usize = 1_000;

/// What a topic's configs ask of retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `cleanup.policy` includes `delete`: retention applies, and DeleteRecords may be used.
    pub delete: bool,
    /// `retention.ms`; `None` for `-1`.
    pub max_age_ms: Option<i64>,
    /// `retention.bytes`; `None` for `-1`.
    pub max_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// The policy of a topic with these configs (defaults for what it does not set).
    pub fn of(configs: &BTreeMap<String, String>) -> Self {
        let value = |name: &str| {
            configs
                .get(name)
                .map(String::as_str)
                .or_else(|| topic_config::lookup(name).map(|c| c.default))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let bound = |name: &str| value(name).parse::<i64>().ok().filter(|v| *v >= 0);
        RetentionPolicy {
            delete: value("cleanup.policy")
                .split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("delete")),
            max_age_ms: bound("retention.ms"),
            max_bytes: bound("retention.bytes").map(|b| b as u64),
        }
    }
}

/// What removing entries from one partition's head did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub entries: u64,
    pub bytes: u64,
    pub dereferenced: u64,
    /// The log start offset after it, and the high watermark.
    pub log_start: Offset,
    pub high_watermark: Offset,
    /// Whether it stopped at the per-transaction bound with more to remove.
    pub more: bool,
}

/// Why entries leave a partition's head: `policy` (retention, when the topic's cleanup
/// policy deletes) and a log start offset to reach (DeleteRecords').
#[derive(Clone, Copy, Debug)]
pub struct Trim {
    pub policy: Option<RetentionPolicy>,
    pub now_ms: i64,
    /// Raise the log start offset to at least this first.
    pub log_start_at_least: Option<Offset>,
}

/// Whether a partition's record shows anything for `trim` to do, without its index.
pub fn has_work(record: &PartitionRecord, trim: &Trim) -> bool {
    if record.bytes == 0 {
        return trim
            .log_start_at_least
            .is_some_and(|o| o.0 > record.log_start_offset);
    }
    if record.first_end <= record.log_start_offset {
        return true;
    }
    if trim
        .log_start_at_least
        .is_some_and(|o| o.0 > record.log_start_offset)
    {
        return true;
    }
    let Some(policy) = trim.policy.filter(|p| p.delete) else {
        return false;
    };
    let aged = policy
        .max_age_ms
        .is_some_and(|age| record.first_timestamp < trim.now_ms.saturating_sub(age));
    let oversized = policy.max_bytes.is_some_and(|max| record.bytes > max);
    aged || oversized
}

/// Removes, in `tx`, the partition's head entries `trim` asks to remove (at most
/// [`ENTRIES_PER_TRANSACTION`]), and keeps the partition's record. `None` when the
/// partition was never written.
pub async fn trim_partition(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    trim: &Trim,
) -> Result<Option<Trimmed>> {
    let Some(mut record) = entries::partition_record(tx, store, topic, partition).await? else {
        return Ok(None);
    };
    if let Some(at_least) = trim.log_start_at_least {
        record.log_start_offset = record.log_start_offset.max(at_least.0);
    }
    let page = tx
        .get_range(
            &store
                .ks
                .index_of_partition(topic, partition)
                .limit(ENTRIES_PER_TRANSACTION + 1),
        )
        .await?;
    let policy = trim.policy.filter(|p| p.delete);
    let cutoff = policy
        .and_then(|p| p.max_age_ms)
        .map(|age| trim.now_ms.saturating_sub(age));
    let mut trimmed = Trimmed::default();
    let mut remaining = record.bytes;
    let mut first_kept: Option<IndexEntry> = None;
    for (i, kv) in page.iter().enumerate() {
        let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
        let end = entry.base_offset + entry.record_count;
        let below_start = end <= record.log_start_offset;
        let aged = cutoff.is_some_and(|cutoff| entry.max_timestamp < cutoff);
        let oversized = policy
            .and_then(|p| p.max_bytes)
            .is_some_and(|max| remaining.saturating_sub(entry.length) >= max);
        if !(below_start || aged || oversized) {
            first_kept = Some(entry);
            break;
        }
        if i == ENTRIES_PER_TRANSACTION {
            trimmed.more = true;
            first_kept = Some(entry);
            break;
        }
        let object = entry_object(&entry, &kv.key)?;
        if entries::remove_entry(
            tx,
            store,
            topic,
            partition,
            &entry,
            object,
            store.delete_grace_ms,
        )
        .await?
        {
            trimmed.dereferenced += 1;
        }
        remaining = remaining.saturating_sub(entry.length);
        record.trimmed_max_timestamp = record.trimmed_max_timestamp.max(entry.max_timestamp);
        record.log_start_offset = record.log_start_offset.max(end);
        trimmed.entries += 1;
        trimmed.bytes += entry.length;
    }
    if trimmed.entries > 0 {
        record.bytes = remaining;
        entries::set_head(&mut record, first_kept.as_ref());
        if first_kept.is_none() {
            record.log_start_offset = record.log_start_offset.max(record.high_watermark);
        }
        clear_time_keys_below(tx, store, topic, partition, Offset(record.log_start_offset)).await?;
    }
    trimmed.log_start = Offset(record.log_start_offset);
    trimmed.high_watermark = Offset(record.high_watermark);
    tx.set(
        &store.ks.partition(topic, partition),
        &keyspace::encode(&record),
    );
    Ok(Some(trimmed))
}

/// Clears the time-index keys naming entries wholly below `log_start`: they are the
/// first keys of the partition's time index, since its keys rise in both timestamp and
/// offset.
async fn clear_time_keys_below(
    tx: &Transaction,
    store: &Store,
    topic: TopicId,
    partition: Partition,
    log_start: Offset,
) -> Result<()> {
    let keys = tx
        .get_range(
            &store
                .ks
                .time_of_partition(topic, partition)
                .limit(ENTRIES_PER_TRANSACTION),
        )
        .await?;
    for kv in keys {
        if decode_counter(&kv.value) >= log_start.0 {
            break;
        }
        tx.clear(&kv.key);
    }
    Ok(())
}

/// DeleteRecords for one partition (KIP-107): the log start offset becomes
/// `max(log start, offset)`, `-1` meaning the high watermark, and up to
/// [`ENTRIES_PER_TRANSACTION`] entries below it go. Returns what it did (`log_start`
/// is the new low watermark), or Kafka's error for the partition.
pub async fn delete_records(
    store: &Store,
    topic: TopicId,
    partition: Partition,
    offset: Offset,
) -> Result<Result<Trimmed, ItemError>> {
    let outcome = store
        .db
        .run(|tx| async move {
            let Some(record) = topic_by_id(&tx, &store.ks, topic).await? else {
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
            let configs = record.configs.clone().into_iter().collect();
            let policy = RetentionPolicy::of(&configs);
            if !policy.delete {
                return Ok(Err(ItemError::new(
                    ErrorCode::PolicyViolation,
                    format!(
                        "Records of partitions of topic {} can be deleted only if the topic has a delete cleanup policy",
                        record.name
                    ),
                )));
            }
            let state = entries::partition_record(&tx, store, topic, partition)
                .await?
                .unwrap_or_else(entries::empty_partition);
            let target = if offset.0 == -1 {
                state.high_watermark
            } else {
                offset.0
            };
            if target < 0 || target > state.high_watermark {
                return Ok(Err(ItemError::new(
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "offset {} is outside 0..={} of partition {partition} of topic {}",
                        offset.0, state.high_watermark, record.name
                    ),
                )));
            }
            if target <= state.log_start_offset {
                return Ok(Ok(Trimmed {
                    log_start: Offset(state.log_start_offset),
                    high_watermark: Offset(state.high_watermark),
                    ..Trimmed::default()
                }));
            }
            let trim = Trim {
                policy: None,
                now_ms: store.clock.now_ms(),
                log_start_at_least: Some(Offset(target)),
            };
            let trimmed = trim_partition(&tx, store, topic, partition, &trim)
                .await?
                .unwrap_or(Trimmed {
                    log_start: Offset(target),
                    high_watermark: Offset(state.high_watermark),
                    ..Trimmed::default()
                });
            Ok::<_, crate::Error>(Ok(trimmed))
        })
        .await?;
    Ok(outcome)
}
