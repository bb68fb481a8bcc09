//! One chaos run, start to verdict:
//!
//! 1. start the cluster and create the topic, with a short `retention.ms`;
//! 2. start the workers (producers, `assign` consumers, optionally a consumer group, the
//!    watermark sampler, the deleter) and let them run unharmed for a few seconds;
//! 3. run the nemesis for `duration`;
//! 4. heal everything and let the workers run on for `recovery`: sends must succeed
//!    again;
//! 5. stop the workers, turn retention off (so the lifecycle can settle), read every
//!    partition from its log start (the catch-up), and once every dereferenced object's
//!    deletion grace and the orphan sweep have had their time, record the index and the
//!    bucket, and each agent's count of fetches that found an object missing;
//! 6. check the history.
//!
//! Everything stays under `out`: the history, each process's log and the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

use crate::activity::Activity;
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
    /// The topic's `retention.ms` while the workers run (`None`: kept forever).
    pub retention: Option<Duration>,
    /// The control plane's `--object-delete-grace-ms`.
    pub delete_grace: Duration,
}

/// How long after the index last changed (a compaction swap) the lifecycle may still
/// legitimately hold objects the index no longer names, beyond the deletion grace: a
/// claim of deletions held by an agent killed just before the heal, or applied by a
/// metadata transaction whose answer was lost, is handed out again when its 60 s claim
/// runs out.
const SETTLE_BEYOND_GRACE: Duration = Duration::from_secs(90);

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
    /// What compaction, deletion and retention did.
    pub activity: Activity,
    /// How long the oracle waited for the lifecycle to settle after the catch-up.
    pub settled_in: Duration,
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
        u64::try_from(config.delete_grace.as_millis()).unwrap_or(u64::MAX),
    )
    .await?;
    let bootstrap = cluster.bootstrap();
    let history_path = config.out.join("history.jsonl");
    let history = Arc::new(HistoryWriter::create(&history_path)?);
    history.record(
        "cluster",
        Outcome::Ok,
        Op::Agents {
            agents: cluster.agent_addresses(),
        },
    );
    let cluster = Arc::new(Mutex::new(cluster));
    create_topic(&bootstrap, &history, config.partitions, config.retention).await?;

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
        read_up_to: Arc::default(),
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
    // DeleteRecords on the first third of the partitions; retention alone on the rest.
    let deleter = tokio::spawn(workers::deleter(
        work.clone(),
        (0..(config.partitions / 3).max(1)).collect(),
        config.seed.wrapping_add(0xde1e7e),
    ));
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
    deleter.await.context("the deleter panicked")??;
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a consumer panicked"))??;
    }
    let mut problems = Vec::new();
    // Nothing is written any more: with retention off, the log start stays where it
    // is, and the lifecycle settles once compaction has merged the last objects and
    // every dereferenced one has had its grace.
    if config.retention.is_some()
        && let Err(e) = set_retention(&work.bootstrap, &history, None).await
    {
        problems.push(format!("could not turn retention off: {e:#}"));
    }
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
    let (control_plane, bucket_dir, agents, control_plane_log) = {
        let cluster = cluster.lock();
        let agents: Vec<_> = cluster
            .agent_logs()
            .into_iter()
            .zip(&cluster.agent_http)
            .map(|((name, log), http)| (name, *http, log))
            .collect();
        (
            cluster.control_plane_url.clone(),
            cluster.bucket_dir.clone(),
            agents,
            cluster.control_plane_log(),
        )
    };
    let (settled_in, (unindexed, missing)) = oracle::record_settled(
        &control_plane,
        &bucket_dir,
        &history,
        TOPIC,
        config.delete_grace + SETTLE_BEYOND_GRACE,
    )
    .await?;
    if (unindexed, missing) != (0, 0) {
        eprintln!(
            "weir-chaos: the lifecycle did not settle in {settled_in:?}: {unindexed} objects no \
             index entry names, {missing} named objects missing"
        );
    }
    oracle::record_missing_objects(&history, &agents).await?;
    let agent_logs: Vec<&Path> = agents.iter().map(|(_, _, log)| log.as_path()).collect();
    let activity = Activity::read(&agent_logs, &control_plane_log)?;
    problems.extend(activity.missing());
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
        activity,
        settled_in,
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

/// `retention.ms` as the topic config spells it.
fn retention_ms(retention: Option<Duration>) -> String {
    retention.map_or("-1".to_string(), |r| r.as_millis().to_string())
}

/// Creates the topic with `retention` (a `TopicConfig` in the history).
async fn create_topic(
    bootstrap: &str,
    history: &HistoryWriter,
    partitions: i32,
    retention: Option<Duration>,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let config = |error| Op::TopicConfig {
        retention_ms: retention.map(|r| r.as_millis() as i64),
        error,
    };
    history.record("admin", Outcome::Invoke, config(None));
    let deadline = Instant::now() + Duration::from_secs(60);
    let ms = retention_ms(retention);
    loop {
        let topic =
            NewTopic::new(TOPIC, partitions, TopicReplication::Fixed(1)).set("retention.ms", &ms);
        let outcome = admin.create_topics([&topic], &AdminOptions::new()).await;
        match outcome.as_deref() {
            // A retry after an answer lost on the way.
            Ok([Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists))]) => {
                history.record("admin", Outcome::Ok, config(None));
                return Ok(());
            }
            _ if Instant::now() > deadline => {
                history.record("admin", Outcome::Info, config(Some(format!("{outcome:?}"))));
                bail!("could not create topic {TOPIC}: {outcome:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Sets the topic's `retention.ms` (AlterConfigs), retrying for a minute (a
/// `TopicConfig` in the history).
async fn set_retention(
    bootstrap: &str,
    history: &HistoryWriter,
    retention: Option<Duration>,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let config = |error| Op::TopicConfig {
        retention_ms: retention.map(|r| r.as_millis() as i64),
        error,
    };
    history.record("admin", Outcome::Invoke, config(None));
    let ms = retention_ms(retention);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alter = AlterConfig::new(ResourceSpecifier::Topic(TOPIC)).set("retention.ms", &ms);
        let outcome = admin.alter_configs([&alter], &AdminOptions::new()).await;
        match outcome.as_deref() {
            Ok([Ok(_)]) => {
                history.record("admin", Outcome::Ok, config(None));
                return Ok(());
            }
            _ if Instant::now() > deadline => {
                history.record("admin", Outcome::Info, config(Some(format!("{outcome:?}"))));
                bail!("could not alter topic {TOPIC}: {outcome:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
