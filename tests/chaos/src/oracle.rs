//! Weir's own oracles, read after the run: the control plane's index of every
//! partition, every object in the bucket with whether it is committed, and each agent's
//! count of fetches that found an indexed object missing. They go into the history,
//! where the checker compares them with what the clients saw.
//!
//! The index and the bucket are read once the lifecycle has settled: every object
//! dereferenced by compaction, retention or DeleteRecords has had its deletion grace
//! and been deleted, and every orphan has been swept, so the bucket should hold exactly
//! the objects the index names (`leaked-objects`, `dangling-index-entries`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_control_plane::ControlPlaneClient;
use weir_control_plane_api::data::{ErrorCode, OffsetSpec, PartitionRead};
use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use crate::cluster::{GC_GRACE_MS, GC_INTERVAL_MS, TOKEN};
use crate::history::{BucketObject, HistoryWriter, IndexEntry, Op, Outcome};

/// One partition's index, from its log start.
#[derive(Debug, Clone)]
struct PartitionIndex {
    partition: i32,
    log_start: i64,
    high_watermark: i64,
    entries: Vec<IndexEntry>,
}

/// One object file in the bucket, with how long ago it was written.
#[derive(Debug, Clone)]
struct Stored {
    object: ObjectId,
    age: Duration,
}

/// What the lifecycle still has to do, as far as the bucket shows: the objects no
/// index entry names (pending deletion, or orphans not swept yet) and those named but
/// missing.
fn unsettled(index: &[PartitionIndex], bucket: &[Stored]) -> (usize, usize) {
    let named: BTreeSet<String> = index
        .iter()
        .flat_map(|p| p.entries.iter().map(|e| e.object.clone()))
        .collect();
    let stored: BTreeSet<String> = bucket.iter().map(|s| s.object.0.to_string()).collect();
    (
        stored.difference(&named).count(),
        named.difference(&stored).count(),
    )
}

/// How long to wait for the bucket to settle, at most, whatever happens.
const MAX_SETTLE: Duration = Duration::from_secs(600);

