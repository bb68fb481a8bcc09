use super::*;
use crate::history::{AgentAddress, Read};

/// Builds histories event by event: indexes and times are filled in.
#[derive(Debug, Default)]
struct History {
    events: Vec<Event>,
    /// Added to every later event's time: see [`History::later`].
    skipped_ms: u64,
}

impl History {
    /// Lets `ms` pass before the next event.
    fn later(&mut self, ms: u64) -> &mut Self {
        self.skipped_ms += ms;
        self
    }

    fn push(&mut self, process: &str, outcome: Outcome, op: Op) -> &mut Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ms: 10 * index + self.skipped_ms,
            process: process.to_string(),
            outcome,
            op,
        });
        self
    }

    fn send(&mut self, process: &str, outcome: Outcome, partition: i32, value: u64) -> &mut Self {
        let error = matches!(outcome, Outcome::Fail | Outcome::Info).then(|| "timed out".into());
        self.push(
            process,
            outcome,
            Op::Send {
                partition,
                value,
                offset: None,
                error,
            },
        )
    }

    fn invoke(&mut self, process: &str, partition: i32, value: u64) -> &mut Self {
        self.send(process, Outcome::Invoke, partition, value)
    }

    fn ack(&mut self, process: &str, partition: i32, value: u64, offset: i64) -> &mut Self {
        self.push(
            process,
            Outcome::Ok,
            Op::Send {
                partition,
                value,
                offset: Some(offset),
                error: None,
            },
        )
    }

    /// An invoke and its ok.
    fn sent(&mut self, process: &str, partition: i32, value: u64, offset: i64) -> &mut Self {
        self.invoke(process, partition, value)
            .ack(process, partition, value, offset)
    }

    fn fail(&mut self, process: &str, partition: i32, value: u64) -> &mut Self {
        self.send(process, Outcome::Fail, partition, value)
    }

    fn info(&mut self, process: &str, partition: i32, value: u64) -> &mut Self {
        self.send(process, Outcome::Info, partition, value)
    }

    fn assign(&mut self, process: &str, mode: Mode, partitions: &[i32]) -> &mut Self {
        self.push(
            process,
            Outcome::Ok,
            Op::Assign {
                mode,
                partitions: partitions.to_vec(),
            },
        )
    }

    /// A poll's invoke and its ok with `reads` of (partition, offset, value).
    fn poll(&mut self, process: &str, reads: &[(i32, i64, u64)]) -> &mut Self {
        let poll = |reads: Vec<Read>| Op::Poll { reads, error: None };
        self.push(process, Outcome::Invoke, poll(Vec::new()));
        let reads = reads.iter().map(|&(p, o, v)| Read(p, o, v)).collect();
        self.push(process, Outcome::Ok, poll(reads))
    }

    fn watermarks(&mut self, partition: i32, low: i64, high: i64) -> &mut Self {
        self.push(
            "sampler",
            Outcome::Ok,
            Op::Watermarks {
                partition,
                low: Some(low),
                high: Some(high),
                error: None,
            },
        )
    }

    fn committed(&mut self, partition: i32, offset: Option<i64>) -> &mut Self {
        self.push(
            "sampler",
            Outcome::Ok,
            Op::Committed {
                partition,
                offset,
                error: None,
            },
        )
    }

    fn nemesis(&mut self, outcome: Outcome, fault: &str, target: &str) -> &mut Self {
        self.push(
            "nemesis",
            outcome,
            Op::Nemesis {
                fault: fault.into(),
                target: target.into(),
            },
        )
    }

    /// The oracle's index of `partition`: entries of (base offset, record count, object).
    fn index(&mut self, partition: i32, entries: &[(i64, i64, &str)]) -> &mut Self {
        let entries = entries
            .iter()
            .map(|&(base_offset, record_count, object)| IndexEntry {
                base_offset,
                record_count,
                object: object.into(),
            })
            .collect();
        self.push(
            "oracle",
            Outcome::Ok,
            Op::Index {
                partition,
                log_start: None,
                high_watermark: None,
                entries,
            },
        )
    }

    /// The oracle's index of `partition` from `log_start` to `high`.
    fn index_from(
        &mut self,
        partition: i32,
        log_start: i64,
        high: i64,
        entries: &[(i64, i64, &str)],
    ) -> &mut Self {
        self.index(partition, entries);
        if let Some(Event {
            op:
                Op::Index {
                    log_start: l,
                    high_watermark: h,
                    ..
                },
            ..
        }) = self.events.last_mut()
        {
            *l = Some(log_start);
            *h = Some(high);
        }
        self
    }

    /// The same listing as [`History::bucket`], taken once the lifecycle settled.
    fn settled_bucket(&mut self, objects: &[(&str, bool, u64)]) -> &mut Self {
        self.bucket(objects);
        if let Some(Event {
            op: Op::Bucket { settled, .. },
            ..
        }) = self.events.last_mut()
        {
            *settled = true;
        }
        self
    }

    /// Agents `agent-N` at `127.0.0.1:900N`.
    fn agents(&mut self, count: usize) -> &mut Self {
        let agents = (0..count)
            .map(|i| AgentAddress {
                name: format!("agent-{i}"),
                address: format!("127.0.0.1:900{i}"),
            })
            .collect();
        self.push("cluster", Outcome::Ok, Op::Agents { agents })
    }

    /// The topic's retention set (an invoke and its ok).
    fn retention(&mut self, retention_ms: Option<i64>) -> &mut Self {
        let config = || Op::TopicConfig {
            retention_ms,
            error: None,
        };
        self.push("admin", Outcome::Invoke, config())
            .push("admin", Outcome::Ok, config())
    }

    /// The deleter's DeleteRecords of `partition` below `offset`, answered `low`.
    fn delete_records(&mut self, partition: i32, offset: i64, low: i64) -> &mut Self {
        let delete = |low| Op::DeleteRecords {
            partition,
            offset,
            low,
            error: None,
        };
        self.push("deleter", Outcome::Invoke, delete(None)).push(
            "deleter",
            Outcome::Ok,
            delete(Some(low)),
        )
    }

    /// `process`'s fetch of `partition` at `offset` answered `error` by agent `agent`.
    fn fetch_error(
        &mut self,
        process: &str,
        partition: i32,
        offset: i64,
        error: &str,
        agent: usize,
    ) -> &mut Self {
        self.push(
            process,
            Outcome::Fail,
            Op::FetchError {
                partition,
                offset,
                error: error.into(),
                broker: format!("127.0.0.1:900{agent}/{}", agent + 1),
            },
        )
    }

    fn missing_objects(&mut self, agent: &str, counted: u64, logged: u64) -> &mut Self {
        self.push(
            "oracle",
            Outcome::Ok,
            Op::MissingObjects {
                agent: agent.into(),
                counted: Some(counted),
                logged,
            },
        )
    }

    /// The oracle's bucket listing, objects of (id, referenced, age), with a grace of 1 s
    /// and an interval of 500 ms.
    fn bucket(&mut self, objects: &[(&str, bool, u64)]) -> &mut Self {
        let objects = objects
            .iter()
            .map(|&(object, referenced, age_ms)| BucketObject {
                object: object.into(),
                referenced,
                age_ms,
            })
            .collect();
        self.push(
            "oracle",
            Outcome::Ok,
            Op::Bucket {
                objects,
                gc_grace_ms: 1000,
                gc_interval_ms: 500,
                settled: false,
            },
        )
    }

    fn check(&self) -> Report {
        check(&self.events)
    }
}

