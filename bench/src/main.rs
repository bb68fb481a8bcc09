//! `weir-bench produce`: an open- or closed-loop producer on librdkafka that reports
//! throughput and produce latency (send → acknowledgement) as JSON.
//! `weir-bench consume`: reads a topic from the beginning to its current end and
//! reports throughput.
//!
//! With `--metrics http://HOST:PORT/metrics` (an agent's, or a playground's
//! `--http-listen`), both also report the object-store requests the run caused, per
//! operation and per GiB moved, from `weir_object_store_requests_total`.
//!
//! Also: `e2e` (send → consumed latency), `rebalance` (a consumer group absorbing a new
//! member), `metadata` (many partitions), and the side-by-side helpers `null-broker`
//! (the ceiling) and `s3-server` (a real S3 server on a directory); see `bench/run`.
//!
//! ```sh
//! weir-bench produce --bootstrap 127.0.0.1:9092 --topic bench --partitions 8 \
//!     --record-bytes 1024 --seconds 20 --in-flight 20000 --metrics http://127.0.0.1:8080/metrics
//! weir-bench consume --bootstrap 127.0.0.1:9092 --topic bench --consumers 3 \
//!     --metrics http://127.0.0.1:8080/metrics
//! ```

mod e2e;
mod metadata;
mod null_broker;
mod rebalance;
mod s3_server;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;

#[derive(Debug, Parser)]
#[command(
    name = "weir-bench",
    about = "Load generator for Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce for a while; print throughput and latency percentiles as JSON.
    Produce(ProduceArgs),
    /// Time a consumer group's absorption of a new member; print it as JSON.
    Rebalance(rebalance::RebalanceArgs),
    /// A Kafka listener that acknowledges every Produce without storing it: the ceiling.
    NullBroker(null_broker::NullBrokerArgs),
    /// Create many partitions and time full Metadata requests; print it as JSON.
    Metadata(metadata::MetadataArgs),
    /// A real S3 HTTP server (s3s-fs, SigV4 checked) on a local directory.
    S3Server(s3_server::S3ServerArgs),
    /// End-to-end latency (send -> consumed) at a fixed rate; print it as JSON.
    E2e(e2e::E2eArgs),
    /// Read a topic from the beginning to its end; print throughput as JSON.
    Consume(ConsumeArgs),
}

#[derive(Debug, clap::Args)]
struct ConsumeArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "weir-bench")]
    topic: String,
    /// Consumers reading the whole topic at once, each on its own thread.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Prometheus endpoint to read object-store request counts from, before and after.
    #[arg(long)]
    metrics: Option<String>,
    #[arg(long, default_value = "weir")]
    label: String,
    /// Read only this partition (repeat for more); every partition by default.
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// librdkafka client.id; Weir's agents read the client's zone from `weir_az=ZONE` in it.
    #[arg(long, default_value = "weir-bench")]
    client_id: String,
}

#[derive(Debug, clap::Args)]
struct ProduceArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "weir-bench")]
    topic: String,
    /// Partitions of the topic, created if missing.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Records awaiting acknowledgement at most (closed loop).
    #[arg(long, default_value_t = 10_000)]
    in_flight: usize,
    /// Records per second to offer (open loop); 0 sends as fast as the loop allows.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value = "none")]
    compression: String,
    /// Producer instances (each its own librdkafka client); records go round robin.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// librdkafka linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Produce as an idempotent producer (enable.idempotence=true), to measure what the
    /// sequence check costs.
    #[arg(long)]
    idempotence: bool,
    /// A label for the JSON output (the system under test).
    #[arg(long, default_value = "weir")]
    label: String,
    /// Prometheus endpoint to read object-store request counts from, before and after.
    #[arg(long)]
    metrics: Option<String>,
    /// librdkafka client.id; Weir's agents read the client's zone from `weir_az=ZONE` in it.
    #[arg(long, default_value = "weir-bench")]
    client_id: String,
    /// A topic config to create the topic with, KEY=VALUE (repeat for more), e.g.
    /// retention.ms=60000. An existing topic keeps its configs.
    #[arg(long = "topic-config", value_parser = parse_topic_config)]
    topic_configs: Vec<(String, String)>,
}

