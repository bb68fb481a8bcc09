//! Checks a history for anomalies: Jepsen's Kafka taxonomy (as in `jepsen.tests.kafka`
//! and its Redpanda and Bufstream analyses) plus Weir's own oracles.
//!
//! The check makes one pass over the history to gather what is known (every send and how
//! it ended, every value at every (partition, offset) from acks and reads, each
//! consumer's read sequences, the watermark samples, the index and the bucket), then one
//! pass per class over what was gathered. Everything is kept in hash or B-tree maps, so
//! a history of a million events checks in seconds.
//!
//! Offsets are "known" when some ack or read put a value there; the Jepsen classes only
//! reason from known offsets. Weir's offsets are also dense (every offset below the high
//! watermark holds a record), which `offset-gaps` checks on its own.
//!
//! Records leave a partition's head by retention and DeleteRecords: the classes of the
//! data lifecycle (in `lifecycle.rs`) check that each removal the log start offset shows
//! had a cause, and the classes above excuse only what was removed.

mod lifecycle;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::history::{BucketObject, Event, IndexEntry, Mode, Op, Outcome};
use lifecycle::Lifecycle;
pub use lifecycle::{RETENTION_SETTLE_MS, STORE_SETTLE_MS};

/// How many examples a class shows.
const MAX_EXAMPLES: usize = 5;

/// How long after a fault heals a committed offset may still go down because of it:
/// librdkafka resends an asynchronous commit that failed on the connection (a transport
/// error, REQUEST_TIMED_OUT, a coordinator error) after its retry backoff, and defers
/// those made while the coordinator was unreachable, so an older commit can land after a
/// newer one; the workers' requests time out after 10 s (`socket.timeout.ms`).
pub const FAULT_SETTLE_MS: u64 = 15_000;

/// A class of anomaly, each with its own verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Two different values at one (partition, offset).
    InconsistentOffsets,
    /// One value at two or more (partition, offset) positions.
    Duplicates,
    /// An acknowledged value never read, though a later offset of its partition was.
    LostWrites,
    /// One producer's acknowledged sends to a partition, in send order, with offsets that
    /// do not increase.
    NonMonotonicSends,
    /// An assign-mode consumer read o1 then o2 > o1 + 1 of a partition, and some offset
    /// between is known to hold a value.
    PollSkips,
    /// An assign-mode consumer read an offset at or below the one it read before.
    NonMonotonicPolls,
    /// A value read whose send failed (certainly not written).
    AbortedReads,
    /// An acknowledged value no read saw, and no read went past.
    Unseen,
    /// Weir: an assign-mode consumer read o1 then o2 > o1 + 1, and no offset between is
    /// known. Weir's offsets are dense, so records were skipped all the same.
    OffsetGaps,
    /// A partition's sampled high watermark went down, or was below the log start offset.
    WatermarkRegressions,
    /// A partition's log start offset went down: one observation of it (a ListOffsets
    /// sample, a DeleteRecords answer, the index after the run) below another completed
    /// before it began.
    LogStartRegressions,
    /// A known record below a log start offset observed, which neither a DeleteRecords
    /// the harness asked for (past its offset, before) nor the topic's retention (its
    /// record older than `retention.ms` by then, while that was in force) may have
    /// removed.
    UnexplainedRemovals,
    /// A consumer's fetch of a live offset failed: KAFKA_STORAGE_ERROR (or another
    /// storage error) not below the log start and outside every object-store fault of
    /// the agent that answered, or OFFSET_OUT_OF_RANGE for an offset certainly between
    /// the log start and the high watermark; or an agent counted a fetch that found an
    /// object the index names missing from the bucket (`weir_fetch_missing_objects_total`).
    LiveFetchFailures,
    /// A partition's sampled committed offset (the subscribe consumers' group) went
    /// down while no fault was in force or had just healed: a restarted consumer would
    /// re-read records the group had committed. (Near a fault, librdkafka itself resends
    /// a failed asynchronous commit after newer ones, so a regression there is counted in
    /// the stats, not as an anomaly: Kafka would store the same.)
    CommittedOffsetRegressions,
    /// Weir: an index entry points at an object the bucket does not hold.
    DanglingIndexEntries,
    /// Weir: once the lifecycle settled (every dereferenced object's deletion grace and
    /// the orphan sweep waited for), an object in the bucket that no index entry names.
    LeakedObjects,
    /// Weir: a partition's index entries overlap or leave a gap.
    IndexGaps,
    /// Weir: an unreferenced object outlived garbage collection's grace and two rounds.
    UncollectedOrphans,
    /// Weir: an acknowledged offset that no index entry of its partition covers.
    AckedNotInIndex,
}

impl Class {
    /// Every class, in the order the report shows them.
    pub const ALL: [Class; 19] = [
        Class::InconsistentOffsets,
        Class::Duplicates,
        Class::LostWrites,
        Class::NonMonotonicSends,
        Class::PollSkips,
        Class::NonMonotonicPolls,
        Class::AbortedReads,
        Class::Unseen,
        Class::OffsetGaps,
        Class::WatermarkRegressions,
        Class::LogStartRegressions,
        Class::UnexplainedRemovals,
        Class::LiveFetchFailures,
        Class::CommittedOffsetRegressions,
        Class::DanglingIndexEntries,
        Class::LeakedObjects,
        Class::IndexGaps,
        Class::UncollectedOrphans,
        Class::AckedNotInIndex,
    ];

