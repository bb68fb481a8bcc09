//! Fetch: index reads from the control plane, bytes through the block cache, offsets
//! rewritten, within `max_bytes` / `partition_max_bytes`; a long poll waits for the
//! control plane's high-watermark push, not a timer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::time::Instant;
use uuid::Uuid;
use weir_control_plane_api::data::{PartitionIndex, PartitionRead, Refusal};

use weir_metadata::{Offset, Partition, TopicId};

use crate::batch;
use crate::context::Context;
use crate::topics::TopicInfo;

/// Index entries of one partition read at once: objects written 50–250 ms apart hold a
/// few batches each, so a cold read of a partition's backlog is many small GETs.
const ENTRIES_READ_AT_ONCE: usize = 16;

/// One requested partition, resolved.
struct Want {
    topic: usize,
    partition: Partition,
    fetch_offset: Offset,
    max_bytes: u64,
    resolved: Result<std::sync::Arc<TopicInfo>, ResponseError>,
}

pub async fn handle(ctx: &Context, version: i16, request: FetchRequest) -> FetchResponse {
    let by_id = version >= 13;
    let mut wants = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let resolved = if by_id {
            match ctx.topics.by_id(TopicId(topic.topic_id)).await {
                Ok(Some(info)) => Ok(info),
                Ok(None) => Err(ResponseError::UnknownTopicId),
                Err(_) => Err(ResponseError::NotLeaderOrFollower),
            }
        } else {
            match ctx.topics.by_name(topic.topic.0.as_str()).await {
                Ok(Some(info)) => Ok(info),
                Ok(None) => Err(ResponseError::UnknownTopicOrPartition),
                Err(_) => Err(ResponseError::NotLeaderOrFollower),
            }
        };
        for partition in &topic.partitions {
            let resolved = match &resolved {
                Ok(info) if !info.has_partition(Partition(partition.partition)) => {
                    Err(ResponseError::UnknownTopicOrPartition)
                }
                other => other.clone(),
            };
            wants.push(Want {
                topic: t,
                partition: Partition(partition.partition),
                fetch_offset: Offset(partition.fetch_offset),
                max_bytes: u64::try_from(partition.partition_max_bytes.max(1)).unwrap_or(1),
                resolved,
            });
        }
    }

    let max_bytes = u64::try_from(request.max_bytes.max(1)).unwrap_or(u64::MAX);
    let min_bytes = u64::try_from(request.min_bytes.max(0)).unwrap_or(0);
    let deadline = Instant::now()
        + Duration::from_millis(u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0));
    let mut resolved_again = false;
    let answers = loop {
        // Subscribe before reading, so a commit between the read and the wait wakes us.
        let mut advanced = ctx.watermarks.subscribe();
        let (answers, bytes, failed, missing) = fetch_once(ctx, &wants, max_bytes).await;
        if missing {
            // An entry named an object that is gone: compaction or retention replaced
            // or removed it after this agent read the entry. Resolve the offsets
            // again, once; an index that still names a missing object is real loss.
            if !resolved_again {
                resolved_again = true;
                continue;
            }
            ctx.missing_objects.inc();
            tracing::error!("the index names an object that is not in the bucket: data lost");
        }
        if bytes >= min_bytes.max(1) || failed || Instant::now() >= deadline {
            break answers;
        }
        if tokio::time::timeout_at(deadline, advanced.changed())
            .await
            .is_err()
        {
            // Waited the whole max_wait_ms: one last read picks up a commit at the wire.
            break fetch_once(ctx, &wants, max_bytes).await.0;
        }
    };

    let mut responses: Vec<FetchableTopicResponse> = request
        .topics
        .iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(if by_id {
                    Default::default()
                } else {
                    t.topic.clone()
                })
                .with_topic_id(if by_id { t.topic_id } else { Uuid::nil() })
        })
        .collect();
    for (want, answer) in wants.iter().zip(answers) {
        responses[want.topic].partitions.push(answer);
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every wanted partition once; returns the answers, the bytes read, whether
/// some partition failed (which ends a long poll at once, as Kafka does), and whether
/// some entry named an object missing from the bucket (its partition's cached entries
/// are then forgotten).
async fn fetch_once(
    ctx: &Context,
    wants: &[Want],
    max_bytes: u64,
) -> (Vec<PartitionData>, u64, bool, bool) {
    // What the index cache can answer needs no call; the rest is read in one call.
    let mut found: Vec<Option<Result<PartitionIndex, Refusal>>> = wants
        .iter()
        .map(|w| {
            let topic = w.resolved.as_ref().ok()?;
            ctx.index_cache
                .lookup(topic.id, w.partition, w.fetch_offset, w.max_bytes)
                .map(Ok)
        })
        .collect();
    let misses: Vec<usize> = (0..wants.len())
        .filter(|&i| found[i].is_none() && wants[i].resolved.is_ok())
        .collect();
    if !misses.is_empty() {
        let reads: Vec<PartitionRead> = misses
            .iter()
            .filter_map(|&i| {
                let w = &wants[i];
                let topic = w.resolved.as_ref().ok()?;
                Some(PartitionRead {
                    topic: topic.id,
                    partition: w.partition,
                    from: w.fetch_offset,
                    max_bytes: w.max_bytes,
                })
            })
            .collect();
        match ctx.control.read_index(&reads).await {
            Ok(answers) => {
                for (&i, read) in misses.iter().zip(answers) {
                    if let (Ok(topic), Ok(index)) = (&wants[i].resolved, &read) {
                        ctx.index_cache.store(topic.id, wants[i].partition, index);
                    }
                    found[i] = Some(read);
                }
            }
            Err(status) => {
                tracing::warn!(error = %status, "read index for fetch");
                let answers = wants
                    .iter()
                    .map(|w| {
                        empty(w.partition)
                            .with_error_code(ResponseError::NotLeaderOrFollower.code())
                    })
                    .collect();
                return (answers, 0, true, false);
            }
        }
    }
    let mut index = found.into_iter();

    let mut budget = max_bytes;
    let mut failed = false;
    let mut planned = Vec::with_capacity(wants.len());
    for want in wants {
        let error = match &want.resolved {
            Err(e) => Some(e.code()),
            Ok(_) => None,
        };
        let Some(found) = index.next().flatten().filter(|_| error.is_none()) else {
            failed = true;
            planned.push((
                want,
                None,
                error.unwrap_or(ResponseError::UnknownServerError.code()),
                Vec::new(),
            ));
            continue;
        };
        let found = match found {
            Ok(found) => found,
            Err(refused) => {
                failed = true;
                let code = crate::error::kafka_error(refused.code as i32).code();
                planned.push((want, None, code, Vec::new()));
                continue;
            }
        };
        // Entries until the partition's share of the budget is covered; the last may
        // run past it, and is cut to whole batches once read (`within_limits`).
        let limit = want.max_bytes.min(budget);
        let mut entries = Vec::new();
        let mut taken = 0;
        for entry in &found.entries {
            if taken >= limit && !(entries.is_empty() && budget == max_bytes) {
                break;
            }
            taken += entry.length;
            entries.push(entry.clone());
        }
        budget -= taken.min(limit);
        planned.push((want, Some(found), 0, entries));
    }

    let reads = planned
        .into_iter()
        .map(|(want, found, error, entries)| async move {
            let mut answer = empty(want.partition).with_error_code(error);
            if let Some(found) = &found {
                answer.high_watermark = found.high_watermark.0;
                answer.last_stable_offset = found.high_watermark.0;
                answer.log_start_offset = found.log_start_offset.0;
            }
            // Entries are read concurrently (each may be a different object, and a cold
            // one is a GET away) and answered in order, up to the first that fails.
            let mut records = BytesMut::new();
            let mut read = futures::stream::iter(entries.into_iter().map(|entry| {
                let reader = ctx.reader.clone();
                async move {
                    let mut batches = BytesMut::new();
                    reader
                        .read_entry(&entry, want.fetch_offset, &mut batches)
                        .await
                        .map(|()| batches)
                }
            }))
            .buffered(ENTRIES_READ_AT_ONCE);
            let mut missing = false;
            while let Some(batches) = read.next().await {
                match batches {
                    Ok(batches) => records.extend_from_slice(&batches),
                    Err(e) => {
                        if e.is_missing_object() {
                            missing = true;
                            if let Ok(topic) = &want.resolved {
                                ctx.index_cache.forget_entries(topic.id, want.partition);
                            }
                        }
                        tracing::warn!(error = %e, "read batches for fetch");
                        if records.is_empty() {
                            answer.error_code = ResponseError::KafkaStorageError.code();
                        }
                        break;
                    }
                }
            }
            answer.records = Some(records.freeze());
            (answer, missing)
        });
    let (mut answers, missing): (Vec<_>, Vec<_>) = join_all(reads).await.into_iter().unzip();
    let bytes = within_limits(&mut answers, wants, max_bytes);
    (answers, bytes, failed, missing.contains(&true))
}

/// Cuts each partition's records to whole batches within its `partition_max_bytes` and
/// what is left of the request's `max_bytes`, partitions in request order, as Kafka
/// does; the first batch of the first partition with records is kept whole however
/// large (KIP-74), so a consumer always makes progress. Returns the bytes kept.
fn within_limits(answers: &mut [PartitionData], wants: &[Want], max_bytes: u64) -> u64 {
    let mut left = max_bytes;
    let mut total = 0;
    for (answer, want) in answers.iter_mut().zip(wants) {
        let Some(records) = answer.records.as_mut() else {
            continue;
        };
        let limit = usize::try_from(want.max_bytes.min(left)).unwrap_or(usize::MAX);
        let keep = batch::whole_batches_within(records, limit, total == 0);
        records.truncate(keep);
        let keep = keep as u64;
        left = left.saturating_sub(keep);
        total += keep;
    }
    total
}

fn empty(partition: Partition) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition.0)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()))
}