fn parse_topic_config(spec: &str) -> Result<(String, String), String> {
    match spec.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "{spec:?}: expected KEY=VALUE, e.g. retention.ms=60000"
        )),
    }
}

/// Creates `topic` with `partitions` partitions and `configs` unless it exists.
pub(crate) async fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("create admin client")?;
    let mut topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .context("create topic")?;
    for result in results {
        match result {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("create topic {name}: {code}"),
        }
    }
    Ok(())
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    ensure_topic(
        &args.bootstrap,
        &args.topic,
        args.partitions,
        &args.topic_configs,
    )
    .await?;
    let before = object_store_counts(args.metrics.as_deref()).await?;
    let producers: Vec<FutureProducer> = (0..args.producers.max(1))
        .map(|_| {
            ClientConfig::new()
                .set("bootstrap.servers", &args.bootstrap)
                .set("client.id", &args.client_id)
                .set("acks", &args.acks)
                .set("compression.type", &args.compression)
                .set("linger.ms", args.linger_ms.to_string())
                .set("enable.idempotence", args.idempotence.to_string())
                .set("queue.buffering.max.messages", "1000000")
                .set("message.timeout.ms", "60000")
                .create()
                .context("create producer")
        })
        .collect::<anyhow::Result<_>>()?;
    let payload: Vec<u8> = (0..args.record_bytes)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let payload = Arc::new(payload);
    let permits = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let histogram = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new(3).context("histogram")?,
    ));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut sent: u64 = 0;
    let mut tasks = Vec::new();
    while Instant::now() < until {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / args.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = permits.clone().acquire_owned().await.context("semaphore")?;
        let (producer, payload, histogram, errors) = (
            producers[(sent % producers.len() as u64) as usize].clone(),
            payload.clone(),
            histogram.clone(),
            errors.clone(),
        );
        let topic = args.topic.clone();
        let key = sent.to_be_bytes();
        sent += 1;
        tasks.push(tokio::spawn(async move {
            let sent_at = Instant::now();
            let record = FutureRecord::to(&topic).key(&key[..]).payload(&payload[..]);
            match producer.send(record, Duration::from_secs(60)).await {
                Ok(_) => {
                    let micros = sent_at.elapsed().as_micros() as u64;
                    let _ = histogram.lock().map(|mut h| h.record(micros.max(1)));
                }
                Err(_) => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
        if tasks.len() >= 100_000 {
            for task in tasks.drain(..) {
                task.await.context("send task")?;
            }
        }
    }
    for task in tasks {
        task.await.context("send task")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = object_store_counts(args.metrics.as_deref()).await?;
    let histogram = histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock"))?;
    let acked = histogram.len();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let report = serde_json::json!({
        "label": args.label,
        "revision": crate::revision(),
        "workload": {
            "record_bytes": args.record_bytes, "partitions": args.partitions, "acks": args.acks,
            "compression": args.compression, "in_flight": args.in_flight, "rate": args.rate,
            "producers": args.producers,
            "linger_ms": args.linger_ms, "seconds": args.seconds, "idempotence": args.idempotence,
        },
        "records_acked": acked,
        "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
        "records_per_second": acked as f64 / elapsed,
        "mb_per_second": acked as f64 * args.record_bytes as f64 / elapsed / 1e6,
        "produce_latency_ms": { "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999), "max": histogram.max() as f64 / 1000.0 },
    });
    let mut report = report;
    report["object_store"] =
        requests_report(&before, &after, acked as f64 * args.record_bytes as f64);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `weir_object_store_requests_total` by op, and `weir_object_store_bytes_total` by op
/// (keys `bytes_<op>`), from a Prometheus text endpoint.
async fn object_store_counts(url: Option<&str>) -> anyhow::Result<BTreeMap<String, f64>> {
    let Some(url) = url else {
        return Ok(BTreeMap::new());
    };
    let url = url.to_string();
    tokio::task::spawn_blocking(move || scrape(&url))
        .await
        .context("metrics task")?
}

fn scrape(url: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("metrics URL {url:?}: expected http://HOST:PORT/PATH"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, "metrics"));
    let mut stream =
        std::net::TcpStream::connect(host).with_context(|| format!("connect to {host}"))?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .context("send metrics request")?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .context("read metrics response")?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        for (metric, prefix) in [
            ("weir_object_store_requests_total{op=\"", ""),
            ("weir_object_store_bytes_total{op=\"", "bytes_"),
        ] {
            if let Some(rest) = line.strip_prefix(metric)
                && let Some((op, value)) = rest.split_once("\"} ")
                && let Ok(value) = value.trim().parse::<f64>()
            {
                counts.insert(format!("{prefix}{op}"), value);
            }
        }
    }
    Ok(counts)
}

/// Requests per operation during the run, and per GiB of `moved` bytes.
fn requests_report(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    moved: f64,
) -> serde_json::Value {
    let mut report = serde_json::Map::new();
    let gib = moved / (1u64 << 30) as f64;
    for (key, value) in after {
        let delta = value - before.get(key).copied().unwrap_or(0.0);
        report.insert(key.clone(), serde_json::json!(delta));
        if !key.starts_with("bytes_") && gib > 0.0 {
            report.insert(format!("{key}_per_gib"), serde_json::json!(delta / gib));
        }
    }
    serde_json::Value::Object(report)
}

async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let before = object_store_counts(args.metrics.as_deref()).await?;
    let started = Instant::now();
    let readers: Vec<_> = (0..args.consumers.max(1))
        .map(|_| {
            let (bootstrap, topic) = (args.bootstrap.clone(), args.topic.clone());
            let (client_id, partitions) = (args.client_id.clone(), args.partitions.clone());
            std::thread::spawn(move || read_topic(&bootstrap, &client_id, &topic, &partitions))
        })
        .collect();
    let mut records = 0u64;
    let mut bytes = 0u64;
    for reader in readers {
        let (r, b) = reader
            .join()
            .map_err(|_| anyhow::anyhow!("a consumer thread panicked"))??;
        records += r;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = object_store_counts(args.metrics.as_deref()).await?;
    let report = serde_json::json!({
        "label": args.label,
        "revision": crate::revision(),
        "consumers": args.consumers,
        "partitions": args.partitions,
        "records": records,
        "bytes": bytes,
        "seconds": elapsed,
        "mb_per_second": bytes as f64 / elapsed / 1e6,
        // Per GiB of distinct data: what one consumer read.
        "object_store": requests_report(&before, &after, bytes as f64 / args.consumers.max(1) as f64),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The revision this tool was built from, for every report.
pub(crate) fn revision() -> &'static str {
    env!("WEIR_BENCH_REVISION")
}

/// Reads `partitions` of `topic` (every one when empty) from the beginning to its high
/// watermark at start; returns (records, key and value bytes).
fn read_topic(
    bootstrap: &str,
    client_id: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<(u64, u64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("group.id", "weir-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .context("create consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .context("topic metadata")?;
    let count = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0);
    let partitions: Vec<i32> = if partitions.is_empty() {
        (0..count).collect()
    } else {
        anyhow::ensure!(
            partitions.iter().all(|p| (0..count).contains(p)),
            "topic {topic} has {count} partitions; asked for {partitions:?}"
        );
        partitions.to_vec()
    };
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .context("watermarks")?;
        if high > 0 {
            ends.insert(p, high);
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .context("assign")?;
        }
    }
    consumer.assign(&assignment).context("assign")?;
    let (mut records, mut bytes) = (0u64, 0u64);
    while !ends.is_empty() {
        match consumer.poll(Duration::from_secs(30)) {
            None => anyhow::bail!("no record for 30 s with {} partitions unread", ends.len()),
            Some(Err(e)) => eprintln!("consumer error: {e}"),
            Some(Ok(message)) => {
                records += 1;
                bytes += (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
                if ends
                    .get(&message.partition())
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    ends.remove(&message.partition());
                }
            }
        }
    }
    Ok((records, bytes))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Produce(args) => produce(args).await,
        Command::Rebalance(args) => rebalance::run(args).await,
        Command::NullBroker(args) => null_broker::run(args).await,
        Command::Metadata(args) => metadata::run(args).await,
        Command::S3Server(args) => s3_server::run(args).await,
        Command::E2e(args) => e2e::run(args).await,
        Command::Consume(args) => consume(args).await,
    }
}
