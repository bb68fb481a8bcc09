//! The topic configs Weir accepts, with Kafka's names, types, defaults and what each
//! does in Weir.
//!
//! Clients and tools (Kafka Connect, Flink, Debezium) set and read these; a topic stores
//! only what was set explicitly, and [`TOPIC_CONFIGS`] supplies the defaults. Every
//! config accepted is [`Standing::Applied`] with Kafka's meaning,
//! [`Standing::MetByDesign`] (Weir always behaves as its strictest value), or
//! [`Standing::NotYetEnforced`] (stored and shown, to be applied by the data-lifecycle
//! work; keeping data longer than asked stays within Kafka's guarantees).
//! docs/topic-configs.md lists them, and a test holds the two to each other. Kafka
//! topic configs Weir cannot honour are refused by name ([`REFUSED`]).

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

/// What a topic config does in Weir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Applied with Kafka's meaning.
    Applied,
    /// Weir always behaves as the config's strictest value, whatever it is set to: it
    /// concerns a broker's local disk, replicas or leaders, which Weir has none of
    /// (every acknowledged write is already in object storage).
    MetByDesign,
    /// Stored and described, not yet acted on (retention, compaction, segments).
    NotYetEnforced,
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfig {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// The smallest value allowed, for numbers.
    pub min: Option<f64>,
    /// The largest value allowed, for numbers.
    pub max: Option<f64>,
    pub standing: Standing,
}

const fn config(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    min: Option<f64>,
    standing: Standing,
) -> TopicConfig {
    TopicConfig {
        name,
        kind,
        default,
        min,
        max: None,
        standing,
    }
}

/// A number config with a largest value too.
const fn bounded(
    name: &'static str,
    default: &'static str,
    min: f64,
    max: f64,
    standing: Standing,
) -> TopicConfig {
    TopicConfig {
        max: Some(max),
        ..config(name, Int, default, Some(min), standing)
    }
}

use std::collections::BTreeMap;

use ConfigType::*;
use Standing::*;

/// Kafka topic configs Weir refuses, with the reason a user is told.
pub const REFUSED: &[(&str, &str)] = &[
    (
        "follower.replication.throttled.replicas",
        "Weir has no replicas to throttle: partitions live in object storage",
    ),
    (
        "leader.replication.throttled.replicas",
        "Weir has no replicas to throttle: partitions live in object storage",
    ),
    (
        "local.retention.bytes",
        "Weir has no local log: every record is in object storage",
    ),
    (
        "local.retention.ms",
        "Weir has no local log: every record is in object storage",
    ),
    (
        "errors.deadletterqueue.group.enable",
        "Weir has no share groups (KIP-932), so no group dead-letter queues",
    ),
    (
        "message.downconversion.enable",
        "Weir serves record batch format v2 only (Kafka 4.0 removed this config)",
    ),
    (
        "message.timestamp.difference.max.ms",
        "Kafka 4.0 removed it: use message.timestamp.before.max.ms and message.timestamp.after.max.ms",
    ),
    (
        "remote.copy.lag.bytes",
        "Weir has no tiered storage: every record is in object storage when it is acknowledged",
    ),
    (
        "remote.copy.lag.ms",
        "Weir has no tiered storage: every record is in object storage when it is acknowledged",
    ),
    (
        "remote.log.copy.disable",
        "Weir has no tiered storage: every record is in object storage already",
    ),
    (
        "remote.log.delete.on.disable",
        "Weir has no tiered storage: every record is in object storage already",
    ),
    (
        "remote.storage.enable",
        "Weir has no tiered storage to enable: every record is in object storage already",
    ),
];

