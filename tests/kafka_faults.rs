//! Weir on a real S3 HTTP server (in-process `s3s-fs`, or `WEIR_TEST_S3_ENDPOINT`) with
//! object-store faults injected by `--object-store-faults`:
//!
//! - 10% of PUTs and GETs fail and each takes up to 2 s: every record a producer got an
//!   acknowledgement for is read back at its acknowledged offset, from the writer's
//!   cache and, after a restart, from the faulty bucket;
//! - every PUT fails, or every PUT is written but its response is lost: every delivery
//!   report is an error, never a success, and nothing is readable.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use rdkafka::producer::FutureProducer;
use support::Playground;
use support::kafka::{self, Record};
use support::s3::S3;

const PARTITIONS: i32 = 4;

fn env_refs<'a>(envs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    envs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn record(i: usize) -> Record {
    Record {
        key: Some(format!("key-{}", i % 61).into_bytes()),
        value: Some(format!("record {i} {}", "f".repeat(i % 500)).into_bytes()),
        headers: vec![],
        timestamp: Some(support::recent_ms() + i as i64),
    }
}

fn producer(bootstrap: &str, message_timeout_ms: u32) -> FutureProducer {
    kafka::producer_config(bootstrap)
        // librdkafka retries what failed; idempotence must keep every retry from
        // writing a record twice.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", message_timeout_ms.to_string())
        .create()
        .expect("create a producer")
}

/// Reads every partition of `topic` up to its high watermark.
fn read_all(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<kafka::Consumed>> {
    let consumer = kafka::consumer(bootstrap);
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, kafka::watermarks(&consumer, topic, p).1))
        .collect();
    kafka::consume_until(&consumer, topic, &ends)
}

/// Every acknowledged record is at its acknowledged offset; offsets are dense; every
/// record read is one that was sent, and none is there twice.
fn assert_acknowledged_are_readable(
    consumed: &BTreeMap<i32, Vec<kafka::Consumed>>,
    acknowledged: &HashMap<(i32, i64), Record>,
    sent: &[Record],
) {
    let sent: HashSet<&Record> = sent.iter().collect();
    let mut seen: HashSet<&Record> = HashSet::new();
    let mut found = 0;
    for (partition, records) in consumed {
        for (i, c) in records.iter().enumerate() {
            assert_eq!(
                c.offset, i as i64,
                "partition {partition}: offsets are dense from 0"
            );
            assert!(
                sent.contains(&c.record),
                "partition {partition} offset {} holds a record nobody sent",
                c.offset
            );
            assert!(
                seen.insert(&c.record),
                "partition {partition} offset {}: a record written twice despite idempotence",
                c.offset
            );
            if let Some(want) = acknowledged.get(&(*partition, c.offset)) {
                assert_eq!(
                    &c.record, want,
                    "partition {partition} offset {}: the acknowledged record",
                    c.offset
                );
                found += 1;
            }
        }
    }
    assert_eq!(
        found,
        acknowledged.len(),
        "every acknowledged record is read back"
    );
}