/// Asserts that the report finds exactly `classes`, printing it when not.
#[track_caller]
fn assert_found(report: &Report, classes: &[Class]) {
    assert_eq!(report.found(), classes, "\n{report}");
}

/// Two producers, a consumer in each mode, a fault, samples, a catch-up, and the oracle:
/// everything a run logs, with nothing wrong. Some sends are indeterminate, one failed,
/// one never completed; the assign-mode consumer seeks back after a new Assign. A fetch
/// meets a retriable error; no agent found an object missing.
fn clean() -> History {
    let mut h = History::default();
    h.agents(2)
        .retention(None)
        .assign("consumer-0", Mode::Assign, &[0])
        .assign("consumer-1", Mode::Subscribe, &[0, 1])
        .sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .invoke("producer-1", 1, 11)
        .invoke("producer-1", 1, 12)
        .ack("producer-1", 1, 11, 0)
        .ack("producer-1", 1, 12, 1)
        .watermarks(0, 0, 2)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2)])
        .nemesis(Outcome::Invoke, "kill", "agent-1")
        .fetch_error("consumer-0", 0, 2, "NOT_LEADER_OR_FOLLOWER", 1)
        .invoke("producer-0", 0, 3)
        .info("producer-0", 0, 3)
        .invoke("producer-1", 1, 13)
        .fail("producer-1", 1, 13)
        .invoke("producer-0", 0, 4)
        .poll("consumer-1", &[(1, 0, 11), (1, 1, 12), (0, 0, 1)])
        .committed(1, None)
        .committed(1, Some(2))
        .committed(1, Some(2))
        .nemesis(Outcome::Ok, "kill", "agent-1")
        // The group moves partition 0 back; the consumer reads offset 0 again.
        .poll("consumer-1", &[(0, 0, 1)])
        .sent("producer-0", 0, 5, 3)
        .watermarks(0, 0, 4)
        .assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 3, 5)])
        .assign("catch-up", Mode::Assign, &[0, 1])
        .poll("catch-up", &[(0, 0, 1), (0, 1, 2), (0, 2, 3), (0, 3, 5)])
        .poll("catch-up", &[(1, 0, 11), (1, 1, 12)])
        .index_from(0, 0, 4, &[(0, 2, "A"), (2, 2, "B")])
        .index_from(1, 0, 2, &[(0, 2, "A")])
        .settled_bucket(&[("A", true, 9000), ("B", true, 5000)])
        .missing_objects("agent-0", 0, 0)
        .missing_objects("agent-1", 0, 0);
    h
}

