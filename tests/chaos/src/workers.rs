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
//! - the deleter raises some partitions' log start offsets (DeleteRecords) to offsets
//!   the consumer that keeps every partition has already read;
//! - the catch-up, after everything healed, reads every partition from its log start to
//!   its high watermark.
//!
//! A send's timeout or any delivery error is `info` (the record may have been stored):
//! only a send that never left the client (its local queue was full) is `fail`. Every
//! consumer logs the errors its fetches got for a partition (`FetchError`), which
//! librdkafka retries without telling the application, from its own log.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::io::Write;

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
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
    /// The next offset of each partition the consumer that keeps every partition will
    /// read: everything below it has been read once, so the deleter may delete it.
    pub read_up_to: Arc<Mutex<HashMap<i32, i64>>>,
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

/// Writes the errors a consumer's fetches got for a partition to the history, read from
/// its librdkafka log (`debug=fetch`, facility `FETCHERR`): librdkafka retries them
/// (KAFKA_STORAGE_ERROR, NOT_LEADER_OR_FOLLOWER) or resets the offset
/// (OFFSET_OUT_OF_RANGE) without telling the application.
#[derive(Clone)]
struct FetchErrors {
    history: Arc<HistoryWriter>,
    name: String,
    topic: String,
}

impl FetchErrors {
    fn new(work: &Workload, name: &str) -> Self {
        FetchErrors {
            history: work.history.clone(),
            name: name.to_string(),
            topic: work.topic.clone(),
        }
    }

    fn log(&self, facility: &str, message: &str) {
        if facility != "FETCHERR" {
            return;
        }
        match parse_fetch_error(&self.topic, message) {
            // The end of the partition, which librdkafka passes through the same path.
            Some(Op::FetchError { error, .. }) if error == "_PARTITION_EOF" => {}
            Some(op) => {
                self.history.record(&self.name, Outcome::Fail, op);
            }
            None => eprintln!(
                "weir-chaos: {}: a fetch error not understood: {message}",
                self.name
            ),
        }
    }
}

/// The `FetchError` in a line librdkafka logs (`rd_kafka_fetch_reply_handle_partition_error`):
/// `[thrd:B]: B: TOPIC [P]: Fetch failed at offset O (leader epoch E): ERROR`, B the
/// broker's name (`host:port/id`). `None` when the line is not of that shape, or the
/// offset is a logical one (BEGINNING, INVALID).
fn parse_fetch_error(topic: &str, message: &str) -> Option<Op> {
    let marker = format!(": {topic} [");
    let at = message.find(&marker)?;
    let broker = message[..at].rsplit("]: ").next()?.trim().to_string();
    let rest = &message[at + marker.len()..];
    let (partition, rest) = rest.split_once("]: Fetch failed at offset ")?;
    let (offset, rest) = rest.split_once(' ')?;
    let (_, error) = rest.rsplit_once("): ")?;
    Some(Op::FetchError {
        partition: partition.parse().ok()?,
        offset: offset.parse().ok()?,
        error: error.trim().to_string(),
        broker,
    })
}

/// A consumer's context: its fetch errors go to the history.
struct FetchLog(FetchErrors);

impl ClientContext for FetchLog {
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.0.log(facility, message);
    }
}

impl ConsumerContext for FetchLog {}

/// A consumer's settings: `group`, reading from the beginning, committing nothing, its
/// fetch errors logged (see [`FetchErrors`]).
fn consumer_config(work: &Workload, name: &str, group: &str) -> ClientConfig {
    let mut config = work.client(name);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("debug", "fetch")
        .set_log_level(RDKafkaLogLevel::Debug);
    config
}

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
    let consumer: BaseConsumer<FetchLog> =
        consumer_config(work, name, &format!("weir-chaos-{name}"))
            .create_with_context(FetchLog(FetchErrors::new(work, name)))?;
    let all: Vec<i32> = (0..work.partitions).collect();
    let mut moved = Instant::now();
    let start = |consumer: &BaseConsumer<FetchLog>, partitions: Vec<i32>| -> anyhow::Result<()> {
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
        if move_every.is_none() {
            let mut read_up_to = work.read_up_to.lock();
            for read in &reads {
                let next = read_up_to.entry(read.partition()).or_insert(0);
                *next = (*next).max(read.offset() + 1);
            }
        }
        record_poll(&work.history, name, reads);
    }
    Ok(())
}

/// Logs each assignment a group member is given.
struct Membership {
    history: Arc<HistoryWriter>,
    name: String,
    /// librdkafka's group and offset-commit log (`debug=cgrp`), to explain what the
    /// member committed when (without the lines of every fetch).
    log: LogToFile,
    fetch: FetchErrors,
}

