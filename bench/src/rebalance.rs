//! `weir-bench rebalance`: how long a consumer group takes to absorb a new member.
//!
//! A producer keeps every partition busy; `members` consumers form a group and settle;
//! then one more joins. The figure is the time from the new member's subscribe until
//! every member (the new one included) has consumed a record under the new assignment.
//! Repeated `rounds` times, each with a fresh group.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

#[derive(Debug, clap::Args)]
pub(crate) struct RebalanceArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "weir-bench-rebalance")]
    topic: String,
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Members before the new one joins.
    #[arg(long, default_value_t = 3)]
    members: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// librdkafka's partition.assignment.strategy.
    #[arg(long, default_value = "range,roundrobin")]
    assignor: String,
    #[arg(long, default_value_t = 3000)]
    heartbeat_interval_ms: u64,
    #[arg(long, default_value_t = 45_000)]
    session_timeout_ms: u64,
}

/// A group member on its own thread: counts records and stamps the first one after
/// `mark` is raised.
struct Member {
    stop: Arc<AtomicBool>,
    /// Microseconds since `epoch` of the first record consumed after the mark; 0 until.
    first_after_mark: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Member {
    fn start(config: ClientConfig, topic: String, mark: Arc<AtomicBool>, epoch: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let first_after_mark = Arc::new(AtomicU64::new(0));
        let consumed = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn({
            let (stop, first, consumed) =
                (stop.clone(), first_after_mark.clone(), consumed.clone());
            move || {
                let consumer: BaseConsumer = match config.create() {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("create consumer: {e}");
                        return;
                    }
                };
                if let Err(e) = consumer.subscribe(&[&topic]) {
                    eprintln!("subscribe: {e}");
                    return;
                }
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(_)) = consumer.poll(Duration::from_millis(20)) {
                        consumed.fetch_add(1, Ordering::Relaxed);
                        if mark.load(Ordering::Relaxed) && first.load(Ordering::Relaxed) == 0 {
                            let micros =
                                u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                            first.store(micros.max(1), Ordering::Relaxed);
                        }
                    }
                }
                consumer.unsubscribe();
            }
        });
        Member {
            stop,
            first_after_mark,
            consumed,
            thread,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

pub(crate) async fn run(args: RebalanceArgs) -> anyhow::Result<()> {
    crate::ensure_topic(&args.bootstrap, &args.topic, args.partitions, &[]).await?;
    tokio::task::spawn_blocking(move || measure(args)).await?
}

fn measure(args: RebalanceArgs) -> anyhow::Result<()> {
    let producing = Arc::new(AtomicBool::new(true));
    let producer_thread = std::thread::spawn({
        let (bootstrap, topic, partitions) =
            (args.bootstrap.clone(), args.topic.clone(), args.partitions);
        let producing = producing.clone();
        move || -> anyhow::Result<()> {
            let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "5")
                .create()
                .context("create producer")?;
            let mut i: u64 = 0;
            while producing.load(Ordering::Relaxed) {
                for p in 0..partitions {
                    let key = i.to_string();
                    let _ = producer.send(
                        BaseRecord::<str, str>::to(&topic)
                            .key(&key)
                            .payload("x")
                            .partition(p),
                    );
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = producer.flush(Duration::from_secs(10));
            Ok(())
        }
    });

    let mut samples_ms = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let group = format!("weir-bench-rebalance-{}-{round}", std::process::id());
        let config = || {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", &args.bootstrap)
                .set("group.id", &group)
                .set("partition.assignment.strategy", &args.assignor)
                .set(
                    "heartbeat.interval.ms",
                    args.heartbeat_interval_ms.to_string(),
                )
                .set("session.timeout.ms", args.session_timeout_ms.to_string())
                .set("auto.offset.reset", "latest")
                .set("fetch.wait.max.ms", "50");
            config
        };
        let epoch = Instant::now();
        let mark = Arc::new(AtomicBool::new(false));
        let mut members: Vec<Member> = (0..args.members)
            .map(|_| Member::start(config(), args.topic.clone(), mark.clone(), epoch))
            .collect();
        wait_for(
            "the first members to consume",
            Duration::from_secs(120),
            || {
                members
                    .iter()
                    .all(|m| m.consumed.load(Ordering::Relaxed) > 0)
            },
        )?;
        // Settled: give in-flight fetches a moment, then the new member joins.
        std::thread::sleep(Duration::from_millis(500));
        let joined_at = epoch.elapsed();
        mark.store(true, Ordering::Relaxed);
        members.push(Member::start(
            config(),
            args.topic.clone(),
            mark.clone(),
            epoch,
        ));
        wait_for(
            "every member to consume after the join",
            Duration::from_secs(120),
            || {
                members
                    .iter()
                    .all(|m| m.first_after_mark.load(Ordering::Relaxed) > 0)
            },
        )?;
        // The last member to consume again; for old members a record fetched just
        // before they learned of the rebalance counts as early, so take the newcomer's
        // first record as well as the latest of all.
        let all_consuming = members
            .iter()
            .map(|m| m.first_after_mark.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let ms =
            (Duration::from_micros(all_consuming).saturating_sub(joined_at)).as_secs_f64() * 1000.0;
        eprintln!("round {round}: {ms:.0} ms");
        samples_ms.push(ms);
        for member in members {
            member.stop();
        }
    }
    producing.store(false, Ordering::Relaxed);
    producer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;

    samples_ms.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "workload": "rebalance",
        "revision": crate::revision(),
        "config": {
            "bootstrap": args.bootstrap, "topic": args.topic, "partitions": args.partitions,
            "members": args.members, "rounds": args.rounds, "assignor": args.assignor,
            "heartbeat_interval_ms": args.heartbeat_interval_ms,
            "session_timeout_ms": args.session_timeout_ms,
        },
        "join_to_all_consuming_ms": {
            "min": samples_ms.first(), "median": samples_ms.get(samples_ms.len() / 2),
            "max": samples_ms.last(), "samples": samples_ms,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
