//! The jobs role: the bucket work of the data lifecycle, which the control plane
//! decides but cannot do (it holds no bucket credentials): deleting dereferenced
//! objects and running compaction jobs (docs/lifecycle.md).
//!
//! One task, in the shape of the orphan sweep: every `interval`, and whenever
//! [`JobsHandle::run_now`] asks, a pass deletes what is due ([`deletion`]) and then
//! claims compaction jobs one after another until none is left. While a job runs
//! ([`compaction`]) its lease is renewed every third of the lease; when a renewal says
//! the lease is lost, or none has succeeded for a whole lease, the job is abandoned
//! uncommitted. A job that fails is given back with the reason (`FailJob`), so another
//! attempt may start at once, and the pass ends there: a job that fails at once is not
//! claimed again in a tight loop.
//!
//! A job holds the agent id it was claimed with to its end; the next claim takes the
//! current one, which the heartbeat changes when it registers the agent again.

mod calls;
pub mod compaction;
pub mod deletion;
mod error;
mod plan;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_control_plane_api::data::{ErrorCode, Refusal};
use weir_control_plane_api::jobs::{Job, JobCommitted};
use weir_metadata::AgentId;

pub use calls::JobCalls;
pub use compaction::{CompactionConfig, compact};
pub use deletion::{Deleted, DeletionReport, delete_objects};
pub use error::JobError;

use crate::bucket::Bucket;
use crate::error::{Error, Result};

/// How long giving a job back may hold up the task (shutdown included).
const GIVE_BACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Renewals are at least this far apart, whatever the lease.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Time between passes.
    pub interval: Duration,
    pub compaction: CompactionConfig,
    /// A commit references no output older than this: half the orphan sweep's grace
    /// period, so the sweep never takes an output a commit is about to reference.
    pub max_output_age: Duration,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobsReport {
    pub deletions: DeletionReport,
    /// Compaction jobs committed.
    pub committed: u64,
    /// Compaction jobs given back, failed.
    pub failed: u64,
    /// Compaction jobs abandoned because their lease was lost.
    pub lost: u64,
}

/// What a run of the jobs role was, for `weir_jobs_run_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Compaction,
    /// One claim of due deletions.
    Deletion,
}

/// How a run ended, for `weir_jobs_run_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    /// The job's lease was lost: another attempt has it.
    Lost,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: &'static str,
    outcome: &'static str,
}

fn labels(kind: JobKind, outcome: Outcome) -> RunLabels {
    RunLabels {
        kind: match kind {
            JobKind::Compaction => "compaction",
            JobKind::Deletion => "deletion",
        },
        outcome: match outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
        },
    }
}

/// The jobs role's Prometheus counters.
#[derive(Clone, Debug, Default)]
pub struct JobsMetrics {
    runs: Family<RunLabels, Counter>,
    bytes_written: Counter,
    objects_deleted: Counter,
}

impl JobsMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = JobsMetrics::default();
        registry.register(
            "weir_jobs_run",
            "Runs of the jobs role, by kind (compaction: one job; deletion: one claim of due deletions) and outcome (ok, failed, lost: the job's lease went to another attempt)",
            metrics.runs.clone(),
        );
        registry.register(
            "weir_compaction_bytes_written",
            "Bytes of objects uploaded by compaction jobs (committed or not)",
            metrics.bytes_written.clone(),
        );
        registry.register(
            "weir_objects_deleted",
            "Dereferenced objects deleted from the bucket after their grace period",
            metrics.objects_deleted.clone(),
        );
        for (kind, outcomes) in [
            (
                JobKind::Compaction,
                &[Outcome::Ok, Outcome::Failed, Outcome::Lost][..],
            ),
            (JobKind::Deletion, &[Outcome::Ok, Outcome::Failed][..]),
        ] {
            for &outcome in outcomes {
                let _ = metrics.runs.get_or_create(&labels(kind, outcome));
            }
        }
        metrics
    }

    /// Runs of `kind` that ended in `outcome` so far.
    pub fn runs(&self, kind: JobKind, outcome: Outcome) -> u64 {
        self.runs.get_or_create(&labels(kind, outcome)).get()
    }

    fn run(&self, kind: JobKind, outcome: Outcome) {
        self.runs.get_or_create(&labels(kind, outcome)).inc();
    }
}

