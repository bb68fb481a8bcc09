//! The control plane's Prometheus metrics, defined here and passed in.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug)]
pub struct SequencerMetrics {
    objects: Counter,
    batches: Counter,
    groups: Counter,
    group_objects: Histogram,
    commit_seconds: Histogram,
}

impl SequencerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = SequencerMetrics {
            objects: Counter::default(),
            batches: Counter::default(),
            groups: Counter::default(),
            group_objects: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
        };
        registry.register(
            "weir_sequencer_objects",
            "Objects committed",
            metrics.objects.clone(),
        );
        registry.register(
            "weir_sequencer_batches",
            "Batches in committed objects",
            metrics.batches.clone(),
        );
        registry.register(
            "weir_sequencer_groups",
            "Group-commit transactions",
            metrics.groups.clone(),
        );
        registry.register(
            "weir_sequencer_group_objects",
            "Objects per group-commit transaction",
            metrics.group_objects.clone(),
        );
        registry.register(
            "weir_sequencer_commit_seconds",
            "Time to commit one group, retries included",
            metrics.commit_seconds.clone(),
        );
        metrics
    }

    /// One group commit of `objects` objects holding `batches` batches, which took
    /// `elapsed`.
    pub(crate) fn observe_group(&self, objects: usize, batches: usize, elapsed: Duration) {
        self.groups.inc();
        self.objects.inc_by(objects as u64);
        self.batches.inc_by(batches as u64);
        self.group_objects.observe(objects as f64);
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }
}

/// The group coordinator's metrics.
#[derive(Clone, Debug)]
pub struct GroupMetrics {
    pub(crate) rebalances: Counter,
    pub(crate) offset_commits: Counter,
    pub(crate) groups: Gauge,
    pub(crate) members: Gauge,
}

impl GroupMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = GroupMetrics {
            rebalances: Counter::default(),
            offset_commits: Counter::default(),
            groups: Gauge::default(),
            members: Gauge::default(),
        };
        registry.register(
            "weir_group_rebalances",
            "Join phases completed (new generations), over all groups",
            metrics.rebalances.clone(),
        );
        registry.register(
            "weir_group_offset_commits",
            "Partition offsets committed",
            metrics.offset_commits.clone(),
        );
        registry.register(
            "weir_groups_loaded",
            "Groups the coordinator holds in memory (those with members or in a rebalance)",
            metrics.groups.clone(),
        );
        registry.register(
            "weir_group_members",
            "Members of the groups in memory",
            metrics.members.clone(),
        );
        metrics
    }
}

/// Labels of a per-level or per-outcome series.
pub(crate) type Labels = Vec<(String, String)>;

fn label(name: &str, value: impl ToString) -> Labels {
    vec![(name.to_string(), value.to_string())]
}

/// The data lifecycle's metrics (docs/lifecycle.md, "Metrics").
#[derive(Clone, Debug, Default)]
pub struct LifecycleMetrics {
    pub(crate) index_entries: Gauge,
    backlog_objects: prometheus_client::metrics::family::Family<Labels, Gauge>,
    backlog_bytes: prometheus_client::metrics::family::Family<Labels, Gauge>,
    oldest_candidate_seconds: prometheus_client::metrics::family::Family<
        Labels,
        Gauge<f64, std::sync::atomic::AtomicU64>,
    >,
    jobs: prometheus_client::metrics::family::Family<Labels, Counter>,
    pub(crate) rewritten_bytes: Counter,
    pub(crate) retention_entries: Counter,
    pub(crate) retention_bytes: Counter,
    pub(crate) dereferenced: Counter,
    pub(crate) deleted: Counter,
    pub(crate) pending_deletions: Gauge,
}

impl LifecycleMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = LifecycleMetrics::default();
        registry.register(
            "weir_index_entries",
            "Index entries held, over all partitions",
            m.index_entries.clone(),
        );
        registry.register(
            "weir_compaction_backlog_objects",
            "Objects waiting for compaction, by level",
            m.backlog_objects.clone(),
        );
        registry.register(
            "weir_compaction_backlog_bytes",
            "Bytes of the objects waiting for compaction, by level",
            m.backlog_bytes.clone(),
        );
        registry.register(
            "weir_compaction_oldest_candidate_age_seconds",
            "How long the oldest object waiting for compaction has existed, by level",
            m.oldest_candidate_seconds.clone(),
        );
        registry.register(
            "weir_compaction_jobs",
            "Compaction jobs ended, by outcome (committed, lost, refused)",
            m.jobs.clone(),
        );
        registry.register(
            "weir_compaction_rewritten_bytes",
            "Bytes of index entries swapped for compacted copies",
            m.rewritten_bytes.clone(),
        );
        registry.register(
            "weir_retention_deleted_entries",
            "Index entries removed by retention, DeleteRecords and topic deletion",
            m.retention_entries.clone(),
        );
        registry.register(
            "weir_retention_deleted_bytes",
            "Bytes of the index entries removed by retention, DeleteRecords and topic deletion",
            m.retention_bytes.clone(),
        );
        registry.register(
            "weir_objects_dereferenced",
            "Objects left without an index entry naming them, queued for deletion",
            m.dereferenced.clone(),
        );
        registry.register(
            "weir_object_deletions_confirmed",
            "Dereferenced objects agents confirmed deleted from the bucket",
            m.deleted.clone(),
        );
        registry.register(
            "weir_object_deletions_pending",
            "Dereferenced objects queued for deletion and not yet confirmed deleted",
            m.pending_deletions.clone(),
        );
        m
    }

    pub(crate) fn backlog(&self, level: u32, objects: i64, bytes: i64, oldest_ms: i64) {
        self.backlog_objects
            .get_or_create(&label("level", level))
            .set(objects);
        self.backlog_bytes
            .get_or_create(&label("level", level))
            .set(bytes);
        self.oldest_candidate_seconds
            .get_or_create(&label("level", level))
            .set(oldest_ms as f64 / 1000.0);
    }

    pub(crate) fn job_ended(&self, outcome: &str) {
        self.jobs.get_or_create(&label("outcome", outcome)).inc();
    }
}