/// Every topic config Weir accepts, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfig] = &[
    config(
        "cleanup.policy",
        ListOf(&["delete", "compact"]),
        "delete",
        None,
        NotYetEnforced,
    ),
    bounded("compression.gzip.level", "-1", -1.0, 9.0, Applied),
    bounded("compression.lz4.level", "9", 1.0, 17.0, Applied),
    config(
        "compression.type",
        OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
        None,
        Applied,
    ),
    bounded("compression.zstd.level", "3", -131072.0, 22.0, Applied),
    config(
        "delete.retention.ms",
        Long,
        "86400000",
        Some(0.0),
        NotYetEnforced,
    ),
    config(
        "file.delete.delay.ms",
        Long,
        "60000",
        Some(0.0),
        MetByDesign,
    ),
    config(
        "flush.messages",
        Long,
        "9223372036854775807",
        Some(1.0),
        MetByDesign,
    ),
    config(
        "flush.ms",
        Long,
        "9223372036854775807",
        Some(0.0),
        MetByDesign,
    ),
    config("index.interval.bytes", Int, "4096", Some(0.0), MetByDesign),
    config(
        "max.compaction.lag.ms",
        Long,
        "9223372036854775807",
        Some(1.0),
        NotYetEnforced,
    ),
    config(
        "max.decompressed.message.bytes",
        Int,
        "2147483639",
        Some(0.0),
        Applied,
    ),
    config("max.message.bytes", Int, "1048588", Some(0.0), Applied),
    config(
        "message.timestamp.after.max.ms",
        Long,
        "9223372036854775807",
        Some(0.0),
        Applied,
    ),
    config(
        "message.timestamp.before.max.ms",
        Long,
        "9223372036854775807",
        Some(0.0),
        Applied,
    ),
    config(
        "message.timestamp.type",
        OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        None,
        Applied,
    ),
    config(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Some(0.0),
        NotYetEnforced,
    ),
    config(
        "min.compaction.lag.ms",
        Long,
        "0",
        Some(0.0),
        NotYetEnforced,
    ),
    config("min.insync.replicas", Int, "1", Some(1.0), MetByDesign),
    config("preallocate", Boolean, "false", None, MetByDesign),
    config("retention.bytes", Long, "-1", None, Applied),
    config("retention.ms", Long, "604800000", Some(-1.0), Applied),
    config(
        "segment.bytes",
        Int,
        "1073741824",
        Some(14.0),
        NotYetEnforced,
    ),
    config(
        "segment.index.bytes",
        Int,
        "10485760",
        Some(4.0),
        MetByDesign,
    ),
    config("segment.jitter.ms", Long, "0", Some(0.0), NotYetEnforced),
    config("segment.ms", Long, "604800000", Some(1.0), NotYetEnforced),
    config(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        None,
        MetByDesign,
    ),
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
    if let Some((_, why)) = REFUSED.iter().find(|(refused, _)| *refused == name) {
        return Err(format!("Weir does not support topic config {name}: {why}"));
    }
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
    match (config.min, config.max) {
        (Some(min), _) if number < min => Err(invalid(&format!("Value must be at least {min}"))),
        (_, Some(max)) if number > max => {
            Err(invalid(&format!("Value must be no more than {max}")))
        }
        // gzip's levels are 1 to 9, or -1 for the codec's own default.
        _ if name == "compression.gzip.level" && number == 0.0 => Err(invalid(
            "Value must be -1 (the codec's default) or between 1 and 9",
        )),
        _ => Ok(()),
    }
}

/// One change to a topic's configs (IncrementalAlterConfigs' operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    /// Back to the default: the topic no longer sets it.
    Delete,
    /// Adds values to a list config's (for example `cleanup.policy`).
    Append(String),
    /// Removes values from a list config's.
    Subtract(String),
}

/// Why a set of config changes was refused: the error is INVALID_REQUEST when
/// `malformed` (the same config twice), else INVALID_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    pub malformed: bool,
    pub message: String,
}