    /// The name the report prints, e.g. `lost-writes`.
    pub fn name(self) -> &'static str {
        match self {
            Class::InconsistentOffsets => "inconsistent-offsets",
            Class::Duplicates => "duplicates",
            Class::LostWrites => "lost-writes",
            Class::NonMonotonicSends => "non-monotonic-sends",
            Class::PollSkips => "poll-skips",
            Class::NonMonotonicPolls => "non-monotonic-polls",
            Class::AbortedReads => "aborted-reads",
            Class::Unseen => "unseen",
            Class::OffsetGaps => "offset-gaps",
            Class::WatermarkRegressions => "watermark-regressions",
            Class::LogStartRegressions => "log-start-regressions",
            Class::UnexplainedRemovals => "unexplained-removals",
            Class::LiveFetchFailures => "live-fetch-failures",
            Class::CommittedOffsetRegressions => "committed-offset-regressions",
            Class::DanglingIndexEntries => "dangling-index-entries",
            Class::LeakedObjects => "leaked-objects",
            Class::IndexGaps => "index-gaps",
            Class::UncollectedOrphans => "uncollected-orphans",
            Class::AckedNotInIndex => "acked-not-in-index",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One class's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The history lacks what the class needs (no index, no bucket listing).
    NotChecked,
    /// `count` anomalies; the first few described precisely enough to find in the history.
    Checked { count: usize, examples: Vec<String> },
}

/// Counts anomalies of one class and keeps the first few as examples.
#[derive(Debug, Default)]
struct Findings {
    count: usize,
    examples: Vec<String>,
}

impl Findings {
    fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example());
        }
    }

    fn verdict(self) -> Verdict {
        Verdict::Checked {
            count: self.count,
            examples: self.examples,
        }
    }
}

/// What the history holds, besides anomalies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: usize,
    /// First and last `time_ms`.
    pub span_ms: Option<(u64, u64)>,
    pub sends_invoked: usize,
    pub sends_ok: usize,
    pub sends_fail: usize,
    pub sends_info: usize,
    /// Sends invoked and never completed (the process crashed): indeterminate.
    pub sends_pending: usize,
    /// Indeterminate sends (`info` or never completed) whose value some read saw.
    pub recovered: usize,
    /// Sends acked without an offset (librdkafka's -1001, for records a later
    /// acknowledged request proved written): checked by value, not by position.
    pub acked_without_offset: usize,
    pub polls: usize,
    /// Records read, counting every read of every value.
    pub reads: usize,
    pub distinct_values_read: usize,
    /// Faults the nemesis started.
    pub faults: usize,
    /// Committed-offset samples below an earlier one taken while a fault was in force or
    /// within [`FAULT_SETTLE_MS`] of one healing: librdkafka's resent commits.
    pub committed_regressions_near_faults: usize,
    /// The highest known offset of every partition the history mentions.
    pub max_offsets: BTreeMap<i32, Option<i64>>,
    /// What the data lifecycle did, as the history shows it.
    pub lifecycle: LifecycleStats,
}

/// The data lifecycle in a history: DeleteRecords asked for, what left the partitions'
/// heads, and the errors consumers' fetches met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    pub delete_records_asked: usize,
    pub delete_records_ok: usize,
    /// The highest log start offset observed of each partition that had one above 0.
    pub log_starts: BTreeMap<i32, i64>,
    /// Known records below a log start observed, and those of them a DeleteRecords or
    /// retention allowed removing (the rest are `unexplained-removals`).
    pub removed: usize,
    pub removed_by_delete_records: usize,
    pub removed_by_retention: usize,
    /// Acknowledged values never read that were removed so (the Jepsen classes skip them).
    pub removed_unread: usize,
    /// Jumps of an `assign` consumer over offsets removed under it (OFFSET_OUT_OF_RANGE,
    /// then the log start): not gaps.
    pub jumps_over_removed: usize,
    /// Fetch errors consumers met, by librdkafka's name for the code.
    pub fetch_errors: BTreeMap<String, usize>,
    /// Storage errors met while an object-store fault held the agent that answered (or
    /// just after): not anomalies.
    pub storage_errors_near_store_faults: usize,
}

impl LifecycleStats {
    fn is_empty(&self) -> bool {
        *self == LifecycleStats::default()
    }
}

impl fmt::Display for LifecycleStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lifecycle: {} DeleteRecords asked ({} ok); log starts:",
            self.delete_records_asked, self.delete_records_ok
        )?;
        if self.log_starts.is_empty() {
            write!(f, " all 0")?;
        }
        for (partition, offset) in &self.log_starts {
            write!(f, " p{partition}={offset}")?;
        }
        write!(
            f,
            "; {} known records removed ({} as DeleteRecords asked, {} by retention, {} with \
             no cause; {} of them never read); {} consumer jumps over removed offsets; fetch \
             errors:",
            self.removed,
            self.removed_by_delete_records,
            self.removed_by_retention,
            self.removed - self.removed_by_delete_records - self.removed_by_retention,
            self.removed_unread,
            self.jumps_over_removed
        )?;
        if self.fetch_errors.is_empty() {
            write!(f, " none")?;
        }
        for (error, count) in &self.fetch_errors {
            write!(f, " {error} {count}")?;
        }
        if self.storage_errors_near_store_faults > 0 {
            write!(
                f,
                " ({} storage errors during object-store faults)",
                self.storage_errors_near_store_faults
            )?;
        }
        writeln!(f)
    }
}

