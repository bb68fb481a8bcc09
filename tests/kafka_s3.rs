//! Weir on a real S3 HTTP server: `s3s-fs` in-process (SigV4 checked, objects as files in
//! a temporary directory), or the server named by `WEIR_TEST_S3_ENDPOINT` (MinIO, moto).
//! `weir` reaches it as a user would: `--bucket s3://BUCKET/PREFIX` and the `AWS_*`
//! variables.
//!
//! - A playground with `--bucket` round-trips tens of thousands of records, the records'
//!   bytes are in the bucket's objects and not under `--data-dir`.
//! - It survives kill -9: everything acknowledged is read back after a restart on the
//!   same data directory and bucket.
//! - Two agents and a control plane share the bucket: produced through one, consumed
//!   through the other.
//! - A wrong secret key or a missing bucket stops `weir playground` and `weir agent` at
//!   start, with a message naming the bucket and what the server said.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use rdkafka::producer::FutureProducer;
use support::kafka::{self, Record};
use support::process::{files_under, run_to_exit};
use support::s3::S3;
use support::{Cluster, Playground, scenarios};

fn env_refs<'a>(envs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    envs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Produces `records` (librdkafka's partitioner) and returns them grouped by the
/// partition that acknowledged them, in offset order.
fn produce_grouped(
    producer: &FutureProducer,
    topic: &str,
    records: &[Record],
) -> BTreeMap<i32, Vec<Record>> {
    let mut by_partition: BTreeMap<i32, Vec<(i64, Record)>> = BTreeMap::new();
    for ((partition, offset), record) in kafka::produce_ok(producer, topic, None, records)
        .into_iter()
        .zip(records)
    {
        by_partition
            .entry(partition)
            .or_default()
            .push((offset, record.clone()));
    }
    by_partition
        .into_iter()
        .map(|(partition, mut records)| {
            records.sort_by_key(|(offset, _)| *offset);
            (partition, records.into_iter().map(|(_, r)| r).collect())
        })
        .collect()
}

/// Reads every partition of `topic` up to what `expected` holds and asserts each holds
/// exactly those records, in order, at offsets 0...
fn assert_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: &BTreeMap<i32, Vec<Record>>,
) {
    let consumer = kafka::consumer(bootstrap);
    let ends = (0..partitions)
        .map(|p| (p, expected.get(&p).map_or(0, |r| r.len() as i64)))
        .collect();
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    for partition in 0..partitions {
        let want = expected.get(&partition).map_or(&[][..], Vec::as_slice);
        kafka::assert_partition(topic, partition, &consumed[&partition], want);
    }
}

#[test]
fn a_playground_on_s3_round_trips_records_and_keeps_their_bytes_in_the_bucket() {
    const PARTITIONS: i32 = 8;
    const RECORDS: usize = 30_000;
    const MARKED: usize = 300;
    let s3 = S3::start();
    let envs = s3.envs();
    let mut envs = env_refs(&envs);
    envs.push(("RUST_LOG", "debug"));
    let url = s3.url();
    let mut playground = Playground::start_with(&["--bucket", &url], &envs);
    let bootstrap = playground.bootstrap();

    // The bulk: lz4-compressed batches over 8 partitions.
    let topic = "s3-round-trip";
    kafka::create_topic(&bootstrap, topic, PARTITIONS);
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            key: Some(format!("key-{}", i % 997).into_bytes()),
            value: Some(format!("record {i} {}", "v".repeat(i % 200)).into_bytes()),
            headers: vec![("n".to_string(), Some(i.to_string().into_bytes()))],
            timestamp: Some(support::recent_ms() + i as i64),
        })
        .collect();
    let producer: FutureProducer = kafka::producer_config(&bootstrap)
        .set("compression.codec", "lz4")
        .create()
        .expect("create an lz4 producer");
    let expected = produce_grouped(&producer, topic, &records);
    assert_eq!(
        expected.len(),
        PARTITIONS as usize,
        "the keys spread over every partition"
    );
    assert_topic(&bootstrap, topic, PARTITIONS, &expected);

    // Uncompressed records carrying a random marker, to find where their bytes went.
    let marker = format!("weir-marker-{:032x}", rand::random::<u128>());
    let marked_topic = "s3-placement";
    kafka::create_topic(&bootstrap, marked_topic, 2);
    let marked: Vec<Record> = (0..MARKED)
        .map(|i| Record {
            key: Some(format!("{marker}:key:{i}").into_bytes()),
            value: Some(format!("value {i} {marker}").into_bytes()),
            headers: vec![("h".to_string(), Some(marker.clone().into_bytes()))],
            timestamp: Some(support::recent_ms() + i as i64),
        })
        .collect();
    let plain = kafka::producer(&bootstrap);
    let expected_marked = produce_grouped(&plain, marked_topic, &marked);
    assert_topic(&bootstrap, marked_topic, 2, &expected_marked);
    drop((producer, plain));
    playground.stop();

    let objects = s3.objects();
    assert!(
        !objects.is_empty(),
        "the playground wrote objects to {}",
        s3.url()
    );
    let in_bucket: usize = objects
        .iter()
        .map(|(_, bytes)| occurrences(bytes, marker.as_bytes()))
        .sum();
    assert_eq!(
        in_bucket,
        3 * MARKED,
        "the objects in the bucket hold each record's key, value and header, one copy each"
    );
    if let Some(bucket_dir) = &s3.bucket_dir {
        let on_server: usize = files_under(bucket_dir)
            .iter()
            .map(|f| occurrences(&std::fs::read(f).expect("read a file"), marker.as_bytes()))
            .sum();
        assert_eq!(
            on_server,
            3 * MARKED,
            "the S3 server stored the records under {}",
            bucket_dir.display()
        );
    }
    assert!(
        !playground.data_dir.join("objects").exists(),
        "with --bucket the playground makes no local objects directory"
    );
    assert!(
        !files_under(&playground.data_dir.join("metadata")).is_empty(),
        "the metadata stays under --data-dir"
    );
    let local: Vec<_> = files_under(playground.root())
        .into_iter()
        .filter(|f| occurrences(&std::fs::read(f).expect("read a file"), marker.as_bytes()) > 0)
        .collect();
    assert_eq!(
        local,
        Vec::<std::path::PathBuf>::new(),
        "no record bytes under the data directory or in the log"
    );
}