#[test]
fn a_clean_history_has_no_anomaly() {
    let report = clean().check();
    assert_found(&report, &[]);
    assert!(report.is_clean());
    for class in Class::ALL {
        assert!(report.checked(class), "{class} not checked\n{report}");
    }
    let stats = &report.stats;
    assert_eq!(
        (
            stats.sends_invoked,
            stats.sends_ok,
            stats.sends_fail,
            stats.sends_info,
            stats.sends_pending
        ),
        (8, 5, 1, 1, 1)
    );
    assert_eq!(stats.recovered, 1, "value 3 was info and read");
    assert_eq!(stats.distinct_values_read, 6);
    assert_eq!(stats.faults, 1);
    assert_eq!(
        stats.max_offsets,
        BTreeMap::from([(0, Some(3)), (1, Some(1))])
    );
    assert!(report.warnings.is_empty(), "{report}");
}

#[test]
fn the_report_prints_a_verdict_per_class() {
    let text = clean().check().to_string();
    for class in Class::ALL {
        let line = format!("  {:<28}  ok", class.name());
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    assert!(
        text.contains("8 invoked, 5 ok (0 without an offset), 1 fail, 1 info, 1 never completed")
    );
    assert!(text.ends_with("verdict: no anomaly\n"), "{text}");

    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .poll("consumer-0", &[(0, 1, 2)])
        .fail("producer-0", 0, 3)
        .poll("consumer-0", &[(0, 2, 3)]);
    let text = h.check().to_string();
    assert!(
        text.contains(&format!("  {:<28}  FOUND 1\n", "lost-writes")),
        "{text}"
    );
    assert!(
        text.contains(
            "value 1 acked by producer-0 at partition 0 offset 0 (event 1) never read, though \
             offset 2 was (read by consumer-0 at event 8)"
        ),
        "{text}"
    );
    assert!(
        text.contains("dangling-index-entries        not checked"),
        "{text}"
    );
    assert!(
        text.ends_with("verdict: 2 anomalies in 2 classes\n"),
        "{text}"
    );
}

#[test]
fn an_empty_history_is_clean_and_the_oracle_classes_not_checked() {
    let report = check(&[]);
    assert!(report.is_clean());
    for class in [
        Class::LiveFetchFailures,
        Class::DanglingIndexEntries,
        Class::LeakedObjects,
        Class::IndexGaps,
        Class::UncollectedOrphans,
        Class::AckedNotInIndex,
    ] {
        assert!(!report.checked(class), "{class}");
    }
    assert!(report.to_string().contains("verdict: no anomaly"));
}

#[test]
fn inconsistent_offsets() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .invoke("producer-0", 0, 2)
        .info("producer-0", 0, 2)
        .poll("consumer-0", &[(0, 0, 1)])
        .poll("consumer-1", &[(0, 0, 2)]);
    let report = h.check();
    assert_found(&report, &[Class::InconsistentOffsets]);
    assert_eq!(report.count(Class::InconsistentOffsets), 1);
}

#[test]
fn duplicates() {
    let mut h = History::default();
    h.assign("consumer-0", Mode::Assign, &[0])
        .sent("producer-0", 0, 1, 0)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 1)]);
    assert_found(&h.check(), &[Class::Duplicates]);
}