/// A cloneable front to the jobs task.
#[derive(Clone, Debug)]
pub struct JobsHandle {
    requests: mpsc::Sender<oneshot::Sender<JobsReport>>,
}

impl JobsHandle {
    /// Runs a pass now and returns what it did.
    pub async fn run_now(&self) -> Result<JobsReport> {
        let (reply, report) = oneshot::channel();
        self.requests
            .send(reply)
            .await
            .map_err(|_| Error::ShuttingDown)?;
        report.await.map_err(|_| Error::ShuttingDown)
    }
}

/// Starts the jobs task: a pass every `config.interval` (the first one interval after
/// start) and whenever [`JobsHandle::run_now`] asks, until `cancel`. `agent` is this
/// agent's current id.
pub fn spawn<C: JobCalls>(
    config: JobsConfig,
    bucket: Bucket,
    calls: C,
    agent: watch::Receiver<AgentId>,
    metrics: JobsMetrics,
    cancel: CancellationToken,
) -> (JobsHandle, tokio::task::JoinHandle<()>) {
    let (requests, mut inbox) = mpsc::channel::<oneshot::Sender<JobsReport>>(4);
    let runner = Runner {
        config,
        bucket,
        calls,
        agent,
        metrics,
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(async move {
        let start = Instant::now() + runner.config.interval;
        let mut ticker = tokio::time::interval_at(start, runner.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Without handles left the task still runs on its ticker.
        let mut handles_left = true;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                request = inbox.recv(), if handles_left => {
                    match request {
                        Some(reply) => {
                            let _ = reply.send(runner.pass().await);
                        }
                        None => handles_left = false,
                    }
                }
                _ = ticker.tick() => {
                    runner.pass().await;
                }
            }
        }
    });
    (JobsHandle { requests }, task)
}

struct Runner<C> {
    config: JobsConfig,
    bucket: Bucket,
    calls: C,
    agent: watch::Receiver<AgentId>,
    metrics: JobsMetrics,
    cancel: CancellationToken,
}

/// How a job's run ended, before its outcome is settled.
enum Ended {
    /// Its outputs were uploaded (how many) and the commit answered.
    Committed(usize, std::result::Result<JobCommitted, Refusal>),
    Failed(JobError),
    Lost(String),
    ShuttingDown,
}

