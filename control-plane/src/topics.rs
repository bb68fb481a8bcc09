//! Topic administration: create, delete, list, describe, add partitions, alter configs.
//!
//! Partition state is created lazily by the first commit to a partition, so creating a
//! topic costs two keys however many partitions it has.

use std::collections::BTreeMap;

use weir_metadata::keyspace::{self, TopicRecord};
use weir_metadata::{Error as MetadataError, TopicId};

use crate::error::{Error, ItemError, Result};
use crate::proto::ErrorCode;
use crate::store::{Store, topic_by_id, topic_id_by_name};
use crate::topic_config;
use weir_control_plane_api::names;

/// Kafka's limit on a topic name's length.
pub use weir_control_plane_api::names::MAX_TOPIC_NAME_LEN;
/// The most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 100_000;

/// A topic as the control plane describes it: the API's, which agents use too.
pub use weir_control_plane_api::admin::Topic;

fn topic_from_record(record: TopicRecord, key: &[u8]) -> Result<Topic> {
    Ok(Topic {
        id: TopicId::from_slice(&record.id).map_err(|e| MetadataError::corrupt(key, e))?,
        name: record.name,
        partitions: record.partitions,
        configs: record.configs.into_iter().collect(),
    })
}

/// What to create.
#[derive(Clone, Debug, Default)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// How a topic is named in a request: by name or by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(TopicId),
}

impl std::fmt::Display for TopicRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRef::Name(name) => f.write_str(name),
            TopicRef::Id(id) => write!(f, "topic id {id}"),
        }
    }
}

pub type TopicOutcome = Result<Topic, ItemError>;

/// Checks a topic name by Kafka's rules.
pub fn validate_name(name: &str) -> Result<(), ItemError> {
    names::check_topic_name(name).map_err(|why| ItemError::new(ErrorCode::InvalidTopicName, why))
}

fn validate_spec(spec: &TopicSpec) -> Result<(), ItemError> {
    validate_name(&spec.name)?;
    if !(1..=MAX_PARTITIONS).contains(&spec.partitions) {
        return Err(ItemError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "Number of partitions must be between 1 and {MAX_PARTITIONS}, got {}",
                spec.partitions
            ),
        ));
    }
    for (name, value) in &spec.configs {
        topic_config::validate(name, value)
            .map_err(|message| ItemError::new(ErrorCode::InvalidConfig, message))?;
    }
    Ok(())
}

/// Creates each topic in its own transaction; one topic's failure leaves the others.
pub async fn create_topics(
    store: &Store,
    specs: Vec<TopicSpec>,
    validate_only: bool,
) -> Result<Vec<(String, TopicOutcome)>> {
    let mut results = Vec::with_capacity(specs.len());
    for spec in specs {
        let outcome = match validate_spec(&spec) {
            Err(e) => Err(e),
            Ok(()) => create_topic(store, &spec, validate_only).await?,
        };
        results.push((spec.name, outcome));
    }
    Ok(results)
}

async fn create_topic(
    store: &Store,
    spec: &TopicSpec,
    validate_only: bool,
) -> Result<TopicOutcome> {
    let ks = &store.ks;
    // Chosen outside the retry loop, so a retry after an unknown result finds its own
    // first attempt rather than reporting the topic as someone else's.
    let id = TopicId::random();
    let created_ms = store.clock.now_ms();
    store
        .db
        .run(|tx| async move {
            if let Some(existing) = topic_id_by_name(&tx, ks, &spec.name).await? {
                if existing == id {
                    return Ok(Ok(described(&tx, store, id).await?));
                }
                return Ok(Err(ItemError::new(
                    ErrorCode::TopicAlreadyExists,
                    format!("Topic '{}' already exists.", spec.name),
                )));
            }
            let record = TopicRecord {
                id: id.as_bytes().to_vec(),
                name: spec.name.clone(),
                partitions: spec.partitions,
                configs: spec.configs.clone().into_iter().collect(),
                created_ms,
            };
            let topic = topic_from_record(record.clone(), &ks.topic(id))?;
            if !validate_only {
                tx.set(&ks.topic_name(&spec.name), id.as_bytes());
                tx.set(&ks.topic(id), &keyspace::encode(&record));
            }
            Ok(Ok(topic))
        })
        .await
}

async fn described(tx: &weir_metadata::Transaction, store: &Store, id: TopicId) -> Result<Topic> {
    let key = store.ks.topic(id);
    let record = topic_by_id(tx, &store.ks, id)
        .await?
        .ok_or_else(|| MetadataError::corrupt(&key, "topic name points at a missing topic"))?;
    topic_from_record(record, &key)
}

async fn resolve(
    tx: &weir_metadata::Transaction,
    store: &Store,
    topic: &TopicRef,
) -> Result<TopicOutcome> {
    let id = match topic {
        TopicRef::Name(name) => topic_id_by_name(tx, &store.ks, name).await?,
        TopicRef::Id(id) => Some(*id),
    };
    let record = match id {
        Some(id) => topic_by_id(tx, &store.ks, id).await?.map(|r| (id, r)),
        None => None,
    };
    match record {
        Some((id, record)) => Ok(Ok(topic_from_record(record, &store.ks.topic(id))?)),
        None => Ok(Err(ItemError::new(
            ErrorCode::UnknownTopic,
            format!("This server does not host this topic: {topic}"),
        ))),
    }
}

/// Describes topics by name or id.
pub async fn describe_topics(store: &Store, topics: &[TopicRef]) -> Result<Vec<TopicOutcome>> {
    store
        .db
        .run(|tx| async move {
            let mut results = Vec::with_capacity(topics.len());
            for topic in topics {
                results.push(resolve(&tx, store, topic).await?);
            }
            Ok(results)
        })
        .await
}

