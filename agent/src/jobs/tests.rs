//! The jobs task against a scripted control plane and an in-memory bucket: what it
//! commits, gives back and abandons, and what it deletes and confirms.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, PutPayload};
use parking_lot::Mutex;
use tonic::Status;
use weir_cache::{FaultConfig, FaultyStore};
use weir_control_plane_api::data::Refusal;
use weir_control_plane_api::jobs::{JobCommitted, JobOutput, ObjectToDelete};
use weir_metadata::{JobId, ObjectId};

use super::*;
use crate::jobs::testing::{Inputs, bucket, listed, three_inputs, topic};

/// What the scripted control plane answers, and what it was asked.
#[derive(Debug, Default)]
struct Script {
    jobs: VecDeque<Job>,
    /// Answers to renewals, in turn; when none is left, `true`.
    renewals: VecDeque<Result<bool, Status>>,
    /// How long a commit takes.
    commit_takes: Duration,
    /// Refuse commits with this code.
    refuse_commits: Option<ErrorCode>,
    deletions: VecDeque<Vec<ObjectToDelete>>,

    claims: Vec<AgentId>,
    renewed: usize,
    commits: Vec<(JobId, AgentId, Vec<JobOutput>, Duration)>,
    given_back: Vec<(JobId, String)>,
    deletion_claims: usize,
    confirmed: Vec<ObjectId>,
}

#[derive(Clone, Debug, Default)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn with(script: Script) -> Self {
        Scripted(Arc::new(Mutex::new(script)))
    }
}

impl JobCalls for Scripted {
    fn claim_job(
        &self,
        agent: AgentId,
    ) -> impl Future<Output = Result<Option<Job>, Status>> + Send {
        let mut script = self.0.lock();
        script.claims.push(agent);
        let job = script.jobs.pop_front();
        async move { Ok(job) }
    }

    fn renew_job(
        &self,
        _job: &Job,
        _agent: AgentId,
    ) -> impl Future<Output = Result<bool, Status>> + Send {
        let mut script = self.0.lock();
        script.renewed += 1;
        let answer = script.renewals.pop_front().unwrap_or(Ok(true));
        async move { answer }
    }

    fn commit_job(
        &self,
        job: &Job,
        agent: AgentId,
        outputs: &[JobOutput],
        max_output_age: Duration,
    ) -> impl Future<Output = Result<Result<JobCommitted, Refusal>, Status>> + Send {
        let (script, id, outputs) = (self.0.clone(), job.id, outputs.to_vec());
        async move {
            let takes = script.lock().commit_takes;
            tokio::time::sleep(takes).await;
            let mut script = script.lock();
            if let Some(code) = script.refuse_commits {
                return Ok(Err(Refusal {
                    code,
                    message: "refused by the script".into(),
                }));
            }
            let runs = outputs.iter().map(|o| o.runs.len() as u64).sum();
            script.commits.push((id, agent, outputs, max_output_age));
            Ok(Ok(JobCommitted {
                runs_swapped: runs,
                ..JobCommitted::default()
            }))
        }
    }

    fn fail_job(
        &self,
        job: &Job,
        _agent: AgentId,
        reason: &str,
    ) -> impl Future<Output = Result<(), Status>> + Send {
        self.0.lock().given_back.push((job.id, reason.to_string()));
        async { Ok(()) }
    }

    fn claim_deletions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ObjectToDelete>, Status>> + Send {
        let mut script = self.0.lock();
        script.deletion_claims += 1;
        let claimed = script.deletions.pop_front().unwrap_or_default();
        assert!(claimed.len() <= limit as usize);
        async move { Ok(claimed) }
    }

    fn confirm_deletions(
        &self,
        objects: &[ObjectId],
    ) -> impl Future<Output = Result<u64, Status>> + Send {
        self.0.lock().confirmed.extend_from_slice(objects);
        let forgotten = objects.len() as u64;
        async move { Ok(forgotten) }
    }
}

const MAX_OUTPUT_AGE: Duration = Duration::from_secs(1800);

struct Running {
    handle: JobsHandle,
    metrics: JobsMetrics,
    agent: watch::Sender<AgentId>,
    _cancel: tokio_util::sync::DropGuard,
}

fn start(bucket: &Bucket, script: &Scripted) -> Running {
    let cancel = CancellationToken::new();
    let metrics = JobsMetrics::default();
    let (agent, agent_ids) = watch::channel(AgentId::new());
    let (handle, _task) = spawn(
        JobsConfig {
            // Passes only when asked.
            interval: Duration::from_secs(3600),
            compaction: CompactionConfig::default(),
            max_output_age: MAX_OUTPUT_AGE,
        },
        bucket.clone(),
        script.clone(),
        agent_ids,
        metrics.clone(),
        cancel.clone(),
    );
    Running {
        handle,
        metrics,
        agent,
        _cancel: cancel.drop_guard(),
    }
}

