//! Orphan garbage collection: objects that were uploaded but never committed (the
//! agent died between PUT and commit, or gave up on the commit) are deleted once they
//! are older than a grace period. Committed objects are never touched.
//!
//! It runs in agents because the control plane never reads the bucket (BYOC: it holds
//! no bucket credentials and sees no data). A pass lists `<prefix>/data/` in key order,
//! which is time order since keys are ULIDs, stops at the first object younger than the
//! grace period, asks the control plane which of the older ones were committed
//! (`Index.CheckObjects`, answered from the object records) and deletes the rest.
//!
//! Why a commit cannot race a deletion: the writer never sends a commit for an object
//! older than the produce timeout (it fails the producers instead), and the grace
//! period is at least twice that (checked by [`AgentConfig::validate`]), so an object
//! the control plane calls uncommitted once it is past the grace period stays
//! uncommitted. An object's age counts from the later of its ULID's time and the
//! store's last-modified time, so neither a fast agent clock nor a slow upload makes an
//! object look older than it is.
//!
//! Every agent runs it; two agents deleting the same orphan is harmless (a delete of a
//! missing key succeeds on S3, and NotFound is ignored). A pass settles what it has
//! listed every [`CHECK_CHUNK`] keys, and each pass resumes listing after the last key
//! settled, so a bucket's history is listed once per agent start, not once per pass,
//! and a listing cut short (a page timing out on a large bucket) loses no progress.
//!
//! [`AgentConfig::validate`]: crate::AgentConfig::validate

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::ObjectMeta;
use object_store::path::Path;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use weir_control_plane_api::ControlPlaneClient;
use weir_metadata::ObjectId;

use crate::bucket::{Bucket, object_id};
use crate::error::{Error, Result};

/// Object ids per `CheckObjects` call, and objects a pass settles before it lists on.
pub const CHECK_CHUNK: usize = 1_000;

#[derive(Clone, Debug)]
pub struct GcConfig {
    /// Objects younger than this are left alone, committed or not.
    pub grace: Duration,
    /// Time between passes.
    pub interval: Duration,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects past the grace period that were checked with the control plane.
    pub checked: u64,
    /// Of those, the committed ones (kept).
    pub committed: u64,
    /// Orphans deleted.
    pub deleted: u64,
}

/// The collector's Prometheus counters.
#[derive(Clone, Debug, Default)]
pub struct GcMetrics {
    passes: Counter,
    failed_passes: Counter,
    deleted: Counter,
}

impl GcMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = GcMetrics::default();
        registry.register(
            "weir_gc_passes",
            "Orphan garbage-collection passes completed",
            metrics.passes.clone(),
        );
        registry.register(
            "weir_gc_failed_passes",
            "Orphan garbage-collection passes that stopped on an error (retried next interval)",
            metrics.failed_passes.clone(),
        );
        registry.register(
            "weir_gc_deleted_objects",
            "Uncommitted objects older than the grace period deleted from the bucket",
            metrics.deleted.clone(),
        );
        metrics
    }
}

/// A cloneable front to the collector task.
#[derive(Clone, Debug)]
pub struct GcHandle {
    requests: mpsc::Sender<oneshot::Sender<Result<GcReport>>>,
}

impl GcHandle {
    /// Runs a pass now and returns what it did.
    pub async fn run_now(&self) -> Result<GcReport> {
        let (reply, report) = oneshot::channel();
        self.requests
            .send(reply)
            .await
            .map_err(|_| Error::ShuttingDown)?;
        report.await.map_err(|_| Error::ShuttingDown)?
    }
}

/// Starts the collector: a pass every `config.interval` (the first one interval after
/// start) and whenever [`GcHandle::run_now`] asks, until `cancel`.
pub fn spawn(
    config: GcConfig,
    bucket: Bucket,
    control: ControlPlaneClient,
    metrics: GcMetrics,
    cancel: CancellationToken,
) -> (GcHandle, tokio::task::JoinHandle<()>) {
    let (requests, mut inbox) = mpsc::channel::<oneshot::Sender<Result<GcReport>>>(4);
    let mut collector = Collector {
        config,
        bucket,
        control,
        metrics,
        resume_after: None,
    };
    let task = tokio::spawn(async move {
        let start = tokio::time::Instant::now() + collector.config.interval;
        let mut ticker = tokio::time::interval_at(start, collector.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Without handles left the collector still runs on its ticker.
        let mut handles_left = true;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                request = inbox.recv(), if handles_left => {
                    match request {
                        Some(reply) => {
                            let _ = reply.send(collector.pass_logged().await);
                        }
                        None => handles_left = false,
                    }
                }
                _ = ticker.tick() => {
                    let _ = collector.pass_logged().await;
                }
            }
        }
    });
    (GcHandle { requests }, task)
}

