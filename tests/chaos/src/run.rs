//! One chaos run, start to verdict:
//!
//! 1. start the cluster and create the topic;
//! 2. start the workers (producers, `assign` consumers, optionally a consumer group, the
//!    watermark sampler) and let them run unharmed for a few seconds;
//! 3. run the nemesis for `duration`;
//! 4. heal everything and let the workers run on for `recovery`: sends must succeed
//!    again;
//! 5. stop the workers, read every partition from the start (the catch-up), record the
//!    index and, once garbage collection has had its time, the bucket;
//! 6. check the history.
//!
//! Everything stays under `out`: the history, each process's log and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::cluster::{Binaries, Cluster};
use crate::history::{self, HistoryWriter, Op, Outcome};
use crate::nemesis::{self, Family, Schedule};
use crate::workers::{self, Workload};
use crate::{checker, oracle};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    pub duration: Duration,
    pub families: Vec<Family>,
    pub out: PathBuf,
    pub agents: usize,
    pub partitions: i32,
    pub producers: usize,
    /// Values each producer sends per second.
    pub rate: u32,
    /// Also run a consumer group of two `subscribe` members.
    pub subscribe: bool,
    /// How long the healed cluster runs before the workers stop.
    pub recovery: Duration,
    /// Producers' `message.timeout.ms`.
    pub message_timeout: Duration,
    /// Producers' `request.timeout.ms`.
    pub request_timeout: Duration,
    /// The control plane's `--metadata-faults` (empty: none).
    pub metadata_faults: String,
}

const TOPIC: &str = "chaos";

/// What a run found.
#[derive(Debug)]
pub struct Verdict {
    pub report: checker::Report,
    /// Problems outside the history's anomaly classes: a process that crashed, a
    /// partition the catch-up could not finish, no successful send after the heal.
    pub problems: Vec<String>,
    pub faults: usize,
    /// How long faults were in force, in all.
    pub faulted: Duration,
    /// How often a producer's librdkafka bumped its epoch (KIP-360), read from its log.
    /// A bump renumbers every record the producer still holds, and so sends again as new
    /// any batch it had been told timed out but that was committed: Weir's answers should
    /// give it no reason to (only the client's own message timeouts should).
    pub epoch_bumps: usize,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.report.is_clean() && self.problems.is_empty()
    }
}

