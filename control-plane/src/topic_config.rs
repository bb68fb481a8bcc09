//! The topic configs Weir accepts, with Kafka's names, types and defaults.
//!
//! Clients and tools (Kafka Connect, Flink, Debezium) set and read these; a topic stores
//! only what was set explicitly, and [`TOPIC_CONFIGS`] supplies the defaults.

/// The type of a config value, as Kafka's `ConfigDef` types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Long,
    Double,
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these values.
    ListOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfig {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// The smallest value allowed, for numbers.
    pub min: Option<f64>,
}

const fn config(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    min: Option<f64>,
) -> TopicConfig {
    TopicConfig {
        name,
        kind,
        default,
        min,
    }
}

use ConfigType::*;

/// Every topic config Weir accepts, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfig] = &[
    config(
        "cleanup.policy",
        ListOf(&["delete", "compact"]),
        "delete",
        None,
    ),
    config(
        "compression.type",
        OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
        None,
    ),
    config("delete.retention.ms", Long, "86400000", Some(0.0)),
    config("file.delete.delay.ms", Long, "60000", Some(0.0)),
    config("flush.messages", Long, "9223372036854775807", Some(1.0)),
    config("flush.ms", Long, "9223372036854775807", Some(0.0)),
    config("index.interval.bytes", Int, "4096", Some(0.0)),
    config(
        "max.compaction.lag.ms",
        Long,
        "9223372036854775807",
        Some(1.0),
    ),
    config("max.message.bytes", Int, "1048588", Some(0.0)),
    config(
        "message.timestamp.after.max.ms",
        Long,
        "9223372036854775807",
        Some(0.0),
    ),
    config(
        "message.timestamp.before.max.ms",
        Long,
        "9223372036854775807",
        Some(0.0),
    ),
    config(
        "message.timestamp.type",
        OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        None,
    ),
    config("min.cleanable.dirty.ratio", Double, "0.5", Some(0.0)),
    config("min.compaction.lag.ms", Long, "0", Some(0.0)),
    config("min.insync.replicas", Int, "1", Some(1.0)),
    config("preallocate", Boolean, "false", None),
    config("retention.bytes", Long, "-1", None),
    config("retention.ms", Long, "604800000", Some(-1.0)),
    config("segment.bytes", Int, "1073741824", Some(14.0)),
    config("segment.index.bytes", Int, "10485760", Some(4.0)),
    config("segment.jitter.ms", Long, "0", Some(0.0)),
    config("segment.ms", Long, "604800000", Some(1.0)),
    config("unclean.leader.election.enable", Boolean, "false", None),
];

/// The config called `name`, if Weir knows it.
pub fn lookup(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS
        .binary_search_by(|c| c.name.cmp(name))
        .ok()
        .map(|i| &TOPIC_CONFIGS[i])
}

/// Checks one config assignment; the error reads as Kafka's does.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let config = lookup(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    let invalid = |why: &str| format!("Invalid value {value} for configuration {name}: {why}");
    let number = match config.kind {
        Boolean => {
            return match value.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => Err(invalid("Expected value to be either true or false")),
            };
        }
        Int => value
            .trim()
            .parse::<i32>()
            .map(f64::from)
            .map_err(|_| invalid("Not a number of type INT"))?,
        Long => value
            .trim()
            .parse::<i64>()
            .map(|v| v as f64)
            .map_err(|_| invalid("Not a number of type LONG"))?,
        Double => value
            .trim()
            .parse::<f64>()
            .map_err(|_| invalid("Not a number of type DOUBLE"))?,
        OneOf(allowed) => {
            return if allowed.contains(&value) {
                Ok(())
            } else {
                Err(invalid(&format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )))
            };
        }
        ListOf(allowed) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            return if !items.is_empty() && items.iter().all(|i| allowed.contains(i)) {
                Ok(())
            } else {
                Err(invalid(&format!(
                    "Each value must be one of: {}",
                    allowed.join(", ")
                )))
            };
        }
    };
    match config.min {
        Some(min) if number < min => Err(invalid(&format!("Value must be at least {min}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_lookup() {
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(lookup("retention.ms").map(|c| c.default), Some("604800000"));
        assert!(lookup("no.such.config").is_none());
    }

    #[test]
    fn defaults_are_valid_values() {
        for config in TOPIC_CONFIGS {
            assert_eq!(
                validate(config.name, config.default),
                Ok(()),
                "{}",
                config.name
            );
        }
    }

    #[test]
    fn bad_values_are_rejected_with_kafkas_wording() {
        assert_eq!(
            validate("retention.msx", "1"),
            Err("Unknown topic config name: retention.msx".into())
        );
        let err = validate("retention.ms", "soon").expect_err("not a number");
        assert!(err.contains("Not a number of type LONG"), "{err}");
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "forever").is_err());
        assert!(validate("preallocate", "TRUE").is_ok());
        assert!(validate("message.timestamp.type", "Now").is_err());
    }
}
