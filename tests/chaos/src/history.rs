//! The history of a chaos run: every operation the workers, the sampler and the nemesis
//! performed, one JSON object per line, in the order they happened.
//!
//! An operation is written when it is invoked and again when it completes, as Jepsen
//! does. A completion is `ok` (it happened, with what it returned), `fail` (it certainly
//! did not happen) or `info` (it may or may not have happened: a timeout, a lost
//! connection). The checker reads only this file, so a history recorded from a broken
//! build can be checked again later, and is kept as a test input.
//!
//! ```text
//! {"index":7,"time_ms":1520,"process":"producer-1","type":"invoke","f":"send","partition":3,"value":1000007}
//! {"index":9,"time_ms":1790,"process":"producer-1","type":"ok","f":"send","partition":3,"value":1000007,"offset":41}
//! {"index":12,"time_ms":1801,"process":"consumer-0","type":"ok","f":"poll","reads":[[3,41,1000007]]}
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0.
    pub index: u64,
    /// Milliseconds since the run started.
    pub time_ms: u64,
    /// Who did it: `producer-N`, `consumer-N`, `catch-up`, `sampler`, `nemesis`, `oracle`.
    /// One process performs one operation at a time, except producers, whose sends are
    /// pipelined: their order of invocation is the order they were sent in.
    pub process: String,
    #[serde(rename = "type")]
    pub outcome: Outcome,
    #[serde(flatten)]
    pub op: Op,
}

