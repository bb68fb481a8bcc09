//! librdkafka (the `rdkafka` crate) set up for the end-to-end tests: producers with
//! acks=all, and consumers that `assign` partitions (tests/kafka_groups.rs has its own
//! group members).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

/// Bound on waiting for any one client operation, so that a broken server fails the test
/// instead of hanging it. Not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Runs a future to completion on a small runtime of its own. rdkafka's futures are
/// completed by librdkafka's threads, so they need no reactor.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

fn common(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("api.version.request", "true")
        .set("client.id", "weir-e2e");
    config
}

/// A producer: acks=all, no idempotence, librdkafka's default partitioner.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = common(bootstrap);
    config
        .set("enable.idempotence", "false")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "1000000");
    config
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    producer_config(bootstrap)
        .create()
        .expect("create an rdkafka producer")
}

/// A consumer for `assign`: no commits. librdkafka's `assign` needs a `group.id`, but an
/// assigning consumer never joins the group.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut config = common(bootstrap);
    config
        .set("group.id", "weir-e2e-assign")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "200");
    config
}

pub fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_config(bootstrap)
        .create()
        .expect("create an rdkafka consumer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    common(bootstrap)
        .create()
        .expect("create an rdkafka admin client")
}

/// Creates a topic with rdkafka's AdminClient; panics unless it was created.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let results = block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Timeout::After(Duration::from_secs(30)))),
    ))
    .expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    if let Err((topic, code)) = &results[0] {
        panic!("create topic {topic}: {code:?}");
    }
}

/// A record as a Kafka user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Create time in milliseconds; `None` when producing lets the client choose.
    pub timestamp: Option<i64>,
}

impl Record {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Record {
        Record {
            key: Some(key.into()),
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }
}

/// A consumed record and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub record: Record,
}

/// Produces `records` to `topic` (to `partition`, or by librdkafka's partitioner when
/// `None`), all enqueued before any delivery is awaited, and returns each record's
/// delivery outcome: (partition, offset) or the error librdkafka reported.
pub fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[Record],
) -> Vec<Result<(i32, i64), KafkaError>> {
    let mut pending = Vec::with_capacity(records.len());
    for record in records {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut future_record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).headers(headers);
        if let Some(key) = &record.key {
            future_record = future_record.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            future_record = future_record.payload(value.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            future_record = future_record.timestamp(timestamp);
        }
        if let Some(partition) = partition {
            future_record = future_record.partition(partition);
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            match producer.send_result(future_record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(code), back))
                    if code == rdkafka::types::RDKafkaErrorCode::QueueFull
                        && Instant::now() < deadline =>
                {
                    future_record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("enqueue a record: {e}"),
            }
        }
    }
    block_on(async {
        let mut outcomes = Vec::with_capacity(pending.len());
        for delivery in pending {
            let outcome = match tokio::time::timeout(PATIENCE, delivery).await {
                Ok(Ok(Ok(delivery))) => Ok((delivery.partition, delivery.offset)),
                Ok(Ok(Err((e, _message)))) => Err(e),
                Ok(Err(_canceled)) => panic!("the producer dropped a delivery report"),
                Err(_) => panic!("no delivery report within {PATIENCE:?}"),
            };
            outcomes.push(outcome);
        }
        outcomes
    })
}

/// Like [`produce`], but every record must be acknowledged; returns (partition, offset)
/// of each.
pub fn produce_ok(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    records: &[Record],
) -> Vec<(i32, i64)> {
    produce(producer, topic, partition, records)
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| {
            outcome.unwrap_or_else(|e| panic!("record {i} to {topic} was not acknowledged: {e}"))
        })
        .collect()
}

fn owned(message: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Consumed {
        partition: message.partition(),
        offset: message.offset(),
        record: Record {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp().to_millis(),
        },
    }
}

/// Assigns `consumer` to each partition in `ends` from offset 0 and reads until it has
/// seen the record before each partition's end offset (its high watermark). Returns the
/// records of each partition in the order they arrived.
pub fn consume_until(
    consumer: &BaseConsumer,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, Vec<Consumed>> {
    let mut assignment = TopicPartitionList::new();
    for partition in ends.keys() {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .expect("add a partition to the assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut consumed: BTreeMap<i32, Vec<Consumed>> = ends
        .keys()
        .map(|partition| (*partition, Vec::new()))
        .collect();
    let done = |consumed: &BTreeMap<i32, Vec<Consumed>>| {
        ends.iter().all(|(partition, end)| {
            *end == 0
                || consumed[partition]
                    .last()
                    .is_some_and(|last| last.offset >= end - 1)
        })
    };
    let deadline = Instant::now() + PATIENCE;
    let mut errors = Vec::new();
    while !done(&consumed) {
        if Instant::now() > deadline {
            let progress: BTreeMap<i32, (usize, Option<i64>)> = consumed
                .iter()
                .map(|(p, records)| (*p, (records.len(), records.last().map(|r| r.offset))))
                .collect();
            panic!(
                "consuming {topic}: wanted every partition up to {ends:?} within {PATIENCE:?}; \
                 got (count, last offset) {progress:?}; consumer errors: {errors:?}"
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let record = owned(&message);
                consumed
                    .get_mut(&record.partition)
                    .unwrap_or_else(|| {
                        panic!("a record from unassigned partition {}", record.partition)
                    })
                    .push(record);
            }
            Some(Err(e)) => {
                // librdkafka retries what can be retried; keep the errors for the report.
                eprintln!("consumer error on {topic}: {e}");
                errors.push(e.to_string());
            }
        }
    }
    consumed
}

/// (low, high) watermarks of one partition, by ListOffsets.
pub fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer
        .fetch_watermarks(topic, partition, PATIENCE)
        .unwrap_or_else(|e| panic!("ListOffsets for {topic}/{partition}: {e}"))
}

/// Asserts that one partition holds exactly `expected` (in order) at offsets 0.. with
/// nothing else: no gaps, no duplicates.
pub fn assert_partition(topic: &str, partition: i32, consumed: &[Consumed], expected: &[Record]) {
    let offsets: Vec<i64> = consumed.iter().map(|c| c.offset).collect();
    let dense: Vec<i64> = (0..expected.len() as i64).collect();
    assert!(
        offsets == dense,
        "{topic}/{partition}: offsets are 0..{} with no gap or repeat (first difference at {:?})",
        expected.len(),
        offsets
            .iter()
            .zip(&dense)
            .position(|(a, b)| a != b)
            .or(Some(offsets.len().min(dense.len())))
    );
    for (got, want) in consumed.iter().zip(expected) {
        assert_eq!(
            &got.record, want,
            "{topic}/{partition} offset {}: the record read back is the one produced",
            got.offset
        );
    }
}
