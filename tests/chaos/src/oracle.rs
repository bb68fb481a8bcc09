//! Weir's own oracles, read after the run: the control plane's index of every
//! partition, and every object in the bucket with whether it is committed. Both go into
//! the history, where the checker compares them with what the clients saw.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use weir_control_plane::ControlPlaneClient;
use weir_control_plane::proto;

use crate::cluster::{GC_GRACE_MS, GC_INTERVAL_MS, TOKEN};
use crate::history::{BucketObject, HistoryWriter, IndexEntry, Op, Outcome};

/// Index entries asked for per call.
const MAX_BYTES_PER_READ: u64 = 64 * 1024 * 1024;

/// Logs one `Index` event per partition of `topic`.
pub async fn record_index(
    control_plane: &str,
    history: &HistoryWriter,
    topic: &str,
) -> anyhow::Result<()> {
    let mut client = ControlPlaneClient::connect(control_plane, Some(TOKEN))
        .await
        .context("connect to the control plane")?;
    let described = client
        .topics
        .describe_topics(proto::DescribeTopicsRequest {
            names: vec![topic.to_string()],
            ids: Vec::new(),
        })
        .await
        .context("describe the topic")?
        .into_inner();
    let Some(described) = described.results.into_iter().next().and_then(|r| r.topic) else {
        bail!("the control plane does not know topic {topic}");
    };
    for partition in 0..described.partitions {
        let mut entries = Vec::new();
        let mut from = 0;
        loop {
            let read = client
                .index
                .read_index(proto::ReadIndexRequest {
                    partitions: vec![proto::PartitionRead {
                        topic_id: described.id.clone(),
                        partition,
                        from_offset: from,
                        max_bytes: MAX_BYTES_PER_READ,
                    }],
                })
                .await
                .with_context(|| format!("read the index of partition {partition}"))?
                .into_inner();
            let Some(read) = read.partitions.into_iter().next() else {
                bail!("the index read of partition {partition} came back empty");
            };
            if read.error != proto::ErrorCode::None as i32 {
                bail!(
                    "the index read of partition {partition} failed: {}",
                    read.message
                );
            }
            let before = entries.len();
            for entry in read.entries {
                from = from.max(entry.base_offset + entry.record_count);
                entries.push(IndexEntry {
                    base_offset: entry.base_offset,
                    record_count: entry.record_count,
                    object: object_name(&entry.object_id)?,
                });
            }
            if from >= read.high_watermark || entries.len() == before {
                break;
            }
        }
        history.record(
            "oracle",
            Outcome::Ok,
            Op::Index {
                partition,
                log_start: None,
                high_watermark: None,
                entries,
            },
        );
    }
    Ok(())
}

fn object_name(id: &[u8]) -> anyhow::Result<String> {
    let bytes: [u8; 16] = id
        .try_into()
        .map_err(|_| anyhow::anyhow!("an object id of {} bytes", id.len()))?;
    Ok(ulid::Ulid::from_bytes(bytes).to_string())
}

/// Waits until garbage collection has had time to delete every orphan written before
/// now, then logs one `Bucket` event listing every object.
pub async fn record_bucket(
    control_plane: &str,
    bucket_dir: &Path,
    history: &HistoryWriter,
) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(GC_GRACE_MS + 3 * GC_INTERVAL_MS)).await;
    let data = bucket_dir.join("data");
    let mut found = Vec::new();
    let now = SystemTime::now();
    for entry in std::fs::read_dir(&data).with_context(|| format!("list {}", data.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".weir")
            .and_then(|id| ulid::Ulid::from_string(id).ok())
        else {
            continue;
        };
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .unwrap_or_default();
        found.push((id, age));
    }
    let mut client = ControlPlaneClient::connect(control_plane, Some(TOKEN))
        .await
        .context("connect to the control plane")?;
    let mut objects = Vec::new();
    for chunk in found.chunks(10_000) {
        let committed = client
            .index
            .check_objects(proto::CheckObjectsRequest {
                object_ids: chunk.iter().map(|(id, _)| id.to_bytes().to_vec()).collect(),
            })
            .await
            .context("ask which objects are committed")?
            .into_inner()
            .committed;
        if committed.len() != chunk.len() {
            bail!(
                "CheckObjects answered {} flags for {} objects",
                committed.len(),
                chunk.len()
            );
        }
        for ((id, age), referenced) in chunk.iter().zip(committed) {
            objects.push(BucketObject {
                object: id.to_string(),
                referenced,
                age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            });
        }
    }
    history.record(
        "oracle",
        Outcome::Ok,
        Op::Bucket {
            objects,
            gc_grace_ms: GC_GRACE_MS,
            gc_interval_ms: GC_INTERVAL_MS,
            settled: false,
        },
    );
    Ok(())
}
