//! The agent's settings, validated once at start.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// host:port that Kafka clients are told to connect to.
    pub advertise: String,
    /// The zone this agent runs in; clients in it are served by agents of it.
    pub zone: String,
    /// Name reported as the Kafka cluster id.
    pub cluster_id: String,
    /// An open object is sealed this long after its first batch...
    pub batch_timeout: Duration,
    /// ...or once it holds this many bytes.
    pub batch_max_bytes: u64,
    /// Produce bytes held in memory, at most; at the bound the agent stops reading.
    pub max_buffered_bytes: u64,
    /// Objects uploading at once, at most.
    pub uploads_in_flight: usize,
    /// The largest Kafka request frame accepted (Kafka's socket.request.max.bytes).
    pub max_frame_bytes: usize,
    /// Connections served at once, at most.
    pub max_connections: usize,
    /// Requests of one connection processed at once, at most (answered in order).
    pub max_in_flight_per_connection: usize,
    /// Create unknown topics when a client asks for their metadata.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, or one created with -1 partitions.
    pub default_partitions: i32,
    /// The largest record batch accepted (Kafka's message.max.bytes).
    pub max_batch_bytes: usize,
    /// How long produce waits for an upload and commit before answering with a
    /// retriable error.
    pub produce_timeout: Duration,
    /// Bytes of object blocks kept in memory for reads.
    pub cache_bytes: u64,
    /// Uncommitted objects older than this are deleted by garbage collection; at least
    /// twice `produce_timeout` (see `gc.rs`).
    pub gc_grace: Duration,
    /// Time between garbage-collection passes; zero turns collection off.
    pub gc_interval: Duration,
    /// Run the jobs role: delete dereferenced objects, run compaction jobs.
    pub jobs: bool,
    /// Time between the jobs role's passes.
    pub jobs_interval: Duration,
    /// Objects compaction writes are at most this big (unless one input entry is).
    pub compaction_object_bytes: u64,
    /// Compaction indexes its objects in entries of about this many bytes.
    pub compaction_entry_bytes: u64,
}

/// The largest `compaction_object_bytes`: a job holds about twice it in memory.
pub const MAX_COMPACTION_OBJECT_BYTES: u64 = 1024 * 1024 * 1024;

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            advertise: "127.0.0.1:9092".into(),
            zone: "local".into(),
            cluster_id: "weir".into(),
            batch_timeout: Duration::from_millis(250),
            batch_max_bytes: 8 * 1024 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            uploads_in_flight: 8,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 4096,
            max_in_flight_per_connection: 512,
            auto_create_topics: false,
            default_partitions: 1,
            max_batch_bytes: 1024 * 1024 + 12,
            produce_timeout: Duration::from_secs(30),
            cache_bytes: 256 * 1024 * 1024,
            gc_grace: Duration::from_secs(3600),
            gc_interval: Duration::from_secs(300),
            jobs: true,
            jobs_interval: Duration::from_secs(1),
            compaction_object_bytes: 64 * 1024 * 1024,
            compaction_entry_bytes: 1024 * 1024,
        }
    }
}

impl AgentConfig {
    /// Checks the settings against each other; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        let (host, port) = self
            .advertise
            .rsplit_once(':')
            .ok_or_else(|| format!("advertise address {:?} must be host:port", self.advertise))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!(
                "advertise address {:?} must be host:port",
                self.advertise
            ));
        }
        if self.batch_max_bytes == 0 || self.batch_timeout.is_zero() {
            return Err("batch timeout and batch max bytes must be above zero".into());
        }
        if self.max_buffered_bytes < self.max_frame_bytes as u64 {
            return Err(format!(
                "max buffered bytes ({}) must hold at least one frame of the maximum size ({})",
                self.max_buffered_bytes, self.max_frame_bytes
            ));
        }
        if !(1..=100_000).contains(&self.default_partitions) {
            return Err(format!(
                "default partitions must be between 1 and 100000, got {}",
                self.default_partitions
            ));
        }
        if self.max_connections == 0
            || self.max_in_flight_per_connection == 0
            || self.uploads_in_flight == 0
        {
            return Err("connection, in-flight and upload limits must be above zero".into());
        }
        if self.gc_grace < self.produce_timeout * 2 {
            return Err(format!(
                "the garbage-collection grace period ({:?}) must be at least twice the produce timeout ({:?}), so that no commit can land after collection judged an object an orphan",
                self.gc_grace, self.produce_timeout
            ));
        }
        if self.jobs_interval.is_zero() {
            return Err("the jobs interval must be above zero".into());
        }
        if self.compaction_entry_bytes == 0
            || self.compaction_entry_bytes > self.compaction_object_bytes
            || self.compaction_object_bytes > MAX_COMPACTION_OBJECT_BYTES
        {
            return Err(format!(
                "compaction entry bytes ({}) must be above zero and at most compaction object bytes ({}), which must be at most {MAX_COMPACTION_OBJECT_BYTES} (a job holds about twice it in memory)",
                self.compaction_entry_bytes, self.compaction_object_bytes
            ));
        }
        Ok(())
    }

    pub fn advertised_host_port(&self) -> (String, i32) {
        let (host, port) = self
            .advertise
            .rsplit_once(':')
            .unwrap_or((&self.advertise, "9092"));
        (host.to_string(), port.parse().unwrap_or(9092))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_the_jobs_settings_are_checked() {
        AgentConfig::default().validate().expect("the defaults");
        let refused = |config: AgentConfig| config.validate().expect_err("refused");
        let message = refused(AgentConfig {
            compaction_entry_bytes: 0,
            ..AgentConfig::default()
        });
        assert!(message.contains("compaction entry bytes (0)"), "{message}");
        let message = refused(AgentConfig {
            compaction_object_bytes: 1024,
            compaction_entry_bytes: 4096,
            ..AgentConfig::default()
        });
        assert!(
            message.contains("at most compaction object bytes (1024)"),
            "{message}"
        );
        refused(AgentConfig {
            compaction_object_bytes: MAX_COMPACTION_OBJECT_BYTES + 1,
            ..AgentConfig::default()
        });
        let message = refused(AgentConfig {
            jobs_interval: Duration::ZERO,
            ..AgentConfig::default()
        });
        assert!(message.contains("jobs interval"), "{message}");
    }
}