/// What the checker found.
#[derive(Debug, Clone)]
pub struct Report {
    pub stats: Stats,
    /// One verdict per class, in the order of [`Class::ALL`].
    pub verdicts: Vec<(Class, Verdict)>,
    /// Places where the history breaks its own format's rules (a completion without an
    /// invoke, a value sent twice): not anomalies of the system, but worth reading.
    pub warnings: Vec<String>,
    /// How many warnings there were, when more than were kept.
    pub warning_count: usize,
}

impl Report {
    /// No anomaly of any class.
    pub fn is_clean(&self) -> bool {
        self.anomalies() == 0
    }

    /// How many anomalies of `class` were found (0 when it was not checked).
    pub fn count(&self, class: Class) -> usize {
        self.verdicts
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0, |(_, verdict)| match verdict {
                Verdict::NotChecked => 0,
                Verdict::Checked { count, .. } => *count,
            })
    }

    /// The classes with at least one anomaly.
    pub fn found(&self) -> Vec<Class> {
        Class::ALL
            .into_iter()
            .filter(|class| self.count(*class) > 0)
            .collect()
    }

    /// Whether `class` was checked.
    pub fn checked(&self, class: Class) -> bool {
        self.verdicts
            .iter()
            .any(|(c, verdict)| *c == class && *verdict != Verdict::NotChecked)
    }

    /// Anomalies of every class together.
    pub fn anomalies(&self) -> usize {
        Class::ALL.into_iter().map(|class| self.count(class)).sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = self.span_ms.map_or(0, |(first, last)| last - first);
        writeln!(
            f,
            "{} events over {:.1} s, {} partitions, {} faults; sends: {} invoked, {} ok \
             ({} without an offset), {} fail, {} info, {} never completed, {} indeterminate \
             recovered by a read; polls: {}, {} records read, {} distinct values",
            self.events,
            span as f64 / 1000.0,
            self.max_offsets.len(),
            self.faults,
            self.sends_invoked,
            self.sends_ok,
            self.acked_without_offset,
            self.sends_fail,
            self.sends_info,
            self.sends_pending,
            self.recovered,
            self.polls,
            self.reads,
            self.distinct_values_read,
        )?;
        if self.committed_regressions_near_faults > 0 {
            writeln!(
                f,
                "committed offsets that went down during or just after a fault (librdkafka \
                 resends a failed asynchronous commit after newer ones): {}",
                self.committed_regressions_near_faults
            )?;
        }
        if !self.lifecycle.is_empty() {
            write!(f, "{}", self.lifecycle)?;
        }
        write!(f, "max offsets:")?;
        for (partition, offset) in &self.max_offsets {
            match offset {
                Some(offset) => write!(f, " p{partition}={offset}")?,
                None => write!(f, " p{partition}=-")?,
            }
        }
        writeln!(f)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.stats)?;
        for (class, verdict) in &self.verdicts {
            match verdict {
                Verdict::NotChecked => writeln!(f, "  {:<28}  not checked", class.name())?,
                Verdict::Checked { count: 0, .. } => writeln!(f, "  {:<28}  ok", class.name())?,
                Verdict::Checked { count, examples } => {
                    writeln!(f, "  {:<28}  FOUND {count}", class.name())?;
                    for example in examples {
                        writeln!(f, "      {example}")?;
                    }
                    if *count > examples.len() {
                        writeln!(f, "      … and {} more", count - examples.len())?;
                    }
                }
            }
        }
        if self.warning_count > 0 {
            writeln!(f, "history warnings: {}", self.warning_count)?;
            for warning in &self.warnings {
                writeln!(f, "      {warning}")?;
            }
        }
        let anomalies = self.anomalies();
        if anomalies == 0 {
            writeln!(f, "verdict: no anomaly")
        } else {
            let classes = self.found().len();
            writeln!(
                f,
                "verdict: {anomalies} {} in {classes} {}",
                plural(anomalies, "anomaly", "anomalies"),
                plural(classes, "class", "classes")
            )
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Checks `history`.
pub fn check(history: &[Event]) -> Report {
    let mut scan = Scan::default();
    for event in history {
        scan.event(event);
    }
    scan.report()
}

type Position = (i32, i64);

/// Where a value was seen at a position.
#[derive(Debug, Clone, Copy)]
struct Sighting<'a> {
    read: bool,
    event: u64,
    process: &'a str,
}

impl fmt::Display for Sighting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.read { "read" } else { "acked" };
        write!(f, "{how} by {} at event {}", self.process, self.event)
    }
}

/// The values seen at one position: the first, and any different ones after it.
#[derive(Debug)]
struct Slot<'a> {
    value: u64,
    seen: Sighting<'a>,
    others: Vec<(u64, Sighting<'a>)>,
}

/// Where one value was seen.
#[derive(Debug, Default)]
struct Seen<'a> {
    /// Each distinct position, with its first sighting.
    positions: Vec<(Position, Sighting<'a>)>,
    first_read: Option<Sighting<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    Pending,
    Ok { offset: Option<i64>, event: u64 },
    Fail { event: u64 },
    Info { event: u64 },
}

