//! The classes of the data lifecycle: records leave a partition's head only by
//! retention and DeleteRecords, the log start never goes back, a fetch of a live offset
//! never fails for an object the lifecycle took away, and once the lifecycle settles no
//! object is left in the bucket that the index does not name.
//!
//! What the log start offset was is observed three ways: the sampler's ListOffsets
//! (EARLIEST), each DeleteRecords answer (the low watermark) and the index after the
//! run. Each observation was true at some moment between its invoke and its
//! completion, so two of them are ordered only when one completed before the other was
//! invoked; nothing else is assumed of them.

use std::collections::HashMap;

use super::{Findings, Gap, Scan, Verdict};
use crate::history::{Event, Op, Outcome};

/// How long after `retention.ms` changes a retention pass may still apply the old one:
/// a pass reads every topic's configs once, when it starts, and one that began before
/// the change (or whose control plane was paused mid-pass) trims with what it read.
pub const RETENTION_SETTLE_MS: u64 = 15_000;

/// How long after an object-store fault heals a fetch may still fail because of it: a
/// read that began under it ends at most after the store client's 10 s request timeout
/// and retries, none started after 10 s.
pub const STORE_SETTLE_MS: u64 = 20_000;

/// Tolerance between the history's clock (a monotonic one, from the run's start) and
/// the wall clock of record timestamps and of retention.
const CLOCK_SLACK_MS: u64 = 250;

/// The errors a fetch answer carries when reading the bucket failed (librdkafka's
/// names): the agent answers KAFKA_STORAGE_ERROR for a read that failed, UNKNOWN
/// (UNKNOWN_SERVER_ERROR) for what it cannot say, and a batch that does not decode
/// would be a corrupt message.
const STORAGE_ERRORS: [&str; 3] = ["KAFKA_STORAGE_ERROR", "UNKNOWN", "INVALID_MSG"];

/// The nemesis's faults that can fail an agent's reads from the bucket, and on whom.
fn holds_reads(fault: &str, target: &str) -> bool {
    matches!(fault, "store-errors" | "store-latency") || (fault == "pause" && target == "s3-server")
}

/// One observation of a partition's log start offset.
#[derive(Debug, Clone, Copy)]
struct Observation<'a> {
    /// Its invoke's event (its own, for the index).
    invoke: u64,
    event: u64,
    time_ms: u64,
    low: i64,
    /// Who observed it: `sampler`, `deleter`, `oracle`.
    process: &'a str,
}

/// A partition's observations in the order they completed, each with the highest log
/// start observed up to it (and which observation that was).
#[derive(Debug, Default)]
struct Observations<'a> {
    all: Vec<Observation<'a>>,
    highest: Vec<(i64, usize)>,
}

impl<'a> Observations<'a> {
    /// The highest log start among observations completed before `event`.
    fn highest_before(&self, event: u64) -> Option<(i64, &Observation<'a>)> {
        let completed = self.all.partition_point(|o| o.event < event);
        let (low, at) = *self.highest.get(completed.checked_sub(1)?)?;
        Some((low, &self.all[at]))
    }

    /// The first observation invoked after `event`.
    fn first_after(&self, event: u64) -> Option<&Observation<'a>> {
        let from = self.all.partition_point(|o| o.event <= event);
        self.all[from..].iter().find(|o| o.invoke > event)
    }

    /// The first observation whose highest log start so far is above `offset`: the
    /// first to show it removed.
    fn first_past(&self, offset: i64) -> Option<&Observation<'a>> {
        let at = self.highest.partition_point(|(low, _)| *low <= offset);
        self.all.get(at)
    }

    fn highest(&self) -> i64 {
        self.highest.last().map_or(0, |(low, _)| *low)
    }
}

/// While one `retention.ms` was in force: from the invoke that set it, to a while after
/// the next change completed ([`RETENTION_SETTLE_MS`]).
#[derive(Debug, Clone, Copy)]
struct Retention {
    ms: i64,
    from_ms: u64,
    until_ms: Option<u64>,
}

/// A fault that can fail reads from the bucket, while in force and just after.
#[derive(Debug, Clone, Copy)]
struct StoreFault<'a> {
    fault: &'a str,
    /// `agent-N`, or `s3-server` (every agent).
    target: &'a str,
    from_ms: u64,
    healed_ms: Option<u64>,
}

