//! The control-plane calls the jobs role makes, as a trait: the control-plane client
//! answers them in an agent, a scripted stand-in in tests.

use std::future::Future;
use std::time::Duration;

use tonic::Status;
use weir_control_plane_api::ControlPlaneClient;
use weir_control_plane_api::data::Refusal;
use weir_control_plane_api::jobs::{Job, JobCommitted, JobOutput, ObjectToDelete};
use weir_metadata::{AgentId, ObjectId};

/// What the jobs role asks of the control plane; see [`ControlPlaneClient`]'s methods
/// of the same names.
pub trait JobCalls: Clone + Send + Sync + 'static {
    fn claim_job(&self, agent: AgentId)
    -> impl Future<Output = Result<Option<Job>, Status>> + Send;

    fn renew_job(
        &self,
        job: &Job,
        agent: AgentId,
    ) -> impl Future<Output = Result<bool, Status>> + Send;

    fn commit_job(
        &self,
        job: &Job,
        agent: AgentId,
        outputs: &[JobOutput],
        max_output_age: Duration,
    ) -> impl Future<Output = Result<Result<JobCommitted, Refusal>, Status>> + Send;

    fn fail_job(
        &self,
        job: &Job,
        agent: AgentId,
        reason: &str,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    fn claim_deletions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ObjectToDelete>, Status>> + Send;

    fn confirm_deletions(
        &self,
        objects: &[ObjectId],
    ) -> impl Future<Output = Result<u64, Status>> + Send;
}

impl JobCalls for ControlPlaneClient {
    fn claim_job(
        &self,
        agent: AgentId,
    ) -> impl Future<Output = Result<Option<Job>, Status>> + Send {
        ControlPlaneClient::claim_job(self, agent)
    }

    fn renew_job(
        &self,
        job: &Job,
        agent: AgentId,
    ) -> impl Future<Output = Result<bool, Status>> + Send {
        ControlPlaneClient::renew_job(self, job, agent)
    }

    fn commit_job(
        &self,
        job: &Job,
        agent: AgentId,
        outputs: &[JobOutput],
        max_output_age: Duration,
    ) -> impl Future<Output = Result<Result<JobCommitted, Refusal>, Status>> + Send {
        ControlPlaneClient::commit_job(self, job, agent, outputs, max_output_age)
    }

    fn fail_job(
        &self,
        job: &Job,
        agent: AgentId,
        reason: &str,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        ControlPlaneClient::fail_job(self, job, agent, reason)
    }

    fn claim_deletions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ObjectToDelete>, Status>> + Send {
        ControlPlaneClient::claim_deletions(self, limit)
    }

    fn confirm_deletions(
        &self,
        objects: &[ObjectId],
    ) -> impl Future<Output = Result<u64, Status>> + Send {
        ControlPlaneClient::confirm_deletions(self, objects)
    }
}