#[derive(Debug)]
struct Send<'a> {
    process: &'a str,
    partition: i32,
    invoke: u64,
    /// When it was invoked (`time_ms`): its record's timestamp is no earlier.
    invoke_ms: u64,
    completion: Completion,
}

/// One consumer's current assignment epoch.
#[derive(Debug, Default)]
struct Consumer {
    /// None until the consumer logs an Assign: its reads are then not checked for order.
    mode: Option<Mode>,
    /// The last read of each partition in this epoch: (offset, event).
    last: HashMap<i32, (i64, u64)>,
}

/// Two consecutive reads of a partition in one epoch, with offsets between them unread.
#[derive(Debug)]
struct Gap<'a> {
    process: &'a str,
    partition: i32,
    from: (i64, u64),
    to: (i64, u64),
}

/// A partition's last sampled watermarks, each kept from the last sample that had it:
/// (log start offset, high watermark, event).
type Sample = (Option<i64>, Option<i64>, u64);

/// The bucket listing: (event, objects, gc grace ms, gc interval ms).
type Listing<'a> = (u64, &'a [BucketObject], u64, u64);

/// A partition's index as the oracle read it.
#[derive(Debug, Clone, Copy)]
struct IndexSnapshot<'a> {
    event: u64,
    entries: &'a [IndexEntry],
    log_start: Option<i64>,
    high_watermark: Option<i64>,
}

