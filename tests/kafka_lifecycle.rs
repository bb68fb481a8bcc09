//! The data lifecycle through real Kafka clients, on a real S3 server: retention by time
//! and by size, DeleteRecords, topic deletion, and compaction under live produce and
//! fetch — what leaves reads, the index and, after the grace period, the bucket
//! (docs/lifecycle.md).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::Playground;
use support::kafka::{self, PATIENCE, Record, block_on};
use support::s3::S3;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// A playground on the S3 server whose lifecycle runs every few hundred milliseconds:
/// retention passes, the jobs role, a grace of one second, and compaction only when
/// `compaction` (otherwise a job never fills).
fn playground(s3: &S3, compaction: bool) -> Playground {
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url();
    let (fan_in, wait) = if compaction {
        ("4", "500")
    } else {
        ("1024", "3600000")
    };
    Playground::start_with(
        &[
            "--bucket",
            &url,
            "--batch-timeout-ms",
            "20",
            "--retention-interval-ms",
            "300",
            "--object-delete-grace-ms",
            "1000",
            "--jobs-interval-ms",
            "200",
            "--compaction-fan-in",
            fan_in,
            "--compaction-max-wait-ms",
            wait,
        ],
        &envs,
    )
}

fn create(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (name, value) in configs {
        new = new.set(name, value);
    }
    let created =
        block_on(kafka::admin(bootstrap).create_topics([&new], &options())).expect("CreateTopics");
    assert_eq!(created[0], Ok(topic.to_string()), "create {topic}");
}

/// Records whose values carry `marker`, so the bucket can be searched for them.
fn marked(marker: &str, count: usize, timestamp: Option<i64>) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            timestamp,
            ..Record::new(
                format!("k{i}"),
                format!("{marker}-{i:05}-{}", "x".repeat(200)),
            )
        })
        .collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// How many objects in the bucket hold `marker`, and how many objects there are.
fn objects_holding(s3: &S3, marker: &str) -> (usize, usize) {
    let objects = s3.objects_present();
    let holding = objects
        .iter()
        .filter(|(_, bytes)| occurrences(bytes, marker.as_bytes()) > 0)
        .count();
    (holding, objects.len())
}

/// Waits until `done` holds, or fails with `what`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (low, high) watermarks, as librdkafka's ListOffsets sees them.
fn bounds(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    kafka::watermarks(&kafka::consumer(bootstrap), topic, partition)
}

/// Produces `records` to one partition, each call one flush (so one object per call).
fn produce(bootstrap: &str, topic: &str, partition: i32, records: &[Record]) -> Vec<i64> {
    let producer = kafka::producer(bootstrap);
    kafka::produce_ok(&producer, topic, Some(partition), records)
        .into_iter()
        .map(|(_, offset)| offset)
        .collect()
}

/// Reads `partition` from offset 0 with a consumer that resets to the earliest offset
/// (librdkafka's default `auto.offset.reset`), until `count` records arrived; returns
/// (offset, value).
fn read_from_beginning(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    count: usize,
) -> Vec<(i64, Vec<u8>)> {
    let consumer: rdkafka::consumer::BaseConsumer = kafka::consumer_config(bootstrap)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(0))
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let mut read = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while read.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {count} records of {topic}/{partition}; got {}",
            read.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            use rdkafka::Message;
            match message {
                Ok(m) => read.push((m.offset(), m.payload().unwrap_or_default().to_vec())),
                Err(e) => eprintln!("consumer: {e}"),
            }
        }
    }
    read
}

/// What a consumer without a reset policy (`auto.offset.reset=error`) gets first when
/// it fetches `topic`/0 from offset 0.
fn first_error_at_zero(bootstrap: &str, topic: &str) -> Option<RDKafkaErrorCode> {
    let consumer = kafka::consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(0))
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(e)) => return e.rdkafka_error_code(),
            Some(Ok(_)) => return None,
            None => {}
        }
    }
    None
}

