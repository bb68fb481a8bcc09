//! `weir-chaos`: see the library's documentation.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir_chaos::{checker, history};

#[derive(Debug, Parser)]
#[command(
    name = "weir-chaos",
    about = "Weir under faults: run a fault schedule, or check a recorded history"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a recorded history (JSON lines) and print a verdict per anomaly class.
    Check {
        /// The history file.
        history: PathBuf,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
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
