//! The calls of agents' jobs role, typed: compaction jobs (claim, renew, commit, give
//! back) and the deletion of dereferenced objects (claim, confirm). See
//! docs/lifecycle.md.

use std::time::Duration;

use tonic::Status;
use weir_metadata::{AgentId, JobId, ObjectId, Offset, Partition, TopicId};

use crate::client::ControlPlaneClient;
use crate::data::{IndexEntry, Refusal};
use crate::proto;

/// A compaction job leased to an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    /// Every claim raises it; a commit must name the attempt it claimed.
    pub attempt: u32,
    pub output_level: u32,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
    pub inputs: Vec<JobInput>,
}

/// One object a job merges, with every index entry still naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInput {
    pub object: ObjectId,
    /// Relative to the bucket prefix.
    pub key: String,
    pub size: u64,
    /// In (topic, partition, offset) order.
    pub entries: Vec<InputEntry>,
}

/// An index entry naming a job's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputEntry {
    pub topic: TopicId,
    pub partition: Partition,
    pub entry: IndexEntry,
}

/// An object a job wrote, and the index entries it replaces the inputs' with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutput {
    pub object: ObjectId,
    /// Relative to the bucket prefix.
    pub key: String,
    pub size: u64,
    pub batch_count: u32,
    pub runs: Vec<OutputRun>,
}

/// Consecutive offsets of one partition, copied into an output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRun {
    pub topic: TopicId,
    pub partition: Partition,
    /// The input entries it replaces, by last offset and object, in offset order.
    pub replaces: Vec<(Offset, ObjectId)>,
    /// Its entries in the output, in offset order, tiling the same offsets.
    pub entries: Vec<OutputEntry>,
}

/// An index entry of an output (the object is the output's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputEntry {
    pub position: u64,
    pub length: u64,
    pub base_offset: Offset,
    pub record_count: i64,
    pub max_timestamp: i64,
    pub batch_count: u32,
}

/// What a job's commit swapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCommitted {
    pub runs_swapped: u64,
    /// Runs whose entries changed since the claim (retention, DeleteRecords, a deleted
    /// topic): left as they were.
    pub runs_skipped: u64,
    pub bytes_swapped: u64,
}

/// An object whose deletion is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectToDelete {
    pub object: ObjectId,
    /// Relative to the bucket prefix.
    pub key: String,
}

fn bad(what: &str, e: impl std::fmt::Display) -> Status {
    Status::data_loss(format!("{what}: {e}"))
}

impl IndexEntry {
    pub(crate) fn to_message(&self) -> proto::IndexEntry {
        proto::IndexEntry {
            object_id: self.object.to_bytes().to_vec(),
            position: self.position,
            length: self.length,
            base_offset: self.base_offset.0,
            record_count: self.record_count,
            max_timestamp: self.max_timestamp,
            batch_count: self.batch_count,
            object_size: self.object_size,
        }
    }
}