struct Collector {
    config: GcConfig,
    bucket: Bucket,
    control: ControlPlaneClient,
    metrics: GcMetrics,
    /// Every key up to this one is settled (committed, or deleted): later passes list
    /// after it.
    resume_after: Option<Path>,
}

impl Collector {
    async fn pass_logged(&mut self) -> Result<GcReport> {
        match self.pass().await {
            Ok(report) => {
                self.metrics.passes.inc();
                if report.deleted > 0 {
                    tracing::info!(
                        deleted = report.deleted,
                        checked = report.checked,
                        "deleted orphan objects (uploaded, never committed, past the grace period)"
                    );
                } else {
                    tracing::debug!(checked = report.checked, "garbage collection pass");
                }
                Ok(report)
            }
            Err(e) => {
                self.metrics.failed_passes.inc();
                tracing::warn!(error = %e, "garbage collection pass; retrying next interval");
                Err(e)
            }
        }
    }

    async fn pass(&mut self) -> Result<GcReport> {
        let now = SystemTime::now();
        let data = self.bucket.prefix.child("data");
        // The listing holds its own handle on the store, so the chunks it yields can be
        // settled (and `resume_after` moved) while it is still open.
        let store = self.bucket.store.clone();
        let mut listing = match self.resume_after.clone() {
            Some(after) => store.list_with_offset(Some(&data), &after),
            None => store.list(Some(&data)),
        };
        let mut report = GcReport::default();
        let mut old: Vec<(ObjectId, ObjectMeta)> = Vec::with_capacity(CHECK_CHUNK);
        // Each full chunk is settled before the listing goes on, so a listing cut short
        // (a page timing out on a large bucket) keeps what it settled and the next pass
        // resumes there rather than starting over.
        while let Some(meta) = listing.try_next().await? {
            // Keys not of the form data/<ulid>.weir were not written by Weir: never
            // delete them.
            let Some(id) = object_id(&meta.location) else {
                continue;
            };
            if age(id, &meta, now) < self.config.grace {
                // Keys sort by ULID, so every later key is younger still... except one
                // whose ULID is old and upload slow; it is met on a later pass.
                break;
            }
            old.push((id, meta));
            if old.len() == CHECK_CHUNK {
                self.settle(&old, &mut report).await?;
                old.clear();
            }
        }
        drop(listing);
        self.settle(&old, &mut report).await?;
        Ok(report)
    }

    /// Asks the control plane which of `old` (in key order, past the grace period) were
    /// committed, deletes the others, and moves `resume_after` past them.
    async fn settle(
        &mut self,
        old: &[(ObjectId, ObjectMeta)],
        report: &mut GcReport,
    ) -> Result<()> {
        if old.is_empty() {
            return Ok(());
        }
        let ids: Vec<ObjectId> = old.iter().map(|(id, _)| *id).collect();
        let committed = self.control.check_objects(&ids).await?;
        for ((id, meta), committed) in old.iter().zip(committed) {
            report.checked += 1;
            if committed {
                report.committed += 1;
            } else {
                match self.bucket.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::debug!(object = %id, key = %meta.location, "deleted orphan object");
                        report.deleted += 1;
                        // Counted as it happens: a pass that fails later still did this.
                        self.metrics.deleted.inc();
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.resume_after = Some(meta.location.clone());
        }
        Ok(())
    }
}

/// How old an object is: from the later of its ULID's time and its last-modified time.
fn age(id: ObjectId, meta: &ObjectMeta, now: SystemTime) -> Duration {
    let born_ms =
        id.0.timestamp_ms()
            .max(u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0));
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(now_ms.saturating_sub(born_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_weir_object_keys_name_objects() {
        let id = ObjectId::new();
        let key = Path::from(format!("prefix/data/{}.weir", id.0));
        assert_eq!(object_id(&key), Some(id));
        assert_eq!(object_id(&Path::from("prefix/data/notes.txt")), None);
        assert_eq!(object_id(&Path::from("prefix/data/NOTAULID.weir")), None);
    }

    #[test]
    fn age_counts_from_the_later_of_the_ulid_and_last_modified() {
        let now = SystemTime::now();
        let hour_ago = now - Duration::from_secs(3600);
        let old_id = ObjectId(ulid::Ulid::from_datetime(hour_ago));
        let meta = |modified: SystemTime| ObjectMeta {
            location: Path::from("data/x.weir"),
            last_modified: modified.into(),
            size: 1,
            e_tag: None,
            version: None,
        };
        let uploaded_late = age(old_id, &meta(now - Duration::from_secs(60)), now);
        assert!(
            uploaded_late <= Duration::from_secs(61),
            "{uploaded_late:?}"
        );
        let both_old = age(old_id, &meta(hour_ago), now);
        assert!(both_old >= Duration::from_secs(3599), "{both_old:?}");
    }
}
