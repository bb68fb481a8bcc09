//! Scenarios that more than one test file runs, against differently configured Weirs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;

use super::Playground;
use super::kafka::{self, Record};

const PARTITIONS: i32 = 4;

fn record(wave: &str, i: usize) -> Record {
    Record {
        key: Some(format!("key-{}", i % 64).into_bytes()),
        value: Some(format!("{wave} record {i} {}", "d".repeat(i % 300)).into_bytes()),
        headers: vec![("wave".to_string(), Some(wave.as_bytes().to_vec()))],
        timestamp: Some(1_700_000_000_000 + i as i64),
    }
}

/// Acknowledged means durable. Wave 1 (`first_wave` records) is acknowledged whole;
/// wave 2 is sent batch after batch from another thread and SIGKILL lands once
/// `min_second_batches` batches of it are through. After a restart on the same data
/// dir (and bucket): every acknowledged record is at its acknowledged offset, offsets
/// are dense, any extra record is one wave 2 sent, and producing continues at each
/// high watermark.
pub fn acknowledged_records_survive_kill_9(
    playground: &mut Playground,
    topic: &'static str,
    first_wave: usize,
    min_second_batches: usize,
) {
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, topic, PARTITIONS);

    // (partition, offset) -> the record acknowledged there.
    let mut acknowledged: HashMap<(i32, i64), Record> = HashMap::new();

    // Wave 1: every record acknowledged before the kill.
    let producer = kafka::producer(&bootstrap);
    let wave1: Vec<Record> = (0..first_wave).map(|i| record("first", i)).collect();
    for (at, record) in kafka::produce_ok(&producer, topic, None, &wave1)
        .into_iter()
        .zip(wave1)
    {
        assert!(
            acknowledged.insert(at, record).is_none(),
            "offset {at:?} acknowledged twice"
        );
    }

    // Wave 2: batch after batch from another thread; SIGKILL lands while one is in
    // flight. Whatever was acknowledged before the kill must survive it.
    let in_flight: FutureProducer = kafka::producer_config(&bootstrap)
        .set("message.timeout.ms", "5000")
        .create()
        .expect("create a producer");
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let batches_done = Arc::new(Mutex::new(0usize));
    let sender = {
        let (outcomes, stop, batches_done) = (outcomes.clone(), stop.clone(), batches_done.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<Record> = (i..i + 500).map(|i| record("second", i)).collect();
                i += 500;
                let results = kafka::produce(&in_flight, topic, None, &batch);
                outcomes
                    .lock()
                    .expect("outcomes")
                    .extend(batch.into_iter().zip(results));
                *batches_done.lock().expect("count") += 1;
            }
        })
    };
    let deadline = Instant::now() + kafka::PATIENCE;
    while *batches_done.lock().expect("count") < min_second_batches {
        assert!(
            Instant::now() < deadline,
            "the second wave made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    playground.kill9();
    sender.join().expect("the sending thread");
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes"));
    let mut acked_in_wave2 = 0;
    for (record, outcome) in outcomes {
        if let Ok(at) = outcome {
            acked_in_wave2 += 1;
            assert!(
                acknowledged.insert(at, record).is_none(),
                "offset {at:?} acknowledged twice"
            );
        }
    }
    assert!(
        acked_in_wave2 >= min_second_batches * 500,
        "{min_second_batches} full batches of the second wave were acknowledged"
    );

    playground.restart();
    let consumer = kafka::consumer(&bootstrap);
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (low, high) = kafka::watermarks(&consumer, topic, partition);
        assert_eq!(low, 0, "{topic}/{partition}: log start after the restart");
        let acked_end = acknowledged
            .keys()
            .filter(|(p, _)| *p == partition)
            .map(|(_, offset)| offset + 1)
            .max()
            .unwrap_or(0);
        assert!(
            high >= acked_end,
            "{topic}/{partition}: the high watermark after the restart, {high}, covers every \
             acknowledged offset (up to {acked_end})"
        );
        ends.insert(partition, high);
    }
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    let mut found = 0;
    for (partition, records) in &consumed {
        let offsets: Vec<i64> = records.iter().map(|c| c.offset).collect();
        assert_eq!(
            offsets,
            (0..ends[partition]).collect::<Vec<_>>(),
            "{topic}/{partition}: offsets 0..high watermark, once each"
        );
        for consumed in records {
            match acknowledged.get(&(consumed.partition, consumed.offset)) {
                Some(record) => {
                    assert_eq!(
                        &consumed.record, record,
                        "{topic}/{partition} offset {}: the acknowledged record",
                        consumed.offset
                    );
                    found += 1;
                }
                // Stored but its acknowledgement lost in the kill: allowed, but it must be
                // a record that was sent.
                None => assert_eq!(
                    consumed.record.headers,
                    vec![("wave".to_string(), Some(b"second".to_vec()))],
                    "{topic}/{partition} offset {}: an unacknowledged record is one the \
                     second wave sent",
                    consumed.offset
                ),
            }
        }
    }
    assert_eq!(
        found,
        acknowledged.len(),
        "every acknowledged record is back"
    );

    // Producing after the restart continues at each high watermark.
    let producer = kafka::producer(&bootstrap);
    let wave3: Vec<Record> = (0..400).map(|i| record("third", i)).collect();
    let mut first_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in kafka::produce_ok(&producer, topic, None, &wave3) {
        let first = first_offsets.entry(partition).or_insert(offset);
        *first = (*first).min(offset);
    }
    for (partition, first) in first_offsets {
        assert_eq!(
            first, ends[&partition],
            "{topic}/{partition}: the first offset after the restart is the high watermark"
        );
    }
}