/// The configs a topic sets after `changes`: applied one by one to `current` (Kafka's
/// IncrementalAlterConfigs), or with `replace`, the `Set`s alone become the whole set
/// (Kafka's AlterConfigs: what is not named goes back to its default). Every resulting
/// value is validated as at creation.
pub fn apply_changes(
    current: &BTreeMap<String, String>,
    changes: &[(String, ConfigOp)],
    replace: bool,
) -> Result<BTreeMap<String, String>, ChangeError> {
    let invalid = |message: String| ChangeError {
        malformed: false,
        message,
    };
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in changes {
        if !seen.insert(name.as_str()) {
            return Err(ChangeError {
                malformed: true,
                message: format!("Error due to duplicate config keys: {name}"),
            });
        }
    }
    let mut configs = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for (name, op) in changes {
        let list = |name: &str| match lookup(name) {
            Some(TopicConfig {
                kind: ListOf(_), ..
            }) => Ok(()),
            Some(_) => Err(invalid(format!(
                "Config value append or subtract is not allowed for config key: {name}: it is not a list"
            ))),
            None => validate(name, "").map_err(invalid),
        };
        let values = |configs: &BTreeMap<String, String>| -> Vec<String> {
            let value = configs
                .get(name)
                .map(String::as_str)
                .or_else(|| lookup(name).map(|c| c.default))
                .unwrap_or_default();
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect()
        };
        match op {
            ConfigOp::Set(value) => {
                validate(name, value).map_err(invalid)?;
                configs.insert(name.clone(), value.clone());
            }
            ConfigOp::Delete if replace => {}
            ConfigOp::Delete => {
                // Deleting a config the topic does not set, or one Weir does not know,
                // changes nothing, as in Kafka; a refused one is still refused.
                if REFUSED.iter().any(|(refused, _)| refused == name) {
                    validate(name, "").map_err(invalid)?;
                }
                configs.remove(name);
            }
            ConfigOp::Append(add) => {
                list(name)?;
                let mut items = values(&configs);
                for item in add.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    if !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                }
                let value = items.join(",");
                validate(name, &value).map_err(invalid)?;
                configs.insert(name.clone(), value);
            }
            ConfigOp::Subtract(remove) => {
                list(name)?;
                let remove: Vec<&str> = remove.split(',').map(str::trim).collect();
                let value = values(&configs)
                    .into_iter()
                    .filter(|i| !remove.contains(&i.as_str()))
                    .collect::<Vec<_>>()
                    .join(",");
                validate(name, &value).map_err(invalid)?;
                configs.insert(name.clone(), value);
            }
        }
    }
    Ok(configs)
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

    /// The config names in backticks at the start of each table row of one section of
    /// docs/topic-configs.md (the section headed `heading`).
    fn documented(heading: &str) -> Vec<String> {
        let doc = include_str!("../../../docs/topic-configs.md");
        let section = doc
            .split("\n## ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("docs/topic-configs.md has a section {heading:?}"));
        let mut names: Vec<String> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| {
                let first = l.split('|').nth(1).unwrap_or_default();
                first
                    .split(',')
                    .map(|n| n.trim().trim_matches('`').to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn docs_list_every_config_under_what_weir_does_with_it() {
        for (heading, standing) in [
            ("Applied", Applied),
            ("Met by design", MetByDesign),
            ("Stored, not yet enforced", NotYetEnforced),
        ] {
            let in_code: Vec<String> = TOPIC_CONFIGS
                .iter()
                .filter(|c| c.standing == standing)
                .map(|c| c.name.to_string())
                .collect();
            assert_eq!(documented(heading), in_code, "section {heading:?}");
        }
        let mut refused: Vec<String> = REFUSED.iter().map(|(n, _)| n.to_string()).collect();
        refused.sort();
        assert_eq!(documented("Refused"), refused);
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn change(name: &str, op: ConfigOp) -> (String, ConfigOp) {
        (name.to_string(), op)
    }

    #[test]
    fn incremental_changes_set_delete_append_and_subtract() {
        let current = configs(&[("retention.ms", "1000"), ("max.message.bytes", "2000")]);
        let after = apply_changes(
            &current,
            &[
                change("retention.ms", ConfigOp::Set("5000".into())),
                change("max.message.bytes", ConfigOp::Delete),
                change("cleanup.policy", ConfigOp::Append("compact".into())),
                change("segment.ms", ConfigOp::Delete),
            ],
            false,
        )
        .expect("valid changes");
        assert_eq!(
            after,
            configs(&[
                ("cleanup.policy", "delete,compact"),
                ("retention.ms", "5000")
            ]),
            "append starts from the default (delete); deleting an unset config is no change"
        );
        let after = apply_changes(
            &after,
            &[change(
                "cleanup.policy",
                ConfigOp::Subtract("delete".into()),
            )],
            false,
        )
        .expect("valid");
        assert_eq!(after["cleanup.policy"], "compact");
    }

    #[test]
    fn a_replacing_change_keeps_only_what_it_sets() {
        let current = configs(&[("retention.ms", "1000"), ("max.message.bytes", "2000")]);
        let after = apply_changes(
            &current,
            &[change("segment.ms", ConfigOp::Set("60000".into()))],
            true,
        )
        .expect("valid");
        assert_eq!(after, configs(&[("segment.ms", "60000")]));
    }

    #[test]
    fn bad_changes_are_refused_naming_the_config() {
        let current = BTreeMap::new();
        let refused = |changes: &[(String, ConfigOp)]| {
            apply_changes(&current, changes, false).expect_err("refused")
        };
        let e = refused(&[change("retention.ms", ConfigOp::Set("soon".into()))]);
        assert!(!e.malformed && e.message.contains("retention.ms"), "{e:?}");
        let e = refused(&[change("no.such.config", ConfigOp::Set("1".into()))]);
        assert!(e.message.contains("no.such.config"), "{e:?}");
        let e = refused(&[change("retention.ms", ConfigOp::Append("5".into()))]);
        assert!(e.message.contains("not a list"), "{e:?}");
        let e = refused(&[change("cleanup.policy", ConfigOp::Append("forever".into()))]);
        assert!(e.message.contains("cleanup.policy"), "{e:?}");
        let e = refused(&[change(
            "remote.storage.enable",
            ConfigOp::Set("true".into()),
        )]);
        assert!(e.message.contains("Weir does not support"), "{e:?}");
        let e = refused(&[
            change("retention.ms", ConfigOp::Set("1".into())),
            change("retention.ms", ConfigOp::Delete),
        ]);
        assert!(e.malformed && e.message.contains("duplicate"), "{e:?}");
    }

    #[test]
    fn configs_weir_cannot_honour_are_refused_saying_why() {
        let err = validate("remote.storage.enable", "true").expect_err("refused");
        assert!(
            err.contains("Weir does not support topic config remote.storage.enable"),
            "{err}"
        );
        assert!(err.contains("object storage"), "{err}");
        assert!(REFUSED.iter().all(|(name, _)| lookup(name).is_none()));
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
