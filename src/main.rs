//! The `weir` command: wiring from flags to the crates that do the work.

mod bucket;
mod instances;
mod lifecycle_args;
mod reserve;

#[global_allocator]
static ALLOCATOR: reserve::Reserving = reserve::Reserving;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_agent::{Agent, AgentConfig, Bucket};
use weir_cache::{FaultConfig, FaultyStore};
use weir_control_plane::client::ClientOptions;
use weir_control_plane::groups::GroupConfig;
use weir_control_plane::{ControlPlane, ControlPlaneClient, ControlPlaneConfig};
use weir_metadata::{Database, MetadataUrl};

use crate::lifecycle_args::LifecycleArgs;

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Diskless, Kafka-compatible streaming on object storage",
    after_help = "Logging: set RUST_LOG (for example RUST_LOG=weir=debug). Every flag also reads the WEIR_* variable named beside it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Weir on one machine: control plane and one agent in one process, metadata
    /// under --data-dir, objects there too or in --bucket. Point any Kafka client at --listen.
    Playground(PlaygroundArgs),
    /// Run an agent: the Kafka listener, writing objects to --bucket and committing them
    /// to --control-plane.
    Agent(AgentArgs),
    /// Run the control plane: topics, the offset sequencer, the index, the agent registry, consumer groups (gRPC).
    ControlPlane(ControlPlaneArgs),
    /// Print an object's footer: its partitions and batches.
    Inspect(InspectArgs),
}

/// Settings of the produce path, shared by `playground` and `agent`.
#[derive(Debug, Args)]
struct BatchingArgs {
    /// Milliseconds an open object waits for more batches before it is sealed and uploaded.
    #[arg(long, env = "WEIR_BATCH_TIMEOUT_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    batch_timeout_ms: u64,

    /// Bytes at which an open object is sealed at once.
    #[arg(long, env = "WEIR_BATCH_MAX_BYTES", default_value_t = 8 * 1024 * 1024)]
    batch_max_bytes: u64,

    /// Partitions of a topic created without a count (auto-created, or -1).
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS", default_value_t = 1)]
    default_partitions: i32,

    /// Milliseconds a produce waits for its object's upload and commit before the
    /// producer gets a retriable error (KAFKA_STORAGE_ERROR or REQUEST_TIMED_OUT).
    #[arg(long, env = "WEIR_PRODUCE_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    produce_timeout_ms: u64,

    /// Milliseconds after which an object that was uploaded but never committed (an
    /// orphan: the agent died between upload and commit) is deleted. At least twice
    /// --produce-timeout-ms.
    #[arg(long, env = "WEIR_GC_GRACE_MS", default_value_t = 3_600_000)]
    gc_grace_ms: u64,

    /// Milliseconds between orphan garbage-collection passes; 0 turns them off.
    #[arg(long, env = "WEIR_GC_INTERVAL_MS", default_value_t = 300_000)]
    gc_interval_ms: u64,

    /// Do not run the jobs role in this agent: deleting dereferenced objects after
    /// their grace period and running compaction jobs. Some agent must run it, or the
    /// bucket only grows and small objects are never merged.
    #[arg(long, env = "WEIR_NO_JOBS")]
    no_jobs: bool,

    /// Milliseconds between the jobs role's looks for due deletions and compaction jobs.
    #[arg(long, env = "WEIR_JOBS_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    jobs_interval_ms: u64,

    /// Bytes of the largest object a compaction job writes (one index entry bigger than
    /// it gets an object of its own); a job holds about twice this in memory. At most 1 GiB.
    #[arg(long, env = "WEIR_COMPACTION_OBJECT_BYTES", default_value_t = 64 * 1024 * 1024)]
    compaction_object_bytes: u64,

    /// Bytes of each index entry of a compaction job's objects, about (cut between
    /// batches; the default is the block cache's block). At most
    /// --compaction-object-bytes.
    #[arg(long, env = "WEIR_COMPACTION_ENTRY_BYTES", default_value_t = 1024 * 1024)]
    compaction_entry_bytes: u64,