/// A fetch error a consumer logged, with what was known of its partition then.
#[derive(Debug, Clone, Copy)]
struct FetchFailure<'a> {
    event: u64,
    time_ms: u64,
    process: &'a str,
    partition: i32,
    offset: i64,
    error: &'a str,
    broker: &'a str,
    /// The highest log start observed, and the high watermark (sampled, or one past the
    /// highest known offset), before it.
    low_before: i64,
    high_before: i64,
}

/// What the lifecycle classes gather from the history.
#[derive(Debug, Default)]
pub(super) struct Lifecycle<'a> {
    retention: Vec<Retention>,
    /// The invoke of the `TopicConfig` in flight, by time.
    config_invoked_ms: Option<u64>,
    /// Each partition's DeleteRecords, in the order invoked: (event, offset), and the
    /// highest offset asked for up to each.
    deletes: HashMap<i32, Vec<(u64, i64)>>,
    observations: HashMap<i32, Observations<'a>>,
    /// Invokes waiting for their completion, by (process, partition).
    pending: HashMap<(&'a str, i32), u64>,
    regressions: Findings,
    store_faults: Vec<StoreFault<'a>>,
    /// The agents by the address clients reach them at.
    agents: HashMap<&'a str, &'a str>,
    fetch_failures: Vec<FetchFailure<'a>>,
    /// (agent, counted, logged, event) of each `MissingObjects`.
    missing: Vec<(&'a str, Option<u64>, u64, u64)>,
    delete_records_asked: usize,
    delete_records_ok: usize,
}

impl<'a> Lifecycle<'a> {
    /// An invoke whose completion will observe `partition`'s log start.
    pub(super) fn invoked(&mut self, event: &'a Event, partition: i32) {
        self.pending
            .insert((event.process.as_str(), partition), event.index);
    }

    /// An observation of `partition`'s log start at `low`, completing at `event`.
    pub(super) fn observe(&mut self, event: &'a Event, partition: i32, low: i64) {
        let process = event.process.as_str();
        let invoke = self
            .pending
            .remove(&(process, partition))
            .unwrap_or(event.index);
        let observations = self.observations.entry(partition).or_default();
        if let Some((before, earlier)) = observations.highest_before(invoke)
            && low < before
        {
            let (earlier_event, earlier_process) = (earlier.event, earlier.process);
            self.regressions.add(|| {
                format!(
                    "partition {partition}: log start {before} (event {earlier_event}, \
                     {earlier_process}), then {low} (event {}, {process}, asked at event \
                     {invoke})",
                    event.index
                )
            });
        }
        let at = observations.all.len();
        let highest = match observations.highest.last() {
            Some(&(high, which)) if high >= low => (high, which),
            _ => (low, at),
        };
        observations.all.push(Observation {
            invoke,
            event: event.index,
            time_ms: event.time_ms,
            low,
            process,
        });
        observations.highest.push(highest);
    }

    pub(super) fn take_log_start_regressions(&mut self) -> Verdict {
        std::mem::take(&mut self.regressions).verdict()
    }

    /// The highest log start observed of `partition` (0 without an observation).
    pub(super) fn log_start(&self, partition: i32) -> i64 {
        self.observations
            .get(&partition)
            .map_or(0, Observations::highest)
    }

    pub(super) fn nemesis(&mut self, event: &'a Event, fault: &'a str, target: &'a str) {
        if !holds_reads(fault, target) {
            return;
        }
        match event.outcome {
            Outcome::Invoke => self.store_faults.push(StoreFault {
                fault,
                target,
                from_ms: event.time_ms,
                healed_ms: None,
            }),
            _ => {
                if let Some(open) = self
                    .store_faults
                    .iter_mut()
                    .rev()
                    .find(|f| f.fault == fault && f.target == target && f.healed_ms.is_none())
                {
                    open.healed_ms = Some(event.time_ms);
                }
            }
        }
    }

    /// `Agents`, `TopicConfig`, `DeleteRecords` and `MissingObjects`.
    pub(super) fn event(&mut self, event: &'a Event) {
        match (&event.op, event.outcome) {
            (Op::Agents { agents }, _) => {
                for agent in agents {
                    self.agents
                        .insert(agent.address.as_str(), agent.name.as_str());
                }
            }
            (Op::TopicConfig { .. }, Outcome::Invoke) => {
                self.config_invoked_ms = Some(event.time_ms);
            }
            (Op::TopicConfig { retention_ms, .. }, Outcome::Ok) => {
                if let Some(open) = self.retention.last_mut()
                    && open.until_ms.is_none()
                {
                    open.until_ms = Some(event.time_ms + RETENTION_SETTLE_MS);
                }
                if let Some(ms) = *retention_ms {
                    self.retention.push(Retention {
                        ms,
                        from_ms: self.config_invoked_ms.unwrap_or(event.time_ms),
                        until_ms: None,
                    });
                }
            }
            (
                Op::DeleteRecords {
                    partition, offset, ..
                },
                Outcome::Invoke,
            ) => {
                self.delete_records_asked += 1;
                self.invoked(event, *partition);
                self.deletes
                    .entry(*partition)
                    .or_default()
                    .push((event.index, *offset));
            }
            (
                Op::DeleteRecords {
                    partition,
                    low: Some(low),
                    ..
                },
                Outcome::Ok,
            ) => {
                self.delete_records_ok += 1;
                self.observe(event, *partition, *low);
            }
            (Op::DeleteRecords { partition, .. }, _) => {
                self.pending.remove(&(event.process.as_str(), *partition));
            }
            (
                Op::MissingObjects {
                    agent,
                    counted,
                    logged,
                },
                _,
            ) => self.missing.push((agent, *counted, *logged, event.index)),
            _ => {}
        }
    }

    /// The highest offset a DeleteRecords of `partition` invoked before `event` asked
    /// for.
    fn deleted_below(&self, partition: i32, event: u64) -> Option<i64> {
        let asks = self.deletes.get(&partition)?;
        asks.iter()
            .take_while(|(invoke, _)| *invoke < event)
            .map(|(_, offset)| *offset)
            .max()
    }

    /// Whether retention may have removed a record sent at `sent_ms` by `by_ms`: some
    /// `retention.ms` in force then for long enough.
    fn retention_allows(&self, sent_ms: u64, by_ms: u64) -> Option<Retention> {
        self.retention.iter().copied().find(|r| {
            let until = r.until_ms.map_or(by_ms, |until| until.min(by_ms));
            let ms = u64::try_from(r.ms).unwrap_or(0);
            r.from_ms <= until && sent_ms + ms < until + CLOCK_SLACK_MS
        })
    }

    /// Whether a store fault on the agent at `broker` (librdkafka's `host:port/id`),
    /// or on the S3 server, was in force at `time_ms` or had just healed.
    fn store_fault_at(&self, broker: &str, time_ms: u64) -> bool {
        let address = broker.split('/').next().unwrap_or(broker);
        let agent = self.agents.get(address).copied();
        self.store_faults.iter().any(|f| {
            let on = f.target == "s3-server" || agent.is_none_or(|agent| agent == f.target);
            let until = f.healed_ms.map_or(u64::MAX, |h| h + STORE_SETTLE_MS);
            on && f.from_ms <= time_ms && time_ms <= until
        })
    }
}

impl<'a> Scan<'a> {
    /// A `FetchError`, with what the history knew of its partition by then.
    pub(super) fn fetch_error(&mut self, event: &'a Event) {
        let Op::FetchError {
            partition,
            offset,
            error,
            broker,
        } = &event.op
        else {
            return;
        };
        let high_known = self
            .known
            .get(partition)
            .and_then(|known| known.last())
            .map_or(0, |last| last + 1);
        let high_sampled = self.max_high.get(partition).copied().unwrap_or(0);
        let low_before = self
            .lifecycle
            .observations
            .get(partition)
            .map_or(0, Observations::highest);
        self.lifecycle.fetch_failures.push(FetchFailure {
            event: event.index,
            time_ms: event.time_ms,
            process: &event.process,
            partition: *partition,
            offset: *offset,
            error: error.as_str(),
            broker: broker.as_str(),
            low_before,
            high_before: high_known.max(high_sampled),
        });
    }

    /// The offset the next acknowledged send of `value`'s producer to its partition got.
    pub(super) fn next_acked_offset(&self, value: u64) -> Option<i64> {
        let send = self.sends.get(&value)?;
        let values = self.producers.get(send.process)?;
        let at = values.iter().position(|v| *v == value)?;
        values[at + 1..]
            .iter()
            .filter(|v| self.sends[*v].partition == send.partition)
            .find_map(|v| self.acked(*v).map(|(offset, _)| offset))
    }

    /// The first log start observed after `event` (a fetch error), if any.
    fn log_start_after(&self, partition: i32, event: u64) -> Option<i64> {
        self.lifecycle
            .observations
            .get(&partition)?
            .first_after(event)
            .map(|o| o.low)
    }

    /// Whether `gap` is a consumer's jump over offsets removed under it: its fetch
    /// after the last read was out of range (librdkafka then starts again from the log
    /// start), and the read after the gap is not past the log start observed next.
    pub(super) fn jumped_over_removed(&self, gap: &Gap<'a>) -> bool {
        self.lifecycle.fetch_failures.iter().any(|f| {
            f.process == gap.process
                && f.partition == gap.partition
                && f.error == "OFFSET_OUT_OF_RANGE"
                && gap.from.0 < f.offset
                && f.offset < gap.to.0
                && f.event < gap.to.1
                && self
                    .log_start_after(f.partition, f.event)
                    .is_none_or(|low| gap.to.0 <= low)
        })
    }

    pub(super) fn unexplained_removals(&self) -> Verdict {
        let mut findings = Findings::default();
        let mut partitions: Vec<_> = self.lifecycle.observations.iter().collect();
        partitions.sort_by_key(|(partition, _)| **partition);
        for (&partition, observations) in partitions {
            let Some(known) = self.known.get(&partition) else {
                continue;
            };
            for &offset in known.range(..observations.highest()) {
                let Some(removed) = observations.first_past(offset) else {
                    continue;
                };
                if let Some(why) = self.removal(partition, offset, removed) {
                    findings.add(why);
                }
            }
        }
        findings.verdict()
    }

    /// Why the removal of `offset` that `removed` shows had no cause (`None` if it had
    /// one, or the record is none of ours).
    fn removal(
        &self,
        partition: i32,
        offset: i64,
        removed: &Observation<'a>,
    ) -> Option<impl FnOnce() -> String> {
        if self
            .lifecycle
            .deleted_below(partition, removed.event)
            .is_some_and(|asked| asked > offset)
        {
            return None;
        }
        let value = self.slots.get(&(partition, offset))?.value;
        let send = self.sends.get(&value)?;
        if self
            .lifecycle
            .retention_allows(send.invoke_ms, removed.time_ms)
            .is_some()
        {
            return None;
        }
        let retention = match self.lifecycle.retention.first() {
            Some(r) => format!(
                "retention.ms {} allows removing it from {:.1} s",
                r.ms,
                (send.invoke_ms + u64::try_from(r.ms).unwrap_or(0)) as f64 / 1000.0
            ),
            None => "the topic has no retention".to_string(),
        };
        let asked = self
            .lifecycle
            .deleted_below(partition, removed.event)
            .map_or("no DeleteRecords".to_string(), |asked| {
                format!("DeleteRecords only below {asked}")
            });
        let (low, event, time_ms, process) =
            (removed.low, removed.event, removed.time_ms, removed.process);
        let sender = send.process;
        Some(move || {
            format!(
                "partition {partition} offset {offset} (value {value}, sent by {sender} at \
                 {:.1} s) below log start {low} (event {event}, {process}, {:.1} s): \
                 {asked} was asked for by then, and {retention}",
                send.invoke_ms as f64 / 1000.0,
                time_ms as f64 / 1000.0
            )
        })
    }

    pub(super) fn live_fetch_failures(&self) -> Verdict {
        let lifecycle = &self.lifecycle;
        if lifecycle.missing.is_empty() && lifecycle.fetch_failures.is_empty() {
            return Verdict::NotChecked;
        }
        let mut findings = Findings::default();
        for &(agent, counted, logged, event) in &lifecycle.missing {
            if counted.unwrap_or(0) > 0 || logged > 0 {
                findings.add(|| {
                    format!(
                        "{agent}: {} fetches found an object the index names missing from the \
                         bucket (weir_fetch_missing_objects_total since its last start), {logged} \
                         logged (event {event})",
                        counted.map_or("?".to_string(), |c| c.to_string())
                    )
                });
            }
        }
        for f in &lifecycle.fetch_failures {
            let offset = f.offset;
            if STORAGE_ERRORS.contains(&f.error) {
                if offset < f.low_before || lifecycle.store_fault_at(f.broker, f.time_ms) {
                    continue;
                }
                findings.add(|| {
                    format!(
                        "{} fetched partition {} offset {offset} from {} and got {} (event {}), \
                         the log starting at {} or later, no object-store fault on that agent",
                        f.process, f.partition, f.broker, f.error, f.event, f.low_before
                    )
                });
            } else if f.error == "OFFSET_OUT_OF_RANGE"
                && offset < f.high_before
                && let Some(low) = self.log_start_after(f.partition, f.event)
                && low <= offset
            {
                findings.add(|| {
                    format!(
                        "{} fetched partition {} offset {offset} from {} and got \
                         OFFSET_OUT_OF_RANGE (event {}), though the log started at {low} or \
                         earlier and the high watermark was past {}",
                        f.process,
                        f.partition,
                        f.broker,
                        f.event,
                        f.high_before - 1
                    )
                });
            }
        }
        findings.verdict()
    }

    pub(super) fn leaked_objects(&self) -> Verdict {
        let Some((event, objects, ..)) = self.bucket else {
            return Verdict::NotChecked;
        };
        if !self.bucket_settled || self.index.is_empty() {
            return Verdict::NotChecked;
        }
        let named: std::collections::BTreeSet<&str> = self
            .index
            .values()
            .flat_map(|snapshot| snapshot.entries.iter().map(|e| e.object.as_str()))
            .collect();
        let mut findings = Findings::default();
        for object in objects {
            if !named.contains(object.object.as_str()) {
                findings.add(|| {
                    let state = if object.referenced {
                        "committed (dereferenced, not deleted)"
                    } else {
                        "never committed (an orphan)"
                    };
                    format!(
                        "object {} ({} ms old, {state}) in the settled bucket (event {event}), \
                         named by no index entry",
                        object.object, object.age_ms
                    )
                });
            }
        }
        findings.verdict()
    }

    pub(super) fn lifecycle_stats(&mut self) {
        let mut stats = super::LifecycleStats {
            delete_records_asked: self.lifecycle.delete_records_asked,
            delete_records_ok: self.lifecycle.delete_records_ok,
            ..Default::default()
        };
        for (&partition, observations) in &self.lifecycle.observations {
            let highest = observations.highest();
            if highest > 0 {
                stats.log_starts.insert(partition, highest);
            }
            let Some(known) = self.known.get(&partition) else {
                continue;
            };
            for &offset in known.range(..highest) {
                let Some(removed) = observations.first_past(offset) else {
                    continue;
                };
                stats.removed += 1;
                let by_delete = self
                    .lifecycle
                    .deleted_below(partition, removed.event)
                    .is_some_and(|asked| asked > offset);
                let slot = self.slots.get(&(partition, offset));
                let by_retention = || {
                    slot.and_then(|slot| self.sends.get(&slot.value))
                        .is_some_and(|send| {
                            self.lifecycle
                                .retention_allows(send.invoke_ms, removed.time_ms)
                                .is_some()
                        })
                };
                if by_delete {
                    stats.removed_by_delete_records += 1;
                } else if by_retention() {
                    stats.removed_by_retention += 1;
                }
                if slot.is_some_and(|slot| !self.was_read(slot.value)) {
                    stats.removed_unread += 1;
                }
            }
        }
        for gap in &self.gaps {
            if self.jumped_over_removed(gap) {
                stats.jumps_over_removed += 1;
            }
        }
        for f in &self.lifecycle.fetch_failures {
            *stats.fetch_errors.entry(f.error.to_string()).or_default() += 1;
            if STORAGE_ERRORS.contains(&f.error)
                && f.offset >= f.low_before
                && self.lifecycle.store_fault_at(f.broker, f.time_ms)
            {
                stats.storage_errors_near_store_faults += 1;
            }
        }
        self.stats.lifecycle = stats;
    }
}