#[test]
fn time_retention_takes_old_records_from_reads_the_index_and_the_bucket() {
    let s3 = S3::start();
    let playground = playground(&s3, false);
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-aged";
    create(&bootstrap, topic, 1, &[("retention.ms", "600000")]);
    // An hour old by their create time: past the ten minutes the topic keeps.
    let old = marked("OLD-RECORD", 40, Some(now_ms() - 3_600_000));
    for chunk in old.chunks(10) {
        produce(&bootstrap, topic, 0, chunk);
    }
    let young = marked("YOUNG-RECORD", 25, None);
    let young_offsets = produce(&bootstrap, topic, 0, &young);
    assert_eq!(young_offsets.first(), Some(&40));

    eventually("the log start moves past the old records", || {
        bounds(&bootstrap, topic, 0) == (40, 65)
    });
    // A consumer at offset 0 is below the log start: without a reset policy it is told
    // the offset is out of range...
    assert_eq!(
        first_error_at_zero(&bootstrap, topic),
        Some(RDKafkaErrorCode::AutoOffsetReset)
    );
    // ...and with one it resets to the earliest offset and reads the young records only.
    let read = read_from_beginning(&bootstrap, topic, 0, 25);
    assert_eq!(read.first().map(|r| r.0), Some(40));
    assert!(
        read.iter()
            .all(|(_, v)| occurrences(v, b"YOUNG-RECORD") == 1)
    );
    // After the grace, no object in the bucket holds an old record; the young are kept.
    eventually("the old records' objects leave the bucket", || {
        objects_holding(&s3, "OLD-RECORD").0 == 0
    });
    assert!(
        objects_holding(&s3, "YOUNG-RECORD").0 > 0,
        "the young records stay"
    );
    assert_eq!(bounds(&bootstrap, topic, 0), (40, 65));
}

#[test]
fn size_retention_keeps_a_partition_within_one_entry_of_its_bound() {
    let s3 = S3::start();
    let playground = playground(&s3, false);
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-sized";
    create(&bootstrap, topic, 1, &[]);
    // Twenty objects of one batch of ten records each, about 2.4 KB a batch.
    for i in 0..20 {
        produce(&bootstrap, topic, 0, &marked(&format!("S{i:02}"), 10, None));
    }
    assert_eq!(bounds(&bootstrap, topic, 0), (0, 200));
    // Bound the partition to about five batches, set after the fact.
    let alter = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("retention.bytes", "12000");
    let altered = block_on(kafka::admin(&bootstrap).alter_configs([&alter], &options()))
        .expect("AlterConfigs");
    assert!(altered[0].is_ok(), "{altered:?}");
    eventually("size retention moves the log start", || {
        bounds(&bootstrap, topic, 0).0 > 0
    });
    let (low, high) = bounds(&bootstrap, topic, 0);
    let kept_batches = (high - low) / 10;
    assert_eq!((high - low) % 10, 0, "whole batches go, never part of one");
    // At least the bound is kept, and not a whole batch more.
    let kept = read_from_beginning(&bootstrap, topic, 0, (high - low) as usize);
    let value_bytes: usize = kept.iter().map(|(_, v)| v.len()).sum();
    let batch_value_bytes = value_bytes / kept_batches as usize;
    assert!(
        (4..=6).contains(&kept_batches),
        "{kept_batches} batches of {batch_value_bytes} value bytes kept for a bound of 12,000 bytes"
    );
    assert_eq!(kept.first().map(|r| r.0), Some(low));
}

#[test]
fn delete_records_moves_the_low_watermark_as_kafka_does() {
    let s3 = S3::start();
    let playground = playground(&s3, false);
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-purged";
    create(&bootstrap, topic, 2, &[]);
    for partition in 0..2 {
        for chunk in marked(&format!("P{partition}"), 30, None).chunks(10) {
            produce(&bootstrap, topic, partition, chunk);
        }
    }
    let admin = kafka::admin(&bootstrap);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(15))
        .expect("p0");
    offsets
        .add_partition_offset(topic, 1, Offset::End)
        .expect("p1");
    let answered = block_on(admin.delete_records(&offsets, &options())).expect("DeleteRecords");
    let lows: BTreeMap<i32, (Offset, bool)> = answered
        .elements()
        .iter()
        .map(|e| (e.partition(), (e.offset(), e.error().is_ok())))
        .collect();
    assert_eq!(lows[&0], (Offset::Offset(15), true));
    assert_eq!(
        lows[&1],
        (Offset::Offset(30), true),
        "End is the high watermark"
    );
    assert_eq!(bounds(&bootstrap, topic, 0), (15, 30));
    assert_eq!(bounds(&bootstrap, topic, 1), (30, 30));
    let read = read_from_beginning(&bootstrap, topic, 0, 15);
    assert_eq!(
        read.iter().map(|r| r.0).collect::<Vec<_>>(),
        (15..30).collect::<Vec<_>>()
    );
    // Beyond the high watermark: refused, nothing moves.
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset(topic, 0, Offset::Offset(31))
        .expect("p0");
    let refused = block_on(admin.delete_records(&beyond, &options())).expect("DeleteRecords");
    assert_eq!(
        refused.elements()[0]
            .error()
            .err()
            .and_then(|e| e.rdkafka_error_code()),
        Some(RDKafkaErrorCode::OffsetOutOfRange)
    );
    assert_eq!(bounds(&bootstrap, topic, 0), (15, 30));
    // The first object of partition 0 held offsets 0..10 only: it leaves the bucket.
    eventually("the purged records' objects leave the bucket", || {
        objects_holding(&s3, "P0-00000").0 == 0
    });
}