    /// Testing and benchmarks only: inject object-store latency and failures. Presets
    /// s3-standard (PUT p50 100 ms, p99 300 ms) and s3-express (PUT p50 5 ms, p99 15 ms),
    /// then OP.SETTING=VALUE items (OP: put, get, head, list, delete or *):
    /// latency=fixed:D|uniform:MIN:MAX|lognormal:P50:P99, error_rate=P,
    /// errors=slowdown|internal|timeout, fail_nth=N, put.lost_response_rate=P; and
    /// seed=N. Example: "s3-standard,put.error_rate=0.1,seed=7". See docs/agent.md.
    #[arg(long, env = "WEIR_OBJECT_STORE_FAULTS", value_parser = parse_faults)]
    object_store_faults: Option<FaultConfig>,

    /// Testing only: a file holding a spec as for --object-store-faults, read again
    /// whenever it changes (checked twice a second), so a test harness can start and
    /// stop faults while the process runs. A missing or empty file means no faults; a
    /// spec that does not parse is logged and the faults in force are kept.
    #[arg(
        long,
        env = "WEIR_OBJECT_STORE_FAULTS_FILE",
        conflicts_with = "object_store_faults"
    )]
    object_store_faults_file: Option<PathBuf>,
}

fn parse_faults(spec: &str) -> Result<FaultConfig, String> {
    FaultConfig::parse(spec).map_err(|e| e.to_string())
}

/// Consumer-group settings of the coordinator, shared by `playground` and
/// `control-plane`; named after Kafka's broker configs.
#[derive(Debug, Args)]
struct GroupArgs {
    /// Milliseconds a new group's first rebalance waits for more members (Kafka's
    /// group.initial.rebalance.delay.ms), so members starting together rebalance once.
    #[arg(long, env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(0..=300_000))]
    group_initial_rebalance_delay_ms: u64,

    /// Shortest session timeout a member may ask for (group.min.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_MIN_SESSION_TIMEOUT_MS", default_value_t = 6000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    group_min_session_timeout_ms: u64,

    /// Longest session timeout a member may ask for (group.max.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_MAX_SESSION_TIMEOUT_MS", default_value_t = 1_800_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    group_max_session_timeout_ms: u64,
}

impl GroupArgs {
    fn config(&self) -> anyhow::Result<GroupConfig> {
        anyhow::ensure!(
            self.group_min_session_timeout_ms <= self.group_max_session_timeout_ms,
            "--group-min-session-timeout-ms ({}) is above --group-max-session-timeout-ms ({})",
            self.group_min_session_timeout_ms,
            self.group_max_session_timeout_ms
        );
        Ok(GroupConfig {
            initial_rebalance_delay: Duration::from_millis(self.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(self.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(self.group_max_session_timeout_ms),
            ..GroupConfig::default()
        })
    }
}

#[derive(Debug, Args)]
struct PlaygroundArgs {
    /// Directory for metadata (DIR/metadata) and, without --bucket, objects (DIR/objects).
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "weir-data")]
    data_dir: std::path::PathBuf,

    /// Put objects in this bucket instead of DIR/objects: s3://BUCKET/PREFIX (endpoint,
    /// region and keys from the AWS_* variables; for MinIO,
    /// AWS_ENDPOINT_URL=http://localhost:9000 AWS_ALLOW_HTTP=true), file:///DIR or
    /// memory://. Metadata stays under --data-dir; no record bytes touch it.
    #[arg(long, env = "WEIR_BUCKET")]
    bucket: Option<String>,

    /// Address for Kafka clients.
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:9092")]
    listen: SocketAddr,

    /// host:port that clients are told to connect to, when they reach the playground
    /// through something in between (a proxy, a port forward) [default: --listen].
    #[arg(long, env = "WEIR_ADVERTISE")]
    advertise: Option<String>,

    /// Do not create unknown topics when clients ask for them.
    #[arg(long, env = "WEIR_NO_AUTO_CREATE_TOPICS")]
    no_auto_create_topics: bool,

    /// Address for HTTP health (/healthz) and Prometheus metrics (/metrics); none by default.
    #[arg(long, env = "WEIR_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,

    #[command(flatten)]
    batching: BatchingArgs,

    #[command(flatten)]
    groups: GroupArgs,

    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

#[derive(Debug, Args)]
struct AgentArgs {
    /// The control plane's gRPC URL, for example http://control-plane:9090, or every
    /// instance's, separated by commas: calls go to the instance holding the sequencer
    /// lease, and follow it when it moves.
    #[arg(long, env = "WEIR_CONTROL_PLANE")]
    control_plane: String,

