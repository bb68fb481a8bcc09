//! The Kafka clients of a run (librdkafka through rdkafka), each logging every operation
//! to the history:
//!
//! - producers send unique values (a decimal `u64`, keyed by partition) to a random
//!   partition at a steady rate, acks=all and idempotent;
//! - `assign` consumers read partitions in order from the beginning; one keeps all
//!   partitions for the whole run, the other moves to a random set now and then;
//! - `subscribe` consumers form a group and commit asynchronously after every poll that
//!   returned records, pipelining their commits as applications do;
//! - the sampler reads every partition's log start offset and high watermark, and the
//!   group's committed offset;
//! - the catch-up, after everything healed, reads every partition from offset 0 to its
//!   high watermark.
//!
//! A send's timeout or any delivery error is `info` (the record may have been stored):
//! only a send that never left the client (its local queue was full) is `fail`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::io::Write;

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::history::{HistoryWriter, Mode, Op, Outcome, Read};

/// What every worker needs.
#[derive(Debug, Clone)]
pub struct Workload {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub history: Arc<HistoryWriter>,
    /// Set when the workers must stop.
    pub stop: Arc<AtomicBool>,
    /// Producers' `message.timeout.ms`: a send not acknowledged by then is `info`.
    /// librdkafka bumps its epoch when queued records time out and sends what is still
    /// queued under the new epoch, retried batches included, which the broker cannot
    /// tell from new ones: short timeouts under long faults make duplicates of its own.
    pub message_timeout: Duration,
    /// Producers' `request.timeout.ms`.
    pub request_timeout: Duration,
    /// Where each producer's librdkafka log goes (`<name>.rdkafka.log`).
    pub logs: std::path::PathBuf,
}

impl Workload {
    fn client(&self, name: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", format!("weir-chaos-{name}"))
            .set("socket.timeout.ms", "10000")
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "2000")
            .set("log_level", "3");
        config
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Values are unique across the whole run.
static NEXT_VALUE: AtomicU64 = AtomicU64::new(1);

/// Sends `rate` values a second until stopped, then waits for every outstanding send to
/// complete. A producer that hits a fatal error (librdkafka gives up on its idempotence
/// state) is replaced by a new one, as an application would.
pub async fn producer(work: Workload, name: String, rate: u32, seed: u64) -> anyhow::Result<()> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut config = work.client(&name);
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            work.message_timeout.as_millis().to_string(),
        )
        .set(
            "request.timeout.ms",
            work.request_timeout.as_millis().to_string(),
        )
        .set("retry.backoff.ms", "100");
    // librdkafka's idempotence log (epoch bumps, drains, retries) explains anomalies.
    // (rdkafka sets the client's level from the `log` crate's, so it is set here too.)
    config
        .set("debug", "eos")
        .set_log_level(RDKafkaLogLevel::Debug);
    let log = LogToFile::create(&work, &name)?;
    let mut producer: FutureProducer<LogToFile> = config.create_with_context(log.clone())?;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut outstanding = tokio::task::JoinSet::new();
    while !work.stopped() {
        ticker.tick().await;
        if let Some((code, reason)) = producer.client().fatal_error() {
            eprintln!(
                "weir-chaos: {name}: fatal producer error {code:?} ({reason}); starting a new producer"
            );
            while outstanding.join_next().await.is_some() {}
            producer = config.create_with_context(log.clone())?;
        }
        let partition = rng.random_range(0..work.partitions);
        let value = NEXT_VALUE.fetch_add(1, Ordering::SeqCst);
        let payload = value.to_string();
        let key = partition.to_string();
        let send = move |offset, error| Op::Send {
            partition,
            value,
            offset,
            error,
        };
        work.history
            .record(&name, Outcome::Invoke, send(None, None));
        let record = FutureRecord::to(&work.topic)
            .partition(partition)
            .key(&key)
            .payload(&payload);
        match producer.send_result(record) {
            Ok(delivery) => {
                let (history, name) = (work.history.clone(), name.clone());
                outstanding.spawn(async move {
                    let (outcome, op) = match delivery.await {
                        Ok(Ok(delivered)) => (Outcome::Ok, send(Some(delivered.offset), None)),
                        Ok(Err((e, _))) => (Outcome::Info, send(None, Some(e.to_string()))),
                        Err(_) => (
                            Outcome::Info,
                            send(None, Some("the producer was dropped".into())),
                        ),
                    };
                    history.record(&name, outcome, op);
                });
            }
            Err((e, _)) => {
                let outcome = if matches!(
                    e,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ) {
                    Outcome::Fail
                } else {
                    Outcome::Info
                };
                work.history
                    .record(&name, outcome, send(None, Some(e.to_string())));
            }
        }
        while outstanding.try_join_next().is_some() {}
    }
    while outstanding.join_next().await.is_some() {}
    Ok(())
}