impl ClientContext for Membership {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.fetch.log(facility, message);
        if facility != "FETCH" {
            self.log.log(level, facility, message);
        }
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
    let mut config = consumer_config(work, name, GROUP);
    config
        .set("debug", "cgrp,fetch")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    let consumer: BaseConsumer<Membership> = config.create_with_context(Membership {
        history: work.history.clone(),
        name: name.to_string(),
        log: LogToFile::create(work, name)?,
        fetch: FetchErrors::new(work, name),
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

/// Reads every partition from its log start to its high watermark, after the cluster
/// healed. Returns the partitions it could not read to the end: those where `patience`
/// passed without a record.
pub fn catch_up(work: &Workload, patience: Duration) -> anyhow::Result<Vec<String>> {
    let name = "catch-up";
    let consumer: BaseConsumer<FetchLog> = consumer_config(work, name, "weir-chaos-catch-up")
        .create_with_context(FetchLog(FetchErrors::new(work, name)))?;
    let watermarks = |partition, deadline| loop {
        match consumer.fetch_watermarks(&work.topic, partition, Duration::from_secs(5)) {
            Ok(marks) => break Ok(marks),
            Err(e) if Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let mut unfinished = Vec::new();
    for partition in 0..work.partitions {
        let mut deadline = Instant::now() + patience;
        let (mut next, high) = match watermarks(partition, deadline) {
            Ok(marks) => marks,
            Err(e) => {
                unfinished.push(format!("partition {partition}: no high watermark ({e})"));
                continue;
            }
        };
        assign(&consumer, &work.topic, &[partition])?;
        work.history.record(
            name,
            Outcome::Ok,
            Op::Assign {
                mode: Mode::Assign,
                partitions: vec![partition],
            },
        );
        let mut idle_since = Instant::now();
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
                idle_since = Instant::now();
            } else if idle_since.elapsed() > Duration::from_secs(2) {
                // Nothing for a while: the log may have started past what is left.
                if let Ok((low, _)) = watermarks(partition, Instant::now()) {
                    next = next.max(low);
                }
                idle_since = Instant::now();
            }
            record_poll(&work.history, name, reads);
        }
    }
    Ok(unfinished)
}

/// Until stopped, every 2–6 s, asks that one of `partitions` (chosen at random) be
/// deleted below an offset the consumer that keeps every partition has read (up to 200
/// offsets short of it), when that is past what was asked before: DeleteRecords, as
/// Kafka Streams purges its repartition topics. Every record below was read once, so the
/// checker can still tell a lost record from a deleted one.
pub async fn deleter(work: Workload, partitions: Vec<i32>, seed: u64) -> anyhow::Result<()> {
    let name = "deleter";
    let admin: AdminClient<DefaultClientContext> = work.client(name).create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut asked: HashMap<i32, i64> = HashMap::new();
    while !work.stopped() {
        let wake = Instant::now() + Duration::from_millis(rng.random_range(2_000..6_000));
        while Instant::now() < wake && !work.stopped() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(&partition) = partitions.choose(&mut rng) else {
            return Ok(());
        };
        let read = work.read_up_to.lock().get(&partition).copied().unwrap_or(0);
        let offset = read - rng.random_range(0..200);
        if work.stopped() || offset <= asked.get(&partition).copied().unwrap_or(0) {
            continue;
        }
        asked.insert(partition, offset);
        let delete = |low, error| Op::DeleteRecords {
            partition,
            offset,
            low,
            error,
        };
        work.history
            .record(name, Outcome::Invoke, delete(None, None));
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&work.topic, partition, Offset::Offset(offset))?;
        let answer = admin
            .delete_records(&list, &options)
            .await
            .and_then(|list| {
                let element = list.find_partition(&work.topic, partition).ok_or(
                    KafkaError::AdminOpCreation("no answer for the partition".into()),
                )?;
                element.error()?;
                Ok(element.offset())
            });
        let (outcome, op) = match answer {
            Ok(Offset::Offset(low)) => (Outcome::Ok, delete(Some(low), None)),
            Ok(other) => (
                Outcome::Info,
                delete(None, Some(format!("answered low watermark {other:?}"))),
            ),
            Err(e) => (Outcome::Info, delete(None, Some(e.to_string()))),
        };
        work.history.record(name, outcome, op);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_error_is_read_from_librdkafkas_log_line() {
        let line = "[thrd:127.0.0.1:40817/2]: 127.0.0.1:40817/2: chaos [3]: Fetch failed at \
                    offset 1234 (leader epoch -1): KAFKA_STORAGE_ERROR";
        assert_eq!(
            parse_fetch_error("chaos", line),
            Some(Op::FetchError {
                partition: 3,
                offset: 1234,
                error: "KAFKA_STORAGE_ERROR".into(),
                broker: "127.0.0.1:40817/2".into(),
            })
        );
        let logical = "[thrd:b/1]: b/1: chaos [0]: Fetch failed at offset BEGINNING (leader \
                       epoch -1): OFFSET_OUT_OF_RANGE";
        assert_eq!(parse_fetch_error("chaos", logical), None);
        assert_eq!(parse_fetch_error("other", line), None);
    }
}