#[test]
fn lost_writes() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .poll("consumer-0", &[(0, 1, 2)]);
    let report = h.check();
    assert_found(&report, &[Class::LostWrites]);
    assert_eq!(report.count(Class::LostWrites), 1);
}

#[test]
fn unseen() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .poll("consumer-0", &[(0, 0, 1)]);
    let report = h.check();
    assert_found(&report, &[Class::Unseen]);
    assert_eq!(report.count(Class::Unseen), 1);
}

/// librdkafka acks records that a later acknowledged request proved written with
/// offset -1001: they count as acknowledged, by value, and take no position.
#[test]
fn acks_without_an_offset_are_checked_by_value() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, -1001)
        .sent("producer-0", 0, 3, -1001)
        .sent("producer-0", 0, 4, 2)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2), (0, 2, 4)]);
    let report = h.check();
    assert_found(&report, &[Class::Unseen]);
    assert_eq!(report.count(Class::Unseen), 1, "value 3 was never read");
    assert_eq!(report.stats.acked_without_offset, 2);
}

#[test]
fn non_monotonic_sends() {
    let mut h = History::default();
    h.invoke("producer-0", 0, 1)
        .invoke("producer-0", 0, 2)
        .ack("producer-0", 0, 2, 0)
        .ack("producer-0", 0, 1, 1)
        .poll("consumer-0", &[(0, 0, 2), (0, 1, 1)]);
    assert_found(&h.check(), &[Class::NonMonotonicSends]);
}

#[test]
fn sends_of_two_producers_or_two_partitions_are_not_ordered_together() {
    let mut h = History::default();
    h.invoke("producer-0", 0, 1)
        .invoke("producer-1", 0, 2)
        .invoke("producer-0", 1, 3)
        .ack("producer-1", 0, 2, 0)
        .ack("producer-0", 0, 1, 1)
        .ack("producer-0", 1, 3, 0)
        .poll("consumer-0", &[(0, 0, 2), (0, 1, 1), (1, 0, 3)]);
    assert_found(&h.check(), &[]);
}

/// Three acked values at offsets 0, 1, 2 of partition 0.
fn three_acked() -> History {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .sent("producer-0", 0, 3, 2);
    h
}

#[test]
fn poll_skips() {
    let mut h = three_acked();
    h.assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1)])
        .poll("consumer-0", &[(0, 2, 3)])
        .poll("consumer-1", &[(0, 1, 2)]);
    let report = h.check();
    assert_found(&report, &[Class::PollSkips]);
    assert!(report.to_string().contains(
        "consumer-0 read partition 0 offset 0 (event 8) then 2 (event 10), skipping offset 1 \
         (value 2)"
    ));
}

#[test]
fn a_subscribe_mode_consumer_may_skip_and_go_back() {
    let mut h = three_acked();
    h.assign("consumer-0", Mode::Subscribe, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 2, 3)])
        .poll("consumer-0", &[(0, 1, 2)]);
    assert_found(&h.check(), &[]);
}

#[test]
fn the_catch_up_is_checked_for_skips() {
    let mut h = three_acked();
    h.poll("consumer-1", &[(0, 1, 2)])
        .assign("catch-up", Mode::Assign, &[0])
        .poll("catch-up", &[(0, 0, 1), (0, 2, 3)]);
    assert_found(&h.check(), &[Class::PollSkips]);
}

#[test]
fn non_monotonic_polls() {
    let mut h = three_acked();
    h.assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2)])
        .poll("consumer-0", &[(0, 1, 2), (0, 2, 3)]);
    let report = h.check();
    assert_found(&report, &[Class::NonMonotonicPolls]);
    assert_eq!(report.count(Class::NonMonotonicPolls), 1);
}

#[test]
fn an_assign_starts_a_new_sequence() {
    let mut h = three_acked();
    h.assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 2, 3)])
        .assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 1, 2), (0, 2, 3)]);
    // The skip before the new Assign counts; the seek back after it does not.
    assert_found(&h.check(), &[Class::PollSkips]);

    let mut h = three_acked();
    h.assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2), (0, 2, 3)])
        .assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2), (0, 2, 3)]);
    assert_found(&h.check(), &[]);
}