/// Writes librdkafka's log lines to `<name>.rdkafka.log`, each stamped with the wall
/// clock in milliseconds since the epoch, to be read beside the agents' logs (also on
/// the wall clock; the history's `time_ms` counts from the run's start instead).
#[derive(Clone)]
struct LogToFile(Arc<Mutex<std::io::LineWriter<std::fs::File>>>);

impl LogToFile {
    fn create(work: &Workload, name: &str) -> anyhow::Result<Self> {
        let file = std::fs::File::create(work.logs.join(format!("{name}.rdkafka.log")))?;
        Ok(LogToFile(Arc::new(Mutex::new(std::io::LineWriter::new(
            file,
        )))))
    }
}

impl ClientContext for LogToFile {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let _ = writeln!(self.0.lock(), "{ms} {level:?} {facility} {message}");
    }
}

impl ConsumerContext for LogToFile {}

/// Collects the records one poll returns: what arrives within `wait`, then whatever is
/// already queued, up to `max`.
fn poll_batch<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    wait: Duration,
    max: usize,
) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut timeout = wait;
    while reads.len() < max {
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                let value = message
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|s| s.parse::<u64>().ok());
                match value {
                    Some(value) => {
                        reads.push(Read(message.partition(), message.offset(), value));
                    }
                    None => eprintln!(
                        "weir-chaos: a record that is not a value at partition {} offset {}",
                        message.partition(),
                        message.offset()
                    ),
                }
            }
            // Errors are the client's to retry (a lost connection, a broker down).
            Some(Err(_)) | None => break,
        }
        timeout = Duration::ZERO;
    }
    reads
}

fn record_poll(history: &HistoryWriter, name: &str, reads: Vec<Read>) {
    if reads.is_empty() {
        return;
    }
    history.record(
        name,
        Outcome::Invoke,
        Op::Poll {
            reads: Vec::new(),
            error: None,
        },
    );
    history.record(name, Outcome::Ok, Op::Poll { reads, error: None });
}

fn assign<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    Ok(())
}

/// An `assign` consumer. With `move_every`, it moves to a random non-empty set of
/// partitions (from their beginning) that often; otherwise it keeps all of them.
pub fn assign_consumer(
    work: &Workload,
    name: &str,
    move_every: Option<Duration>,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut config = work.client(name);
    config
        .set("group.id", format!("weir-chaos-{name}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create()?;
    let all: Vec<i32> = (0..work.partitions).collect();
    let mut moved = Instant::now();
    let start = |consumer: &BaseConsumer, partitions: Vec<i32>| -> anyhow::Result<()> {
        assign(consumer, &work.topic, &partitions)?;
        work.history.record(
            name,
            Outcome::Ok,
            Op::Assign {
                mode: Mode::Assign,
                partitions,
            },
        );
        Ok(())
    };
    start(&consumer, all.clone())?;
    while !work.stopped() {
        if let Some(every) = move_every
            && moved.elapsed() >= every
        {
            let count = rng.random_range(1..=all.len());
            let mut chosen: Vec<i32> = all.choose_multiple(&mut rng, count).copied().collect();
            chosen.sort_unstable();
            start(&consumer, chosen)?;
            moved = Instant::now();
        }
        let reads = poll_batch(&consumer, Duration::from_millis(100), 500);
        record_poll(&work.history, name, reads);
    }
    Ok(())
}

/// Logs each assignment a group member is given.
struct Membership {
    history: Arc<HistoryWriter>,
    name: String,
    /// librdkafka's group and offset-commit log (`debug=cgrp`), to explain what the
    /// member committed when.
    log: LogToFile,
}

impl ClientContext for Membership {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }
}

impl ConsumerContext for Membership {
    fn post_rebalance(&self, _base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
            partitions.sort_unstable();
            self.history.record(
                &self.name,
                Outcome::Ok,
                Op::Assign {
                    mode: Mode::Subscribe,
                    partitions,
                },
            );
        }
    }
}