#[test]
fn records_acknowledged_on_s3_survive_kill_9_and_restart() {
    let s3 = S3::start();
    let envs = s3.envs();
    let url = s3.url();
    let mut playground = Playground::start_with(&["--bucket", &url], &env_refs(&envs));
    scenarios::acknowledged_records_survive_kill_9(&mut playground, "s3-durable", 3_000, 2);
}

#[test]
fn two_agents_sharing_an_s3_bucket_serve_each_others_records() {
    const PARTITIONS: i32 = 4;
    let s3 = S3::start();
    let envs = s3.envs();
    let cluster = Cluster::start_on_bucket(&["zone-a", "zone-b"], &s3.url(), &env_refs(&envs));
    let (writer, reader) = (&cluster.agents[0], &cluster.agents[1]);
    let topic = "s3-shared";
    kafka::create_topic(&writer.bootstrap(), topic, PARTITIONS);
    let records: Vec<Record> = (0..4_000)
        .map(|i| Record {
            timestamp: Some(support::recent_ms() + i as i64),
            ..Record::new(format!("key-{}", i % 101), format!("shared record {i}"))
        })
        .collect();
    let producer = kafka::producer(&writer.bootstrap());
    let expected = produce_grouped(&producer, topic, &records);
    assert_topic(&reader.bootstrap(), topic, PARTITIONS, &expected);
    assert!(
        !s3.objects().is_empty(),
        "the agents wrote their objects to {}",
        s3.url()
    );
    assert!(
        files_under(&cluster.bucket_dir).is_empty(),
        "nothing went to the default local bucket"
    );
}

/// Runs `weir playground --bucket URL` and `weir agent --bucket URL` with `envs` and
/// asserts that each exits non-zero and says which bucket and what went wrong.
fn assert_refuses(url: &str, envs: &[(&str, &str)], what: &[&str]) {
    let data = tempfile::TempDir::new().expect("temp dir");
    let data_dir = data.path().join("data");
    let playground = [
        "playground",
        "--data-dir",
        data_dir.to_str().expect("a UTF-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--bucket",
        url,
    ];
    let agent = [
        "agent",
        // Nobody listens here; the bucket is checked first.
        "--control-plane",
        "http://127.0.0.1:1",
        "--zone",
        "zone-a",
        "--listen",
        "127.0.0.1:0",
        "--advertise",
        "127.0.0.1:9092",
        "--http-listen",
        "127.0.0.1:0",
        "--bucket",
        url,
    ];
    for args in [&playground[..], &agent[..]] {
        let output = run_to_exit(args, envs);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "weir {} with {url} refuses to start; it exited {} with stdout:\n{stdout}\nstderr:\n{stderr}",
            args[0],
            output.status
        );
        assert!(
            !stdout.contains("bootstrap.servers") && !stdout.contains("Kafka on"),
            "weir {} never says it is ready; stdout:\n{stdout}",
            args[0]
        );
        let said = format!("{stdout}{stderr}");
        assert!(
            said.contains(&format!("bucket {url} is not usable")),
            "weir {} names the bucket {url}; it said:\n{said}",
            args[0]
        );
        assert!(
            what.iter().any(|w| said.contains(w)),
            "weir {} passes on what the server said (one of {what:?}); it said:\n{said}",
            args[0]
        );
    }
    assert!(
        !data_dir.join("metadata").exists(),
        "the playground created no metadata store before refusing"
    );
}

#[test]
fn a_wrong_secret_key_refuses_to_start() {
    let s3 = S3::start();
    if !s3.checks_signatures {
        eprintln!(
            "skipped: WEIR_TEST_S3_IGNORES_SIGNATURES says {} accepts any key",
            s3.endpoint
        );
        return;
    }
    let mut envs = s3.envs();
    for (name, value) in &mut envs {
        if *name == "AWS_SECRET_ACCESS_KEY" {
            *value = format!("{value}-wrong");
        }
    }
    assert_refuses(
        &s3.url(),
        &env_refs(&envs),
        &["SignatureDoesNotMatch", "403"],
    );
}

#[test]
fn a_missing_bucket_refuses_to_start() {
    let s3 = S3::start();
    let url = format!(
        "s3://weir-no-such-bucket-{:08x}/weir",
        rand::random::<u32>()
    );
    assert_refuses(&url, &env_refs(&s3.envs()), &["NoSuchBucket", "404"]);
}
