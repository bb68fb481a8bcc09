//! Groups and committed offsets in the metadata store.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use weir_metadata::keyspace::{
    self, CommittedOffset, GroupMemberRecord, GroupProtocol, GroupRecord, TopicRecord,
};
use weir_metadata::{Partition, Transaction};

use super::group::{Group, Member};
use crate::error::{ItemError, Result};
use crate::proto::{ErrorCode, PartitionOffset, TopicOffsets, TopicPartitions};
use crate::store::{Store, topic_by_id, topic_id_by_name};

/// Reads a group back: its record and the members of its stable generation. `None`
/// when the store holds neither a record nor offsets for it.
pub(super) async fn load(store: &Store, id: &str) -> Result<Option<Group>> {
    store
        .db
        .run(|tx| async move {
            let key = store.ks.group(id);
            let Some(value) = tx.get(&key).await? else {
                let any_offset = tx
                    .get_range_page(&store.ks.group_offsets(id).limit(1), false)
                    .await?;
                return Ok(any_offset.kvs.first().map(|_| {
                    let mut group = Group::new(id.to_string());
                    group.stored = true;
                    group
                }));
            };
            let record: GroupRecord = keyspace::decode(&key, &value)?;
            let now = Instant::now();
            let members = tx
                .get_range(&store.ks.group_members(id))
                .await?
                .iter()
                .map(|kv| {
                    let record: GroupMemberRecord = keyspace::decode(&kv.key, &kv.value)?;
                    Ok(Member::restored(record, now))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Group::restore(
                id.to_string(),
                record.protocol_type,
                record.protocol_name,
                record.generation,
                record.leader,
                members,
            )))
        })
        .await
}

/// Writes the group's record and, if it is stable, its members; an empty group keeps
/// no members. Called while holding the group, so writes of one group never race.
pub(super) async fn save(store: &Store, group: &Group) -> Result<()> {
    let record = GroupRecord {
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        generation: group.generation,
        leader: group.leader.clone().unwrap_or_default(),
        updated_ms: store.clock.now_ms(),
    };
    let members: Vec<(Vec<u8>, Vec<u8>)> = group
        .members
        .values()
        .map(|m| {
            let record = GroupMemberRecord {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: duration_ms(m.session_timeout),
                rebalance_timeout_ms: duration_ms(m.rebalance_timeout),
                protocols: m
                    .protocols
                    .iter()
                    .map(|p| GroupProtocol {
                        name: p.name.clone(),
                        metadata: p.metadata.clone(),
                    })
                    .collect(),
                assignment: m.assignment.clone(),
                subscribed_topics: m.subscribed_topics.clone(),
            };
            (
                store.ks.group_member(&group.id, &m.id),
                keyspace::encode(&record),
            )
        })
        .collect();
    let record = keyspace::encode(&record);
    store
        .db
        .run(|tx| {
            let (record, members) = (&record, &members);
            async move {
                tx.set(&store.ks.group(&group.id), record);
                let range = store.ks.group_members(&group.id);
                tx.clear_range(&range.begin, &range.end);
                for (key, value) in members {
                    tx.set(key, value);
                }
                Ok(())
            }
        })
        .await
}

/// Removes a group: its record, members and committed offsets.
pub(super) async fn delete(store: &Store, id: &str) -> Result<()> {
    store
        .db
        .run(|tx| async move {
            tx.clear(&store.ks.group(id));
            for range in [store.ks.group_members(id), store.ks.group_offsets(id)] {
                tx.clear_range(&range.begin, &range.end);
            }
            Ok(())
        })
        .await
}