#[test]
fn a_deleted_topic_leaves_the_bucket_and_its_namesake_starts_empty() {
    let s3 = S3::start();
    let playground = playground(&s3, false);
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-doomed";
    create(&bootstrap, topic, 2, &[]);
    for partition in 0..2 {
        produce(&bootstrap, topic, partition, &marked("DOOMED", 20, None));
    }
    assert!(objects_holding(&s3, "DOOMED").0 > 0);
    let deleted = block_on(kafka::admin(&bootstrap).delete_topics(&[topic], &options()))
        .expect("DeleteTopics");
    assert_eq!(deleted[0], Ok(topic.to_string()));
    create(&bootstrap, topic, 2, &[]);
    for partition in 0..2 {
        assert_eq!(
            bounds(&bootstrap, topic, partition),
            (0, 0),
            "the namesake is empty"
        );
    }
    let offsets = produce(&bootstrap, topic, 0, &marked("REBORN", 3, None));
    assert_eq!(offsets, vec![0, 1, 2]);
    let read = read_from_beginning(&bootstrap, topic, 0, 3);
    assert!(
        read.iter().all(|(_, v)| occurrences(v, b"REBORN") == 1),
        "no old record is readable"
    );
    eventually("every old object leaves the bucket", || {
        objects_holding(&s3, "DOOMED").0 == 0
    });
}

