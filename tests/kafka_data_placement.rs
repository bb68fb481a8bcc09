//! Record bytes live in objects and nowhere else: after records carrying a random
//! marker are produced and read back through a `weir playground`, the marker is found
//! in files under `DATA_DIR/objects` — once per copy produced — and in no other file:
//! not under `DATA_DIR/metadata` (the control plane never sees a record's bytes), and
//! not in the process log, even at debug level.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use support::Playground;
use support::kafka::{self, Record};
use support::process::files_under;

const RECORDS: usize = 500;

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn record_bytes_are_stored_only_under_objects() {
    let mut playground = Playground::start_with(&[], &[("RUST_LOG", "debug")]);
    let bootstrap = playground.bootstrap();
    let marker = format!("weir-marker-{:032x}", rand::random::<u128>());
    let topic = "placement";
    kafka::create_topic(&bootstrap, topic, 2);

    // Uncompressed, so the marker appears verbatim in the stored batches: once in each
    // record's key, value and header.
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            key: Some(format!("{marker}:key:{i}").into_bytes()),
            value: Some(format!("value {i} {marker}").into_bytes()),
            headers: vec![("h".to_string(), Some(marker.clone().into_bytes()))],
            timestamp: Some(support::recent_ms() + i as i64),
        })
        .collect();
    let producer = kafka::producer(&bootstrap);
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for ((partition, _), record) in kafka::produce_ok(&producer, topic, None, &records)
        .into_iter()
        .zip(&records)
    {
        by_partition
            .entry(partition)
            .or_default()
            .push(record.clone());
    }
    let consumer = kafka::consumer(&bootstrap);
    let ends = (0..2)
        .map(|p| (p, by_partition.get(&p).map_or(0, |r| r.len() as i64)))
        .collect();
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    assert_eq!(
        consumed.values().map(Vec::len).sum::<usize>(),
        RECORDS,
        "every record reads back before the files are searched"
    );
    drop((producer, consumer));
    playground.stop();

    let data = playground.data_dir.clone();
    let objects = data.join("objects");
    let metadata = data.join("metadata");
    assert!(
        !files_under(&metadata).is_empty(),
        "the metadata store is under {}",
        metadata.display()
    );
    let mut in_objects = 0;
    let mut elsewhere: Vec<(PathBuf, usize)> = Vec::new();
    // The whole temporary root: the data directory and the process log beside it.
    for file in files_under(playground.root()) {
        let bytes = std::fs::read(&file).expect("read a file");
        let found = occurrences(&bytes, marker.as_bytes());
        if file.starts_with(&objects) {
            in_objects += found;
        } else if found > 0 {
            elsewhere.push((file, found));
        }
    }
    assert_eq!(
        elsewhere,
        Vec::new(),
        "record bytes appear only under {}",
        objects.display()
    );
    assert_eq!(
        in_objects,
        3 * RECORDS,
        "the objects hold each record's key, value and header, one copy each"
    );
}
