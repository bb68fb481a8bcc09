//! The agent registry: agents register, heartbeat, and are listed while alive.

use std::time::Duration;

use weir_metadata::AgentId;
use weir_metadata::keyspace::{self, AgentRecord};

use crate::error::{Error, Result};
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// How often agents are told to heartbeat.
    pub heartbeat_interval: Duration,
    /// An agent not heard from for this long is no longer listed.
    pub session_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            heartbeat_interval: Duration::from_secs(3),
            session_timeout: Duration::from_secs(15),
        }
    }
}

/// A live agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInfo {
    pub id: AgentId,
    pub address: String,
    pub zone: String,
    pub heartbeat_ms: i64,
    pub version: String,
}

impl AgentInfo {
    fn from_record(record: AgentRecord, key: &[u8]) -> Result<Self> {
        Ok(AgentInfo {
            id: AgentId::from_slice(&record.id)
                .map_err(|e| weir_metadata::Error::corrupt(key, e))?,
            address: record.address,
            zone: record.zone,
            heartbeat_ms: record.heartbeat_ms,
            version: record.version,
        })
    }
}

fn timeout_ms(config: &RegistryConfig) -> i64 {
    i64::try_from(config.session_timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Registers an agent under a new id.
pub async fn register(store: &Store, address: &str, zone: &str, version: &str) -> Result<AgentId> {
    if address.is_empty() || !address.contains(':') {
        return Err(Error::InvalidRequest(format!(
            "agent address {address:?} must be host:port"
        )));
    }
    let id = AgentId::new();
    let now = store.clock.now_ms();
    let record = AgentRecord {
        id: id.to_bytes().to_vec(),
        address: address.to_string(),
        zone: zone.to_string(),
        registered_ms: now,
        heartbeat_ms: now,
        version: version.to_string(),
    };
    store
        .db
        .run(|tx| {
            let record = &record;
            async move {
                tx.set(&store.ks.agent(id), &keyspace::encode(record));
                Ok::<_, Error>(())
            }
        })
        .await?;
    Ok(id)
}

/// Records a heartbeat; `false` if the agent is unknown (expired and removed), in which
/// case it must register again.
pub async fn heartbeat(store: &Store, id: AgentId) -> Result<bool> {
    store
        .db
        .run(|tx| async move {
            let key = store.ks.agent(id);
            let Some(value) = tx.get(&key).await? else {
                return Ok(false);
            };
            let mut record: AgentRecord = keyspace::decode(&key, &value)?;
            record.heartbeat_ms = store.clock.now_ms();
            tx.set(&key, &keyspace::encode(&record));
            Ok(true)
        })
        .await
}

/// The agents heard from within the session timeout, in `zone` (or all), by address.
pub async fn list(
    store: &Store,
    config: &RegistryConfig,
    zone: Option<&str>,
) -> Result<Vec<AgentInfo>> {
    let now = store.clock.now_ms();
    let timeout = timeout_ms(config);
    let mut agents = store
        .db
        .run(|tx| async move {
            let kvs = tx.snapshot_get_range(&store.ks.agents()).await?;
            let mut agents = Vec::new();
            for kv in kvs {
                let record: AgentRecord = keyspace::decode(&kv.key, &kv.value)?;
                let alive = now - record.heartbeat_ms < timeout;
                if alive && zone.is_none_or(|z| z == record.zone) {
                    agents.push(AgentInfo::from_record(record, &kv.key)?);
                }
            }
            Ok::<_, Error>(agents)
        })
        .await?;
    agents.sort_by(|a, b| a.address.cmp(&b.address).then(a.id.cmp(&b.id)));
    Ok(agents)
}

/// Removes agents silent for ten session timeouts; returns how many.
pub async fn prune(store: &Store, config: &RegistryConfig) -> Result<usize> {
    let cutoff = store.clock.now_ms() - timeout_ms(config).saturating_mul(10);
    store
        .db
        .run(|tx| async move {
            let mut removed = 0;
            for kv in tx.get_range(&store.ks.agents()).await? {
                let record: AgentRecord = keyspace::decode(&kv.key, &kv.value)?;
                if record.heartbeat_ms < cutoff {
                    tx.clear(&kv.key);
                    removed += 1;
                }
            }
            Ok::<_, Error>(removed)
        })
        .await
}