#[test]
fn aborted_reads() {
    let mut h = History::default();
    h.invoke("producer-0", 0, 1)
        .fail("producer-0", 0, 1)
        .poll("consumer-0", &[(0, 0, 1)]);
    assert_found(&h.check(), &[Class::AbortedReads]);
}

#[test]
fn indeterminate_sends_may_or_may_not_be_read() {
    let mut h = History::default();
    // Value 1 timed out and was written; 2 timed out and was not; 3's producer crashed
    // after writing it; 4's crashed before.
    h.invoke("producer-0", 0, 1)
        .info("producer-0", 0, 1)
        .invoke("producer-0", 0, 2)
        .info("producer-0", 0, 2)
        .invoke("producer-1", 0, 3)
        .invoke("producer-1", 0, 4)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 3)]);
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.recovered, 2);
    assert_eq!(report.stats.sends_pending, 2);
}

#[test]
fn offset_gaps() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 3, 2)
        .assign("consumer-0", Mode::Assign, &[0])
        .poll("consumer-0", &[(0, 0, 1), (0, 2, 3)]);
    assert_found(&h.check(), &[Class::OffsetGaps]);
}

#[test]
fn watermark_regressions() {
    let mut h = History::default();
    h.watermarks(0, 0, 5)
        .watermarks(1, 0, 7)
        .watermarks(0, 0, 3)
        .watermarks(1, 0, 7);
    let report = h.check();
    assert_found(&report, &[Class::WatermarkRegressions]);
    assert_eq!(report.count(Class::WatermarkRegressions), 1);

    let mut h = History::default();
    h.watermarks(0, 4, 3);
    assert_found(&h.check(), &[Class::WatermarkRegressions]);
}

#[test]
fn dangling_index_entries() {
    let mut h = History::default();
    h.index(0, &[(0, 2, "A"), (2, 1, "B")])
        .bucket(&[("A", true, 100)]);
    let report = h.check();
    assert_found(&report, &[Class::DanglingIndexEntries]);
    assert!(report.to_string().contains("object B, which the bucket"));
}

#[test]
fn without_a_bucket_listing_dangling_entries_are_not_checked() {
    let mut h = History::default();
    h.index(0, &[(0, 2, "A")]);
    let report = h.check();
    assert_found(&report, &[]);
    assert!(!report.checked(Class::DanglingIndexEntries));
    assert!(!report.checked(Class::UncollectedOrphans));
    assert!(report.checked(Class::IndexGaps));
    assert!(report.checked(Class::AckedNotInIndex));
}

#[test]
fn index_gaps_and_overlaps() {
    let mut h = History::default();
    h.index(0, &[(3, 1, "B"), (0, 2, "A")])
        .index(1, &[(0, 2, "A"), (1, 2, "B")])
        .index(2, &[(0, 2, "A"), (2, 2, "B")])
        .bucket(&[("A", true, 100), ("B", true, 100)]);
    let report = h.check();
    assert_found(&report, &[Class::IndexGaps]);
    assert_eq!(report.count(Class::IndexGaps), 2, "{report}");
}

#[test]
fn uncollected_orphans() {
    let mut h = History::default();
    // Grace 1000 ms and interval 500 ms: collected by 2000 ms.
    h.bucket(&[
        ("old-orphan", false, 2001),
        ("young-orphan", false, 2000),
        ("old-referenced", true, 99_000),
    ]);
    let report = h.check();
    assert_found(&report, &[Class::UncollectedOrphans]);
    assert_eq!(report.count(Class::UncollectedOrphans), 1);
}

#[test]
fn acked_not_in_index() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2)])
        .index(0, &[(0, 1, "A")])
        .bucket(&[("A", true, 100)]);
    let report = h.check();
    assert_found(&report, &[Class::AckedNotInIndex]);
    assert!(
        report
            .to_string()
            .contains("value 2 acked by producer-0 at partition 0 offset 1")
    );
}

#[test]
fn a_history_that_breaks_its_format_warns_but_is_still_checked() {
    let mut h = History::default();
    h.ack("producer-0", 0, 1, 0)
        .invoke("producer-0", 0, 1)
        .poll("consumer-0", &[(0, 0, 1)]);
    let report = h.check();
    assert_found(&report, &[]);
    // The completion without an invoke, and the invoke of a value already sent.
    assert_eq!(report.warning_count, 2, "{report}");
    assert!(report.to_string().contains("history warnings: 2"));
}