/// A member of the `weir-chaos-group` consumer group.
pub fn subscribe_consumer(work: &Workload, name: &str) -> anyhow::Result<()> {
    let mut config = work.client(name);
    config
        .set("group.id", GROUP)
        .set("debug", "cgrp")
        .set_log_level(RDKafkaLogLevel::Debug)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer<Membership> = config.create_with_context(Membership {
        history: work.history.clone(),
        name: name.to_string(),
        log: LogToFile::create(work, name)?,
    })?;
    consumer.subscribe(&[&work.topic])?;
    while !work.stopped() {
        let reads = poll_batch(&consumer, Duration::from_millis(100), 500);
        let read_some = !reads.is_empty();
        record_poll(&work.history, name, reads);
        if read_some {
            // Not awaited: the next commit follows before this one is answered. A commit
            // that fails (a rebalance, a fault) is retried by the next one.
            let _ = consumer.commit_consumer_state(CommitMode::Async);
        }
    }
    Ok(())
}

/// The group the `subscribe` consumers form.
const GROUP: &str = "weir-chaos-group";

/// Samples every partition's watermarks every `every` until stopped.
pub fn sampler(work: &Workload, every: Duration) -> anyhow::Result<()> {
    // librdkafka's ListOffsets log (requests, errors, retries) explains a sample that
    // goes backwards: it derives the log start from two answers of its own.
    let consumer: BaseConsumer<LogToFile> = work
        .client("sampler")
        .set("debug", "topic")
        .set_log_level(RDKafkaLogLevel::Debug)
        .create_with_context(LogToFile::create(work, "sampler")?)?;
    // Reads the group's committed offsets without joining it.
    let group: BaseConsumer = work
        .client("sampler-group")
        .set("group.id", GROUP)
        .create()?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..work.partitions {
        partitions.add_partition(&work.topic, partition);
    }
    while !work.stopped() {
        sample_committed(work, &group, &partitions);
        for partition in 0..work.partitions {
            let sample = |low, high, error| Op::Watermarks {
                partition,
                low,
                high,
                error,
            };
            work.history
                .record("sampler", Outcome::Invoke, sample(None, None, None));
            let (outcome, op) =
                match consumer.fetch_watermarks(&work.topic, partition, Duration::from_secs(2)) {
                    Ok((low, high)) => (Outcome::Ok, sample(Some(low), Some(high), None)),
                    Err(e) => (Outcome::Info, sample(None, None, Some(e.to_string()))),
                };
            work.history.record("sampler", outcome, op);
        }
        std::thread::sleep(every);
    }
    Ok(())
}

/// One sample of the group's committed offset of every partition.
fn sample_committed(work: &Workload, group: &BaseConsumer, partitions: &TopicPartitionList) {
    let sample = |partition, offset, error| Op::Committed {
        partition,
        offset,
        error,
    };
    for partition in 0..work.partitions {
        work.history
            .record("sampler", Outcome::Invoke, sample(partition, None, None));
    }
    match group.committed_offsets(partitions.clone(), Duration::from_secs(2)) {
        Ok(committed) => {
            for element in committed.elements() {
                let offset = match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                };
                work.history.record(
                    "sampler",
                    Outcome::Ok,
                    sample(element.partition(), offset, None),
                );
            }
        }
        Err(e) => {
            for partition in 0..work.partitions {
                work.history.record(
                    "sampler",
                    Outcome::Info,
                    sample(partition, None, Some(e.to_string())),
                );
            }
        }
    }
}

/// Reads every partition from offset 0 to its high watermark, after the cluster healed.
/// Returns the partitions it could not read to the end: those where `patience` passed
/// without a record.
pub fn catch_up(work: &Workload, patience: Duration) -> anyhow::Result<Vec<String>> {
    let name = "catch-up";
    let mut config = work.client(name);
    config
        .set("group.id", "weir-chaos-catch-up")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create()?;
    let mut unfinished = Vec::new();
    for partition in 0..work.partitions {
        let mut deadline = Instant::now() + patience;
        let high = loop {
            match consumer.fetch_watermarks(&work.topic, partition, Duration::from_secs(5)) {
                Ok((_, high)) => break Some(high),
                Err(e) if Instant::now() > deadline => {
                    unfinished.push(format!("partition {partition}: no high watermark ({e})"));
                    break None;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let Some(high) = high else { continue };
        assign(&consumer, &work.topic, &[partition])?;
        work.history.record(
            name,
            Outcome::Ok,
            Op::Assign {
                mode: Mode::Assign,
                partitions: vec![partition],
            },
        );
        let mut next = 0;
        while next < high {
            if Instant::now() > deadline {
                unfinished.push(format!(
                    "partition {partition}: read up to offset {next} of {high}"
                ));
                break;
            }
            let reads = poll_batch(&consumer, Duration::from_millis(200), 2000);
            if let Some(last) = reads.last() {
                next = next.max(last.offset() + 1);
                deadline = Instant::now() + patience;
            }
            record_poll(&work.history, name, reads);
        }
    }
    Ok(unfinished)
}
