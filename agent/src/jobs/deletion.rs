//! Deletion of dereferenced objects (docs/lifecycle.md, "Deletion after a grace
//! period"): the control plane hands out objects whose grace period has passed, each
//! claimed for a while; the agent, which holds the bucket's credentials, deletes them
//! and confirms the ones gone. One left undeleted is handed out again once its claim
//! runs out. Two agents deleting one object is harmless: a missing key counts as
//! deleted.

use futures::StreamExt;
use weir_control_plane_api::jobs::ObjectToDelete;
use weir_metadata::ObjectId;

use super::calls::JobCalls;
use super::{JobKind, JobsMetrics, Outcome, log_control_plane_error};
use crate::bucket::{Bucket, object_id};

/// Objects asked for in one claim: the most the control plane hands out.
pub const CLAIM_LIMIT: u32 = 1_000;
/// Claims one pass works through at most, so compaction gets its turn.
pub const CLAIMS_PER_PASS: usize = 10;
/// DELETE requests at once, at most.
pub const DELETES_IN_FLIGHT: usize = 16;

/// What deleting some objects from the bucket did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Gone from the bucket (or never there): to confirm.
    pub deleted: Vec<ObjectId>,
    /// Still there, with why.
    pub failed: Vec<(ObjectId, String)>,
}

/// Deletes `objects` from `bucket`, [`DELETES_IN_FLIGHT`] at once. A key that does not
/// name its object as Weir names objects (`data/<ulid>.weir`) is left alone: the
/// bucket may hold what Weir did not write.
pub async fn delete_objects(bucket: &Bucket, objects: &[ObjectToDelete]) -> Deleted {
    let deletes: Vec<_> = objects.iter().map(|o| delete_one(bucket, o)).collect();
    let results: Vec<(ObjectId, Result<(), String>)> = futures::stream::iter(deletes)
        .buffer_unordered(DELETES_IN_FLIGHT)
        .collect()
        .await;
    let mut done = Deleted::default();
    for (object, result) in results {
        match result {
            Ok(()) => done.deleted.push(object),
            Err(why) => done.failed.push((object, why)),
        }
    }
    done
}

async fn delete_one(bucket: &Bucket, o: &ObjectToDelete) -> (ObjectId, Result<(), String>) {
    let path = bucket.key_path(&o.key);
    if object_id(&path) != Some(o.object) {
        let why = format!("key {:?} does not name object {}", o.key, o.object);
        return (o.object, Err(why));
    }
    match bucket.store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => (o.object, Ok(())),
        Err(e) => (o.object, Err(format!("delete {path}: {e}"))),
    }
}

/// What a deletion pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletionReport {
    /// Deleted from the bucket and confirmed.
    pub confirmed: u64,
    /// Deleted from the bucket, not confirmed (deleted and confirmed again later).
    pub unconfirmed: u64,
    /// Left in the bucket (claimed again once the claim runs out).
    pub failed: u64,
}

/// Claims due deletions, deletes them and confirms the ones gone, claim after claim
/// while whole claims come back (at most [`CLAIMS_PER_PASS`]). Logs what failed, once
/// per claim; a failed control-plane call ends the pass.
pub(super) async fn pass<C: JobCalls>(
    calls: &C,
    bucket: &Bucket,
    metrics: &JobsMetrics,
) -> DeletionReport {
    let mut report = DeletionReport::default();
    for _ in 0..CLAIMS_PER_PASS {
        let claimed = match calls.claim_deletions(CLAIM_LIMIT).await {
            Ok(claimed) if claimed.is_empty() => break,
            Ok(claimed) => claimed,
            Err(status) => {
                log_control_plane_error("claim due deletions", &status);
                break;
            }
        };
        let done = delete_objects(bucket, &claimed).await;
        metrics.objects_deleted.inc_by(done.deleted.len() as u64);
        report.failed += done.failed.len() as u64;
        if let Some((object, why)) = done.failed.first() {
            tracing::warn!(
                failed = done.failed.len(),
                claimed = claimed.len(),
                first = %object,
                error = %why,
                "objects not deleted; they are handed out again after their claim"
            );
        }
        if !done.deleted.is_empty() {
            if let Err(status) = calls.confirm_deletions(&done.deleted).await {
                report.unconfirmed += done.deleted.len() as u64;
                metrics.run(JobKind::Deletion, Outcome::Failed);
                log_control_plane_error("confirm deletions", &status);
                break;
            }
            report.confirmed += done.deleted.len() as u64;
        }
        tracing::debug!(deleted = done.deleted.len(), "deleted dereferenced objects");
        let outcome = if done.failed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        metrics.run(JobKind::Deletion, outcome);
        if claimed.len() < CLAIM_LIMIT as usize || done.deleted.is_empty() {
            break;
        }
    }
    report
}