    /// PEM file of the CA certificates to trust for an https:// control plane [default:
    /// the system's roots].
    #[arg(long, env = "WEIR_CONTROL_PLANE_CA")]
    control_plane_ca: Option<PathBuf>,

    /// Where objects go: s3://BUCKET/PREFIX (settings from the AWS_* variables), file:///DIR or memory://.
    #[arg(long, env = "WEIR_BUCKET")]
    bucket: String,

    /// The zone this agent runs in; clients name theirs with weir_az=ZONE in client.id.
    #[arg(long, env = "WEIR_ZONE")]
    zone: String,

    /// Address for Kafka clients.
    #[arg(long, env = "WEIR_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,

    /// host:port that clients are told to connect to [default: --listen, if it names a host].
    #[arg(long, env = "WEIR_ADVERTISE")]
    advertise: Option<String>,

    /// Address for HTTP health (/healthz) and Prometheus metrics (/metrics).
    #[arg(long, env = "WEIR_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    http_listen: SocketAddr,

    /// Token for the control plane. Prefer the variable to the flag, which other users
    /// of the machine can see.
    #[arg(long, env = "WEIR_CONTROL_PLANE_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Create unknown topics when clients ask for them.
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS")]
    auto_create_topics: bool,

    #[command(flatten)]
    batching: BatchingArgs,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// A local object file, or a URL: file:///…/data/ID.weir, s3://BUCKET/PREFIX/data/ID.weir.
    object: String,
}

#[derive(Debug, Args)]
struct ControlPlaneArgs {
    /// Address for the gRPC API that agents call.
    #[arg(long, env = "WEIR_LISTEN", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,

    /// Address for HTTP health (/healthz), readiness (/readyz: 200 only on the instance
    /// holding the sequencer lease, with the metadata store reachable) and Prometheus
    /// metrics (/metrics).
    #[arg(long, env = "WEIR_HTTP_LISTEN", default_value = "0.0.0.0:9091")]
    http_listen: SocketAddr,

    /// The URL agents reach this instance at (http://HOST:PORT, or https:// with
    /// --tls-cert); standbys send agents to the lease holder's. [default: from --listen
    /// when it names a host]
    #[arg(long, env = "WEIR_ADVERTISE_URL")]
    advertise_url: Option<String>,

    /// PEM certificate chain to serve TLS with (agents then use https://); needs --tls-key.
    #[arg(long, env = "WEIR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "WEIR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Where metadata lives: embedded://DIR (a local store, one process at a time) or
    /// fdb://CLUSTER_FILE (FoundationDB; needs a build with `--features fdb`).
    #[arg(
        long,
        env = "WEIR_METADATA",
        default_value = "embedded://weir-data/metadata"
    )]
    metadata: MetadataUrl,

    /// Cluster name: the keyspace prefix, so several clusters can share one FoundationDB.
    #[arg(long, env = "WEIR_CLUSTER", default_value = "default")]
    cluster: String,

    /// This instance's name as holder of the sequencer lease [default: host name and port].
    #[arg(long, env = "WEIR_INSTANCE_ID")]
    instance_id: Option<String>,

    /// Token agents must present (`authorization: Bearer <token>`). Without one, every
    /// call is accepted: use that only on a trusted network. Prefer the variable to the
    /// flag, which other users of the machine can see.
    #[arg(long, env = "WEIR_CONTROL_PLANE_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Seconds the sequencer lease lasts without renewal; a standby takes over after it.
    #[arg(long, env = "WEIR_LEASE_TTL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_ttl_secs: u64,

    /// Seconds an idempotent producer's state is kept after its last use (Kafka's
    /// transactional.id.expiration.ms; 7 days).
    #[arg(long, env = "WEIR_PRODUCER_STATE_EXPIRY_SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    producer_state_expiry_secs: u64,
    #[command(flatten)]
    groups: GroupArgs,

    #[command(flatten)]
    lifecycle: LifecycleArgs,

    /// Testing only: the embedded metadata store fails commits as FoundationDB can:
    /// conflict_rate=P (a retriable conflict), unknown_result_rate=P (the outcome is
    /// unknown; half of those were applied), seed=N. Example:
    /// "conflict_rate=0.02,unknown_result_rate=0.01,seed=7".
    #[arg(long, env = "WEIR_METADATA_FAULTS", value_parser = parse_metadata_faults)]
    metadata_faults: Option<weir_metadata::FaultConfig>,

    /// Testing only: also run a standby instance in this process, on the same metadata
    /// store, serving gRPC on this address, so the sequencer lease can move between two
    /// instances where only the embedded store runs. Neither advertises a URL.
    #[arg(long, env = "WEIR_STANDBY_LISTEN")]
    standby_listen: Option<SocketAddr>,

    /// Testing only, with --standby-listen: when this file says "crash-holder", the
    /// instance holding the lease crashes (as kill -9 would); when it is empty again,
    /// that instance starts again as a standby.
    #[arg(long, env = "WEIR_LEASE_FAULTS_FILE", requires = "standby_listen")]
    lease_faults_file: Option<PathBuf>,
}

