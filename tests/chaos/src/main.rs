//! `weir-chaos`: see the library's documentation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir_chaos::nemesis::Family;
use weir_chaos::run::{self, RunConfig};
use weir_chaos::{checker, history};

#[derive(Debug, Parser)]
#[command(
    name = "weir-chaos",
    about = "Weir under faults: run a fault schedule against a cluster, or check a recorded history"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a cluster (control plane, three agents, an S3 server), run Kafka workers
    /// under a seeded fault schedule, heal, catch up, and check the history. Needs the
    /// `weir` and `weir-bench` binaries beside this one (cargo build --bins).
    Run {
        /// Seconds of faults (the whole run takes about a minute more).
        #[arg(long, default_value_t = 180)]
        duration: u64,
        /// Seeds the schedule and the workers' choices; printed on failure.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Fault families, comma-separated: kill, pause, partition, store, lease.
        #[arg(
            long,
            default_value = "kill,pause,partition,store,lease",
            value_delimiter = ','
        )]
        faults: Vec<Family>,
        /// Where the history, the logs and the report go [default: target/chaos/seed-N].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 3)]
        producers: usize,
        /// Values each producer sends per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Also run a consumer group of two subscribe members.
        #[arg(long)]
        subscribe: bool,
        /// Producers' message.timeout.ms. Below the longest fault (12 s), librdkafka
        /// times records out and may resend committed ones under a new epoch.
        #[arg(long, default_value_t = 60_000)]
        message_timeout_ms: u64,
        /// Producers' request.timeout.ms (librdkafka's default, 30 s, is above the
        /// agents' 5 s produce timeout; below it a request ends before its commit does).
        #[arg(long, default_value_t = 30_000)]
        request_timeout_ms: u64,
        /// The control plane's --metadata-faults: FoundationDB's failure modes (retriable
        /// conflicts, commits of unknown outcome) injected at these rates; "" for none.
        #[arg(long, default_value = "conflict_rate=0.02,unknown_result_rate=0.01")]
        metadata_faults: String,
        /// The topic's retention.ms while the workers run; -1 for none. Turned off once
        /// they stop, so the lifecycle can settle.
        #[arg(long, default_value_t = 30_000, allow_negative_numbers = true)]
        retention_ms: i64,
        /// The control plane's --object-delete-grace-ms. The default is the grace rule's
        /// bound (docs/lifecycle.md); below it a fetch in flight may find its object
        /// deleted, which `live-fetch-failures` cannot tell from lost data.
        #[arg(long, default_value_t = weir_chaos::cluster::DELETE_GRACE_MS)]
        object_delete_grace_ms: u64,
    },
    /// Check a recorded history (JSON lines) and print a verdict per anomaly class.
    Check {
        /// The history file.
        history: PathBuf,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Run {
            duration,
            seed,
            faults,
            out,
            partitions,
            producers,
            rate,
            subscribe,
            message_timeout_ms,
            request_timeout_ms,
            metadata_faults,
            retention_ms,
            object_delete_grace_ms,
        } => {
            let config = RunConfig {
                seed,
                duration: Duration::from_secs(duration),
                families: faults,
                out: out.unwrap_or_else(|| PathBuf::from(format!("target/chaos/seed-{seed}"))),
                agents: 3,
                partitions,
                producers,
                rate,
                subscribe,
                recovery: Duration::from_secs(15),
                message_timeout: Duration::from_millis(message_timeout_ms),
                request_timeout: Duration::from_millis(request_timeout_ms),
                metadata_faults,
                retention: u64::try_from(retention_ms).ok().map(Duration::from_millis),
                delete_grace: Duration::from_millis(object_delete_grace_ms),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let verdict = runtime.block_on(run::run(&config))?;
            print!("{}", verdict.report);
            println!(
                "librdkafka epoch bumps: {} (see producer-N.rdkafka.log)",
                verdict.epoch_bumps
            );
            println!(
                "{}; settled {} s after the catch-up",
                verdict.activity,
                verdict.settled_in.as_secs()
            );
            for problem in &verdict.problems {
                println!("problem: {problem}");
            }
            println!(
                "{} faults ({} s of faults) in {duration} s, seed {seed}; history, logs and report in {}",
                verdict.faults,
                verdict.faulted.as_secs(),
                config.out.display()
            );
            std::fs::write(config.out.join("report.txt"), verdict.report.to_string())?;
            if verdict.is_clean() {
                Ok(ExitCode::SUCCESS)
            } else {
                println!("FAILED: rerun with `weir-chaos run --seed {seed} --duration {duration}`");
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Check { history } => {
            let events = history::read(&history)?;
            let report = checker::check(&events);
            print!("{report}");
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
