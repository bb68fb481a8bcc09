//! What the data lifecycle did in a run, read from the processes' logs (appended across
//! restarts, so a killed agent's work counts too): compaction jobs by level, jobs given
//! back, objects deleted after their grace, index entries retention removed. A run in
//! which some of it never happened checked nothing about it, so the run says so.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::Context;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Compaction jobs committed, by the level of their outputs.
    pub compactions: BTreeMap<u64, u64>,
    /// Jobs given back or abandoned (failed, refused, lease lost), to run again.
    pub jobs_given_back: u64,
    /// Deletion runs (one claim of due deletions), and the objects they deleted.
    pub deletion_runs: u64,
    pub objects_deleted: u64,
    /// Retention passes that removed something, and the index entries they removed.
    pub retention_passes: u64,
    pub retention_entries: u64,
}

impl Activity {
    /// Reads the agents' and the control plane's logs.
    pub fn read(agent_logs: &[&Path], control_plane_log: &Path) -> anyhow::Result<Activity> {
        let mut activity = Activity::default();
        for log in agent_logs {
            activity.agent_log(&read(log)?);
        }
        activity.control_plane_log(&read(control_plane_log)?);
        Ok(activity)
    }

    fn agent_log(&mut self, log: &str) {
        for line in log.lines() {
            if line.contains("compaction job committed") {
                let level = field(line, "level").unwrap_or(0);
                *self.compactions.entry(level).or_default() += 1;
            } else if line.contains("compaction job given back")
                || line.contains("compaction job abandoned")
                || line.contains("compaction job lost its lease")
            {
                self.jobs_given_back += 1;
            } else if line.contains("deleted dereferenced objects") {
                self.deletion_runs += 1;
                self.objects_deleted += field(line, "deleted").unwrap_or(0);
            }
        }
    }

    fn control_plane_log(&mut self, log: &str) {
        for line in log.lines() {
            if line.contains("retention pass ")
                && let Some(entries) = field(line, "entries")
            {
                self.retention_passes += 1;
                self.retention_entries += entries;
            }
        }
    }

    /// What never happened, each a problem for the run: without it the lifecycle's
    /// checks had nothing to check.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for level in [1, 2] {
            if self.compactions.get(&level).copied().unwrap_or(0) == 0 {
                missing.push(format!("no compaction job to level {level} was committed"));
            }
        }
        if self.objects_deleted == 0 {
            missing.push("no dereferenced object was deleted".to_string());
        }
        if self.retention_entries == 0 {
            missing.push("retention removed no index entry".to_string());
        }
        missing
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let committed: u64 = self.compactions.values().sum();
        let levels: Vec<String> = self
            .compactions
            .iter()
            .map(|(level, jobs)| format!("level {level}: {jobs}"))
            .collect();
        write!(
            f,
            "lifecycle: {committed} compaction jobs committed ({}), {} given back; {} objects \
             deleted in {} deletion runs; {} retention passes removed {} index entries",
            levels.join(", "),
            self.jobs_given_back,
            self.objects_deleted,
            self.deletion_runs,
            self.retention_passes,
            self.retention_entries
        )
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The number after ` name=` in a log line (tracing's fmt writes fields that way).
fn field(line: &str, name: &str) -> Option<u64> {
    let key = format!(" {name}=");
    let at = line.find(&key)? + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_lines_are_counted() {
        let mut activity = Activity::default();
        activity.agent_log(
            "2026-12-06T22:46:51Z  INFO weir_agent::jobs: compaction job committed job=01M9 \
             attempt=1 level=1 inputs=4 input_bytes=2204 outputs=1\n\
             2026-12-06T22:46:52Z  INFO weir_agent::jobs: compaction job committed job=01MA \
             attempt=2 level=2 inputs=4\n\
             2026-12-06T22:46:53Z  WARN weir_agent::jobs: compaction job given back job=01MB\n\
             2026-12-06T22:46:54Z DEBUG weir_agent::jobs::deletion: deleted dereferenced \
             objects deleted=12\n",
        );
        activity.control_plane_log(
            "2026-12-06T22:46:55Z  INFO weir_control_plane::lifecycle: retention pass \
             partitions=2 entries=7 bytes=900 objects_released=3\n",
        );
        assert_eq!(
            activity,
            Activity {
                compactions: BTreeMap::from([(1, 1), (2, 1)]),
                jobs_given_back: 1,
                deletion_runs: 1,
                objects_deleted: 12,
                retention_passes: 1,
                retention_entries: 7,
            }
        );
        assert!(activity.missing().is_empty(), "{:?}", activity.missing());
        assert_eq!(Activity::default().missing().len(), 4);
    }
}