fn parse_metadata_faults(spec: &str) -> Result<weir_metadata::FaultConfig, String> {
    let mut faults = weir_metadata::FaultConfig::default();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got {item:?}"))?;
        let rate = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("{key}={value}: expected a probability from 0 to 1"))
        };
        match key {
            "conflict_rate" => faults.conflict_rate = rate()?,
            "unknown_result_rate" => faults.unknown_result_rate = rate()?,
            "seed" => {
                faults.seed = value
                    .parse()
                    .map_err(|_| format!("seed={value}: expected an unsigned integer"))?;
            }
            _ => {
                return Err(format!(
                    "unknown item {key:?} (conflict_rate, unknown_result_rate, seed)"
                ));
            }
        }
    }
    Ok(faults)
}

/// Opens the metadata store, with injected faults when asked for (embedded only).
async fn open_metadata(
    url: &MetadataUrl,
    faults: Option<&weir_metadata::FaultConfig>,
) -> anyhow::Result<Database> {
    let opened = match (url, faults) {
        (MetadataUrl::Embedded(dir), Some(faults)) => {
            tracing::warn!(
                ?faults,
                "injecting metadata commit faults (--metadata-faults): for tests only"
            );
            let config = weir_metadata::EmbeddedConfig {
                faults: faults.clone(),
                ..weir_metadata::EmbeddedConfig::new(dir.clone())
            };
            weir_metadata::EmbeddedStore::open(config)
                .map(|store| Database::new(std::sync::Arc::new(store)))
        }
        (_, Some(_)) => anyhow::bail!("--metadata-faults works only with embedded:// metadata"),
        (url, None) => Database::open(url).await,
    };
    opened.with_context(|| format!("open metadata store {url}"))
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run_control_plane(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let db = open_metadata(&args.metadata, args.metadata_faults.as_ref()).await?;
    let instance = args.instance_id.clone().unwrap_or_else(|| {
        format!(
            "{}:{}",
            host_name().unwrap_or_else(|| "control-plane".into()),
            args.listen.port()
        )
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(weir_control_plane::TlsIdentity {
            cert_pem: read_pem(cert, "--tls-cert")?,
            key_pem: read_pem(key, "--tls-key")?,
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let advertise_url = match &args.advertise_url {
        Some(url) => url.clone(),
        None if args.listen.ip().is_unspecified() => {
            tracing::warn!(
                "no --advertise-url and --listen {} names no host: standbys cannot send agents to this instance when it holds the lease",
                args.listen
            );
            String::new()
        }
        None => format!("{scheme}://{}", args.listen),
    };
    let config = ControlPlaneConfig {
        cluster: args.cluster.clone(),
        instance,
        advertise_url,
        tls,
        token: args.token.clone().filter(|t| !t.is_empty()),
        lease_ttl: Duration::from_secs(args.lease_ttl_secs),
        producer_state_expiry: Duration::from_secs(args.producer_state_expiry_secs),
        groups: args.groups.config()?,
        lifecycle: args.lifecycle.config()?,
        ..ControlPlaneConfig::default()
    };
    if config.token.is_none() {
        tracing::warn!("no control-plane token set: every caller is trusted");
    }
    let grpc = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen for gRPC on {}", args.listen))?;
    let http = TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("listen for HTTP on {}", args.http_listen))?;
    if let Some(standby_listen) = args.standby_listen {
        return run_two_instances(&args, config, db, grpc, http, standby_listen).await;
    }
    let control_plane = ControlPlane::start(config, db)
        .await
        .context("start the control plane")?;
    println!(
        "weir control-plane: gRPC on {}, health and metrics on http://{}, metadata {}",
        grpc.local_addr()?,
        http.local_addr()?,
        args.metadata
    );

    let stop = CancellationToken::new();
    let http_stop = stop.clone();
    let http_task = tokio::spawn(weir_control_plane::http::serve(
        http,
        control_plane.metrics_registry(),
        control_plane.readiness(),
        async move { http_stop.cancelled().await },
    ));
    let grpc_stop = stop.clone();
    let served = control_plane
        .serve(grpc, async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = grpc_stop.cancelled() => {}
            }
        })
        .await;
    stop.cancel();
    tracing::info!("shutting down");
    control_plane.shutdown().await;
    let _ = http_task.await;
    served.context("serve the control-plane API")
}

/// `--standby-listen` (testing only): two instances in this process; see instances.rs.
async fn run_two_instances(
    args: &ControlPlaneArgs,
    config: ControlPlaneConfig,
    db: Database,
    grpc: TcpListener,
    http: TcpListener,
    standby_listen: SocketAddr,
) -> anyhow::Result<()> {
    let listen = grpc.local_addr()?;
    // Each instance binds its own address on its own runtime.
    drop(grpc);
    println!(
        "weir control-plane: gRPC on {listen} and a standby on {standby_listen} (testing only), health on http://{}, metadata {}",
        http.local_addr()?,
        args.metadata
    );
    let stop = CancellationToken::new();
    let http_task = tokio::spawn(weir_control_plane::http::serve(
        http,
        std::sync::Arc::new(prometheus_client::registry::Registry::default()),
        weir_control_plane::http::Readiness::new(|| async {
            Err("readiness is per instance, and --standby-listen runs two".to_string())
        }),
        {
            let stop = stop.clone();
            async move { stop.cancelled().await }
        },
    ));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    let ran = instances::run(
        config,
        db,
        listen,
        standby_listen,
        args.lease_faults_file.clone(),
        stop.clone(),
    )
    .await;
    stop.cancel();
    let _ = http_task.await;
    ran
}

fn agent_config(
    batching: &BatchingArgs,
    advertise: String,
    zone: String,
    auto_create_topics: bool,
) -> AgentConfig {
    AgentConfig {
        advertise,
        zone,
        auto_create_topics,
        batch_timeout: Duration::from_millis(batching.batch_timeout_ms),
        batch_max_bytes: batching.batch_max_bytes,
        default_partitions: batching.default_partitions,
        produce_timeout: Duration::from_millis(batching.produce_timeout_ms),
        gc_grace: Duration::from_millis(batching.gc_grace_ms),
        gc_interval: Duration::from_millis(batching.gc_interval_ms),
        jobs: !batching.no_jobs,
        jobs_interval: Duration::from_millis(batching.jobs_interval_ms),
        compaction_object_bytes: batching.compaction_object_bytes,
        compaction_entry_bytes: batching.compaction_entry_bytes,
        ..AgentConfig::default()
    }
}

/// Wraps the bucket's store in a [`FaultyStore`] when faults were asked for, by spec or
/// by file. The check at start runs on the bare store, so a wrong bucket is still
/// refused at once.
fn with_faults(bucket: Bucket, batching: &BatchingArgs) -> Bucket {
    let faults = match (
        &batching.object_store_faults,
        &batching.object_store_faults_file,
    ) {
        (Some(faults), _) if !faults.is_none() => faults.clone(),
        (_, Some(_)) => FaultConfig::default(),
        _ => return bucket,
    };
    tracing::warn!(
        ?faults,
        file = ?batching.object_store_faults_file,
        "injecting object-store faults: for tests and benchmarks only"
    );
    let store = std::sync::Arc::new(FaultyStore::new(bucket.store, faults));
    if let Some(path) = &batching.object_store_faults_file {
        tokio::spawn(follow_faults_file(path.clone(), store.clone()));
    }
    Bucket {
        store,
        prefix: bucket.prefix,
    }
}

/// Applies the spec in `path` to `store` whenever the file's contents change.
async fn follow_faults_file(path: PathBuf, store: std::sync::Arc<FaultyStore>) {
    let mut applied = String::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticker.tick().await;
        let spec = match tokio::fs::read_to_string(&path).await {
            Ok(spec) => spec.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "read the object-store faults file");
                continue;
            }
        };
        if spec == applied {
            continue;
        }
        let parsed = if spec.is_empty() {
            Ok(FaultConfig::default())
        } else {
            FaultConfig::parse(&spec)
        };
        match parsed {
            Ok(faults) => {
                tracing::warn!(spec = %spec, "object-store faults changed");
                store.set_config(faults);
            }
            Err(e) => {
                tracing::error!(path = %path.display(), spec = %spec, error = %e, "object-store faults file does not parse; keeping the faults in force");
            }
        }
        applied = spec;
    }
}

