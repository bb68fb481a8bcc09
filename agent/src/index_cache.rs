//! What the agent remembers of the index, so fetches need the control plane only when
//! there is something new to learn.
//!
//! A partition's high watermark is *known* while the control plane's watch is connected:
//! the watch raises it on every commit, and a resync (or a broken watch) forgets every
//! known watermark. A fetch at the known watermark — a tailing consumer's long poll — is
//! answered from here, and so is one whose entries are all here.
//!
//! Index entries are removed by retention, DeleteRecords and topic deletion, and
//! replaced by compaction; the watch says so (a log start advance drops the entries
//! below it, a compaction swap drops the partition's entries). Whatever the watch
//! missed, entries are used at most [`ENTRY_TTL`] after they were read: the grace
//! period before a dereferenced object is deleted is set from it (docs/lifecycle.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use weir_control_plane_api::data::{IndexEntry, PartitionAdvance, PartitionIndex};
use weir_metadata::{Offset, Partition, TopicId};

/// Entries kept per partition: the newest, which tailing consumers read.
const ENTRIES_PER_PARTITION: usize = 512;

/// How long after it was read an index entry may still be used.
pub const ENTRY_TTL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
struct Known {
    /// Contiguous entries in offset order.
    entries: Vec<IndexEntry>,
    /// When the oldest of `entries` was read.
    read_at: Instant,
    /// Set while the watch vouches for it.
    high_watermark: Option<Offset>,
    log_start_offset: Offset,
}

impl Default for Known {
    fn default() -> Self {
        Known {
            entries: Vec::new(),
            read_at: Instant::now(),
            high_watermark: None,
            log_start_offset: Offset(0),
        }
    }
}

#[derive(Clone, Debug)]
pub struct IndexCache {
    partitions: Cache<(TopicId, Partition), Arc<Known>>,
}

impl IndexCache {
    pub fn new(max_partitions: u64) -> Self {
        IndexCache {
            partitions: Cache::new(max_partitions),
        }
    }

    fn update(&self, topic: TopicId, partition: Partition, change: impl FnOnce(&mut Known)) {
        let key = (topic, partition);
        let mut known = self
            .partitions
            .get(&key)
            .map_or_else(Known::default, |k| (*k).clone());
        change(&mut known);
        self.partitions.insert(key, Arc::new(known));
    }

    /// A commit raised a partition's high watermark (from the watch).
    pub fn advance(&self, topic: TopicId, partition: Partition, high_watermark: Offset) {
        self.update(topic, partition, |known| {
            known.high_watermark = Some(
                known
                    .high_watermark
                    .map_or(high_watermark, |h| h.max(high_watermark)),
            );
        });
    }

    /// What the watch said of a partition: its high watermark, its log start (entries
    /// wholly below it are gone), and whether compaction replaced entries.
    pub fn apply(&self, advance: &PartitionAdvance) {
        self.advance(advance.topic, advance.partition, advance.high_watermark);
        self.update(advance.topic, advance.partition, |known| {
            if advance.log_start_offset > known.log_start_offset {
                known.log_start_offset = advance.log_start_offset;
                known.entries.retain(|e| e.end() > advance.log_start_offset);
            }
            if advance.entries_replaced {
                known.entries.clear();
            }
        });
    }

    /// Forgets a partition's entries: a read found one of their objects missing.
    pub fn forget_entries(&self, topic: TopicId, partition: Partition) {
        self.update(topic, partition, |known| known.entries.clear());
    }

    /// Advances may have been missed: no watermark is known any more.
    pub fn forget_watermarks(&self) {
        for (key, known) in &self.partitions {
            if known.high_watermark.is_some() {
                let mut known = (*known).clone();
                known.high_watermark = None;
                self.partitions.insert(*key, Arc::new(known));
            }
        }
    }

    /// Keeps what a read of the index returned. Its watermark is kept only if the watch
    /// already vouches for this partition (it then only ever raises it).
    pub fn store(&self, topic: TopicId, partition: Partition, read: &PartitionIndex) {
        self.update(topic, partition, |known| {
            known.log_start_offset = read.log_start_offset;
            if let Some(h) = known.high_watermark.as_mut() {
                *h = (*h).max(read.high_watermark);
            }
            if known.entries.is_empty() || known.read_at.elapsed() > ENTRY_TTL {
                known.entries.clear();
                known.read_at = Instant::now();
            }
            merge(&mut known.entries, &read.entries);
            if known.entries.first() == read.entries.first() {
                known.read_at = Instant::now();
            }
        });
    }

    /// The answer to a read from `from` for at most `max_bytes` (at least one entry),
    /// if this cache can give it exactly; `None` means ask the control plane.
    pub fn lookup(
        &self,
        topic: TopicId,
        partition: Partition,
        from: Offset,
        max_bytes: u64,
    ) -> Option<PartitionIndex> {
        let known = self.partitions.get(&(topic, partition))?;
        let high_watermark = known.high_watermark?;
        if from < known.log_start_offset || from > high_watermark {
            return None;
        }
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut next = from;
        if from < high_watermark {
            if known.read_at.elapsed() > ENTRY_TTL {
                return None;
            }
            let start = known
                .entries
                .iter()
                .position(|e| e.base_offset <= from && from < e.end())?;
            for entry in &known.entries[start..] {
                if bytes >= max_bytes {
                    break;
                }
                bytes += entry.length;
                next = entry.end();
                entries.push(entry.clone());
            }
            // Short of both the budget and the watermark: the rest is not here yet.
            if bytes < max_bytes && next < high_watermark {
                return None;
            }
        }
        Some(PartitionIndex {
            entries,
            high_watermark,
            log_start_offset: known.log_start_offset,
        })
    }
}

