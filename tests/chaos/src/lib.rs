//! Weir under faults. `weir-chaos run` starts a cluster of real processes (a control
//! plane, three agents, an S3 server), puts TCP proxies the harness controls between
//! them, runs Kafka producers and consumers that log every operation to a history, and
//! lets a nemesis kill, pause, cut off and degrade the parts on a seeded schedule. Then
//! everything heals, a catch-up reads every partition from the start, and the checker
//! looks for every anomaly in Jepsen's Kafka taxonomy plus Weir's own oracles. The data
//! lifecycle runs all along: compaction, retention, DeleteRecords and the deletion of
//! dereferenced objects.
//! `weir-chaos check HISTORY` checks a recorded history again.

pub mod activity;
pub mod checker;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod oracle;
pub mod proxy;
pub mod run;
pub mod workers;