async fn run_playground(args: PlaygroundArgs) -> anyhow::Result<()> {
    // The bucket first: a wrong name or key refuses to start before anything is created.
    let bucket_url = match &args.bucket {
        Some(url) => url.clone(),
        None => {
            let objects = args.data_dir.join("objects");
            let objects = std::path::absolute(&objects)
                .with_context(|| format!("resolve {}", objects.display()))?;
            url::Url::from_directory_path(&objects)
                .map_err(|()| {
                    anyhow::anyhow!(
                        "objects directory {} is not an absolute path",
                        objects.display()
                    )
                })?
                .to_string()
        }
    };
    let bucket = bucket::open(&bucket_url)?;
    bucket::check(&bucket_url, &bucket).await?;
    let bucket = with_faults(bucket, &args.batching);

    let metadata = MetadataUrl::Embedded(args.data_dir.join("metadata"));
    let db = Database::open(&metadata)
        .await
        .with_context(|| format!("open metadata store {metadata}"))?;
    // One registry: the control plane's metrics and the agent's on one /metrics.
    let mut registry = prometheus_client::registry::Registry::default();
    let control_plane = ControlPlane::start_into(
        ControlPlaneConfig {
            instance: "playground".into(),
            groups: args.groups.config()?,
            lifecycle: args.lifecycle.config()?,
            ..ControlPlaneConfig::default()
        },
        db,
        std::sync::Arc::new(weir_control_plane::clock::SystemClock),
        &mut registry,
    )
    .await
    .context("start the control plane")?;
    // The agent talks to the control plane over gRPC on loopback, as it does in a cluster.
    let grpc = TcpListener::bind("127.0.0.1:0")
        .await
        .context("listen for the internal control-plane API")?;
    let control_url = format!("http://{}", grpc.local_addr()?);
    let control_plane = std::sync::Arc::new(control_plane);
    let stop_control = CancellationToken::new();
    let serving = {
        let (control_plane, stop) = (control_plane.clone(), stop_control.clone());
        tokio::spawn(async move {
            control_plane
                .serve(grpc, async move { stop.cancelled().await })
                .await
        })
    };

    let kafka = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen for Kafka clients on {}", args.listen))?;
    let advertise = match &args.advertise {
        Some(advertise) => advertise.clone(),
        None => kafka.local_addr()?.to_string(),
    };
    let config = agent_config(
        &args.batching,
        advertise.clone(),
        "local".into(),
        !args.no_auto_create_topics,
    );
    let client = ControlPlaneClient::connect(&control_url, None).await?;
    let agent = Agent::start(config, client, bucket, &mut registry)
        .await
        .context("start the agent")?;
    // Bound before the ready line, so whoever waits for that line can scrape at once.
    let http = match args.http_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen for HTTP on {addr}"))?,
        ),
        None => None,
    };
    println!("Weir playground: bootstrap.servers={advertise}");
    println!(
        "  metadata {}, objects {bucket_url}",
        args.data_dir.join("metadata").display(),
    );
    let stop = CancellationToken::new();
    let http_task = match http {
        Some(http) => {
            println!("  health and metrics on http://{}", http.local_addr()?);
            let stop = stop.clone();
            Some(tokio::spawn(weir_control_plane::http::serve(
                http,
                std::sync::Arc::new(registry),
                control_plane.readiness(),
                async move { stop.cancelled().await },
            )))
        }
        None => None,
    };
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    agent
        .serve(kafka, stop)
        .await
        .context("serve Kafka clients")?;
    stop_control.cancel();
    if let Some(http_task) = http_task {
        let _ = http_task.await;
    }
    let _ = serving.await;
    if let Ok(control_plane) = std::sync::Arc::try_unwrap(control_plane) {
        control_plane.shutdown().await;
    }
    println!("Weir playground stopped; every acknowledged record is in {bucket_url}");
    Ok(())
}