impl<C: JobCalls> Runner<C> {
    async fn pass(&self) -> JobsReport {
        // Deletions cut short by shutdown are handed out again once their claim runs out.
        let deletions = tokio::select! {
            () = self.cancel.cancelled() => DeletionReport::default(),
            report = deletion::pass(&self.calls, &self.bucket, &self.metrics) => report,
        };
        let mut report = JobsReport {
            deletions,
            ..JobsReport::default()
        };
        while !self.cancel.is_cancelled() {
            let agent = *self.agent.borrow();
            let asked = Instant::now();
            let job = match self.calls.claim_job(agent).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(status) => {
                    log_control_plane_error("claim a compaction job", &status);
                    break;
                }
            };
            let outcome = self.run_job(&job, agent, asked).await;
            self.metrics.run(JobKind::Compaction, outcome);
            match outcome {
                Outcome::Ok => report.committed += 1,
                Outcome::Lost => report.lost += 1,
                Outcome::Failed => {
                    report.failed += 1;
                    break;
                }
            }
        }
        report
    }

    /// Runs a claimed job to its commit, renewing its lease meanwhile; gives it back
    /// when it fails. `asked` is when the claim was sent: the lease started after it.
    async fn run_job(&self, job: &Job, agent: AgentId, asked: Instant) -> Outcome {
        let started = Instant::now();
        let input_bytes: u64 = job
            .inputs
            .iter()
            .flat_map(|i| &i.entries)
            .map(|e| e.entry.length)
            .sum();
        let work = async {
            let outputs = compact(
                job,
                &self.bucket,
                &self.config.compaction,
                &self.metrics.bytes_written,
            )
            .await?;
            let answer = self
                .calls
                .commit_job(job, agent, &outputs, self.config.max_output_age)
                .await?;
            Ok::<_, JobError>((outputs.len(), answer))
        };
        let ended = tokio::select! {
            biased;
            () = self.cancel.cancelled() => Ended::ShuttingDown,
            why = keep_lease(&self.calls, job, agent, asked) => Ended::Lost(why),
            done = work => match done {
                Ok((outputs, answer)) => Ended::Committed(outputs, answer),
                Err(e) => Ended::Failed(e),
            },
        };
        match ended {
            Ended::Committed(outputs, Ok(committed)) => {
                tracing::info!(
                    job = %job.id,
                    attempt = job.attempt,
                    level = job.output_level,
                    inputs = job.inputs.len(),
                    input_bytes,
                    outputs,
                    runs_swapped = committed.runs_swapped,
                    runs_skipped = committed.runs_skipped,
                    bytes_swapped = committed.bytes_swapped,
                    ms = started.elapsed().as_millis() as u64,
                    "compaction job committed"
                );
                Outcome::Ok
            }
            Ended::Committed(_, Err(refusal)) if refusal.code == ErrorCode::JobLost => {
                tracing::warn!(job = %job.id, attempt = job.attempt, message = %refusal.message, "compaction job lost its lease before its commit finished");
                Outcome::Lost
            }
            Ended::Committed(_, Err(refusal)) => {
                let reason = format!("commit refused: {:?}: {}", refusal.code, refusal.message);
                tracing::warn!(job = %job.id, attempt = job.attempt, %reason, "compaction job given back");
                self.give_back(job, agent, &reason).await;
                Outcome::Failed
            }
            Ended::Failed(e) => {
                tracing::warn!(job = %job.id, attempt = job.attempt, error = %e, kind = ?e.kind(), "compaction job given back");
                self.give_back(job, agent, &e.to_string()).await;
                Outcome::Failed
            }
            Ended::Lost(why) => {
                tracing::warn!(job = %job.id, attempt = job.attempt, %why, "compaction job abandoned uncommitted");
                Outcome::Lost
            }
            Ended::ShuttingDown => {
                self.give_back(job, agent, "the agent is shutting down")
                    .await;
                Outcome::Failed
            }
        }
    }

    /// Gives `job` back (`FailJob`) so that another attempt may start at once; if that
    /// fails, its lease runs out instead.
    async fn give_back(&self, job: &Job, agent: AgentId, reason: &str) {
        let call = self.calls.fail_job(job, agent, reason);
        match tokio::time::timeout(GIVE_BACK_TIMEOUT, call).await {
            Ok(Ok(())) => {}
            Ok(Err(status)) => {
                log_control_plane_error("give a compaction job back", &status);
            }
            Err(_) => {
                tracing::warn!(job = %job.id, "giving a compaction job back timed out; its lease will run out")
            }
        }
    }
}

/// Renews `job`'s lease every third of it, and returns why once it is lost: the
/// control plane says so, or no renewal has succeeded for a whole lease. `asked` is
/// when the claim was sent.
async fn keep_lease<C: JobCalls>(calls: &C, job: &Job, agent: AgentId, asked: Instant) -> String {
    let every = (job.lease / 3).max(MIN_RENEWAL_INTERVAL);
    let mut held_until = asked + job.lease;
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        match tokio::time::timeout(every, calls.renew_job(job, agent)).await {
            Ok(Ok(true)) => held_until = sent + job.lease,
            Ok(Ok(false)) => return "the control plane says another attempt holds it".into(),
            Ok(Err(status)) if Instant::now() >= held_until => {
                return format!("no renewal succeeded within its lease; the last: {status}");
            }
            Err(_) if Instant::now() >= held_until => {
                return "no renewal succeeded within its lease; the last timed out".into();
            }
            Ok(Err(status)) => {
                tracing::warn!(job = %job.id, error = %status, "renew a compaction job's lease; retrying");
            }
            Err(_) => {
                tracing::warn!(job = %job.id, "renewing a compaction job's lease timed out; retrying");
            }
        }
    }
}

/// Logs a failed control-plane call of the jobs role. A control plane that does not
/// serve the jobs calls (an older one) answers UNIMPLEMENTED every pass: that is no
/// warning.
fn log_control_plane_error(what: &str, status: &tonic::Status) {
    if status.code() == tonic::Code::Unimplemented {
        tracing::debug!(error = %status, "{what}: the control plane does not serve the jobs role");
    } else {
        tracing::warn!(error = %status, "{what}");
    }
}
