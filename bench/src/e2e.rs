//! `weir-bench e2e`: end-to-end latency, send → consumed. A producer offers records at
//! a fixed rate, each stamped with its send time (CreateTime, in microseconds in the
//! payload); a consumer in the same process, assigned to every partition at its end,
//! reads them and records now − send time. Same clock on both ends, so no skew.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hdrhistogram::Histogram;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

#[derive(Debug, clap::Args)]
pub(crate) struct E2eArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "weir-bench-e2e")]
    topic: String,
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Records per second offered.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long)]
    idempotence: bool,
    /// A name for this run in the JSON.
    #[arg(long, default_value = "weir")]
    label: String,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) async fn run(args: E2eArgs) -> anyhow::Result<()> {
    crate::ensure_topic(&args.bootstrap, &args.topic, args.partitions, &[]).await?;

    // The consumer starts at each partition's end before anything is sent.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", "weir-bench-e2e")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("fetch.min.bytes", "1")
        .create()
        .context("create consumer")?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..args.partitions {
        assignment.add_partition_offset(&args.topic, p, Offset::End)?;
    }
    consumer.assign(&assignment)?;
    let done = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    let reader = std::thread::spawn({
        let (done, consumed) = (done.clone(), consumed.clone());
        move || -> anyhow::Result<Histogram<u64>> {
            let mut e2e = Histogram::<u64>::new(3).context("histogram")?;
            while !done.load(Ordering::Relaxed) {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                    let payload = message.payload().unwrap_or_default();
                    if payload.len() >= 8 {
                        let sent = u64::from_be_bytes(payload[..8].try_into()?);
                        e2e.record(now_micros().saturating_sub(sent))?;
                        consumed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok(e2e)
        }
    });
    // Let the consumer settle on its positions.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", "all")
        .set("linger.ms", args.linger_ms.to_string())
        .set("enable.idempotence", args.idempotence.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000");
    let producer: FutureProducer = config.create().context("create producer")?;
    let produce = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new(3)?));
    let errors = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut pending = Vec::new();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let due = started + interval.mul_f64(sent as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let mut payload = vec![b'x'; args.record_bytes.max(8)];
        let send_at = now_micros();
        payload[..8].copy_from_slice(&send_at.to_be_bytes());
        let key = sent.to_string();
        let record = FutureRecord::to(&args.topic).key(&key).payload(&payload);
        let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
        let (produce, errors) = (produce.clone(), errors.clone());
        pending.push(tokio::spawn(async move {
            match delivery.await {
                Ok(Ok(_)) => {
                    let _ = produce
                        .lock()
                        .map(|mut h| h.record(now_micros().saturating_sub(send_at)));
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        sent += 1;
    }
    for p in pending {
        let _ = p.await;
    }
    // Give the consumer until everything acknowledged is read (or 30 s).
    let acked = sent - errors.load(Ordering::Relaxed);
    let drain_until = Instant::now() + Duration::from_secs(30);
    while consumed.load(Ordering::Relaxed) < acked && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::Relaxed);
    let e2e = reader
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))??;
    let produce = produce
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let report = serde_json::json!({
        "label": args.label,
        "revision": crate::revision(),
        "workload": {
            "kind": "e2e", "partitions": args.partitions, "record_bytes": args.record_bytes,
            "rate": args.rate, "seconds": args.seconds, "linger_ms": args.linger_ms,
            "idempotence": args.idempotence,
        },
        "records_sent": sent,
        "records_acked": acked,
        "records_consumed": consumed.load(Ordering::Relaxed),
        "produce_latency_ms": { "p50": ms(&produce, 0.5), "p99": ms(&produce, 0.99), "p999": ms(&produce, 0.999), "max": produce.max() as f64 / 1000.0 },
        "e2e_latency_ms": { "p50": ms(&e2e, 0.5), "p99": ms(&e2e, 0.99), "p999": ms(&e2e, 0.999), "max": e2e.max() as f64 / 1000.0 },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