/// Whether an event starts an operation or says how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may or may not have happened (a timeout, a lost connection).
    Info,
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Op {
    /// A producer sends the unique `value` to `partition` (acks=all, idempotent). Its
    /// `ok` carries the offset the broker acknowledged; `fail` and `info` the error.
    Send {
        partition: i32,
        value: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A consumer polls. Its `ok` carries the records received, in the order received.
    Poll {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reads: Vec<Read>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A consumer's assignment starts or changes (written as `ok`). Reads after it form
    /// a new sequence: a seek back is expected across an assignment, never within one.
    Assign { mode: Mode, partitions: Vec<i32> },
    /// A sample of a partition's log start offset (`low`) and high watermark (`high`),
    /// taken by ListOffsets while the run goes on.
    Watermarks {
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        low: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A sample of the committed offset of the `subscribe` consumers' group for a
    /// partition (OffsetFetch), taken while the run goes on; `offset` is `None` while
    /// nothing is committed.
    Committed {
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A fault: `invoke` when the nemesis starts it, `ok` when it heals.
    Nemesis { fault: String, target: String },
    /// After the run: a partition's index entries, as the control plane holds them,
    /// with its log start offset and high watermark (absent in histories recorded
    /// before retention, where the log started at 0).
    Index {
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_start: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high_watermark: Option<i64>,
        entries: Vec<IndexEntry>,
    },
    /// After the run, once garbage collection has had its time: every object in the
    /// bucket, and whether the control plane has it committed. `settled`: taken once
    /// every dereferenced object's deletion grace and the orphan sweep had their time,
    /// so every object left should be one an index entry names.
    Bucket {
        objects: Vec<BucketObject>,
        gc_grace_ms: u64,
        gc_interval_ms: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        settled: bool,
    },
    /// The agents, as clients reach them (`address`, host:port): what a consumer's log
    /// names the broker it fetched from by. Written once, at the start.
    Agents { agents: Vec<AgentAddress> },
    /// The topic's retention: `retention_ms` is its `retention.ms` (`None`: -1, kept
    /// forever). `invoke` when asked for (at creation, or by AlterConfigs), `ok` once in
    /// force.
    TopicConfig {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retention_ms: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The deleter asks that `partition`'s records below `offset` be deleted
    /// (DeleteRecords). Its `ok` carries the low watermark the answer gave; `info` an
    /// error (it may have been applied).
    DeleteRecords {
        partition: i32,
        offset: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        low: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A consumer's fetch of `partition` at `offset` was answered with an error for the
    /// partition (`error`, librdkafka's name for the code: `KAFKA_STORAGE_ERROR`,
    /// `OFFSET_OUT_OF_RANGE`, …), from `broker` (librdkafka's name for it,
    /// `host:port/id`). Written as `fail` from the consumer's librdkafka log, which
    /// retries such errors without telling the application.
    FetchError {
        partition: i32,
        offset: i64,
        error: String,
        broker: String,
    },
    /// After the run: fetches an agent found reading an object the index still named
    /// after resolving the offsets again — data lost. `counted` is its
    /// `weir_fetch_missing_objects_total` (since its last start; `None` when it could not
    /// be read), `logged` the lines its log holds for them (across restarts).
    MissingObjects {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        counted: Option<u64>,
        logged: u64,
    },
}

/// One agent and the address clients reach it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAddress {
    pub name: String,
    pub address: String,
}

/// How a consumer gets its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `assign`: the consumer chose its partitions and reads each in order.
    Assign,
    /// `subscribe`: a consumer group hands partitions out and may move them.
    Subscribe,
}

/// One record read: `[partition, offset, value]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Read(pub i32, pub i64, pub u64);

impl Read {
    pub fn partition(self) -> i32 {
        self.0
    }
    pub fn offset(self) -> i64 {
        self.1
    }
    pub fn value(self) -> u64 {
        self.2
    }
}

/// One index entry: `record_count` offsets from `base_offset` live in `object`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub base_offset: i64,
    pub record_count: i64,
    /// The object's id (a ULID), as in its key `…/data/<id>.weir`.
    pub object: String,
}

/// One object found in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketObject {
    pub object: String,
    /// Whether the control plane has it committed (some index entry may point at it).
    pub referenced: bool,
    /// Milliseconds since it was written, when the bucket was listed.
    pub age_ms: u64,
}

/// Appends events to a history file as they happen; shared by every worker.
#[derive(Debug)]
pub struct HistoryWriter {
    out: Mutex<BufWriter<File>>,
    next: AtomicU64,
    start: Instant,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> anyhow::Result<HistoryWriter> {
        let file =
            File::create(path).with_context(|| format!("create history {}", path.display()))?;
        Ok(HistoryWriter {
            out: Mutex::new(BufWriter::new(file)),
            next: AtomicU64::new(0),
            start: Instant::now(),
        })
    }

    /// Writes one event and returns its index. The index is taken under the lock, so
    /// indexes in the file are in order.
    pub fn record(&self, process: &str, outcome: Outcome, op: Op) -> u64 {
        let mut out = self.out.lock();
        let event = Event {
            index: self.next.fetch_add(1, Ordering::SeqCst),
            time_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            process: process.to_string(),
            outcome,
            op,
        };
        let line = serde_json::to_string(&event).expect("an event always serializes");
        // A history that cannot be written makes the run worthless: stop loudly.
        writeln!(out, "{line}").expect("write the history");
        event.index
    }

    pub fn flush(&self) -> anyhow::Result<()> {
        self.out.lock().flush().context("flush the history")
    }
}

/// Reads a history file; one whose name ends in `.gz` is gunzipped on the way.
pub fn read(path: &Path) -> anyhow::Result<Vec<Event>> {
    let file = File::open(path).with_context(|| format!("open history {}", path.display()))?;
    let text: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a history event", path.display(), number + 1))?;
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let history = HistoryWriter::create(&path).expect("create");
        let ops = [
            (
                Outcome::Invoke,
                Op::Send {
                    partition: 3,
                    value: 7,
                    offset: None,
                    error: None,
                },
            ),
            (
                Outcome::Ok,
                Op::Send {
                    partition: 3,
                    value: 7,
                    offset: Some(41),
                    error: None,
                },
            ),
            (
                Outcome::Ok,
                Op::Poll {
                    reads: vec![Read(3, 41, 7)],
                    error: None,
                },
            ),
            (
                Outcome::Ok,
                Op::Assign {
                    mode: Mode::Assign,
                    partitions: vec![0, 1],
                },
            ),
            (
                Outcome::Ok,
                Op::DeleteRecords {
                    partition: 3,
                    offset: 40,
                    low: Some(40),
                    error: None,
                },
            ),
            (
                Outcome::Fail,
                Op::FetchError {
                    partition: 3,
                    offset: 41,
                    error: "KAFKA_STORAGE_ERROR".into(),
                    broker: "127.0.0.1:9092/1".into(),
                },
            ),
            (
                Outcome::Ok,
                Op::Bucket {
                    objects: Vec::new(),
                    gc_grace_ms: 1,
                    gc_interval_ms: 1,
                    settled: true,
                },
            ),
        ];
        for (outcome, op) in ops.clone() {
            history.record("producer-1", outcome, op);
        }
        history.flush().expect("flush");
        let events = read(&path).expect("read");
        let read_back: Vec<_> = events.iter().map(|e| (e.outcome, e.op.clone())).collect();
        assert_eq!(read_back, ops);
        assert_eq!(
            events.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 6]
        );
        let text = std::fs::read_to_string(&path).expect("read text");
        assert!(
            text.lines()
                .nth(2)
                .expect("third line")
                .contains(r#""reads":[[3,41,7]]"#),
            "reads are written compactly: {text}"
        );
    }
}