#[test]
fn compaction_under_live_produce_and_fetch_reads_back_identical_and_merges_objects() {
    let s3 = S3::start();
    let playground = playground(&s3, true);
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-compacted";
    const PARTITIONS: i32 = 4;
    create(&bootstrap, topic, PARTITIONS, &[]);
    let producer = kafka::producer(&bootstrap);
    let tailer = kafka::consumer(&bootstrap);
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    tailer.assign(&assignment).expect("assign");
    let mut produced: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let mut tailed: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    // Many small objects while a consumer tails: jobs merge them as they come.
    for round in 0..60 {
        for p in 0..PARTITIONS {
            let records: Vec<Record> = (0..5)
                .map(|i| Record {
                    headers: vec![("round".into(), Some(format!("{round}").into_bytes()))],
                    timestamp: Some(now_ms()),
                    ..Record::new(format!("k{round}-{i}"), format!("p{p}-r{round}-i{i}"))
                })
                .collect();
            kafka::produce_ok(&producer, topic, Some(p), &records);
            produced.entry(p).or_default().extend(records);
        }
        while let Some(Ok(m)) = tailer.poll(Duration::from_millis(0)) {
            use rdkafka::Message;
            tailed
                .entry(m.partition())
                .or_default()
                .push((m.offset(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    // Objects are merged: the bucket ends with far fewer objects than the 240 written.
    eventually("compaction merges the writers' objects", || {
        let objects = s3.objects_present();
        let compacted = objects.iter().filter(|(_, b)| object_level(b) > 0).count();
        compacted > 0 && objects.len() < 60
    });
    // A full read of every partition, after compaction, is what was produced.
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, produced[&p].len() as i64))
        .collect();
    let consumed = kafka::consume_until(&kafka::consumer(&bootstrap), topic, &ends);
    for p in 0..PARTITIONS {
        kafka::assert_partition(topic, p, &consumed[&p], &produced[&p]);
        // What the tailer read while jobs ran agrees with it, offset by offset.
        for (offset, value) in tailed.get(&p).into_iter().flatten() {
            assert_eq!(
                Some(value.as_slice()),
                produced[&p][*offset as usize].value.as_deref(),
                "partition {p} offset {offset} read while compaction ran"
            );
        }
    }
}

/// The level an object's header flags carry (docs/lifecycle.md, object/mod.rs).
fn object_level(bytes: &[u8]) -> u16 {
    if bytes.len() < 8 || &bytes[..4] != b"WEIR" {
        return 0;
    }
    u16::from_be_bytes([bytes[6], bytes[7]]) & 0xF
}

/// The objects the index names, over every partition of every topic, from each
/// partition's log start: read through the control plane's own API.
fn indexed_objects(cluster: &support::Cluster) -> std::collections::BTreeSet<String> {
    use weir_control_plane::ControlPlaneClient;
    use weir_control_plane::index::{OffsetSpec, PartitionRead};
    use weir_metadata::{Offset as At, Partition};
    block_on(async {
        let client = ControlPlaneClient::connect(&cluster.control_plane_url, Some(cluster.token))
            .await
            .expect("connect to the control plane");
        let mut named = std::collections::BTreeSet::new();
        for topic in client.list_topics().await.expect("list topics") {
            for p in 0..topic.partitions {
                let start = client
                    .list_offset(topic.id, Partition(p), OffsetSpec::Earliest)
                    .await
                    .expect("ListOffsets")
                    .expect("known partition")
                    .offset
                    .expect("an earliest offset");
                let read = PartitionRead {
                    topic: topic.id,
                    partition: Partition(p),
                    from: At(start.0),
                    max_bytes: u64::MAX,
                };
                let index = client
                    .read_index(&[read])
                    .await
                    .expect("ReadIndex")
                    .pop()
                    .expect("one answer")
                    .expect("in range");
                named.extend(
                    index
                        .entries
                        .iter()
                        .map(|e| format!("data/{}.weir", e.object)),
                );
            }
        }
        named
    })
}

/// The bucket's objects, by their key under the prefix (`data/<id>.weir`).
fn bucket_objects(s3: &S3) -> std::collections::BTreeSet<String> {
    s3.keys()
        .into_iter()
        .filter_map(|k| {
            k.strip_prefix(&format!("{}/", s3.prefix))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn compaction_survives_kill_9_of_an_agent_and_the_control_plane_and_leaks_no_object() {
    let s3 = S3::start();
    let mut envs: Vec<(&str, String)> = s3.envs();
    for (k, v) in [
        ("WEIR_BATCH_TIMEOUT_MS", "20"),
        ("WEIR_JOBS_INTERVAL_MS", "100"),
        ("WEIR_PRODUCE_TIMEOUT_MS", "2000"),
        ("WEIR_GC_GRACE_MS", "4000"),
        ("WEIR_GC_INTERVAL_MS", "500"),
    ] {
        envs.push((k, v.to_string()));
    }
    let agent_envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let control_plane_envs = [
        ("WEIR_COMPACTION_FAN_IN", "4"),
        ("WEIR_COMPACTION_MAX_WAIT_MS", "300"),
        ("WEIR_OBJECT_DELETE_GRACE_MS", "1000"),
        ("WEIR_LEASE_TTL_SECS", "2"),
    ];
    let url = s3.url();
    let mut cluster = support::Cluster::start_configured(
        &["a", "a"],
        Some(&url),
        &agent_envs,
        &control_plane_envs,
    );
    let bootstrap = cluster.agents[0].bootstrap();
    let topic = "lifecycle-killed";
    const PARTITIONS: i32 = 3;
    create(&bootstrap, topic, PARTITIONS, &[]);
    let mut produced: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let mut produce_rounds =
        |cluster: &support::Cluster, through: &[usize], rounds: usize, tag: &str| {
            // Through every live agent in turn, so each writes objects and any may run jobs.
            for round in 0..rounds {
                let agent = &cluster.agents[through[round % through.len()]];
                let producer = kafka::producer(&agent.bootstrap());
                for p in 0..PARTITIONS {
                    let records: Vec<Record> = (0..4)
                        .map(|i| Record {
                            timestamp: Some(now_ms()),
                            ..Record::new(
                                format!("{tag}{round}-{i}"),
                                format!("{tag}-p{p}-r{round}-i{i}"),
                            )
                        })
                        .collect();
                    kafka::produce_ok(&producer, topic, Some(p), &records);
                    produced.entry(p).or_default().extend(records);
                }
            }
        };
    produce_rounds(&cluster, &[0, 1], 30, "before");
    // An agent dies with jobs in hand, then the control plane with swaps under way.
    cluster.agents[1].process.kill9();
    produce_rounds(&cluster, &[0], 10, "one-agent");
    cluster.control_plane.kill9();
    cluster.control_plane.restart();
    cluster.agents[1].process.restart();
    produce_rounds(&cluster, &[0, 1], 20, "after");

    // Every record reads back, in order, from whichever objects hold it now.
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, produced[&p].len() as i64))
        .collect();
    let consumed = kafka::consume_until(&kafka::consumer(&bootstrap), topic, &ends);
    for p in 0..PARTITIONS {
        kafka::assert_partition(topic, p, &consumed[&p], &produced[&p]);
    }
    // Once the grace periods pass, the bucket holds exactly what the index names:
    // dereferenced inputs deleted, outputs of jobs cut short swept as orphans.
    eventually(
        "the bucket holds exactly the objects the index names",
        || bucket_objects(&s3) == indexed_objects(&cluster),
    );
    let left = bucket_objects(&s3).len();
    assert!(
        left < 60,
        "{left} objects left of about 240 written: compaction merged them"
    );
}

#[test]
fn with_no_agent_compacting_produce_is_slowed_then_refused_before_the_backlog_grows_without_bound()
{
    let s3 = S3::start();
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url();
    let playground = Playground::start_with(
        &[
            "--bucket",
            &url,
            "--no-jobs",
            "--batch-timeout-ms",
            "10",
            "--compaction-backlog-soft",
            "10",
            "--compaction-backlog-hard",
            "30",
        ],
        &envs,
    );
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-backlog";
    create(&bootstrap, topic, 1, &[]);
    let producer: rdkafka::producer::FutureProducer = kafka::producer_config(&bootstrap)
        .set("message.timeout.ms", "3000")
        .create()
        .expect("producer");
    // One object per send; the backlog is counted about once a second.
    let mut refused = None;
    for i in 0..400 {
        match kafka::produce(
            &producer,
            topic,
            Some(0),
            &[Record::new("k", format!("v{i}"))],
        )
        .pop()
        {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                refused = Some((i, e));
                break;
            }
            None => unreachable!("one record sent"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (sent, error) = refused.expect("produce is refused once the backlog passes its hard bound");
    assert!(
        sent >= 30,
        "refused after {sent} objects, before the hard bound of 30"
    );
    assert!(
        sent < 200,
        "refused only after {sent} objects: the backlog grew far past its bound"
    );
    eprintln!("refused after {sent} acknowledged records: {error}");
}

#[test]
fn an_object_lost_from_the_bucket_is_a_storage_error_and_counted_not_silence() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let s3 = S3::start();
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url();
    let http = format!("127.0.0.1:{}", support::free_port());
    let mut playground = Playground::start_with(
        &["--bucket", &url, "--no-jobs", "--http-listen", &http],
        &envs,
    );
    let bootstrap = playground.bootstrap();
    let topic = "lifecycle-lost";
    create(&bootstrap, topic, 1, &[]);
    produce(&bootstrap, topic, 0, &marked("LOST", 5, None));
    // Someone deletes the object behind Weir's back (a bucket lifecycle rule, a person).
    let store = s3.store();
    for key in s3.keys() {
        block_on(store.delete(&key.as_str().into())).expect("delete behind Weir's back");
    }
    // A restart empties the block cache, which the writer had filled with the object.
    playground.stop();
    playground.restart();
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(topic)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let fetched = support::protocol::Connection::open(&bootstrap).call(12, &fetch);
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(
        partition.error_code, 56,
        "KAFKA_STORAGE_ERROR, not an empty answer"
    );
    let (_, metrics) = support::http::get(&http, "/metrics");
    assert!(
        metrics.contains("weir_fetch_missing_objects_total 1"),
        "the loss is counted: {}",
        metrics
            .lines()
            .filter(|l| l.contains("missing"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
