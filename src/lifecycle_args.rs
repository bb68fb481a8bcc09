//! The data lifecycle's flags, shared by `playground` and `control-plane`
//! (docs/lifecycle.md).

use std::time::Duration;

use clap::Args;
use weir_control_plane::lifecycle::{CompactionConfig, LifecycleConfig};

#[derive(Debug, Args)]
pub(crate) struct LifecycleArgs {
    /// Milliseconds between retention passes (retention.ms, retention.bytes and what
    /// DeleteRecords left below a log start).
    #[arg(long, env = "WEIR_RETENTION_INTERVAL_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    retention_interval_ms: u64,

    /// Milliseconds a dereferenced object (no index entry names it any more) stays in
    /// the bucket before agents delete it: at least 2 × (5 s index-entry lifetime + 30 s
    /// read deadline) plus clock skew, so no fetch in flight loses it.
    #[arg(long, env = "WEIR_OBJECT_DELETE_GRACE_MS", default_value_t = 120_000)]
    object_delete_grace_ms: u64,

    /// Objects one compaction job merges, at most; also how many must wait at a level
    /// before a job is planned.
    #[arg(long, env = "WEIR_COMPACTION_FAN_IN", default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=1024))]
    compaction_fan_in: u64,

    /// Milliseconds after which a writer's object is compacted however few others wait.
    #[arg(long, env = "WEIR_COMPACTION_MAX_WAIT_MS", default_value_t = 30_000)]
    compaction_max_wait_ms: u64,

    /// Level-0 objects waiting for compaction past which produce answers are delayed.
    #[arg(long, env = "WEIR_COMPACTION_BACKLOG_SOFT", default_value_t = 10_000)]
    compaction_backlog_soft: u64,

    /// Level-0 objects waiting for compaction past which produce is refused
    /// (retriable) until compaction catches up.
    #[arg(long, env = "WEIR_COMPACTION_BACKLOG_HARD", default_value_t = 50_000)]
    compaction_backlog_hard: u64,
}

impl LifecycleArgs {
    pub(crate) fn config(&self) -> anyhow::Result<LifecycleConfig> {
        anyhow::ensure!(
            self.compaction_backlog_soft < self.compaction_backlog_hard,
            "--compaction-backlog-soft ({}) must be below --compaction-backlog-hard ({})",
            self.compaction_backlog_soft,
            self.compaction_backlog_hard
        );
        if self.object_delete_grace_ms < 70_000 {
            tracing::warn!(
                grace_ms = self.object_delete_grace_ms,
                "--object-delete-grace-ms is below 70 s: a slow fetch may find its object deleted (docs/lifecycle.md, the grace rule)"
            );
        }
        Ok(LifecycleConfig {
            retention_interval: Duration::from_millis(self.retention_interval_ms),
            delete_grace: Duration::from_millis(self.object_delete_grace_ms),
            compaction: CompactionConfig {
                fan_in: self.compaction_fan_in as usize,
                max_wait: Duration::from_millis(self.compaction_max_wait_ms),
                backlog_soft: self.compaction_backlog_soft,
                backlog_hard: self.compaction_backlog_hard,
                ..CompactionConfig::default()
            },
            ..LifecycleConfig::default()
        })
    }
}