/// Waits until the bucket holds exactly the objects the index of `topic` names, or
/// `patience` has passed since the start or since the objects the index names last
/// changed (compaction may still be catching up when this starts, and every swap
/// dereferences objects for another grace period), then logs one `Index` event per
/// partition and one `Bucket` event (`settled`). Garbage collection's grace for orphans
/// is waited for in any case. Returns how long it waited and what was left unsettled
/// (objects not indexed, indexed objects missing).
pub async fn record_settled(
    control_plane: &str,
    bucket_dir: &Path,
    history: &HistoryWriter,
    topic: &str,
    patience: Duration,
) -> anyhow::Result<(Duration, (usize, usize))> {
    let started = Instant::now();
    let client = ControlPlaneClient::connect(control_plane, Some(TOKEN))
        .await
        .context("connect to the control plane")?;
    let id = topic_id(&client, topic).await?;
    let at_least = Duration::from_millis(GC_GRACE_MS + 3 * GC_INTERVAL_MS);
    let mut told = Instant::now();
    let mut named = BTreeSet::new();
    let mut changed = started;
    let (index, bucket, left) = loop {
        let index = read_index(&client, id.0, id.1).await?;
        let bucket = list_bucket(bucket_dir)?;
        let left = unsettled(&index, &bucket);
        let now_named: BTreeSet<String> = index
            .iter()
            .flat_map(|p| p.entries.iter().map(|e| e.object.clone()))
            .collect();
        if now_named != named {
            named = now_named;
            changed = Instant::now();
        }
        let waited = started.elapsed();
        let out_of_patience = changed.elapsed() >= patience || waited >= MAX_SETTLE;
        if (left == (0, 0) && waited >= at_least) || out_of_patience {
            break (index, bucket, left);
        }
        if told.elapsed() >= Duration::from_secs(15) {
            eprintln!(
                "weir-chaos: settling for {} s: {} objects in the bucket no index entry names, \
                 {} named ones missing",
                waited.as_secs(),
                left.0,
                left.1
            );
            told = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    for p in index {
        history.record(
            "oracle",
            Outcome::Ok,
            Op::Index {
                partition: p.partition,
                log_start: Some(p.log_start),
                high_watermark: Some(p.high_watermark),
                entries: p.entries,
            },
        );
    }
    let mut objects = Vec::new();
    for chunk in bucket.chunks(10_000) {
        let ids: Vec<ObjectId> = chunk.iter().map(|s| s.object).collect();
        let committed = client
            .check_objects(&ids)
            .await
            .context("ask which objects are committed")?;
        for (stored, referenced) in chunk.iter().zip(committed) {
            objects.push(BucketObject {
                object: stored.object.0.to_string(),
                referenced,
                age_ms: u64::try_from(stored.age.as_millis()).unwrap_or(u64::MAX),
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
            settled: true,
        },
    );
    Ok((started.elapsed(), left))
}

async fn topic_id(client: &ControlPlaneClient, topic: &str) -> anyhow::Result<(TopicId, i32)> {
    let described = client
        .describe_topics(vec![topic.to_string()], Vec::new())
        .await
        .context("describe the topic")?;
    let Some(described) = described.into_iter().next() else {
        bail!("the control plane does not know topic {topic}");
    };
    Ok((described.id, described.partitions))
}

/// Every partition's index from its log start to its high watermark.
async fn read_index(
    client: &ControlPlaneClient,
    topic: TopicId,
    partitions: i32,
) -> anyhow::Result<Vec<PartitionIndex>> {
    let mut read = Vec::new();
    for partition in 0..partitions {
        read.push(read_partition(client, topic, Partition(partition)).await?);
    }
    Ok(read)
}

async fn read_partition(
    client: &ControlPlaneClient,
    topic: TopicId,
    partition: Partition,
) -> anyhow::Result<PartitionIndex> {
    // The log start may move between the two calls (DeleteRecords, retention): read
    // again from the new one.
    for _ in 0..10 {
        let earliest = client
            .list_offset(topic, partition, OffsetSpec::Earliest)
            .await
            .with_context(|| format!("ask for partition {}'s log start", partition.0))?
            .map_err(|refusal| {
                anyhow::anyhow!(
                    "the log start of partition {} was refused: {}",
                    partition.0,
                    refusal.message
                )
            })?;
        let log_start = earliest.offset.unwrap_or(Offset(0));
        let mut entries = Vec::new();
        let mut from = log_start;
        let high = loop {
            let answer = client
                .read_index(&[PartitionRead {
                    topic,
                    partition,
                    from,
                    max_bytes: u64::MAX / 2,
                }])
                .await
                .with_context(|| format!("read the index of partition {}", partition.0))?
                .into_iter()
                .next()
                .context("the index read came back empty")?;
            let index = match answer {
                Ok(index) => index,
                Err(refusal) if refusal.code == ErrorCode::OffsetOutOfRange => break None,
                Err(refusal) => bail!(
                    "the index read of partition {} failed: {}",
                    partition.0,
                    refusal.message
                ),
            };
            let before = entries.len();
            for entry in index.entries {
                from = from.max(entry.end());
                entries.push(IndexEntry {
                    base_offset: entry.base_offset.0,
                    record_count: entry.record_count,
                    object: entry.object.0.to_string(),
                });
            }
            if from >= index.high_watermark || entries.len() == before {
                break Some(index.high_watermark);
            }
        };
        if let Some(high) = high {
            return Ok(PartitionIndex {
                partition: partition.0,
                log_start: log_start.0,
                high_watermark: high.0,
                entries,
            });
        }
    }
    bail!(
        "partition {}'s log start kept moving while its index was read",
        partition.0
    )
}

/// The objects in the bucket's directory (`data/<ULID>.weir`, as the S3 server keeps
/// them), each with its age.
fn list_bucket(bucket_dir: &Path) -> anyhow::Result<Vec<Stored>> {
    let data = bucket_dir.join("data");
    let now = SystemTime::now();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&data).with_context(|| format!("list {}", data.display()))? {
        let Ok(entry) = entry else {
            continue; // deleted while listed
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".weir")
            .and_then(|id| ulid::Ulid::from_string(id).ok())
        else {
            continue;
        };
        let Ok(metadata) = entry.metadata() else {
            continue; // deleted while listed
        };
        let age = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .unwrap_or_default();
        found.push(Stored {
            object: ObjectId(id),
            age,
        });
    }
    Ok(found)
}

/// Logs one `MissingObjects` event per agent: its `weir_fetch_missing_objects_total`,
/// read from `/metrics` on its HTTP port, and the lines its log holds for such fetches.
pub async fn record_missing_objects(
    history: &HistoryWriter,
    agents: &[(String, std::net::SocketAddr, PathBuf)],
) -> anyhow::Result<()> {
    for (agent, http, log) in agents {
        let counted = match scrape(*http).await {
            Ok(metrics) => counter(&metrics, "weir_fetch_missing_objects_total"),
            Err(e) => {
                eprintln!("weir-chaos: read {agent}'s metrics: {e:#}");
                None
            }
        };
        let logged = std::fs::read_to_string(log)
            .with_context(|| format!("read {}", log.display()))?
            .lines()
            .filter(|line| line.contains(MISSING_OBJECT_LOG))
            .count() as u64;
        history.record(
            "oracle",
            Outcome::Ok,
            Op::MissingObjects {
                agent: agent.clone(),
                counted,
                logged,
            },
        );
    }
    Ok(())
}

/// What an agent logs when a fetch, having resolved its offsets again, still finds the
/// index naming an object the bucket lacks (agent/src/handlers/fetch.rs).
const MISSING_OBJECT_LOG: &str = "the index names an object that is not in the bucket";

/// GET /metrics over plain HTTP/1.0: the body.
async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .context("no answer in 10 s")??;
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        bail!("not an HTTP answer");
    };
    if !head.starts_with("HTTP/1.") || !head.lines().next().is_some_and(|l| l.contains(" 200")) {
        bail!("answered {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// The sum of a counter's samples (every label set) in Prometheus text, if it is there.
fn counter(metrics: &str, name: &str) -> Option<u64> {
    let mut found = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        *found.get_or_insert(0) += value as u64;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_is_summed_over_its_labels() {
        let metrics = "# HELP weir_fetch_missing_objects Fetches …\n\
                       # TYPE weir_fetch_missing_objects counter\n\
                       weir_fetch_missing_objects_total 2\n\
                       weir_fetch_missing_objects_totally_else 9\n\
                       weir_jobs_run_total{kind=\"compaction\",outcome=\"ok\"} 3\n\
                       weir_jobs_run_total{kind=\"deletion\",outcome=\"ok\"} 4\n\
                       # EOF\n";
        assert_eq!(
            counter(metrics, "weir_fetch_missing_objects_total"),
            Some(2)
        );
        assert_eq!(counter(metrics, "weir_jobs_run_total"), Some(7));
        assert_eq!(counter(metrics, "weir_absent_total"), None);
    }

    #[test]
    fn unsettled_counts_both_directions() {
        let id = |n: u128| ObjectId(ulid::Ulid(n));
        let entry = |object: ObjectId| IndexEntry {
            base_offset: 0,
            record_count: 1,
            object: object.0.to_string(),
        };
        let index = [PartitionIndex {
            partition: 0,
            log_start: 0,
            high_watermark: 2,
            entries: vec![entry(id(1)), entry(id(2))],
        }];
        let stored = |object| Stored {
            object,
            age: Duration::ZERO,
        };
        assert_eq!(unsettled(&index, &[stored(id(1)), stored(id(2))]), (0, 0));
        assert_eq!(unsettled(&index, &[stored(id(1)), stored(id(3))]), (1, 1));
    }
}