/// What one pass over the history gathers.
#[derive(Debug, Default)]
struct Scan<'a> {
    stats: Stats,
    sends: HashMap<u64, Send<'a>>,
    /// Every sent value, in the order of its invoke.
    send_order: Vec<u64>,
    /// Each producer's values, in the order of invoke.
    producers: BTreeMap<&'a str, Vec<u64>>,
    slots: HashMap<Position, Slot<'a>>,
    seen: HashMap<u64, Seen<'a>>,
    known: HashMap<i32, BTreeSet<i64>>,
    /// The highest offset of each partition any read saw.
    max_read: HashMap<i32, (i64, Sighting<'a>)>,
    consumers: HashMap<&'a str, Consumer>,
    gaps: Vec<Gap<'a>>,
    non_monotonic_polls: Findings,
    /// The last sample of each (process, partition).
    watermarks: HashMap<(&'a str, i32), Sample>,
    /// The highest high watermark sampled of each partition so far.
    max_high: HashMap<i32, i64>,
    watermark_regressions: Findings,
    /// The last committed offset sampled for each partition: (offset, event).
    committed: HashMap<i32, (i64, u64)>,
    /// Faults in force, and when the last one healed (`time_ms`).
    faults_in_force: usize,
    last_heal_ms: Option<u64>,
    committed_samples: usize,
    committed_regressions: Findings,
    /// The last index of each partition.
    index: BTreeMap<i32, IndexSnapshot<'a>>,
    bucket: Option<Listing<'a>>,
    /// Whether the last bucket listing was taken once the lifecycle had settled.
    bucket_settled: bool,
    partitions: BTreeSet<i32>,
    warnings: Findings,
    lifecycle: Lifecycle<'a>,
}

impl<'a> Scan<'a> {
    fn event(&mut self, event: &'a Event) {
        self.stats.events += 1;
        self.stats.span_ms = Some(match self.stats.span_ms {
            None => (event.time_ms, event.time_ms),
            Some((first, last)) => (first.min(event.time_ms), last.max(event.time_ms)),
        });
        match (&event.op, event.outcome) {
            (
                Op::Send {
                    partition,
                    value,
                    offset,
                    ..
                },
                outcome,
            ) => self.send(event, *partition, *value, *offset, outcome),
            (Op::Poll { reads, .. }, Outcome::Ok) => {
                self.stats.polls += 1;
                for read in reads {
                    self.read(event, read.partition(), read.offset(), read.value());
                }
            }
            (Op::Assign { mode, .. }, Outcome::Ok) => {
                self.consumers.insert(
                    &event.process,
                    Consumer {
                        mode: Some(*mode),
                        last: HashMap::new(),
                    },
                );
            }
            (Op::Watermarks { partition, .. }, Outcome::Invoke) => {
                self.lifecycle.invoked(event, *partition);
            }
            (
                Op::Watermarks {
                    partition,
                    low,
                    high,
                    ..
                },
                Outcome::Ok,
            ) => self.watermarks(event, *partition, *low, *high),
            (
                Op::Committed {
                    partition, offset, ..
                },
                Outcome::Ok,
            ) => self.committed(event, *partition, *offset),
            (Op::Nemesis { fault, target }, outcome) => {
                if outcome == Outcome::Invoke {
                    self.stats.faults += 1;
                    self.faults_in_force += 1;
                } else {
                    self.faults_in_force = self.faults_in_force.saturating_sub(1);
                    self.last_heal_ms = Some(event.time_ms);
                }
                self.lifecycle.nemesis(event, fault, target);
            }
            (
                Op::Index {
                    partition,
                    log_start,
                    high_watermark,
                    entries,
                },
                Outcome::Ok,
            ) => {
                self.partitions.insert(*partition);
                self.index.insert(
                    *partition,
                    IndexSnapshot {
                        event: event.index,
                        entries,
                        log_start: *log_start,
                        high_watermark: *high_watermark,
                    },
                );
                if let Some(low) = log_start {
                    self.lifecycle.observe(event, *partition, *low);
                }
            }
            (
                Op::Bucket {
                    objects,
                    gc_grace_ms,
                    gc_interval_ms,
                    settled,
                },
                Outcome::Ok,
            ) => {
                self.bucket = Some((event.index, objects, *gc_grace_ms, *gc_interval_ms));
                self.bucket_settled = *settled;
            }
            (
                Op::Agents { .. }
                | Op::TopicConfig { .. }
                | Op::DeleteRecords { .. }
                | Op::MissingObjects { .. },
                _,
            ) => self.lifecycle.event(event),
            (Op::FetchError { .. }, _) => self.fetch_error(event),
            _ => {}
        }
    }

    fn send(
        &mut self,
        event: &'a Event,
        partition: i32,
        value: u64,
        offset: Option<i64>,
        outcome: Outcome,
    ) {
        self.partitions.insert(partition);
        let process = event.process.as_str();
        if outcome == Outcome::Invoke {
            self.stats.sends_invoked += 1;
            if let Some(earlier) = self.sends.get(&value) {
                let invoke = earlier.invoke;
                self.warnings.add(|| {
                    format!(
                        "value {value} sent again at event {} (first sent at event {invoke}); \
                         the second send is ignored",
                        event.index
                    )
                });
                return;
            }
            self.sends.insert(
                value,
                Send {
                    process,
                    partition,
                    invoke: event.index,
                    invoke_ms: event.time_ms,
                    completion: Completion::Pending,
                },
            );
            self.send_order.push(value);
            self.producers.entry(process).or_default().push(value);
            return;
        }
        let send = match self.sends.get_mut(&value) {
            Some(send) => send,
            None => {
                self.warnings.add(|| {
                    format!(
                        "send of value {value} completed at event {} without an invoke",
                        event.index
                    )
                });
                self.send_order.push(value);
                self.producers.entry(process).or_default().push(value);
                self.sends.entry(value).or_insert(Send {
                    process,
                    partition,
                    invoke: event.index,
                    invoke_ms: event.time_ms,
                    completion: Completion::Pending,
                })
            }
        };
        if send.completion != Completion::Pending {
            self.warnings.add(|| {
                format!(
                    "send of value {value} completed again at event {}; ignored",
                    event.index
                )
            });
            return;
        }
        // librdkafka acks some records without an offset (-1001): those a later
        // acknowledged request proved written. A negative offset is no position.
        let offset = offset.filter(|offset| *offset >= 0);
        send.completion = match outcome {
            Outcome::Ok => Completion::Ok {
                offset,
                event: event.index,
            },
            Outcome::Fail => Completion::Fail { event: event.index },
            Outcome::Info | Outcome::Invoke => Completion::Info { event: event.index },
        };
        match outcome {
            Outcome::Ok => self.stats.sends_ok += 1,
            Outcome::Fail => self.stats.sends_fail += 1,
            Outcome::Info | Outcome::Invoke => self.stats.sends_info += 1,
        }
        if outcome == Outcome::Ok {
            match offset {
                Some(offset) => self.sighting(
                    value,
                    (partition, offset),
                    Sighting {
                        read: false,
                        event: event.index,
                        process,
                    },
                ),
                None => self.stats.acked_without_offset += 1,
            }
        }
    }

    fn read(&mut self, event: &'a Event, partition: i32, offset: i64, value: u64) {
        self.stats.reads += 1;
        self.partitions.insert(partition);
        let process = event.process.as_str();
        let sighting = Sighting {
            read: true,
            event: event.index,
            process,
        };
        self.sighting(value, (partition, offset), sighting);
        self.seen
            .entry(value)
            .or_default()
            .first_read
            .get_or_insert(sighting);
        let max = self.max_read.entry(partition).or_insert((offset, sighting));
        if offset > max.0 {
            *max = (offset, sighting);
        }

        let consumer = self.consumers.entry(process).or_default();
        if consumer.mode != Some(Mode::Assign) {
            return;
        }
        if let Some(&(previous, previous_event)) = consumer.last.get(&partition) {
            if offset <= previous {
                self.non_monotonic_polls.add(|| {
                    format!(
                        "{process} read partition {partition} offset {offset} (value {value}) at \
                         event {} after offset {previous} at event {previous_event}",
                        event.index
                    )
                });
            } else if offset > previous + 1 {
                self.gaps.push(Gap {
                    process,
                    partition,
                    from: (previous, previous_event),
                    to: (offset, event.index),
                });
            }
        }
        consumer.last.insert(partition, (offset, event.index));
    }

    /// Records that `value` was at `position`.
    fn sighting(&mut self, value: u64, position: Position, sighting: Sighting<'a>) {
        self.known.entry(position.0).or_default().insert(position.1);
        let slot = self.slots.entry(position).or_insert(Slot {
            value,
            seen: sighting,
            others: Vec::new(),
        });
        if slot.value != value && slot.others.iter().all(|(other, _)| *other != value) {
            slot.others.push((value, sighting));
        }
        let seen = self.seen.entry(value).or_default();
        if seen.positions.iter().all(|(p, _)| *p != position) {
            seen.positions.push((position, sighting));
        }
    }

    fn watermarks(
        &mut self,
        event: &'a Event,
        partition: i32,
        low: Option<i64>,
        high: Option<i64>,
    ) {
        self.partitions.insert(partition);
        let process = event.process.as_str();
        if let (Some(low), Some(high)) = (low, high)
            && high < low
        {
            self.watermark_regressions.add(|| {
                format!(
                    "partition {partition}: high watermark {high} below log start offset \
                     {low} at event {} ({process})",
                    event.index
                )
            });
        }
        let last = self
            .watermarks
            .entry((process, partition))
            .or_insert((None, None, event.index));
        if let (Some(previous), Some(now)) = (last.1, high)
            && now < previous
        {
            let previous_event = last.2;
            self.watermark_regressions.add(|| {
                format!(
                    "partition {partition}: high watermark went from {previous} (event \
                     {previous_event}) down to {now} (event {}, {process})",
                    event.index
                )
            });
        }
        *last = (low.or(last.0), high.or(last.1), event.index);
        if let Some(high) = high {
            let max = self.max_high.entry(partition).or_insert(high);
            *max = (*max).max(high);
        }
        if let Some(low) = low {
            self.lifecycle.observe(event, partition, low);
        }
    }

    fn committed(&mut self, event: &'a Event, partition: i32, offset: Option<i64>) {
        self.committed_samples += 1;
        let Some(offset) = offset else { return };
        let near_fault = self.faults_in_force > 0
            || self
                .last_heal_ms
                .is_some_and(|healed| event.time_ms <= healed + FAULT_SETTLE_MS);
        if let Some(&(previous, previous_event)) = self.committed.get(&partition)
            && offset < previous
        {
            if near_fault {
                self.stats.committed_regressions_near_faults += 1;
                self.committed.insert(partition, (offset, event.index));
                return;
            }
            self.committed_regressions.add(|| {
                format!(
                    "partition {partition}: committed offset went from {previous} (event \
                     {previous_event}) down to {offset} (event {}, {})",
                    event.index, event.process
                )
            });
        }
        self.committed.insert(partition, (offset, event.index));
    }

    fn report(mut self) -> Report {
        let verdicts = vec![
            (Class::InconsistentOffsets, self.inconsistent_offsets()),
            (Class::Duplicates, self.duplicates()),
            (Class::LostWrites, self.unread(true)),
            (Class::NonMonotonicSends, self.non_monotonic_sends()),
            (Class::PollSkips, self.gaps(true)),
            (
                Class::NonMonotonicPolls,
                std::mem::take(&mut self.non_monotonic_polls).verdict(),
            ),
            (Class::AbortedReads, self.aborted_reads()),
            (Class::Unseen, self.unread(false)),
            (Class::OffsetGaps, self.gaps(false)),
            (
                Class::WatermarkRegressions,
                std::mem::take(&mut self.watermark_regressions).verdict(),
            ),
            (
                Class::LogStartRegressions,
                self.lifecycle.take_log_start_regressions(),
            ),
            (Class::UnexplainedRemovals, self.unexplained_removals()),
            (Class::LiveFetchFailures, self.live_fetch_failures()),
            (
                Class::CommittedOffsetRegressions,
                if self.committed_samples == 0 {
                    Verdict::NotChecked
                } else {
                    std::mem::take(&mut self.committed_regressions).verdict()
                },
            ),
            (Class::DanglingIndexEntries, self.dangling_index_entries()),
            (Class::LeakedObjects, self.leaked_objects()),
            (Class::IndexGaps, self.index_gaps()),
            (Class::UncollectedOrphans, self.uncollected_orphans()),
            (Class::AckedNotInIndex, self.acked_not_in_index()),
        ];
        self.finish_stats();
        Report {
            stats: self.stats,
            verdicts,
            warning_count: self.warnings.count,
            warnings: self.warnings.examples,
        }
    }

    fn finish_stats(&mut self) {
        self.lifecycle_stats();
        for send in self.sends.values() {
            if send.completion == Completion::Pending {
                self.stats.sends_pending += 1;
            }
        }
        self.stats.recovered = self
            .sends
            .iter()
            .filter(|(value, send)| {
                matches!(
                    send.completion,
                    Completion::Pending | Completion::Info { .. }
                ) && self.was_read(**value)
            })
            .count();
        self.stats.distinct_values_read = self
            .seen
            .values()
            .filter(|seen| seen.first_read.is_some())
            .count();
        self.stats.max_offsets = self
            .partitions
            .iter()
            .map(|partition| {
                let max = self
                    .known
                    .get(partition)
                    .and_then(|offsets| offsets.last().copied());
                (*partition, max)
            })
            .collect();
    }

    fn was_read(&self, value: u64) -> bool {
        self.seen
            .get(&value)
            .is_some_and(|seen| seen.first_read.is_some())
    }

    /// The acked offset of a sent value, if it was acked with one.
    fn acked(&self, value: u64) -> Option<(i64, u64)> {
        match self.sends.get(&value)?.completion {
            Completion::Ok {
                offset: Some(offset),
                event,
            } => Some((offset, event)),
            _ => None,
        }
    }

    fn inconsistent_offsets(&self) -> Verdict {
        let mut positions: Vec<_> = self
            .slots
            .iter()
            .filter(|(_, slot)| !slot.others.is_empty())
            .collect();
        positions.sort_by_key(|(position, _)| **position);
        let mut findings = Findings::default();
        for ((partition, offset), slot) in positions {
            findings.add(|| {
                let others: Vec<String> = slot
                    .others
                    .iter()
                    .map(|(value, seen)| format!("value {value} ({seen})"))
                    .collect();
                format!(
                    "partition {partition} offset {offset}: value {} ({}) and {}",
                    slot.value,
                    slot.seen,
                    others.join(", ")
                )
            });
        }
        findings.verdict()
    }

    fn duplicates(&self) -> Verdict {
        let mut values: Vec<_> = self
            .seen
            .iter()
            .filter(|(_, seen)| seen.positions.len() > 1)
            .collect();
        values.sort_by_key(|(value, _)| **value);
        let mut findings = Findings::default();
        for (value, seen) in values {
            findings.add(|| {
                let positions: Vec<String> = seen
                    .positions
                    .iter()
                    .map(|((partition, offset), sighting)| {
                        format!("partition {partition} offset {offset} ({sighting})")
                    })
                    .collect();
                format!("value {value} at {}", positions.join(" and "))
            });
        }
        findings.verdict()
    }

    /// Acked values no read saw: `lost` ones where a read went past their offset, or
    /// the unseen rest. Values below their partition's last log start observed were
    /// removed, and `unexplained-removals` asks whether that was allowed.
    fn unread(&self, lost: bool) -> Verdict {
        let mut findings = Findings::default();
        for &value in &self.send_order {
            if self.was_read(value) {
                continue;
            }
            let send = &self.sends[&value];
            let log_start = self.lifecycle.log_start(send.partition);
            let (offset, ack_event) = match send.completion {
                Completion::Ok {
                    offset: Some(offset),
                    event,
                } => (offset, event),
                Completion::Ok {
                    offset: None,
                    event,
                } => {
                    // Its offset is below the next one its producer got on the
                    // partition: removed if that one was.
                    let removed = self
                        .next_acked_offset(value)
                        .is_some_and(|next| next < log_start);
                    if !lost && !removed {
                        findings.add(|| {
                            format!(
                                "value {value} acked by {} at partition {} without an offset \
                                 (event {event}) never read",
                                send.process, send.partition
                            )
                        });
                    }
                    continue;
                }
                _ => continue,
            };
            if offset < log_start {
                continue;
            }
            let partition = send.partition;
            let past = self
                .max_read
                .get(&partition)
                .filter(|(max, _)| *max > offset);
            match (lost, past) {
                (true, Some((max, sighting))) => findings.add(|| {
                    format!(
                        "value {value} acked by {} at partition {partition} offset {offset} \
                         (event {ack_event}) never read, though offset {max} was ({sighting})",
                        send.process
                    )
                }),
                (false, None) => findings.add(|| {
                    format!(
                        "value {value} acked by {} at partition {partition} offset {offset} \
                         (event {ack_event}) never read; no read reached past offset {}",
                        send.process,
                        self.max_read
                            .get(&partition)
                            .map_or("-".to_string(), |(max, _)| max.to_string())
                    )
                }),
                _ => {}
            }
        }
        findings.verdict()
    }

    fn non_monotonic_sends(&self) -> Verdict {
        let mut findings = Findings::default();
        for (process, values) in &self.producers {
            // The last acked send of each partition: (offset, value, ack event).
            let mut last: HashMap<i32, (i64, u64, u64)> = HashMap::new();
            for &value in values {
                let Some((offset, event)) = self.acked(value) else {
                    continue;
                };
                let partition = self.sends[&value].partition;
                if let Some(&(previous, previous_value, previous_event)) = last.get(&partition)
                    && offset <= previous
                {
                    findings.add(|| {
                        format!(
                            "{process} sent value {previous_value} (acked offset {previous}, \
                             event {previous_event}) before value {value} (acked offset \
                             {offset}, event {event}) to partition {partition}"
                        )
                    });
                }
                last.insert(partition, (offset, value, event));
            }
        }
        findings.verdict()
    }

    /// Gaps between consecutive reads: `skips` where some offset between is known to hold
    /// a value, or the rest (Weir's offsets are dense, so those are gaps too).
    fn gaps(&self, skips: bool) -> Verdict {
        let mut findings = Findings::default();
        for gap in &self.gaps {
            if self.jumped_over_removed(gap) {
                continue;
            }
            let (from, from_event) = gap.from;
            let (to, to_event) = gap.to;
            let skipped = self
                .known
                .get(&gap.partition)
                .and_then(|known| known.range(from + 1..to).next().copied());
            match (skips, skipped) {
                (true, Some(skipped)) => findings.add(|| {
                    let value = self.slots[&(gap.partition, skipped)].value;
                    format!(
                        "{} read partition {} offset {from} (event {from_event}) then {to} \
                         (event {to_event}), skipping offset {skipped} (value {value})",
                        gap.process, gap.partition
                    )
                }),
                (false, None) => findings.add(|| {
                    format!(
                        "{} read partition {} offset {from} (event {from_event}) then {to} \
                         (event {to_event}); no one saw offsets {}..{}",
                        gap.process,
                        gap.partition,
                        from + 1,
                        to - 1
                    )
                }),
                _ => {}
            }
        }
        findings.verdict()
    }

    fn aborted_reads(&self) -> Verdict {
        let mut findings = Findings::default();
        for &value in &self.send_order {
            let send = &self.sends[&value];
            let Completion::Fail { event } = send.completion else {
                continue;
            };
            if let Some(read) = self.seen.get(&value).and_then(|seen| seen.first_read) {
                findings.add(|| {
                    format!(
                        "value {value} sent by {} to partition {} failed at event {event}, \
                         yet was {read}",
                        send.process, send.partition
                    )
                });
            }
        }
        findings.verdict()
    }

    fn dangling_index_entries(&self) -> Verdict {
        let Some((bucket_event, objects, ..)) = self.bucket else {
            return Verdict::NotChecked;
        };
        if self.index.is_empty() {
            return Verdict::NotChecked;
        }
        let listed: BTreeSet<&str> = objects.iter().map(|o| o.object.as_str()).collect();
        let mut findings = Findings::default();
        for (partition, snapshot) in &self.index {
            let event = snapshot.event;
            for entry in snapshot.entries {
                if !listed.contains(entry.object.as_str()) {
                    findings.add(|| {
                        format!(
                            "partition {partition} offsets {}..{} (index at event {event}) in \
                             object {}, which the bucket listing (event {bucket_event}) lacks",
                            entry.base_offset,
                            entry.base_offset + entry.record_count,
                            entry.object
                        )
                    });
                }
            }
        }
        findings.verdict()
    }

    fn index_gaps(&self) -> Verdict {
        if self.index.is_empty() {
            return Verdict::NotChecked;
        }
        let mut findings = Findings::default();
        for (partition, snapshot) in &self.index {
            let event = snapshot.event;
            let mut sorted: Vec<&IndexEntry> = snapshot.entries.iter().collect();
            sorted.sort_by_key(|entry| entry.base_offset);
            // The entries reach from the log start to the high watermark.
            let first = sorted.first().map(|e| e.base_offset);
            let end = sorted.last().map(|e| e.base_offset + e.record_count);
            if let Some(log_start) = snapshot.log_start
                && first
                    .or(snapshot.high_watermark)
                    .is_some_and(|f| f > log_start)
            {
                findings.add(|| {
                    format!(
                        "partition {partition} (index at event {event}): the log starts at \
                         {log_start} and the first entry at {}",
                        first.map_or("-".to_string(), |f| f.to_string())
                    )
                });
            }
            if let Some(high) = snapshot.high_watermark
                && end.is_some_and(|end| end != high)
            {
                findings.add(|| {
                    format!(
                        "partition {partition} (index at event {event}): the entries end at \
                         {} and the high watermark is {high}",
                        end.unwrap_or_default()
                    )
                });
            }
            for entry in &sorted {
                if entry.record_count <= 0 {
                    findings.add(|| {
                        format!(
                            "partition {partition} (index at event {event}): entry at offset {} \
                             in object {} holds {} records",
                            entry.base_offset, entry.object, entry.record_count
                        )
                    });
                }
            }
            for pair in sorted.windows(2) {
                let (before, after) = (pair[0], pair[1]);
                let end = before.base_offset + before.record_count;
                if after.base_offset != end {
                    let what = if after.base_offset < end {
                        "overlaps"
                    } else {
                        "leaves a gap after"
                    };
                    findings.add(|| {
                        format!(
                            "partition {partition} (index at event {event}): offsets {}..{} in \
                             object {} {what} offsets {}..{end} in object {}",
                            after.base_offset,
                            after.base_offset + after.record_count,
                            after.object,
                            before.base_offset,
                            before.object
                        )
                    });
                }
            }
        }
        findings.verdict()
    }

    fn uncollected_orphans(&self) -> Verdict {
        let Some((event, objects, grace, interval)) = self.bucket else {
            return Verdict::NotChecked;
        };
        let limit = grace.saturating_add(interval.saturating_mul(2));
        let mut findings = Findings::default();
        for object in objects {
            if !object.referenced && object.age_ms > limit {
                findings.add(|| {
                    format!(
                        "object {} unreferenced and {} ms old at event {event} (grace {grace} \
                         ms + 2 × interval {interval} ms = {limit} ms)",
                        object.object, object.age_ms
                    )
                });
            }
        }
        findings.verdict()
    }

    fn acked_not_in_index(&self) -> Verdict {
        if self.index.is_empty() {
            return Verdict::NotChecked;
        }
        // Each partition's entries as base offset → end offset.
        let covered: HashMap<i32, BTreeMap<i64, i64>> = self
            .index
            .iter()
            .map(|(partition, snapshot)| {
                let ranges = snapshot
                    .entries
                    .iter()
                    .map(|entry| (entry.base_offset, entry.base_offset + entry.record_count))
                    .collect();
                (*partition, ranges)
            })
            .collect();
        let mut findings = Findings::default();
        for &value in &self.send_order {
            let Some((offset, event)) = self.acked(value) else {
                continue;
            };
            let send = &self.sends[&value];
            // Below the log start the index has let it go (whether it could is
            // `unexplained-removals`'s question).
            let log_start = self
                .index
                .get(&send.partition)
                .and_then(|snapshot| snapshot.log_start)
                .unwrap_or(0);
            if offset < log_start {
                continue;
            }
            let is_covered = covered.get(&send.partition).is_some_and(|ranges| {
                ranges
                    .range(..=offset)
                    .next_back()
                    .is_some_and(|(_, end)| offset < *end)
            });
            if !is_covered {
                findings.add(|| {
                    format!(
                        "value {value} acked by {} at partition {} offset {offset} (event \
                         {event}), which no index entry covers",
                        send.process, send.partition
                    )
                });
            }
        }
        findings.verdict()
    }
}

#[cfg(test)]
mod tests;