async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let advertise = match &args.advertise {
        Some(advertise) => advertise.clone(),
        None if args.listen.ip().is_unspecified() => {
            anyhow::bail!(
                "--advertise is needed when --listen is {} (clients need a reachable address)",
                args.listen
            )
        }
        None => args.listen.to_string(),
    };
    let bucket = bucket::open(&args.bucket)?;
    bucket::check(&args.bucket, &bucket).await?;
    let bucket = with_faults(bucket, &args.batching);
    let token = args.token.clone().filter(|t| !t.is_empty());
    let ca_pem = match &args.control_plane_ca {
        Some(path) => Some(read_pem(path, "--control-plane-ca")?),
        None => None,
    };
    let client = ControlPlaneClient::connect_with(ClientOptions {
        ca_pem,
        ..ClientOptions::new(&args.control_plane, token.as_deref())
    })
    .await
    .context("reach the control plane")?;
    let kafka = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen for Kafka clients on {}", args.listen))?;
    let http = TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("listen for HTTP on {}", args.http_listen))?;
    let config = agent_config(
        &args.batching,
        advertise.clone(),
        args.zone.clone(),
        args.auto_create_topics,
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let agent = Agent::start(config, client, bucket, &mut registry)
        .await
        .context("start the agent")?;
    println!(
        "weir agent: Kafka on {} (advertised as {advertise}, zone {}), health and metrics on http://{}",
        kafka.local_addr()?,
        args.zone,
        http.local_addr()?
    );
    let stop = CancellationToken::new();
    let http_task = {
        let stop = stop.clone();
        let contact = agent.contact();
        tokio::spawn(weir_control_plane::http::serve(
            http,
            std::sync::Arc::new(registry),
            weir_control_plane::http::Readiness::new(move || {
                let check = contact.check();
                async move { check }
            }),
            async move { stop.cancelled().await },
        ))
    };
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    agent
        .serve(kafka, stop.clone())
        .await
        .context("serve Kafka clients")?;
    stop.cancel();
    let _ = http_task.await;
    Ok(())
}

