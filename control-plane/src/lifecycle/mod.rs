//! The data lifecycle (docs/lifecycle.md): index entries and the objects they name,
//! retention and DeleteRecords, deleted topics, compaction jobs and the deletion of
//! dereferenced objects.
//!
//! The lease holder runs one background task for the work that must happen in one
//! place: a retention pass every `retention_interval`, and every `tick` the clearing of
//! deleted topics, the planning of compaction jobs and the backlog gauges. Agents do
//! the bucket work through the `Jobs` service.

pub mod compaction;
pub mod deletion;
pub(crate) mod entries;
pub mod retention;
pub mod topics;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use weir_metadata::keyspace::{self, PartitionRecord};
use weir_metadata::{Offset, Partition, TopicId, decode_counter};

use crate::error::Result;
use crate::lease::Lease;
use crate::metrics::LifecycleMetrics;
use crate::store::Store;
use crate::watch::{Advance, WatermarkHub};
pub use compaction::CompactionConfig;
use retention::{RetentionPolicy, Trim, Trimmed};

/// Transactions one partition gets in one retention pass, at most, so a partition far
/// behind does not hold up the others; the next pass carries on.
const TRANSACTIONS_PER_PARTITION: usize = 10;

#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// Time between retention passes.
    pub retention_interval: Duration,
    /// Time between the rounds of planning, deleted-topic clearing and gauges.
    pub tick: Duration,
    /// How long a dereferenced object stays in the bucket (the grace rule:
    /// docs/lifecycle.md).
    pub delete_grace: Duration,
    /// How long an agent's claim on a deletion lasts.
    pub deletion_claim: Duration,
    pub compaction: CompactionConfig,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            retention_interval: Duration::from_secs(30),
            tick: Duration::from_secs(1),
            delete_grace: Duration::from_secs(120),
            deletion_claim: Duration::from_secs(60),
            compaction: CompactionConfig::default(),
        }
    }
}

/// What a retention pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub partitions: u64,
    pub entries: u64,
    pub bytes: u64,
    pub dereferenced: u64,
}

/// A cloneable front to the lifecycle: what the service and the background task share.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    store: Store,
    lease: Lease,
    hub: WatermarkHub,
    pub(crate) metrics: LifecycleMetrics,
    pub(crate) config: LifecycleConfig,
    nudged: Arc<Notify>,
    /// Level-0 candidates at the last count: what produce throttling follows.
    level0_backlog: Arc<AtomicI64>,
}