#[test]
fn a_large_history_checks() {
    // 100,000 sends over 8 partitions, each read by an assign-mode consumer: 300,000
    // events. Nothing is asserted about time; a quadratic scan would not finish.
    let mut h = History::default();
    let mut next = [0i64; 8];
    let mut reads = Vec::new();
    h.assign("consumer-0", Mode::Assign, &[0, 1, 2, 3, 4, 5, 6, 7]);
    for value in 0..100_000u64 {
        let partition = (value % 8) as i32;
        let offset = next[partition as usize];
        next[partition as usize] += 1;
        h.sent("producer-0", partition, value, offset);
        reads.push((partition, offset, value));
        if reads.len() == 100 {
            h.poll("consumer-0", &reads);
            reads.clear();
        }
    }
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.distinct_values_read, 100_000);
}

#[test]
fn a_committed_offset_that_goes_down_is_a_regression() {
    let mut h = clean();
    // Long after the history's one fault healed.
    h.later(FAULT_SETTLE_MS + 1)
        .committed(1, Some(5))
        .committed(0, Some(1))
        .committed(1, Some(3));
    let report = h.check();
    assert_found(&report, &[Class::CommittedOffsetRegressions]);
    assert_eq!(report.count(Class::CommittedOffsetRegressions), 1);
    let text = report.to_string();
    assert!(
        text.contains("partition 1: committed offset went from 5"),
        "{text}"
    );
}

#[test]
fn without_committed_samples_the_class_is_not_checked() {
    let mut h = History::default();
    h.sent("producer-0", 0, 1, 0);
    assert!(!h.check().checked(Class::CommittedOffsetRegressions));
}

#[test]
fn a_committed_offset_that_goes_down_near_a_fault_is_counted_but_not_an_anomaly() {
    let mut h = clean();
    h.committed(1, Some(5))
        .nemesis(Outcome::Invoke, "isolate-from-clients-refuse", "agent-1")
        .committed(1, Some(3))
        .nemesis(Outcome::Ok, "isolate-from-clients-refuse", "agent-1")
        .committed(1, Some(2));
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.committed_regressions_near_faults, 2);
    assert!(
        report
            .to_string()
            .contains("went down during or just after a fault (librdkafka"),
        "{report}"
    );
}

/// Values 1..=`count` acked at offsets 0.. of `partition`, each read by consumer-0.
fn acked_and_read(h: &mut History, partition: i32, count: u64) {
    h.assign("consumer-0", Mode::Assign, &[partition]);
    for value in 1..=count {
        let offset = value as i64 - 1;
        h.sent("producer-0", partition, value, offset)
            .poll("consumer-0", &[(partition, offset, value)]);
    }
}

#[test]
fn log_start_regressions() {
    // One sample after another.
    let mut h = History::default();
    h.retention(Some(0))
        .watermarks(0, 5, 10)
        .watermarks(0, 3, 10);
    let report = h.check();
    assert_found(&report, &[Class::LogStartRegressions]);
    assert!(
        report
            .to_string()
            .contains("partition 0: log start 5 (event 2, sampler), then 3"),
        "{report}"
    );

    // A DeleteRecords answer, then a sample: sources are compared too, and so is the
    // index after the run.
    let mut h = History::default();
    h.delete_records(0, 7, 7).watermarks(0, 6, 10);
    assert_found(&h.check(), &[Class::LogStartRegressions]);
    let mut h = History::default();
    h.watermarks(0, 4, 10).index_from(0, 2, 10, &[(0, 10, "A")]);
    assert_found(&h.check(), &[Class::LogStartRegressions]);

    // A sample asked for before the DeleteRecords was answered may see the old start.
    let mut h = History::default();
    h.push(
        "sampler",
        Outcome::Invoke,
        Op::Watermarks {
            partition: 0,
            low: None,
            high: None,
            error: None,
        },
    )
    .delete_records(0, 7, 7)
    .watermarks(0, 0, 10)
    .watermarks(0, 7, 10);
    assert_found(&h.check(), &[]);
}

