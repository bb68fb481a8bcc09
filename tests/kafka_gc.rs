//! Orphan garbage collection on a real S3 HTTP server (in-process `s3s-fs`, or
//! `WEIR_TEST_S3_ENDPOINT`): objects uploaded but never committed are deleted after the
//! grace period; committed objects stay and their records stay readable; keys Weir did
//! not write are left alone.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use support::kafka::{self, Record};
use support::s3::S3;
use support::{WeirProcess, free_port};

const PARTITIONS: i32 = 2;
const GRACE_MS: u64 = 2_000;

fn playground(
    root: &Path,
    port: u16,
    url: &str,
    envs: &[(&str, &str)],
    extra: &[&str],
) -> WeirProcess {
    let mut args: Vec<String> = [
        "playground",
        "--data-dir",
        &root.join("data").display().to_string(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--bucket",
        url,
        "--produce-timeout-ms",
        "1000",
        "--batch-timeout-ms",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    WeirProcess::start(
        "weir playground",
        &args,
        envs,
        "Weir playground: bootstrap.servers=",
        &root.join("playground.log"),
    )
}

fn data_keys(s3: &S3) -> BTreeSet<String> {
    s3.keys()
        .into_iter()
        .filter(|key| key.contains("/data/"))
        .collect()
}

#[test]
fn orphans_are_deleted_after_the_grace_period_and_committed_objects_stay() {
    let s3 = S3::start();
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url();
    let root = tempfile::TempDir::new().expect("temp dir");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let topic = "gc";

    // 1. Every PUT is written but its response lost: the writer gives up, the objects
    //    are orphans. Collection is off, so they stay.
    let mut lossy = playground(
        root.path(),
        port,
        &url,
        &envs,
        &[
            "--object-store-faults",
            "put.lost_response_rate=1",
            "--gc-interval-ms",
            "0",
        ],
    );
    kafka::create_topic(&bootstrap, topic, PARTITIONS);
    let producer = kafka::producer_config(&bootstrap)
        .set("message.timeout.ms", "3000")
        .create()
        .expect("create a producer");
    let lost: Vec<Record> = (0..20)
        .map(|i| Record::new(format!("lost-{i}"), "never acknowledged"))
        .collect();
    let outcomes = kafka::produce(&producer, topic, None, &lost);
    assert!(
        outcomes.iter().all(Result::is_err),
        "no lost PUT is acknowledged"
    );
    drop(producer);
    lossy.terminate();
    let lost_orphans = data_keys(&s3);
    assert!(!lost_orphans.is_empty(), "the lost PUTs left objects");

    // 2. An orphan as an agent that died between PUT and commit leaves it, and a key
    //    Weir did not write.
    let planted = format!("{}/data/{}.weir", s3.prefix, ulid::Ulid::new());
    s3.put(
        planted.trim_start_matches(&format!("{}/", s3.prefix)),
        b"WEIR an object nobody committed".to_vec(),
    );
    let foreign = format!("{}/data/README", s3.prefix);
    s3.put("data/README", b"not Weir's".to_vec());
    let orphans: BTreeSet<String> = lost_orphans
        .iter()
        .cloned()
        .chain([planted.clone()])
        .collect();

    // 3. A healthy playground on the same metadata and bucket, collecting every 300 ms
    //    with a 2 s grace period. What it acknowledges is committed.
    let mut healthy = playground(
        root.path(),
        port,
        &url,
        &envs,
        &[
            "--gc-grace-ms",
            &GRACE_MS.to_string(),
            "--gc-interval-ms",
            "300",
        ],
    );
    let producer = kafka::producer(&bootstrap);
    let kept: Vec<Record> = (0..500)
        .map(|i| Record::new(format!("kept-{i}"), format!("committed record {i}")))
        .collect();
    let mut expected: BTreeMap<i32, Vec<(i64, Record)>> = BTreeMap::new();
    for ((partition, offset), record) in kafka::produce_ok(&producer, topic, None, &kept)
        .into_iter()
        .zip(&kept)
    {
        expected
            .entry(partition)
            .or_default()
            .push((offset, record.clone()));
    }
    drop(producer);
    let committed: BTreeSet<String> = data_keys(&s3)
        .difference(&orphans)
        .filter(|key| **key != foreign)
        .cloned()
        .collect();
    assert!(!committed.is_empty(), "the healthy run wrote objects");

    // Wait past the grace period of every object, committed ones included, and for a
    // few passes more.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let keys = data_keys(&s3);
        if keys.is_disjoint(&orphans) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphans still in the bucket after 60 s: {:?}; log:\n{}",
            keys.intersection(&orphans).collect::<Vec<_>>(),
            healthy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(GRACE_MS + 1_000));
    let keys = data_keys(&s3);
    assert!(
        committed.is_subset(&keys),
        "committed objects are never deleted; gone: {:?}",
        committed.difference(&keys).collect::<Vec<_>>()
    );
    assert!(keys.contains(&foreign), "a key Weir did not write stays");

    // The committed records are all readable, from a cold cache.
    healthy.terminate();
    healthy.restart();
    let consumer = kafka::consumer(&bootstrap);
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, kafka::watermarks(&consumer, topic, p).1))
        .collect();
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    for (partition, records) in &expected {
        let got: Vec<(i64, Record)> = consumed[partition]
            .iter()
            .map(|c| (c.offset, c.record.clone()))
            .collect();
        let mut want = records.clone();
        want.sort_by_key(|(offset, _)| *offset);
        assert_eq!(
            got.iter()
                .map(|(o, r)| (*o, r.key.clone()))
                .collect::<Vec<_>>(),
            want.iter()
                .map(|(o, r)| (*o, r.key.clone()))
                .collect::<Vec<_>>(),
            "partition {partition} holds every committed record after collection"
        );
    }
    let status = healthy.terminate();
    assert!(status.success(), "clean exit; log:\n{}", healthy.log_tail());
    let log = std::fs::read_to_string(root.path().join("playground.log")).unwrap_or_default();
    assert!(
        log.contains("deleted orphan objects"),
        "the collector says what it deleted"
    );
}