pub async fn run(config: &RunConfig) -> anyhow::Result<Verdict> {
    if config.out.exists() {
        std::fs::remove_dir_all(&config.out)
            .with_context(|| format!("clear {}", config.out.display()))?;
    }
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("create {}", config.out.display()))?;
    let binaries = Binaries::beside_me()?;
    let cluster = Cluster::start(
        &binaries,
        &config.out,
        config.agents,
        &config.metadata_faults,
    )
    .await?;
    let bootstrap = cluster.bootstrap();
    let cluster = Arc::new(Mutex::new(cluster));
    let history_path = config.out.join("history.jsonl");
    let history = Arc::new(HistoryWriter::create(&history_path)?);
    create_topic(&bootstrap, config.partitions).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let work = Workload {
        bootstrap,
        topic: TOPIC.to_string(),
        partitions: config.partitions,
        history: history.clone(),
        stop: stop.clone(),
        message_timeout: config.message_timeout,
        request_timeout: config.request_timeout,
        logs: config.out.clone(),
    };
    let producers: Vec<_> = (0..config.producers)
        .map(|i| {
            tokio::spawn(workers::producer(
                work.clone(),
                format!("producer-{i}"),
                config.rate,
                config.seed.wrapping_add(i as u64),
            ))
        })
        .collect();
    let mut threads = Vec::new();
    let spawn = |threads: &mut Vec<_>, f: Box<dyn FnOnce() -> anyhow::Result<()> + Send>| {
        threads.push(std::thread::spawn(f));
    };
    {
        let work = work.clone();
        spawn(
            &mut threads,
            Box::new(move || workers::assign_consumer(&work, "consumer-0", None, 0)),
        );
    }
    {
        let (work, seed) = (work.clone(), config.seed);
        spawn(
            &mut threads,
            Box::new(move || {
                workers::assign_consumer(&work, "consumer-1", Some(Duration::from_secs(20)), seed)
            }),
        );
    }
    if config.subscribe {
        for i in 0..2 {
            let work = work.clone();
            spawn(
                &mut threads,
                Box::new(move || workers::subscribe_consumer(&work, &format!("member-{i}"))),
            );
        }
    }
    {
        let work = work.clone();
        spawn(
            &mut threads,
            Box::new(move || workers::sampler(&work, Duration::from_millis(500))),
        );
    }

    tokio::time::sleep(Duration::from_secs(5)).await;
    let schedule = Schedule {
        seed: config.seed,
        families: config.families.clone(),
        fault: (Duration::from_secs(4), Duration::from_secs(12)),
        quiet: (Duration::from_secs(2), Duration::from_secs(6)),
    };
    let until = Instant::now() + config.duration;
    let faults = {
        let (cluster, history, stop) = (cluster.clone(), history.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            nemesis::run(&cluster, &history, &schedule, until, &stop)
        })
        .await
        .context("the nemesis panicked")?
    };
    let heal_op = || Op::Nemesis {
        fault: "heal-all".into(),
        target: "cluster".into(),
    };
    history.record("nemesis", Outcome::Invoke, heal_op());
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || nemesis::heal_all(&mut cluster.lock()))
            .await
            .context("healing panicked")??;
    }
    let healed = history.record("nemesis", Outcome::Ok, heal_op());
    let (faults, faulted) = faults?;
    tokio::time::sleep(config.recovery).await;

    stop.store(true, Ordering::SeqCst);
    for producer in producers {
        producer.await.context("a producer panicked")??;
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a consumer panicked"))??;
    }
    let mut problems = Vec::new();
    let unfinished = {
        let work = Workload {
            stop: Arc::new(AtomicBool::new(false)),
            ..work.clone()
        };
        tokio::task::spawn_blocking(move || workers::catch_up(&work, Duration::from_secs(60)))
            .await
            .context("the catch-up panicked")??
    };
    problems.extend(unfinished.into_iter().map(|p| format!("catch-up: {p}")));
    let (control_plane, bucket_dir) = {
        let cluster = cluster.lock();
        (
            cluster.control_plane_url.clone(),
            cluster.bucket_dir.clone(),
        )
    };
    oracle::record_index(&control_plane, &history, TOPIC).await?;
    oracle::record_bucket(&control_plane, &bucket_dir, &history).await?;
    problems.extend(
        cluster
            .lock()
            .crashed()
            .into_iter()
            .map(|p| format!("{p} exited on its own")),
    );
    cluster.lock().stop();
    history.flush()?;

    let events = history::read(&history_path)?;
    let acked_after_heal = events
        .iter()
        .filter(|e| e.index > healed && e.outcome == Outcome::Ok && matches!(e.op, Op::Send { .. }))
        .count();
    if acked_after_heal == 0 {
        problems.push(format!(
            "no send was acknowledged in the {:?} after every fault healed",
            config.recovery
        ));
    }
    let report = checker::check(&events);
    Ok(Verdict {
        report,
        problems,
        faults,
        faulted,
        epoch_bumps: epoch_bumps(&config.out)?,
    })
}

/// The epoch bumps the producers' librdkafka logged in `out`.
fn epoch_bumps(out: &Path) -> anyhow::Result<usize> {
    let mut bumps = 0;
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".rdkafka.log") {
            let log = std::fs::read_to_string(&path)?;
            bumps += log.matches("bumped epoch to").count();
        }
    }
    Ok(bumps)
}

async fn create_topic(bootstrap: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let topic = NewTopic::new(TOPIC, partitions, TopicReplication::Fixed(1));
        let outcome = admin.create_topics([&topic], &AdminOptions::new()).await;
        match outcome.as_deref() {
            Ok([Ok(_)]) => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("could not create topic {TOPIC}: {outcome:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