#[test]
fn records_below_the_log_start_need_a_deletion_or_retention() {
    // No retention and no DeleteRecords, yet the log start passed offsets 0 and 1.
    let mut h = History::default();
    h.retention(None);
    acked_and_read(&mut h, 0, 4);
    h.watermarks(0, 2, 4);
    let report = h.check();
    assert_found(&report, &[Class::UnexplainedRemovals]);
    assert_eq!(report.count(Class::UnexplainedRemovals), 2);
    assert!(
        report.to_string().contains(
            "partition 0 offset 0 (value 1, sent by producer-0 at 0.0 s) below log start 2"
        ),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("no DeleteRecords was asked for by then, and the topic has no retention"),
        "{report}"
    );
    assert!(
        report.to_string().contains(
            "2 known records removed (0 as DeleteRecords asked, 0 by retention, 2 with no \
             cause; 0 of them never read)"
        ),
        "{report}"
    );

    // A DeleteRecords below 2 explains both.
    let mut h = History::default();
    h.retention(None);
    acked_and_read(&mut h, 0, 4);
    h.delete_records(0, 2, 2).watermarks(0, 2, 4);
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.lifecycle.removed_by_delete_records, 2);

    // One below 1 explains only offset 0.
    let mut h = History::default();
    h.retention(None);
    acked_and_read(&mut h, 0, 4);
    h.delete_records(0, 1, 1).watermarks(0, 2, 4);
    assert_eq!(h.check().count(Class::UnexplainedRemovals), 1);
}

#[test]
fn retention_explains_removing_records_older_than_retention_ms() {
    // retention.ms 1000: records sent near 0 s may go from about 1 s on.
    let early = |wait_ms| {
        let mut h = History::default();
        h.retention(Some(1000));
        acked_and_read(&mut h, 0, 4);
        h.later(wait_ms).watermarks(0, 2, 4);
        h.check()
    };
    assert_found(&early(0), &[Class::UnexplainedRemovals]);
    let report = early(2000);
    assert_found(&report, &[]);
    assert_eq!(report.stats.lifecycle.removed_by_retention, 2);

    // Retention turned off: records sent after that (and a pass that read the old
    // setting) stay, however old.
    let mut h = History::default();
    h.retention(Some(1000))
        .retention(None)
        .later(RETENTION_SETTLE_MS);
    acked_and_read(&mut h, 0, 4);
    h.later(5000).watermarks(0, 2, 4);
    assert_found(&h.check(), &[Class::UnexplainedRemovals]);
}

#[test]
fn a_value_removed_unread_is_not_lost_or_unseen() {
    let mut h = History::default();
    h.retention(None)
        .sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .sent("producer-0", 0, 3, -1001)
        .sent("producer-0", 0, 4, 3)
        .delete_records(0, 4, 4)
        .assign("catch-up", Mode::Assign, &[0])
        .sent("producer-0", 0, 5, 4)
        .poll("catch-up", &[(0, 4, 5)])
        .index_from(0, 4, 5, &[(4, 1, "A")])
        .settled_bucket(&[("A", true, 100)]);
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.lifecycle.removed_unread, 3, "{report}");

    // Without the DeleteRecords, the same history loses them.
    let mut h = History::default();
    h.retention(None)
        .sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .assign("catch-up", Mode::Assign, &[0])
        .sent("producer-0", 0, 5, 2)
        .poll("catch-up", &[(0, 2, 5)])
        .index_from(0, 2, 3, &[(2, 1, "A")])
        .settled_bucket(&[("A", true, 100)]);
    assert_found(&h.check(), &[Class::UnexplainedRemovals]);
}

#[test]
fn a_jump_over_removed_offsets_is_not_a_gap() {
    let jump = |to: i64| {
        let mut h = History::default();
        h.retention(None);
        acked_and_read(&mut h, 0, 2);
        for value in 3..=8 {
            h.sent("producer-0", 0, value, value as i64 - 1);
        }
        h.delete_records(0, 5, 5)
            .fetch_error("consumer-0", 0, 2, "OFFSET_OUT_OF_RANGE", 0)
            .poll("consumer-0", &[(0, to, to as u64 + 1)])
            .watermarks(0, 5, 8)
            .poll("consumer-1", &[(0, 5, 6), (0, 6, 7), (0, 7, 8)]);
        h.check()
    };
    let report = jump(5);
    assert_found(&report, &[]);
    assert_eq!(report.stats.lifecycle.jumps_over_removed, 1);
    // Past the log start: offsets 5 and 6 were live, and skipped.
    assert_found(&jump(7), &[Class::PollSkips]);
}