impl Lifecycle {
    pub fn new(
        store: Store,
        lease: Lease,
        hub: WatermarkHub,
        metrics: LifecycleMetrics,
        config: LifecycleConfig,
    ) -> Self {
        Lifecycle {
            store,
            lease,
            hub,
            metrics,
            config,
            nudged: Arc::new(Notify::new()),
            level0_backlog: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Asks the background task for a round now (a topic was deleted).
    pub fn nudge(&self) {
        self.nudged.notify_one();
    }

    /// What produce should do while compaction is behind: a delay for each answer, and
    /// whether to refuse new produce.
    pub fn throttle(&self) -> (Duration, bool) {
        let backlog = u64::try_from(self.level0_backlog.load(Ordering::Relaxed)).unwrap_or(0);
        let config = &self.config.compaction;
        if backlog >= config.backlog_hard {
            return (Duration::from_secs(1), true);
        }
        if backlog <= config.backlog_soft {
            return (Duration::ZERO, false);
        }
        // From nothing at the soft bound to a second at the hard one.
        let span = (config.backlog_hard - config.backlog_soft).max(1);
        let ms = (backlog - config.backlog_soft) * 1000 / span;
        (Duration::from_millis(ms), false)
    }

    /// Publishes partitions' new bounds to the agents' watches.
    pub(crate) fn publish(&self, advances: Vec<Advance>) {
        self.hub.publish(advances);
    }

    /// Starts the background task; it works only while this instance holds the lease.
    pub fn spawn(self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // The first of each one period after start.
            let every = |period: Duration| {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            };
            let mut tick = every(self.config.tick);
            let mut retention = every(self.config.retention_interval);
            loop {
                let pass = tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.nudged.notified() => false,
                    _ = tick.tick() => false,
                    _ = retention.tick() => true,
                };
                if !self.lease.holds() {
                    continue;
                }
                if let Err(e) = self.round().await {
                    tracing::warn!(error = %e, "lifecycle round");
                }
                if pass && let Err(e) = self.retention_pass().await {
                    tracing::warn!(error = %e, "retention pass");
                }
            }
        })
    }

    /// One round: clear deleted topics, plan compaction jobs, update the gauges.
    pub async fn round(&self) -> Result<()> {
        for topic in topics::deleted_topics(&self.store).await? {
            let cleared = topics::clear_deleted_topic(&self.store, topic).await?;
            self.metrics.retention_entries.inc_by(cleared.entries);
            self.metrics.dereferenced.inc_by(cleared.dereferenced);
            tracing::info!(%topic, entries = cleared.entries, objects_released = cleared.dereferenced, offsets = cleared.offsets, "cleared a deleted topic");
        }
        for level in 0..compaction::TOP_LEVEL {
            while let Some(job) =
                compaction::plan(&self.store, &self.config.compaction, level).await?
            {
                tracing::debug!(%job, level, "planned a compaction job");
            }
        }
        for (level, objects, bytes, oldest_ms) in compaction::backlog(&self.store).await? {
            self.metrics.backlog(level, objects, bytes, oldest_ms);
            if level == 0 {
                self.level0_backlog.store(objects, Ordering::Relaxed);
            }
        }
        let store = &self.store;
        let (entries, pending) = store
            .db
            .run(|tx| async move {
                let count = |name: &'static str| {
                    let tx = tx.clone();
                    async move {
                        Ok::<_, crate::Error>(
                            tx.snapshot_get(&store.ks.count(name))
                                .await?
                                .map_or(0, |v| decode_counter(&v)),
                        )
                    }
                };
                Ok::<_, crate::Error>((
                    count(entries::INDEX_ENTRIES).await?,
                    count(entries::DELETIONS_PENDING).await?,
                ))
            })
            .await?;
        self.metrics.index_entries.set(entries);
        self.metrics.pending_deletions.set(pending);
        Ok(())
    }

    /// One retention pass over every topic.
    pub async fn retention_pass(&self) -> Result<PassReport> {
        let mut report = PassReport::default();
        for topic in crate::topics::list_topics(&self.store).await? {
            let policy = RetentionPolicy::of(&topic.configs);
            if !policy.delete {
                continue;
            }
            let now_ms = self.store.clock.now_ms();
            let trim = Trim {
                policy: Some(policy),
                now_ms,
                log_start_at_least: None,
            };
            for (partition, record) in self.partition_records(topic.id).await? {
                if !retention::has_work(&record, &trim) {
                    continue;
                }
                report.partitions += 1;
                let trimmed = self.trim(topic.id, partition, &trim).await?;
                report.entries += trimmed.entries;
                report.bytes += trimmed.bytes;
                report.dereferenced += trimmed.dereferenced;
            }
        }
        if report.entries > 0 {
            tracing::info!(
                partitions = report.partitions,
                entries = report.entries,
                bytes = report.bytes,
                objects_released = report.dereferenced,
                "retention pass"
            );
        }
        Ok(report)
    }

    /// Trims one partition's head, a bounded number of transactions, and tells the
    /// agents where its log now starts.
    pub(crate) async fn trim(
        &self,
        topic: TopicId,
        partition: Partition,
        trim: &Trim,
    ) -> Result<Trimmed> {
        let mut total = Trimmed::default();
        for _ in 0..TRANSACTIONS_PER_PARTITION {
            let trimmed = self
                .store
                .db
                .run(|tx| async move {
                    retention::trim_partition(&tx, &self.store, topic, partition, trim).await
                })
                .await?;
            let Some(trimmed) = trimmed else { break };
            total.entries += trimmed.entries;
            total.bytes += trimmed.bytes;
            total.dereferenced += trimmed.dereferenced;
            total.log_start = trimmed.log_start;
            total.high_watermark = trimmed.high_watermark;
            total.more = trimmed.more;
            if !trimmed.more {
                break;
            }
        }
        self.metrics.retention_entries.inc_by(total.entries);
        self.metrics.retention_bytes.inc_by(total.bytes);
        self.metrics.dereferenced.inc_by(total.dereferenced);
        if total.entries > 0 {
            self.publish(vec![Advance {
                topic,
                partition,
                high_watermark: total.high_watermark,
                log_start_offset: total.log_start,
                entries_replaced: false,
            }]);
        }
        Ok(total)
    }

    /// DeleteRecords for one partition: moves its log start, then removes what lies
    /// below it (the rest, if any, at the next retention pass).
    pub async fn delete_records(
        &self,
        topic: TopicId,
        partition: Partition,
        offset: Offset,
    ) -> Result<Result<Offset, crate::ItemError>> {
        let moved = retention::delete_records(&self.store, topic, partition, offset).await?;
        let Ok(trimmed) = moved else {
            return Ok(moved.map(|t| t.log_start));
        };
        self.metrics.retention_entries.inc_by(trimmed.entries);
        self.metrics.retention_bytes.inc_by(trimmed.bytes);
        self.metrics.dereferenced.inc_by(trimmed.dereferenced);
        self.publish(vec![Advance {
            topic,
            partition,
            high_watermark: trimmed.high_watermark,
            log_start_offset: trimmed.log_start,
            entries_replaced: false,
        }]);
        if trimmed.more {
            let trim = Trim {
                policy: None,
                now_ms: self.store.clock.now_ms(),
                log_start_at_least: None,
            };
            self.trim(topic, partition, &trim).await?;
        }
        Ok(Ok(trimmed.log_start))
    }

    /// A topic's partition records, by partition.
    async fn partition_records(&self, topic: TopicId) -> Result<Vec<(Partition, PartitionRecord)>> {
        let store = &self.store;
        store
            .db
            .run(|tx| async move {
                tx.snapshot_get_range(&store.ks.partitions(topic))
                    .await?
                    .iter()
                    .map(|kv| {
                        Ok((
                            store.ks.partition_of_key(&kv.key)?,
                            keyspace::decode(&kv.key, &kv.value)?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await
    }
}