/// Adds `read` (contiguous, in order) to `entries` (contiguous, in order), keeping them
/// contiguous: a read that does not touch what is kept replaces it.
fn merge(entries: &mut Vec<IndexEntry>, read: &[IndexEntry]) {
    let Some(first) = read.first() else { return };
    let kept_end = entries.last().map_or(Offset(i64::MIN), IndexEntry::end);
    let kept_start = entries.first().map_or(Offset(i64::MAX), |e| e.base_offset);
    if first.base_offset < kept_start || first.base_offset > kept_end {
        *entries = read.to_vec();
    } else {
        // Keep what precedes the read; the read supersedes the rest.
        entries.retain(|e| e.end() <= first.base_offset);
        if entries.last().is_none_or(|e| e.end() == first.base_offset) {
            entries.extend_from_slice(read);
        } else {
            *entries = read.to_vec();
        }
    }
    if entries.len() > ENTRIES_PER_PARTITION {
        entries.drain(..entries.len() - ENTRIES_PER_PARTITION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P0: Partition = Partition(0);

    fn entry(base: i64, records: i64, length: u64) -> IndexEntry {
        IndexEntry {
            object: weir_metadata::ObjectId::new(),
            object_size: length,
            position: 0,
            length,
            base_offset: Offset(base),
            record_count: records,
            max_timestamp: 0,
            batch_count: 1,
        }
    }

    fn read(entries: Vec<IndexEntry>, high_watermark: i64) -> PartitionIndex {
        PartitionIndex {
            entries,
            high_watermark: Offset(high_watermark),
            log_start_offset: Offset(0),
        }
    }

    fn bases(index: &PartitionIndex) -> Vec<i64> {
        index.entries.iter().map(|e| e.base_offset.0).collect()
    }

    #[test]
    fn nothing_is_answered_without_a_watermark_the_watch_vouches_for() {
        let cache = IndexCache::new(10);
        let t = TopicId::random();
        cache.store(t, P0, &read(vec![entry(0, 5, 100)], 5));
        assert!(
            cache.lookup(t, P0, Offset(0), 1000).is_none(),
            "no watch advance yet"
        );
        cache.advance(t, P0, Offset(5));
        assert_eq!(
            cache.lookup(t, P0, Offset(0), 1000).map(|i| bases(&i)),
            Some(vec![0])
        );
        cache.forget_watermarks();
        assert!(
            cache.lookup(t, P0, Offset(0), 1000).is_none(),
            "a resync forgets it"
        );
    }

    #[test]
    fn a_tailing_read_at_the_watermark_is_empty_and_beyond_it_asks() {
        let cache = IndexCache::new(10);
        let t = TopicId::random();
        cache.advance(t, P0, Offset(5));
        cache.store(t, P0, &read(vec![entry(0, 5, 100)], 5));
        let tail = cache.lookup(t, P0, Offset(5), 1000).expect("answered");
        assert!(tail.entries.is_empty());
        assert_eq!(tail.high_watermark, Offset(5));
        assert!(
            cache.lookup(t, P0, Offset(6), 1000).is_none(),
            "out of range is the control plane's to say"
        );
        cache.advance(t, P0, Offset(9));
        assert!(
            cache.lookup(t, P0, Offset(5), 1000).is_none(),
            "new entries are not here yet"
        );
        cache.store(t, P0, &read(vec![entry(5, 4, 100)], 9));
        assert_eq!(
            cache.lookup(t, P0, Offset(0), 1000).map(|i| bases(&i)),
            Some(vec![0, 5]),
            "merged contiguously"
        );
        assert_eq!(
            cache.lookup(t, P0, Offset(7), 1000).map(|i| bases(&i)),
            Some(vec![5]),
            "from inside an entry"
        );
        assert_eq!(
            cache.lookup(t, P0, Offset(0), 50).map(|i| bases(&i)),
            Some(vec![0]),
            "budget met by the first"
        );
    }

    #[test]
    fn a_read_elsewhere_replaces_what_is_kept() {
        let mut kept = vec![entry(0, 5, 1), entry(5, 5, 1)];
        merge(&mut kept, &[entry(20, 5, 1)]);
        assert_eq!(
            kept.iter().map(|e| e.base_offset.0).collect::<Vec<_>>(),
            vec![20]
        );
        merge(&mut kept, &[entry(25, 5, 1), entry(30, 1, 1)]);
        assert_eq!(
            kept.iter().map(|e| e.base_offset.0).collect::<Vec<_>>(),
            vec![20, 25, 30]
        );
        merge(&mut kept, &[entry(25, 5, 1)]);
        assert_eq!(
            kept.iter().map(|e| e.base_offset.0).collect::<Vec<_>>(),
            vec![20, 25]
        );
        let mut many: Vec<_> = (0..600).map(|i| entry(i, 1, 1)).collect();
        merge(&mut many, &[entry(600, 1, 1)]);
        assert_eq!(many.len(), ENTRIES_PER_PARTITION);
        assert_eq!(many.last().map(|e| e.base_offset), Some(Offset(600)));
    }
}