/// A PEM file named by `flag`, with a clear error when it cannot be read or holds no PEM.
fn read_pem(path: &std::path::Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        anyhow::bail!(
            "{flag} {}: not a PEM file (no -----BEGIN line)",
            path.display()
        );
    }
    Ok(bytes)
}

async fn run_inspect(args: InspectArgs) -> anyhow::Result<()> {
    let bytes = if args.object.contains("://") {
        let parsed = url::Url::parse(&args.object)
            .with_context(|| format!("object URL {:?}", args.object))?;
        let (store, path) = match parsed.scheme() {
            "s3" => {
                let bucket = format!("s3://{}", parsed.host_str().unwrap_or_default());
                (
                    bucket::open(&bucket)?.store,
                    object_store::path::Path::from(parsed.path().trim_start_matches('/')),
                )
            }
            _ => {
                let (store, path) = object_store::parse_url(&parsed)
                    .with_context(|| format!("object URL {}", args.object))?;
                (std::sync::Arc::from(store), path)
            }
        };
        store
            .get(&path)
            .await
            .with_context(|| format!("read {}", args.object))?
            .bytes()
            .await
            .with_context(|| format!("read {}", args.object))?
            .to_vec()
    } else {
        std::fs::read(&args.object).with_context(|| format!("read {}", args.object))?
    };
    let text = weir_agent::object::describe(&bytes, None)
        .with_context(|| format!("{} is not a Weir object", args.object))?;
    print!("{text}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Playground(args) => run_playground(args).await,
            Command::Agent(args) => run_agent(args).await,
            Command::ControlPlane(args) => run_control_plane(args).await,
            Command::Inspect(args) => run_inspect(args).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_faults_parse_and_bad_ones_say_why() {
        let faults = parse_metadata_faults("conflict_rate=0.02, unknown_result_rate=0.01,seed=7")
            .expect("valid");
        assert_eq!(faults.conflict_rate, 0.02);
        assert_eq!(faults.unknown_result_rate, 0.01);
        assert_eq!(faults.seed, 7);
        for (spec, says) in [
            ("conflict_rate=2", "expected a probability"),
            ("conflict_rate", "expected KEY=VALUE"),
            ("seed=-1", "expected an unsigned integer"),
            ("latency=5ms", "unknown item \"latency\""),
        ] {
            let error = parse_metadata_faults(spec).expect_err(spec);
            assert!(error.contains(says), "{spec}: {error}");
        }
    }
}
