//! Groups and committed offsets in the metadata store.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use weir_metadata::keyspace::{
    self, CommittedOffset, GroupMemberRecord, GroupProtocol, GroupRecord, TopicRecord,
};
use weir_metadata::{Partition, TopicId, Transaction};

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

/// The id and partition count of each named topic, `None` for topics that do not exist.
async fn topics_by_name<'a>(
    tx: &Transaction,
    store: &Store,
    topics: impl Iterator<Item = &'a str>,
) -> Result<HashMap<&'a str, Option<(TopicId, i32)>>> {
    let mut found = HashMap::new();
    for name in topics {
        if found.contains_key(name) {
            continue;
        }
        let topic = match topic_id_by_name(tx, &store.ks, name).await? {
            Some(id) => topic_by_id(tx, &store.ks, id)
                .await?
                .map(|t: TopicRecord| (id, t.partitions)),
            None => None,
        };
        found.insert(name, topic);
    }
    Ok(found)
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
                let found =
                    topics_by_name(&tx, store, topics.iter().map(|t| t.topic.as_str())).await?;
                let mut wrote = false;
                let results = topics
                    .iter()
                    .map(|topic| TopicOffsets {
                        topic: topic.topic.clone(),
                        partitions: topic
                            .partitions
                            .iter()
                            .map(|p| {
                                let current = found.get(topic.topic.as_str()).copied().flatten();
                                let error = match current.map(|(_, count)| count) {
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
                                        topic_id: current
                                            .map(|(id, _)| id.as_bytes().to_vec())
                                            .unwrap_or_default(),
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
/// for (offset -1 where none was committed). An offset committed for a topic that has
/// since been deleted (and maybe created anew under the same name) is not answered.
pub(super) async fn fetch(
    store: &Store,
    group: &str,
    topics: Option<&[TopicPartitions]>,
) -> Result<Vec<TopicOffsets>> {
    store
        .db
        .run(|tx| async move {
            let kvs = match topics {
                None => {
                    tx.snapshot_get_range(&store.ks.group_offsets(group))
                        .await?
                }
                Some(topics) => {
                    let mut kvs = Vec::new();
                    for topic in topics {
                        kvs.extend(
                            tx.snapshot_get_range(
                                &store.ks.group_topic_offsets(group, &topic.topic),
                            )
                            .await?,
                        );
                    }
                    kvs
                }
            };
            let mut stored: Vec<(String, CommittedOffset, i32)> = Vec::with_capacity(kvs.len());
            let mut names: Vec<String> = Vec::new();
            for kv in &kvs {
                let (topic, partition) = store.ks.group_offset_of_key(&kv.key)?;
                if !names.contains(&topic) {
                    names.push(topic.clone());
                }
                stored.push((topic, keyspace::decode(&kv.key, &kv.value)?, partition.0));
            }
            let current = topics_by_name(&tx, store, names.iter().map(String::as_str)).await?;
            let live =
                |topic: &str, record: &CommittedOffset| match current.get(topic).copied().flatten()
                {
                    None => false,
                    Some((id, _)) => record.topic_id.is_empty() || record.topic_id == id.as_bytes(),
                };
            let mut by_topic: Vec<TopicOffsets> = Vec::new();
            for (topic, record, partition) in stored {
                if !live(&topic, &record) {
                    continue;
                }
                let offset = stored_offset(partition, record);
                match by_topic.iter_mut().find(|t| t.topic == topic) {
                    Some(t) => t.partitions.push(offset),
                    None => by_topic.push(TopicOffsets {
                        topic,
                        partitions: vec![offset],
                    }),
                }
            }
            let Some(topics) = topics else {
                return Ok(by_topic);
            };
            Ok(topics
                .iter()
                .map(|topic| {
                    let found: HashMap<i32, &PartitionOffset> = by_topic
                        .iter()
                        .filter(|t| t.topic == topic.topic)
                        .flat_map(|t| &t.partitions)
                        .map(|p| (p.partition, p))
                        .collect();
                    TopicOffsets {
                        topic: topic.topic.clone(),
                        partitions: topic
                            .partitions
                            .iter()
                            .map(|&p| {
                                found
                                    .get(&p)
                                    .map(|o| (*o).clone())
                                    .unwrap_or(PartitionOffset {
                                        partition: p,
                                        offset: -1,
                                        leader_epoch: -1,
                                        metadata: Some(String::new()),
                                        ..Default::default()
                                    })
                            })
                            .collect(),
                    }
                })
                .collect())
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
