use super::*;
use crate::history::Read;

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
        self.push("oracle", Outcome::Ok, Op::Index { partition, entries })
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
/// one never completed; the assign-mode consumer seeks back after a new Assign.
fn clean() -> History {
    let mut h = History::default();
    h.assign("consumer-0", Mode::Assign, &[0])
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
        .index(0, &[(0, 2, "A"), (2, 2, "B")])
        .index(1, &[(0, 2, "A")])
        .bucket(&[("A", true, 9000), ("B", true, 5000), ("C", false, 800)]);
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
        Class::DanglingIndexEntries,
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
    h.watermarks(0, 2, 5).watermarks(0, 1, 5);
    assert_found(&h.check(), &[Class::WatermarkRegressions]);

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
