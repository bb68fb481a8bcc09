//! The `weir` command: wiring from flags to the crates that do the work.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::{Database, MetadataUrl};

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
    /// Run the control plane: topics, the offset sequencer, the index, the agent registry (gRPC).
    ControlPlane(ControlPlaneArgs),
}

#[derive(Debug, Args)]
struct ControlPlaneArgs {
    /// Address for the gRPC API that agents call.
    #[arg(long, env = "WEIR_LISTEN", default_value = "0.0.0.0:9090")]
    listen: SocketAddr,

    /// Address for HTTP health (/healthz) and Prometheus metrics (/metrics).
    #[arg(long, env = "WEIR_HTTP_LISTEN", default_value = "0.0.0.0:9091")]
    http_listen: SocketAddr,

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
    let db = Database::open(&args.metadata)
        .await
        .with_context(|| format!("open metadata store {}", args.metadata))?;
    let instance = args.instance_id.clone().unwrap_or_else(|| {
        format!(
            "{}:{}",
            host_name().unwrap_or_else(|| "control-plane".into()),
            args.listen.port()
        )
    });
    let config = ControlPlaneConfig {
        cluster: args.cluster.clone(),
        instance,
        token: args.token.clone().filter(|t| !t.is_empty()),
        lease_ttl: Duration::from_secs(args.lease_ttl_secs),
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
            Command::ControlPlane(args) => run_control_plane(args).await,
        }
    })
}