#[test]
fn live_fetch_failures() {
    let base = || {
        let mut h = History::default();
        h.agents(2).retention(None);
        acked_and_read(&mut h, 0, 4);
        h
    };
    let mut h = base();
    h.fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 1);
    let report = h.check();
    assert_found(&report, &[Class::LiveFetchFailures]);
    assert!(
        report.to_string().contains(
            "consumer-0 fetched partition 0 offset 2 from 127.0.0.1:9001/2 and got \
             KAFKA_STORAGE_ERROR"
        ),
        "{report}"
    );

    // During an object-store fault of that agent, and just after, it may fail.
    let mut h = base();
    h.nemesis(Outcome::Invoke, "store-errors", "agent-1")
        .fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 1)
        .nemesis(Outcome::Ok, "store-errors", "agent-1")
        .later(STORE_SETTLE_MS - 1000)
        .fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 1);
    let report = h.check();
    assert_found(&report, &[]);
    assert_eq!(report.stats.lifecycle.storage_errors_near_store_faults, 2);
    // Not when the fault was on another agent, nor long after.
    let mut h = base();
    h.nemesis(Outcome::Invoke, "store-errors", "agent-0")
        .fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 1)
        .nemesis(Outcome::Ok, "store-errors", "agent-0")
        .later(STORE_SETTLE_MS + 1000)
        .fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 0);
    assert_eq!(h.check().count(Class::LiveFetchFailures), 2);
    // A paused S3 server holds every agent's reads.
    let mut h = base();
    h.nemesis(Outcome::Invoke, "pause", "s3-server")
        .fetch_error("consumer-0", 0, 2, "KAFKA_STORAGE_ERROR", 1);
    assert_found(&h.check(), &[]);

    // Out of range though the log started below it and the high watermark was past it.
    let mut h = base();
    h.fetch_error("consumer-0", 0, 2, "OFFSET_OUT_OF_RANGE", 0)
        .watermarks(0, 0, 4);
    assert_found(&h.check(), &[Class::LiveFetchFailures]);
    // Below the log start observed after it, it is what the consumer should get.
    let mut h = base();
    h.delete_records(0, 3, 3)
        .fetch_error("consumer-0", 0, 2, "OFFSET_OUT_OF_RANGE", 0)
        .watermarks(0, 3, 4);
    assert_found(&h.check(), &[]);

    // An agent that counted a fetch finding an indexed object missing.
    let mut h = base();
    h.missing_objects("agent-0", 0, 0)
        .missing_objects("agent-1", 1, 1);
    let report = h.check();
    assert_found(&report, &[Class::LiveFetchFailures]);
    assert!(
        report
            .to_string()
            .contains("agent-1: 1 fetches found an object")
    );
}

#[test]
fn leaked_objects() {
    let mut h = History::default();
    h.index_from(0, 0, 2, &[(0, 2, "A")]).settled_bucket(&[
        ("A", true, 100),
        ("B", true, 90_000),
        ("C", false, 90_000),
    ]);
    let report = h.check();
    assert_found(&report, &[Class::LeakedObjects, Class::UncollectedOrphans]);
    assert_eq!(report.count(Class::LeakedObjects), 2);
    assert!(
        report
            .to_string()
            .contains("object B (90000 ms old, committed (dereferenced, not deleted))"),
        "{report}"
    );

    // A listing taken before the lifecycle settled is not checked for leaks.
    let mut h = History::default();
    h.index_from(0, 0, 2, &[(0, 2, "A")])
        .bucket(&[("A", true, 100), ("B", true, 500)]);
    let report = h.check();
    assert_found(&report, &[]);
    assert!(!report.checked(Class::LeakedObjects));
}

#[test]
fn the_index_reaches_from_the_log_start_to_the_high_watermark() {
    let mut h = History::default();
    h.index_from(0, 2, 6, &[(3, 3, "A")])
        .index_from(1, 0, 6, &[(0, 4, "A")])
        .index_from(2, 3, 6, &[(2, 4, "A")])
        .index_from(3, 6, 6, &[])
        .bucket(&[("A", true, 100)]);
    let report = h.check();
    assert_found(&report, &[Class::IndexGaps]);
    assert_eq!(report.count(Class::IndexGaps), 2, "{report}");
}

#[test]
fn acks_below_the_log_start_need_no_index_entry() {
    let mut h = History::default();
    h.retention(None)
        .sent("producer-0", 0, 1, 0)
        .sent("producer-0", 0, 2, 1)
        .poll("consumer-0", &[(0, 0, 1), (0, 1, 2)])
        .delete_records(0, 1, 1)
        .index_from(0, 1, 2, &[(1, 1, "A")])
        .bucket(&[("A", true, 100)]);
    assert_found(&h.check(), &[]);
}
