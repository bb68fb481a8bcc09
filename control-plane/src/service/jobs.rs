//! The `Jobs` service: compaction jobs and deletions for agents' jobs role.

use tonic::{Request, Response, Status};
use weir_control_plane_api::jobs::{Job, JobOutput};
use weir_metadata::{AgentId, JobId, ObjectId};

use super::ControlPlaneService;
use crate::lifecycle::{compaction, deletion};
use crate::proto::{self, ErrorCode};
use crate::watch::Advance;

fn agent_id(bytes: &[u8]) -> Result<AgentId, Status> {
    AgentId::from_slice(bytes).map_err(|e| Status::invalid_argument(format!("agent id: {e}")))
}

fn job_id(bytes: &[u8]) -> Result<JobId, Status> {
    JobId::from_slice(bytes).map_err(|e| Status::invalid_argument(format!("job id: {e}")))
}

#[tonic::async_trait]
impl proto::jobs_server::Jobs for ControlPlaneService {
    async fn claim_job(
        &self,
        request: Request<proto::ClaimJobRequest>,
    ) -> Result<Response<proto::ClaimJobResponse>, Status> {
        let agent = agent_id(&request.into_inner().agent_id)?;
        let config = &self.lifecycle.config.compaction;
        let job = compaction::claim(&self.store, config, agent).await?;
        if let Some(job) = &job {
            tracing::debug!(job = %job.id, attempt = job.attempt, %agent, inputs = job.inputs.len(), "compaction job claimed");
        }
        Ok(Response::new(proto::ClaimJobResponse {
            job: job.as_ref().map(Job::to_message),
        }))
    }

    async fn renew_job(
        &self,
        request: Request<proto::RenewJobRequest>,
    ) -> Result<Response<proto::RenewJobResponse>, Status> {
        let request = request.into_inner();
        let held = compaction::renew(
            &self.store,
            &self.lifecycle.config.compaction,
            job_id(&request.job_id)?,
            request.attempt,
            agent_id(&request.agent_id)?,
        )
        .await?;
        Ok(Response::new(proto::RenewJobResponse { lost: !held }))
    }

    async fn commit_job(
        &self,
        request: Request<proto::CommitJobRequest>,
    ) -> Result<Response<proto::CommitJobResponse>, Status> {
        let request = request.into_inner();
        let agent = agent_id(&request.agent_id)?;
        let outputs = request
            .outputs
            .into_iter()
            .map(JobOutput::from_message)
            .collect::<Result<Vec<_>, _>>()?;
        // The job's inputs as claimed: the swap checks each run against the index, so
        // only the ids matter here.
        let job =
            compaction::claimed(&self.store, job_id(&request.job_id)?, request.attempt).await?;
        let Some(job) = job else {
            self.lifecycle.metrics.job_ended("lost");
            return Ok(Response::new(proto::CommitJobResponse {
                error: ErrorCode::JobLost as i32,
                message: "the job no longer exists".into(),
                ..Default::default()
            }));
        };
        let max_age = std::time::Duration::from_millis(request.max_output_age_ms);
        let answer = match compaction::commit(&self.store, &job, agent, &outputs, max_age).await? {
            Ok(swapped) => {
                let committed = swapped.committed;
                self.lifecycle.metrics.job_ended("committed");
                self.lifecycle
                    .metrics
                    .dereferenced
                    .inc_by(swapped.dereferenced);
                self.lifecycle
                    .metrics
                    .rewritten_bytes
                    .inc_by(committed.bytes_swapped);
                self.lifecycle.publish(
                    swapped
                        .partitions
                        .into_iter()
                        .map(|(topic, partition, record)| Advance {
                            topic,
                            partition,
                            high_watermark: weir_metadata::Offset(record.high_watermark),
                            log_start_offset: weir_metadata::Offset(record.log_start_offset),
                            entries_replaced: true,
                        })
                        .collect(),
                );
                tracing::debug!(job = %job.id, swapped = committed.runs_swapped, skipped = committed.runs_skipped, bytes = committed.bytes_swapped, "compaction job committed");
                proto::CommitJobResponse {
                    error: ErrorCode::None as i32,
                    message: String::new(),
                    runs_swapped: committed.runs_swapped,
                    runs_skipped: committed.runs_skipped,
                    bytes_swapped: committed.bytes_swapped,
                }
            }
            Err(refused) => {
                let outcome = if refused.code == ErrorCode::JobLost {
                    "lost"
                } else {
                    "refused"
                };
                self.lifecycle.metrics.job_ended(outcome);
                tracing::info!(job = %job.id, error = %refused, "compaction job commit refused");
                proto::CommitJobResponse {
                    error: refused.code as i32,
                    message: refused.message,
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(answer))
    }

    async fn fail_job(
        &self,
        request: Request<proto::FailJobRequest>,
    ) -> Result<Response<proto::FailJobResponse>, Status> {
        let request = request.into_inner();
        let job = job_id(&request.job_id)?;
        tracing::warn!(%job, attempt = request.attempt, reason = %request.reason, "an agent gave a compaction job back");
        self.lifecycle.metrics.job_ended("failed");
        compaction::give_back(
            &self.store,
            job,
            request.attempt,
            agent_id(&request.agent_id)?,
        )
        .await?;
        Ok(Response::new(proto::FailJobResponse {}))
    }

    async fn claim_deletions(
        &self,
        request: Request<proto::ClaimDeletionsRequest>,
    ) -> Result<Response<proto::ClaimDeletionsResponse>, Status> {
        let limit = request.into_inner().limit as usize;
        let claim_ms = self.lifecycle.config.deletion_claim.as_millis() as i64;
        let objects = deletion::claim(&self.store, limit, claim_ms).await?;
        Ok(Response::new(proto::ClaimDeletionsResponse {
            objects: objects
                .into_iter()
                .map(|d| proto::ObjectToDelete {
                    object_id: d.object.to_bytes().to_vec(),
                    key: d.key,
                })
                .collect(),
        }))
    }

    async fn confirm_deletions(
        &self,
        request: Request<proto::ConfirmDeletionsRequest>,
    ) -> Result<Response<proto::ConfirmDeletionsResponse>, Status> {
        let objects = request
            .into_inner()
            .object_ids
            .iter()
            .map(|id| {
                ObjectId::from_slice(id)
                    .map_err(|e| Status::invalid_argument(format!("object id: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let forgotten = deletion::confirm(&self.store, &objects).await?;
        self.lifecycle.metrics.deleted.inc_by(forgotten);
        Ok(Response::new(proto::ConfirmDeletionsResponse { forgotten }))
    }
}
