//! A topic's configs as the produce path applies them, as Kafka's log validator does
//! (docs/topic-configs.md): the largest batch, the timestamp bounds, keys in a compacted
//! topic, the longest inflated record, the topic's codec and LogAppendTime. A
//! partition's batches are taken or refused together.

use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Compression;

use crate::batch::{self, BatchError, ValidBatch};
use crate::recompress;
use crate::topics::TopicInfo;

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

/// Why a partition's batches were refused: a Kafka error, its message, and the records
/// at fault by index in their batch (KIP-467's `record_errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

impl Refusal {
    fn new(code: i16, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            record_errors: Vec::new(),
        }
    }

    fn from_batch(e: &BatchError) -> Self {
        Refusal::new(e.kafka_error_code(), e.to_string())
    }

    /// A refusal naming `records` (index in batch, what is wrong), or `None` when there
    /// are none.
    fn of_records(
        error: ResponseError,
        message: impl Into<String>,
        records: impl Iterator<Item = (usize, String)>,
    ) -> Option<Self> {
        let record_errors: Vec<(i32, String)> = records
            .map(|(i, why)| (i32::try_from(i).unwrap_or(i32::MAX), why))
            .collect();
        (!record_errors.is_empty()).then(|| Refusal {
            record_errors,
            ..Refusal::new(error.code(), message)
        })
    }
}

/// A number config the topic sets. Values were validated when they were set; one that
/// does not parse is taken as unset.
fn number_of<T: std::str::FromStr>(topic: &TopicInfo, name: &str) -> Option<T> {
    topic.configs.get(name).and_then(|v| v.trim().parse().ok())
}

impl ProduceRules {
    /// What `topic`'s configs ask of the produce path; `max_message_bytes` is the
    /// agent's limit, for a topic that sets none.
    pub fn of(topic: &TopicInfo, max_message_bytes: usize) -> ProduceRules {
        let number = |name: &str| number_of::<i64>(topic, name);
        let codec = topic
            .configs
            .get("compression.type")
            .and_then(|v| crate::recompress::topic_codec(v));
        // Kafka's defaults: gzip's own (-1), lz4 9, zstd 3.
        let compression_level = match codec {
            Some(Compression::Gzip) => {
                number_of::<i32>(topic, "compression.gzip.level").filter(|&level| level > 0)
            }
            Some(Compression::Lz4) => Some(number_of(topic, "compression.lz4.level").unwrap_or(9)),
            Some(Compression::Zstd) => {
                Some(number_of(topic, "compression.zstd.level").unwrap_or(3))
            }
            _ => None,
        };
        ProduceRules {
            max_message_bytes: number("max.message.bytes")
                .and_then(|v: i64| usize::try_from(v).ok())
                .unwrap_or(max_message_bytes),
            log_append_time: topic
                .configs
                .get("message.timestamp.type")
                .is_some_and(|v| v == "LogAppendTime"),
            before_max_ms: number("message.timestamp.before.max.ms").unwrap_or(i64::MAX),
            after_max_ms: number("message.timestamp.after.max.ms").unwrap_or(i64::MAX),
            compacted: topic
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

    /// `batches` (split and checked already) as partition `index` of `topic` stores
    /// them, appended at `now_ms`, or why the partition is refused.
    pub fn apply(
        &self,
        batches: Vec<ValidBatch>,
        now_ms: i64,
        topic: &str,
        index: i32,
    ) -> Result<Vec<ValidBatch>, Refusal> {
        if let Some((earliest, latest)) = self.timestamp_bounds(now_ms) {
            let outside = batches
                .iter()
                .flat_map(|b| batch::records_outside(b, earliest, latest));
            let why = outside.map(|(i, ts)| {
                (i, format!(
                    "Timestamp {ts} of record {i} is out of range. The timestamp should be within [{earliest}, {latest}]"
                ))
            });
            if let Some(refusal) = Refusal::of_records(
                ResponseError::InvalidTimestamp,
                "One or more records have been rejected due to invalid timestamp",
                why,
            ) {
                return Err(refusal);
            }
        }
        if self.compacted {
            let keyless = batches.iter().flat_map(batch::keyless_records).map(|i| {
                (i, format!("Compacted topic cannot accept message without key in topic partition {topic}-{index}."))
            });
            if let Some(refusal) = Refusal::of_records(
                ResponseError::InvalidRecord,
                format!(
                    "One or more records have been rejected: topic {topic} is compacted (cleanup.policy=compact) and every record needs a key"
                ),
                keyless,
            ) {
                return Err(refusal);
            }
        }
        let mut stored = Vec::with_capacity(batches.len());
        for batch in batches {
            let compressed = batch.header.compression() != Some(Compression::None);
            if compressed && batch.largest_record > self.max_decompressed_record_bytes {
                return Err(Refusal::new(
                    ResponseError::InvalidRecord.code(),
                    format!(
                        "a compressed record of {} bytes decompressed is over the topic's \
                         max.decompressed.message.bytes of {}",
                        batch.largest_record, self.max_decompressed_record_bytes
                    ),
                ));
            }
            let batch = match self.codec {
                Some(codec) => recompress::to_codec(batch, codec, self.compression_level)
                    .map_err(|e| Refusal::from_batch(&e))?,
                None => batch,
            };
            if batch.bytes.len() > self.max_message_bytes {
                return Err(Refusal::from_batch(&BatchError::TooLarge {
                    size: batch.bytes.len(),
                    max: self.max_message_bytes,
                }));
            }
            stored.push(if self.log_append_time {
                batch::with_log_append_time(&batch, now_ms)
            } else {
                batch
            });
        }
        Ok(stored)
    }
}
