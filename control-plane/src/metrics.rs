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