/// Every topic, by name.
pub async fn list_topics(store: &Store) -> Result<Vec<Topic>> {
    store
        .db
        .run(|tx| async move {
            let kvs = tx.snapshot_get_range(&store.ks.topics()).await?;
            kvs.iter()
                .map(|kv| {
                    let record: TopicRecord = keyspace::decode(&kv.key, &kv.value)?;
                    topic_from_record(record, &kv.key)
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map(|mut topics| {
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            topics
        })
}

/// Deletes topics: from the transaction that removes a topic's name and record on,
/// nothing can be written to it or read from it, and a topic created under its name is
/// another topic. Its `deleted_topic` marker tells the lifecycle task to clear the rest
/// (index, partitions, producer states, committed offsets) and release its objects.
pub async fn delete_topics(store: &Store, topics: &[TopicRef]) -> Result<Vec<TopicOutcome>> {
    let mut results = Vec::with_capacity(topics.len());
    for topic in topics {
        let outcome = store
            .db
            .run(|tx| async move {
                let found = resolve(&tx, store, topic).await?;
                if let Ok(topic) = &found {
                    let ks = &store.ks;
                    let key = ks.topic(topic.id);
                    if let Some(record) = tx.get(&key).await? {
                        tx.set(&ks.deleted_topic(topic.id), &record);
                    }
                    tx.clear(&ks.topic_name(&topic.name));
                    tx.clear(&key);
                }
                Ok::<_, Error>(found)
            })
            .await?;
        results.push(outcome);
    }
    Ok(results)
}

/// Raises topics' partition counts; a count can only grow.
pub async fn create_partitions(
    store: &Store,
    increases: &[(String, i32)],
    validate_only: bool,
) -> Result<Vec<TopicOutcome>> {
    let mut results = Vec::with_capacity(increases.len());
    for (name, total) in increases {
        let outcome = store
            .db
            .run(|tx| async move {
                let mut topic = match resolve(&tx, store, &TopicRef::Name(name.clone())).await? {
                    Ok(topic) => topic,
                    Err(e) => return Ok::<_, Error>(Err(e)),
                };
                if *total == topic.partitions {
                    return Ok(Err(ItemError::new(
                        ErrorCode::InvalidPartitions,
                        format!("Topic already has {total} partitions."),
                    )));
                }
                if *total < topic.partitions {
                    return Ok(Err(ItemError::new(
                        ErrorCode::InvalidPartitions,
                        format!(
                            "Topic currently has {} partitions, which is higher than the requested {total}.",
                            topic.partitions
                        ),
                    )));
                }
                if *total > MAX_PARTITIONS {
                    return Ok(Err(ItemError::new(
                        ErrorCode::InvalidPartitions,
                        format!("Number of partitions must be at most {MAX_PARTITIONS}, got {total}"),
                    )));
                }
                topic.partitions = *total;
                if !validate_only {
                    let key = store.ks.topic(topic.id);
                    let mut record: TopicRecord = match tx.get(&key).await? {
                        Some(v) => keyspace::decode(&key, &v)?,
                        None => return Ok(Err(ItemError::new(ErrorCode::UnknownTopic, name.clone()))),
                    };
                    record.partitions = *total;
                    tx.set(&key, &keyspace::encode(&record));
                }
                Ok(Ok(topic))
            })
            .await?;
        results.push(outcome);
    }
    Ok(results)
}

/// One topic's config changes.
#[derive(Clone, Debug)]
pub struct ConfigChanges {
    pub name: String,
    pub changes: Vec<(String, topic_config::ConfigOp)>,
    /// Kafka's AlterConfigs: the set configs become the whole set.
    pub replace: bool,
}

/// Alters topics' configs, each topic in its own transaction: all of its changes or none.
pub async fn alter_configs(
    store: &Store,
    topics: &[ConfigChanges],
    validate_only: bool,
) -> Result<Vec<TopicOutcome>> {
    let mut results = Vec::with_capacity(topics.len());
    for topic in topics {
        let outcome = store
            .db
            .run(|tx| async move {
                let Some(id) = topic_id_by_name(&tx, &store.ks, &topic.name).await? else {
                    return Ok::<_, Error>(Err(ItemError::new(
                        ErrorCode::UnknownTopic,
                        format!("Topic {} does not exist", topic.name),
                    )));
                };
                let key = store.ks.topic(id);
                let Some(mut record) = topic_by_id(&tx, &store.ks, id).await? else {
                    return Err(MetadataError::corrupt(
                        &key,
                        "topic name points at a missing topic",
                    )
                    .into());
                };
                let current: BTreeMap<String, String> =
                    record.configs.clone().into_iter().collect();
                let configs =
                    match topic_config::apply_changes(&current, &topic.changes, topic.replace) {
                        Ok(configs) => configs,
                        Err(e) => {
                            let code = if e.malformed {
                                ErrorCode::InvalidRequest
                            } else {
                                ErrorCode::InvalidConfig
                            };
                            return Ok(Err(ItemError::new(code, e.message)));
                        }
                    };
                record.configs = configs.into_iter().collect();
                if !validate_only {
                    tx.set(&key, &keyspace::encode(&record));
                }
                Ok(Ok(topic_from_record(record, &key)?))
            })
            .await?;
        results.push(outcome);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        for good in ["orders", "a.b_c-D9", &"x".repeat(249)] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            "ünï",
            &"x".repeat(250),
        ] {
            let err = validate_name(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidTopicName);
        }
    }
}
