//! What a deleted topic leaves behind, cleared in bounded transactions: its index
//! (releasing its objects), time index, partition and producer states, and committed
//! offsets; then its `deleted_topic` marker (docs/lifecycle.md, "Topic deletion").

use weir_metadata::keyspace::{self, CommittedOffset, IndexEntry};
use weir_metadata::{TopicId, key_after};

use super::entries::{self, entry_object};
use crate::error::Result;
use crate::store::Store;

/// Keys one transaction clears or reads at most.
const KEYS_PER_TRANSACTION: usize = 1_000;

/// What clearing deleted topics did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    pub topics: u64,
    pub entries: u64,
    pub dereferenced: u64,
    pub offsets: u64,
}

/// The deleted topics whose keys are not all cleared yet.
pub async fn deleted_topics(store: &Store) -> Result<Vec<TopicId>> {
    store
        .db
        .run(|tx| async move {
            let kvs = tx.snapshot_get_range(&store.ks.deleted_topics()).await?;
            kvs.iter()
                .map(|kv| {
                    let record: keyspace::TopicRecord = keyspace::decode(&kv.key, &kv.value)?;
                    Ok(TopicId::from_slice(&record.id)
                        .map_err(|e| weir_metadata::Error::corrupt(&kv.key, e))?)
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
}

/// Clears everything a deleted topic left, then its marker.
pub async fn clear_deleted_topic(store: &Store, topic: TopicId) -> Result<Cleared> {
    let mut cleared = Cleared::default();
    // The index, a page at a time: each entry's object may need dereferencing.
    loop {
        let (entries, dereferenced) = store
            .db
            .run(|tx| async move {
                let ks = &store.ks;
                let page = tx
                    .get_range(&ks.index_of_topic(topic).limit(KEYS_PER_TRANSACTION))
                    .await?;
                let mut dereferenced = 0;
                for kv in &page {
                    let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
                    let (partition, _) = ks.index_entry_of_key(&kv.key)?;
                    let object = entry_object(&entry, &kv.key)?;
                    if entries::remove_entry(
                        &tx,
                        store,
                        topic,
                        partition,
                        &entry,
                        object,
                        store.delete_grace_ms,
                    )
                    .await?
                    {
                        dereferenced += 1;
                    }
                }
                Ok::<_, crate::Error>((page.len() as u64, dereferenced))
            })
            .await?;
        cleared.entries += entries;
        cleared.dereferenced += dereferenced;
        if entries < KEYS_PER_TRANSACTION as u64 {
            break;
        }
    }
    // Committed offsets carry the topic's id; a namesake's are left alone.
    let mut from = store.ks.all_group_offsets().begin;
    loop {
        let (next, removed) = store
            .db
            .run(|tx| {
                let from = from.clone();
                async move {
                    let mut range = store.ks.all_group_offsets();
                    range.begin = from;
                    let page = tx.get_range(&range.limit(KEYS_PER_TRANSACTION)).await?;
                    let mut removed = 0;
                    for kv in &page {
                        let offset: CommittedOffset = keyspace::decode(&kv.key, &kv.value)?;
                        if offset.topic_id == topic.as_bytes() {
                            tx.clear(&kv.key);
                            removed += 1;
                        }
                    }
                    let next = (page.len() == KEYS_PER_TRANSACTION)
                        .then(|| page.last().map(|kv| key_after(&kv.key)))
                        .flatten();
                    Ok::<_, crate::Error>((next, removed))
                }
            })
            .await?;
        cleared.offsets += removed;
        match next {
            Some(next) => from = next,
            None => break,
        }
    }
    // The rest are plain ranges: one clear each, whatever their size.
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            for range in [
                ks.time_of_topic(topic),
                ks.partitions(topic),
                ks.producer_states_of_topic(topic),
            ] {
                tx.clear_range(&range.begin, &range.end);
            }
            tx.clear(&ks.deleted_topic(topic));
            Ok::<_, crate::Error>(())
        })
        .await?;
    cleared.topics = 1;
    Ok(cleared)
}
