//! librdkafka 2.12 (the Rust `rdkafka` crate) against a real `weir playground`: for each
//! compression codec, 100,000 keyed records with headers and explicit timestamps,
//! spread over 8 partitions by librdkafka's default partitioner and acknowledged with
//! acks=all, all come back through `assign` exactly once, in order, at dense offsets,
//! with keys, values, headers and timestamps intact.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};

use rdkafka::producer::FutureProducer;
use support::Playground;
use support::kafka::{self, Record};

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 8;
const KEYS: usize = 1_000;
fn record(i: usize, codec: &str) -> Record {
    let mut value = format!("{codec} record {i}: ").into_bytes();
    // Varied lengths and every byte value, zeros and 0xff included.
    value.extend((0..i % 211).map(|j| ((i * 31 + j * 7) % 256) as u8));
    Record {
        key: Some(format!("key-{:04}", i % KEYS).into_bytes()),
        value: Some(value),
        headers: vec![
            ("seq".to_string(), Some(i.to_string().into_bytes())),
            ("codec".to_string(), Some(codec.as_bytes().to_vec())),
            ("empty".to_string(), Some(Vec::new())),
            ("null".to_string(), None),
        ],
        // Explicit create times, an hour before now, so a server that stamped its own
        // would show.
        timestamp: Some(support::recent_ms() + i as i64),
    }
}

fn round_trip(codec: &str) {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = format!("records-{codec}");
    kafka::create_topic(&bootstrap, &topic, PARTITIONS);

    let records: Vec<Record> = (0..RECORDS).map(|i| record(i, codec)).collect();
    let producer: FutureProducer = kafka::producer_config(&bootstrap)
        .set("compression.type", codec)
        .create()
        .expect("create a producer");
    let delivered = kafka::produce_ok(&producer, &topic, None, &records);

    // The default partitioner keeps each key on one partition, and uses all of them.
    let mut key_partition: HashMap<usize, i32> = HashMap::new();
    let mut acked: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for (i, (partition, offset)) in delivered.iter().enumerate() {
        let first = *key_partition.entry(i % KEYS).or_insert(*partition);
        assert_eq!(
            first, *partition,
            "record {i}: every record of a key goes to one partition"
        );
        acked.entry(*partition).or_default().push((*offset, i));
    }
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "records landed on every one of the {PARTITIONS} partitions"
    );

    let consumer = kafka::consumer(&bootstrap);
    let mut ends = BTreeMap::new();
    let mut expected: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for (partition, acks) in &mut acked {
        acks.sort();
        // What the producer was told: offsets 0.. in the order it sent.
        let offsets: Vec<i64> = acks.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(
            offsets,
            (0..acks.len() as i64).collect::<Vec<_>>(),
            "{topic}/{partition}: acknowledged offsets are dense from 0"
        );
        let reordered = acks.windows(2).find(|w| w[0].1 > w[1].1);
        assert!(
            reordered.is_none(),
            "{topic}/{partition}: offsets follow the order the producer sent in; \
             but (offset, record sent as #) {:?}",
            reordered
        );
        assert_eq!(
            kafka::watermarks(&consumer, &topic, *partition),
            (0, acks.len() as i64),
            "{topic}/{partition}: ListOffsets earliest and latest"
        );
        ends.insert(*partition, acks.len() as i64);
        expected.insert(
            *partition,
            acks.iter().map(|(_, i)| records[*i].clone()).collect(),
        );
    }

    let consumed = kafka::consume_until(&consumer, &topic, &ends);
    for (partition, records) in &expected {
        kafka::assert_partition(&topic, *partition, &consumed[partition], records);
    }
    let total: usize = consumed.values().map(Vec::len).sum();
    assert_eq!(total, RECORDS, "every record came back exactly once");
}

#[test]
fn gzip_records_round_trip_over_8_partitions() {
    round_trip("gzip");
}

#[test]
fn snappy_records_round_trip_over_8_partitions() {
    round_trip("snappy");
}

#[test]
fn lz4_records_round_trip_over_8_partitions() {
    round_trip("lz4");
}

#[test]
fn zstd_records_round_trip_over_8_partitions() {
    round_trip("zstd");
}
