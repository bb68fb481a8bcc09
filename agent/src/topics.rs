//! The agent's view of topics: names, ids and partition counts, read from the control
//! plane and kept for a few seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::records::Compression;
use parking_lot::RwLock;
use weir_control_plane::ControlPlaneClient;
use weir_control_plane::proto::{self, ErrorCode};
use weir_metadata::TopicId;

use crate::error::Result;

const FRESH_FOR: Duration = Duration::from_secs(5);

/// A topic as the agent uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: TopicId,
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

impl TopicInfo {
    pub fn from_message(topic: proto::Topic) -> Option<Self> {
        Some(TopicInfo {
            id: TopicId::from_slice(&topic.id).ok()?,
            name: topic.name,
            partitions: topic.partitions,
            configs: topic.configs.into_iter().collect(),
        })
    }

    pub fn has_partition(&self, partition: i32) -> bool {
        (0..self.partitions).contains(&partition)
    }

    /// A number config the topic sets. Values were validated when they were set; one
    /// that does not parse is taken as unset.
    fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.configs.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// What this topic's configs ask of the produce path; `max_message_bytes` is the
    /// agent's limit, for a topic that sets none.
    pub fn produce_rules(&self, max_message_bytes: usize) -> ProduceRules {
        let number = |name: &str| self.number::<i64>(name);
        let codec = self
            .configs
            .get("compression.type")
            .and_then(|v| crate::recompress::topic_codec(v));
        // Kafka's defaults: gzip's own (-1), lz4 9, zstd 3.
        let compression_level = match codec {
            Some(Compression::Gzip) => self
                .number::<i32>("compression.gzip.level")
                .filter(|&level| level > 0),
            Some(Compression::Lz4) => Some(self.number("compression.lz4.level").unwrap_or(9)),
            Some(Compression::Zstd) => Some(self.number("compression.zstd.level").unwrap_or(3)),
            _ => None,
        };
        ProduceRules {
            max_message_bytes: number("max.message.bytes")
                .and_then(|v: i64| usize::try_from(v).ok())
                .unwrap_or(max_message_bytes),
            log_append_time: self
                .configs
                .get("message.timestamp.type")
                .is_some_and(|v| v == "LogAppendTime"),
            before_max_ms: number("message.timestamp.before.max.ms").unwrap_or(i64::MAX),
            after_max_ms: number("message.timestamp.after.max.ms").unwrap_or(i64::MAX),
            compacted: self
                .configs
                .get("cleanup.policy")
                .is_some_and(|v| v.split(',').any(|p| p.trim() == "compact")),
            codec,
            compression_level,
            max_decompressed_record_bytes: number("max.decompressed.message.bytes")
                .and_then(|v: i64| usize::try_from(v).ok())
                .unwrap_or(DEFAULT_MAX_DECOMPRESSED_RECORD_BYTES),
        }
    }
}

/// A topic's configs as the produce path applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceRules {
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`: batches take the append time.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`: how far before the append time a CreateTime
    /// record's timestamp may be.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far after it.
    pub after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// `compression.type`: the codec batches are stored with; `None` keeps the
    /// producer's.
    pub codec: Option<Compression>,
    /// `compression.<codec>.level` of that codec, when it has levels and one applies.
    pub compression_level: Option<i32>,
    /// `max.decompressed.message.bytes`: the longest record a compressed batch may hold.
    pub max_decompressed_record_bytes: usize,
}

/// Kafka's default `max.decompressed.message.bytes`.
const DEFAULT_MAX_DECOMPRESSED_RECORD_BYTES: usize = 2_147_483_639;

impl ProduceRules {
    /// The record timestamps a CreateTime topic accepts at `now_ms`, or `None` when every
    /// timestamp is accepted (LogAppendTime topics replace them; both bounds unset).
    pub fn timestamp_bounds(&self, now_ms: i64) -> Option<(i64, i64)> {
        if self.log_append_time || (self.before_max_ms == i64::MAX && self.after_max_ms == i64::MAX)
        {
            return None;
        }
        Some((
            now_ms.saturating_sub(self.before_max_ms),
            now_ms.saturating_add(self.after_max_ms),
        ))
    }
}

#[derive(Debug)]
pub struct TopicCache {
    control: ControlPlaneClient,
    known: RwLock<Known>,
}

#[derive(Debug, Default)]
struct Known {
    by_name: HashMap<String, (Arc<TopicInfo>, Instant)>,
    by_id: HashMap<TopicId, (Arc<TopicInfo>, Instant)>,
}

impl TopicCache {
    pub fn new(control: ControlPlaneClient) -> Self {
        TopicCache {
            control,
            known: RwLock::new(Known::default()),
        }
    }

    pub fn remember(&self, topic: TopicInfo) -> Arc<TopicInfo> {
        let topic = Arc::new(topic);
        let now = Instant::now();
        let mut known = self.known.write();
        known
            .by_name
            .insert(topic.name.clone(), (topic.clone(), now));
        known.by_id.insert(topic.id, (topic.clone(), now));
        topic
    }

    pub fn forget(&self, topic: &TopicInfo) {
        let mut known = self.known.write();
        known.by_name.remove(&topic.name);
        known.by_id.remove(&topic.id);
    }

    fn fresh_name(&self, name: &str) -> Option<Arc<TopicInfo>> {
        let known = self.known.read();
        known
            .by_name
            .get(name)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(t, _)| t.clone())
    }

    fn fresh_id(&self, id: TopicId) -> Option<Arc<TopicInfo>> {
        let known = self.known.read();
        known
            .by_id
            .get(&id)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(t, _)| t.clone())
    }

    /// Topics by name; `None` for those that do not exist.
    pub async fn by_names(&self, names: &[String]) -> Result<Vec<Option<Arc<TopicInfo>>>> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.fresh_name(n).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.describe(missing, Vec::new()).await?;
        }
        Ok(names.iter().map(|n| self.fresh_name(n)).collect())
    }

    pub async fn by_name(&self, name: &str) -> Result<Option<Arc<TopicInfo>>> {
        Ok(self.by_names(&[name.to_string()]).await?.pop().flatten())
    }

    pub async fn by_id(&self, id: TopicId) -> Result<Option<Arc<TopicInfo>>> {
        if let Some(topic) = self.fresh_id(id) {
            return Ok(Some(topic));
        }
        self.describe(Vec::new(), vec![id.as_bytes().to_vec()])
            .await?;
        Ok(self.fresh_id(id))
    }

    async fn describe(&self, names: Vec<String>, ids: Vec<Vec<u8>>) -> Result<()> {
        let results = self
            .control
            .topics
            .clone()
            .describe_topics(proto::DescribeTopicsRequest { names, ids })
            .await?
            .into_inner()
            .results;
        for result in results {
            if result.error == ErrorCode::None as i32
                && let Some(topic) = result.topic.and_then(TopicInfo::from_message)
            {
                self.remember(topic);
            }
        }
        Ok(())
    }

    /// Every topic, freshly listed.
    pub async fn all(&self) -> Result<Vec<Arc<TopicInfo>>> {
        let topics = self
            .control
            .topics
            .clone()
            .list_topics(proto::ListTopicsRequest {})
            .await?
            .into_inner()
            .topics;
        Ok(topics
            .into_iter()
            .filter_map(TopicInfo::from_message)
            .map(|t| self.remember(t))
            .collect())
    }
}