async fn two_jobs(bucket: &Bucket) -> (Job, Job) {
    let first = three_inputs(bucket.clone()).await.job(1);
    let mut inputs = Inputs::new(bucket.clone());
    inputs.add(&[listed(topic(9), 0, 0, &[2, 2])]).await;
    (first, inputs.job(2))
}

#[tokio::test(start_paused = true)]
async fn jobs_are_claimed_one_after_another_and_committed() {
    let bucket = bucket();
    let (first, second) = two_jobs(&bucket).await;
    let script = Scripted::with(Script {
        jobs: [first.clone(), second.clone()].into(),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let agent = AgentId::new();
    running.agent.send_replace(agent);

    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(
        report,
        JobsReport {
            committed: 2,
            ..JobsReport::default()
        }
    );
    let commits = {
        let script = script.0.lock();
        assert_eq!(script.claims, [agent; 3], "claimed until none was left");
        assert!(script.given_back.is_empty());
        script.commits.clone()
    };
    let committed: Vec<JobId> = commits.iter().map(|c| c.0).collect();
    assert_eq!(committed, [first.id, second.id]);
    for (_, by, outputs, max_age) in &commits {
        assert_eq!((*by, *max_age), (agent, MAX_OUTPUT_AGE));
        for output in outputs {
            let meta = bucket.store.head(&bucket.path(output.object)).await;
            assert_eq!(meta.expect("the output is uploaded").size, output.size);
        }
    }
    assert_eq!(running.metrics.runs(JobKind::Compaction, Outcome::Ok), 2);
    let written: u64 = commits.iter().flat_map(|c| &c.2).map(|o| o.size).sum();
    assert_eq!(running.metrics.bytes_written.get(), written);
}

#[tokio::test(start_paused = true)]
async fn a_lease_the_control_plane_says_is_lost_abandons_the_job_uncommitted() {
    let bucket = bucket();
    let (mut job, _) = two_jobs(&bucket).await;
    job.lease = Duration::from_secs(30);
    let script = Scripted::with(Script {
        jobs: [job].into(),
        renewals: [Ok(true), Ok(false)].into(),
        commit_takes: Duration::from_secs(60),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let started = Instant::now();
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.lost, 1, "{report:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(20),
        "renewed every 10 s"
    );
    let script = script.0.lock();
    assert_eq!(script.renewed, 2);
    assert!(script.commits.is_empty(), "not committed");
    assert!(script.given_back.is_empty(), "not ours to give back");
    assert_eq!(script.claims.len(), 2, "the next job is claimed at once");
    assert_eq!(running.metrics.runs(JobKind::Compaction, Outcome::Lost), 1);
}

#[tokio::test(start_paused = true)]
async fn renewals_failing_for_a_whole_lease_abandon_the_job() {
    let bucket = bucket();
    let (mut job, _) = two_jobs(&bucket).await;
    job.lease = Duration::from_secs(30);
    let unavailable = || Err(Status::unavailable("control plane down"));
    let script = Scripted::with(Script {
        jobs: [job].into(),
        renewals: [unavailable(), unavailable(), unavailable(), unavailable()].into(),
        commit_takes: Duration::from_secs(120),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let started = Instant::now();
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.lost, 1, "{report:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(30),
        "held for its lease"
    );
    assert!(script.0.lock().commits.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_is_given_back_with_why_and_not_claimed_again_in_the_pass() {
    let bucket = bucket();
    let inputs = three_inputs(bucket.clone()).await;
    let missing = inputs.inputs[0].object;
    bucket
        .store
        .delete(&bucket.path(missing))
        .await
        .expect("delete an input");
    let job = inputs.job(1);
    let script = Scripted::with(Script {
        // A control plane hands a given-back job out again.
        jobs: [job.clone(), job.clone()].into(),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.failed, 1, "{report:?}");
    let script = script.0.lock();
    assert_eq!(script.claims.len(), 1);
    assert_eq!(script.given_back.len(), 1);
    let (id, reason) = &script.given_back[0];
    assert_eq!(*id, job.id);
    assert!(reason.contains(&missing.to_string()), "{reason}");
    assert!(script.commits.is_empty());
    assert_eq!(
        running.metrics.runs(JobKind::Compaction, Outcome::Failed),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_commit_refused_as_lost_is_lost_and_others_are_given_back() {
    let bucket = bucket();
    let (first, _) = two_jobs(&bucket).await;
    let script = Scripted::with(Script {
        jobs: [first.clone()].into(),
        refuse_commits: Some(ErrorCode::JobLost),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.lost, 1, "{report:?}");
    assert!(script.0.lock().given_back.is_empty());

    {
        let mut script = script.0.lock();
        script.jobs.push_back(first.clone());
        script.refuse_commits = Some(ErrorCode::InvalidRequest);
    }
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.failed, 1, "{report:?}");
    let script = script.0.lock();
    assert_eq!(script.given_back.len(), 1);
    assert!(
        script.given_back[0].1.contains("refused by the script"),
        "{:?}",
        script.given_back
    );
}

async fn put(bucket: &Bucket, id: ObjectId) {
    bucket
        .store
        .put(&bucket.path(id), PutPayload::from_static(b"an object"))
        .await
        .expect("put");
}

fn to_delete(id: ObjectId) -> ObjectToDelete {
    ObjectToDelete {
        object: id,
        key: Bucket::relative_key(id),
    }
}

async fn keys(bucket: &Bucket) -> Vec<ObjectId> {
    let listed: Vec<_> = bucket
        .store
        .list(Some(&bucket.prefix))
        .try_collect()
        .await
        .expect("list");
    listed
        .iter()
        .filter_map(|m| crate::bucket::object_id(&m.location))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn due_deletions_are_deleted_and_confirmed_a_missing_key_too() {
    let bucket = bucket();
    let (kept, a, b, never_there) = (
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
        ObjectId::new(),
    );
    for id in [kept, a, b] {
        put(&bucket, id).await;
    }
    let script = Scripted::with(Script {
        deletions: [vec![to_delete(a), to_delete(never_there), to_delete(b)]].into(),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(report.deletions.confirmed, 3, "{report:?}");
    assert_eq!(keys(&bucket).await, [kept]);
    let mut confirmed = script.0.lock().confirmed.clone();
    confirmed.sort();
    let mut expected = vec![a, b, never_there];
    expected.sort();
    assert_eq!(confirmed, expected);
    assert_eq!(
        script.0.lock().deletion_claims,
        1,
        "a short claim ends the pass"
    );
    assert_eq!(running.metrics.objects_deleted.get(), 3);
    assert_eq!(running.metrics.runs(JobKind::Deletion, Outcome::Ok), 1);
}

#[tokio::test(start_paused = true)]
async fn only_the_objects_deleted_are_confirmed() {
    let plain = bucket();
    let faults = FaultConfig::parse("delete.fail_nth=1").expect("a fault spec");
    let bucket = Bucket {
        store: Arc::new(FaultyStore::new(plain.store.clone(), faults)),
        prefix: plain.prefix.clone(),
    };
    let ids: Vec<ObjectId> = (0..3).map(|_| ObjectId::new()).collect();
    for &id in &ids {
        put(&bucket, id).await;
    }
    let not_ours = ObjectId::new();
    let mut claim: Vec<ObjectToDelete> = ids.iter().copied().map(to_delete).collect();
    // A key that does not name its object is never deleted.
    claim.push(ObjectToDelete {
        object: not_ours,
        key: "data/notes.txt".into(),
    });
    let script = Scripted::with(Script {
        deletions: [claim].into(),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(
        report.deletions,
        DeletionReport {
            confirmed: 2,
            unconfirmed: 0,
            failed: 2,
        }
    );
    let left = keys(&bucket).await;
    assert_eq!(left.len(), 1, "the delete that failed left its object");
    let confirmed = script.0.lock().confirmed.clone();
    assert_eq!(confirmed.len(), 2);
    assert!(!confirmed.contains(&left[0]) && !confirmed.contains(&not_ours));
    assert_eq!(running.metrics.runs(JobKind::Deletion, Outcome::Failed), 1);
}

#[tokio::test(start_paused = true)]
async fn whole_claims_are_followed_by_another_in_the_same_pass() {
    let bucket = bucket();
    let full: Vec<ObjectToDelete> = (0..deletion::CLAIM_LIMIT)
        .map(|_| to_delete(ObjectId::new()))
        .collect();
    let script = Scripted::with(Script {
        deletions: [full, vec![to_delete(ObjectId::new())]].into(),
        ..Script::default()
    });
    let running = start(&bucket, &script);
    let report = running.handle.run_now().await.expect("a pass");
    assert_eq!(
        report.deletions.confirmed,
        u64::from(deletion::CLAIM_LIMIT) + 1
    );
    assert_eq!(script.0.lock().deletion_claims, 2);
}