impl Job {
    pub fn to_message(&self) -> proto::Job {
        proto::Job {
            job_id: self.id.to_bytes().to_vec(),
            attempt: self.attempt,
            output_level: self.output_level,
            lease_ms: u32::try_from(self.lease.as_millis()).unwrap_or(u32::MAX),
            inputs: self
                .inputs
                .iter()
                .map(|input| proto::JobInput {
                    object_id: input.object.to_bytes().to_vec(),
                    key: input.key.clone(),
                    size: input.size,
                    entries: input
                        .entries
                        .iter()
                        .map(|e| proto::InputEntry {
                            topic_id: e.topic.as_bytes().to_vec(),
                            partition: e.partition.0,
                            entry: Some(e.entry.to_message()),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn from_message(job: proto::Job) -> Result<Job, Status> {
        let inputs = job
            .inputs
            .into_iter()
            .map(|input| {
                let entries = input
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(InputEntry {
                            topic: TopicId::from_slice(&e.topic_id)
                                .map_err(|e| bad("input entry topic", e))?,
                            partition: Partition(e.partition),
                            entry: IndexEntry::from_message(
                                e.entry.ok_or_else(|| bad("input entry", "no entry"))?,
                            )?,
                        })
                    })
                    .collect::<Result<_, Status>>()?;
                Ok(JobInput {
                    object: ObjectId::from_slice(&input.object_id)
                        .map_err(|e| bad("job input", e))?,
                    key: input.key,
                    size: input.size,
                    entries,
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Job {
            id: JobId::from_slice(&job.job_id).map_err(|e| bad("job id", e))?,
            attempt: job.attempt,
            output_level: job.output_level,
            lease: Duration::from_millis(u64::from(job.lease_ms)),
            inputs,
        })
    }
}

impl JobOutput {
    pub fn to_message(&self) -> proto::JobOutput {
        proto::JobOutput {
            object_id: self.object.to_bytes().to_vec(),
            key: self.key.clone(),
            size: self.size,
            batch_count: self.batch_count,
            runs: self
                .runs
                .iter()
                .map(|run| proto::OutputRun {
                    topic_id: run.topic.as_bytes().to_vec(),
                    partition: run.partition.0,
                    replaces: run
                        .replaces
                        .iter()
                        .map(|(last, object)| proto::ReplacedEntry {
                            last_offset: last.0,
                            object_id: object.to_bytes().to_vec(),
                        })
                        .collect(),
                    entries: run
                        .entries
                        .iter()
                        .map(|e| proto::OutputEntry {
                            position: e.position,
                            length: e.length,
                            base_offset: e.base_offset.0,
                            record_count: e.record_count,
                            max_timestamp: e.max_timestamp,
                            batch_count: e.batch_count,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn from_message(output: proto::JobOutput) -> Result<JobOutput, Status> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            Status::invalid_argument(format!("{what}: {e}"))
        };
        let runs = output
            .runs
            .into_iter()
            .map(|run| {
                Ok(OutputRun {
                    topic: TopicId::from_slice(&run.topic_id)
                        .map_err(|e| invalid("run topic id", &e))?,
                    partition: Partition(run.partition),
                    replaces: run
                        .replaces
                        .into_iter()
                        .map(|r| {
                            Ok((
                                Offset(r.last_offset),
                                ObjectId::from_slice(&r.object_id)
                                    .map_err(|e| invalid("replaced object id", &e))?,
                            ))
                        })
                        .collect::<Result<_, Status>>()?,
                    entries: run
                        .entries
                        .into_iter()
                        .map(|e| OutputEntry {
                            position: e.position,
                            length: e.length,
                            base_offset: Offset(e.base_offset),
                            record_count: e.record_count,
                            max_timestamp: e.max_timestamp,
                            batch_count: e.batch_count,
                        })
                        .collect(),
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(JobOutput {
            object: ObjectId::from_slice(&output.object_id)
                .map_err(|e| invalid("output object id", &e))?,
            key: output.key,
            size: output.size,
            batch_count: output.batch_count,
            runs,
        })
    }
}

impl ControlPlaneClient {
    /// The next compaction job for this agent, if there is one.
    pub async fn claim_job(&self, agent: AgentId) -> Result<Option<Job>, Status> {
        let job = self
            .jobs
            .clone()
            .claim_job(proto::ClaimJobRequest {
                agent_id: agent.to_bytes().to_vec(),
            })
            .await?
            .into_inner()
            .job;
        job.map(Job::from_message).transpose()
    }

    /// Extends a job's lease; `false` when this agent no longer holds it.
    pub async fn renew_job(&self, job: &Job, agent: AgentId) -> Result<bool, Status> {
        let lost = self
            .jobs
            .clone()
            .renew_job(proto::RenewJobRequest {
                job_id: job.id.to_bytes().to_vec(),
                attempt: job.attempt,
                agent_id: agent.to_bytes().to_vec(),
            })
            .await?
            .into_inner()
            .lost;
        Ok(!lost)
    }

    /// Swaps a job's inputs for its outputs and ends it; `Err(Refusal)` with `JOB_LOST`
    /// when the lease was lost (what was swapped before stays swapped).
    pub async fn commit_job(
        &self,
        job: &Job,
        agent: AgentId,
        outputs: &[JobOutput],
        max_output_age: Duration,
    ) -> Result<Result<JobCommitted, Refusal>, Status> {
        let answer = self
            .jobs
            .clone()
            .commit_job(proto::CommitJobRequest {
                job_id: job.id.to_bytes().to_vec(),
                attempt: job.attempt,
                agent_id: agent.to_bytes().to_vec(),
                outputs: outputs.iter().map(JobOutput::to_message).collect(),
                max_output_age_ms: u64::try_from(max_output_age.as_millis()).unwrap_or(u64::MAX),
            })
            .await?
            .into_inner();
        if let Some(refusal) = Refusal::of(answer.error, answer.message) {
            return Ok(Err(refusal));
        }
        Ok(Ok(JobCommitted {
            runs_swapped: answer.runs_swapped,
            runs_skipped: answer.runs_skipped,
            bytes_swapped: answer.bytes_swapped,
        }))
    }

    /// Gives a job back so another agent may take it at once.
    pub async fn fail_job(&self, job: &Job, agent: AgentId, reason: &str) -> Result<(), Status> {
        self.jobs
            .clone()
            .fail_job(proto::FailJobRequest {
                job_id: job.id.to_bytes().to_vec(),
                attempt: job.attempt,
                agent_id: agent.to_bytes().to_vec(),
                reason: reason.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Up to `limit` objects whose deletion is due, claimed for this caller.
    pub async fn claim_deletions(&self, limit: u32) -> Result<Vec<ObjectToDelete>, Status> {
        self.jobs
            .clone()
            .claim_deletions(proto::ClaimDeletionsRequest { limit })
            .await?
            .into_inner()
            .objects
            .into_iter()
            .map(|o| {
                Ok(ObjectToDelete {
                    object: ObjectId::from_slice(&o.object_id)
                        .map_err(|e| bad("object to delete", e))?,
                    key: o.key,
                })
            })
            .collect()
    }

    /// These objects are gone from the bucket; returns how many the control plane forgot.
    pub async fn confirm_deletions(&self, objects: &[ObjectId]) -> Result<u64, Status> {
        Ok(self
            .jobs
            .clone()
            .confirm_deletions(proto::ConfirmDeletionsRequest {
                object_ids: objects.iter().map(|o| o.to_bytes().to_vec()).collect(),
            })
            .await?
            .into_inner()
            .forgotten)
    }
}
