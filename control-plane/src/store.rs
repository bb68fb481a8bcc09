//! What every part of the control plane reads and writes through: the metadata
//! database, the cluster's keyspace and the clock.

use std::sync::Arc;

use weir_metadata::keyspace::{self, TopicRecord};
use weir_metadata::{Database, Keyspace, TopicId, Transaction};

use crate::clock::Clock;
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct Store {
    pub db: Database,
    pub ks: Keyspace,
    pub clock: Arc<dyn Clock>,
    /// How long a dereferenced object stays in the bucket before agents may delete it
    /// (docs/lifecycle.md, "the grace rule").
    pub delete_grace_ms: i64,
}

impl Store {
    pub fn new(db: Database, cluster: &str, clock: Arc<dyn Clock>) -> Self {
        Store {
            db,
            ks: Keyspace::new(cluster),
            clock,
            delete_grace_ms: 120_000,
        }
    }
}

/// Reads a topic by id within a transaction.
pub(crate) async fn topic_by_id(
    tx: &Transaction,
    ks: &Keyspace,
    id: TopicId,
) -> Result<Option<TopicRecord>> {
    let key = ks.topic(id);
    match tx.get(&key).await? {
        Some(value) => Ok(Some(keyspace::decode(&key, &value)?)),
        None => Ok(None),
    }
}

/// Reads a topic's id by name within a transaction.
pub(crate) async fn topic_id_by_name(
    tx: &Transaction,
    ks: &Keyspace,
    name: &str,
) -> Result<Option<TopicId>> {
    let key = ks.topic_name(name);
    match tx.get(&key).await? {
        Some(value) => Ok(Some(
            TopicId::from_slice(&value).map_err(|e| weir_metadata::Error::corrupt(&key, e))?,
        )),
        None => Ok(None),
    }
}