#[test]
fn acknowledged_records_survive_ten_percent_failing_puts_and_gets_with_latency_up_to_2s() {
    const RECORDS: usize = 12_000;
    let s3 = S3::start();
    let envs = s3.envs();
    let envs = env_refs(&envs);
    let url = s3.url();
    let faults = "put.error_rate=0.1,get.error_rate=0.1,\
                  put.latency=uniform:0ms:2s,get.latency=uniform:0ms:2s,seed=11";
    let mut playground = Playground::start_with(
        &[
            "--bucket",
            &url,
            "--object-store-faults",
            faults,
            // Small objects, so that thousands of records make dozens of PUTs and GETs.
            "--batch-max-bytes",
            "32768",
            "--batch-timeout-ms",
            "50",
        ],
        &envs,
    );
    let bootstrap = playground.bootstrap();
    let topic = "faults-ten-percent";
    kafka::create_topic(&bootstrap, topic, PARTITIONS);

    let records: Vec<Record> = (0..RECORDS).map(record).collect();
    let producer = producer(&bootstrap, 60_000);
    let outcomes = kafka::produce(&producer, topic, None, &records);
    let mut acknowledged = HashMap::new();
    let mut failed = 0;
    for (outcome, record) in outcomes.into_iter().zip(&records) {
        match outcome {
            Ok(at) => {
                assert!(
                    acknowledged.insert(at, record.clone()).is_none(),
                    "offset {at:?} acknowledged twice"
                );
            }
            Err(e) => {
                eprintln!("delivery failed: {e}");
                failed += 1;
            }
        }
    }
    eprintln!(
        "{} acknowledged, {failed} failed under 10% failing PUTs",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > RECORDS / 2,
        "retries get most records through 10% failures ({} of {RECORDS})",
        acknowledged.len()
    );
    drop(producer);

    // Read from the writer's cache...
    assert_acknowledged_are_readable(&read_all(&bootstrap, topic), &acknowledged, &records);
    // ...and, after a restart (an empty cache), from the bucket through failing GETs.
    playground.stop();
    playground.restart();
    assert_acknowledged_are_readable(&read_all(&bootstrap, topic), &acknowledged, &records);
    let log = std::fs::read_to_string(playground.process.log_path()).unwrap_or_default();
    for op in ["put", "get"] {
        assert!(
            log.contains(&format!("injected fault on {op}")),
            "the run met injected {op} failures; log:\n{}",
            playground.process.log_tail()
        );
    }
    playground.stop();
}

/// Runs a playground with `faults`, produces, and asserts no delivery succeeded and no
/// record is readable. Returns the S3 server, whose bucket the caller inspects.
fn nothing_succeeds_with(faults: &str) -> S3 {
    let s3 = S3::start();
    let envs = s3.envs();
    let envs = env_refs(&envs);
    let url = s3.url();
    let mut playground = Playground::start_with(
        &[
            "--bucket",
            &url,
            "--object-store-faults",
            faults,
            "--produce-timeout-ms",
            "2000",
            "--batch-timeout-ms",
            "20",
        ],
        &envs,
    );
    let bootstrap = playground.bootstrap();
    let topic = "faults-every-put";
    kafka::create_topic(&bootstrap, topic, PARTITIONS);
    let records: Vec<Record> = (0..200).map(record).collect();
    let producer = producer(&bootstrap, 8_000);
    let outcomes = kafka::produce(&producer, topic, None, &records);
    let succeeded: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert!(
        succeeded.is_empty(),
        "with {faults}, no write is durable, so no delivery may succeed; these did: {succeeded:?}"
    );
    let consumer = kafka::consumer(&bootstrap);
    for partition in 0..PARTITIONS {
        assert_eq!(
            kafka::watermarks(&consumer, topic, partition),
            (0, 0),
            "partition {partition} holds nothing"
        );
    }
    playground.stop();
    s3
}

#[test]
fn when_every_put_fails_every_delivery_report_is_an_error() {
    let s3 = nothing_succeeds_with("put.error_rate=1");
    assert!(
        s3.objects().is_empty(),
        "no PUT reached the bucket, so it holds no object"
    );
}

#[test]
fn when_every_put_response_is_lost_every_delivery_report_is_an_error() {
    let s3 = nothing_succeeds_with("put.lost_response_rate=1");
    let objects = s3.objects();
    assert!(
        !objects.is_empty(),
        "the PUTs happened: their objects are orphans in the bucket"
    );
    assert!(
        objects.iter().all(|(key, _)| key.contains("/data/")),
        "objects are under data/: {:?}",
        objects.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
}

#[test]
fn an_object_uploaded_after_the_produce_timeout_is_never_committed() {
    // Each PUT takes 2.5 s, longer than the 2 s produce timeout: the writer refuses to
    // commit the object (garbage collection may already judge it an orphan), so nothing
    // is acknowledged and nothing becomes readable, however late.
    let s3 = nothing_succeeds_with("put.latency=fixed:2500ms");
    assert!(
        !s3.objects().is_empty(),
        "the slow PUTs did reach the bucket; their objects are left to garbage collection"
    );
}