/// The ids and records of every stored group.
pub(super) async fn list(store: &Store) -> Result<Vec<(String, GroupRecord)>> {
    store
        .db
        .run(|tx| async move {
            tx.snapshot_get_range(&store.ks.groups())
                .await?
                .iter()
                .map(|kv| {
                    let id = store.ks.group_of_key(&kv.key)?;
                    Ok((id, keyspace::decode(&kv.key, &kv.value)?))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
}

/// Partition counts of the named topics, `None` for topics that do not exist.
async fn partition_counts<'a>(
    tx: &Transaction,
    store: &Store,
    topics: impl Iterator<Item = &'a str>,
) -> Result<HashMap<&'a str, Option<i32>>> {
    let mut counts = HashMap::new();
    for name in topics {
        if counts.contains_key(name) {
            continue;
        }
        let count = match topic_id_by_name(tx, &store.ks, name).await? {
            Some(id) => topic_by_id(tx, &store.ks, id)
                .await?
                .map(|t: TopicRecord| t.partitions),
            None => None,
        };
        counts.insert(name, count);
    }
    Ok(counts)
}

/// Stores committed offsets, each checked against the topics that exist and the size
/// of its metadata; answers one result per partition, in request order. `create_group`
/// also writes an empty group's record (a first commit from outside any group).
pub(super) async fn commit(
    store: &Store,
    group: &str,
    topics: &[TopicOffsets],
    max_metadata_bytes: usize,
    create_group: Option<GroupRecord>,
) -> Result<Vec<TopicOffsets>> {
    let now_ms = store.clock.now_ms();
    let create_group = create_group.map(|r| keyspace::encode(&r));
    store
        .db
        .run(|tx| {
            let create_group = create_group.clone();
            async move {
                let counts =
                    partition_counts(&tx, store, topics.iter().map(|t| t.topic.as_str())).await?;
                let mut wrote = false;
                let results = topics
                    .iter()
                    .map(|topic| TopicOffsets {
                        topic: topic.topic.clone(),
                        partitions: topic
                            .partitions
                            .iter()
                            .map(|p| {
                                let error = match counts
                                    .get(topic.topic.as_str())
                                    .copied()
                                    .flatten()
                                {
                                    None => Some(ItemError::new(
                                        ErrorCode::UnknownTopic,
                                        format!("no topic {:?}", topic.topic),
                                    )),
                                    Some(count) if p.partition < 0 || p.partition >= count => {
                                        Some(ItemError::new(
                                            ErrorCode::UnknownPartition,
                                            format!(
                                                "topic {:?} has {count} partitions, not {}",
                                                topic.topic, p.partition
                                            ),
                                        ))
                                    }
                                    Some(_)
                                        if p.metadata
                                            .as_ref()
                                            .is_some_and(|m| m.len() > max_metadata_bytes) =>
                                    {
                                        Some(ItemError::new(
                                            ErrorCode::OffsetMetadataTooLarge,
                                            format!(
                                                "offset metadata is over {max_metadata_bytes} bytes"
                                            ),
                                        ))
                                    }
                                    Some(_) => None,
                                };
                                if error.is_none() {
                                    let record = CommittedOffset {
                                        offset: p.offset,
                                        leader_epoch: p.leader_epoch,
                                        metadata: p.metadata.clone().unwrap_or_default(),
                                        commit_ms: now_ms,
                                    };
                                    tx.set(
                                        &store.ks.group_offset(
                                            group,
                                            &topic.topic,
                                            Partition(p.partition),
                                        ),
                                        &keyspace::encode(&record),
                                    );
                                    wrote = true;
                                }
                                answer(p.partition, error)
                            })
                            .collect(),
                    })
                    .collect();
                if let Some(record) = &create_group
                    && wrote
                {
                    tx.set(&store.ks.group(group), record);
                }
                Ok(results)
            }
        })
        .await
}

/// Reads a group's committed offsets: all of them, or those of the partitions asked
/// for (offset -1 where none was committed).
pub(super) async fn fetch(
    store: &Store,
    group: &str,
    topics: Option<&[TopicPartitions]>,
) -> Result<Vec<TopicOffsets>> {
    store
        .db
        .run(|tx| async move {
            let decode = |kv: &weir_metadata::KeyValue| -> Result<(String, PartitionOffset)> {
                let (topic, partition) = store.ks.group_offset_of_key(&kv.key)?;
                let record: CommittedOffset = keyspace::decode(&kv.key, &kv.value)?;
                Ok((topic, stored_offset(partition.0, record)))
            };
            let Some(topics) = topics else {
                let mut out: Vec<TopicOffsets> = Vec::new();
                for kv in tx
                    .snapshot_get_range(&store.ks.group_offsets(group))
                    .await?
                {
                    let (topic, offset) = decode(&kv)?;
                    match out.last_mut() {
                        Some(last) if last.topic == topic => last.partitions.push(offset),
                        _ => out.push(TopicOffsets {
                            topic,
                            partitions: vec![offset],
                        }),
                    }
                }
                return Ok(out);
            };
            let mut out = Vec::with_capacity(topics.len());
            for topic in topics {
                let stored: HashMap<i32, PartitionOffset> = tx
                    .snapshot_get_range(&store.ks.group_topic_offsets(group, &topic.topic))
                    .await?
                    .iter()
                    .map(|kv| decode(kv).map(|(_, o)| (o.partition, o)))
                    .collect::<Result<_>>()?;
                out.push(TopicOffsets {
                    topic: topic.topic.clone(),
                    partitions: topic
                        .partitions
                        .iter()
                        .map(|&p| {
                            stored.get(&p).cloned().unwrap_or(PartitionOffset {
                                partition: p,
                                offset: -1,
                                leader_epoch: -1,
                                metadata: Some(String::new()),
                                ..Default::default()
                            })
                        })
                        .collect(),
                });
            }
            Ok(out)
        })
        .await
}

/// Deletes committed offsets of the partitions named.
pub(super) async fn delete_offsets(
    store: &Store,
    group: &str,
    topics: &[TopicPartitions],
) -> Result<()> {
    store
        .db
        .run(|tx| async move {
            for topic in topics {
                for &p in &topic.partitions {
                    tx.clear(&store.ks.group_offset(group, &topic.topic, Partition(p)));
                }
            }
            Ok(())
        })
        .await
}

fn stored_offset(partition: i32, record: CommittedOffset) -> PartitionOffset {
    PartitionOffset {
        partition,
        offset: record.offset,
        leader_epoch: record.leader_epoch,
        metadata: Some(record.metadata),
        ..Default::default()
    }
}

pub(super) fn answer(partition: i32, error: Option<ItemError>) -> PartitionOffset {
    let (code, message) = match error {
        Some(e) => (e.code, e.message),
        None => (ErrorCode::None, String::new()),
    };
    PartitionOffset {
        partition,
        error: code as i32,
        message,
        ..Default::default()
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
