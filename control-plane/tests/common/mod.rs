//! A control plane on an embedded store in a temporary directory, served on 127.0.0.1.

#![allow(dead_code)]

use std::sync::Arc;

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_control_plane::clock::{Clock, SystemClock};
use weir_control_plane::lifecycle::LifecycleConfig;
use weir_control_plane::sequencer::{BatchRef, ObjectCommit};
use weir_control_plane::topics::{self, TopicSpec};
use weir_control_plane::{ControlPlane, ControlPlaneClient, ControlPlaneConfig};
use weir_metadata::{
    Database, EmbeddedConfig, EmbeddedStore, FaultConfig, ObjectId, Partition, TopicId,
};

pub(crate) struct Harness {
    pub(crate) control_plane: Arc<ControlPlane>,
    pub(crate) store: Arc<EmbeddedStore>,
    pub(crate) dir: TempDir,
}

impl Harness {
    /// A control plane whose retention pass does not run by itself: the tests' records
    /// carry timestamps from 1970, which a 7-day retention would take at once.
    pub(crate) async fn start() -> Self {
        let config = ControlPlaneConfig {
            lifecycle: LifecycleConfig {
                retention_interval: std::time::Duration::from_secs(3600),
                ..LifecycleConfig::default()
            },
            ..ControlPlaneConfig::default()
        };
        Self::start_with(config, Arc::new(SystemClock)).await
    }

    pub(crate) async fn start_with(config: ControlPlaneConfig, clock: Arc<dyn Clock>) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open"));
        let db = Database::new(store.clone());
        let control_plane = ControlPlane::start_with_clock(config, db, clock)
            .await
            .expect("start");
        Harness {
            control_plane: Arc::new(control_plane),
            store,
            dir,
        }
    }

    pub(crate) fn inject(&self, conflict_rate: f64, unknown_result_rate: f64, seed: u64) {
        self.store.set_faults(FaultConfig {
            conflict_rate,
            unknown_result_rate,
            seed,
        });
    }

    pub(crate) async fn create_topic(&self, name: &str, partitions: i32) -> TopicId {
        let results = topics::create_topics(
            self.control_plane.store(),
            vec![TopicSpec {
                name: name.into(),
                partitions,
                ..TopicSpec::default()
            }],
            false,
        )
        .await
        .expect("create topic");
        results[0].1.as_ref().expect("created").id
    }

    /// Serves gRPC on an ephemeral port; returns its URL and the stop switch.
    pub(crate) async fn serve(&self) -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let control_plane = self.control_plane.clone();
        let stopped = stop.clone();
        tokio::spawn(async move {
            control_plane
                .serve(listener, async move { stopped.cancelled().await })
                .await
                .expect("serve");
        });
        (url, stop)
    }

    pub(crate) async fn client(&self, url: &str, token: Option<&str>) -> ControlPlaneClient {
        ControlPlaneClient::connect(url, token)
            .await
            .expect("connect")
    }
}

/// A batch of `records` records at `position`, `length` bytes long.
pub(crate) fn batch(
    topic: TopicId,
    partition: i32,
    position: u64,
    length: u32,
    records: i32,
    max_ts: i64,
) -> BatchRef {
    BatchRef {
        topic,
        partition: Partition(partition),
        position,
        length,
        record_count: records,
        max_timestamp: max_ts,
        producer: None,
    }
}

/// An object holding `batches` laid end to end.
pub(crate) fn object(batches: Vec<BatchRef>) -> ObjectCommit {
    let id = ObjectId::new();
    let size = batches
        .iter()
        .map(|b| b.position + u64::from(b.length))
        .max()
        .unwrap_or(0);
    ObjectCommit {
        object: id,
        key: format!("data/{}.weir", id),
        size,
        batches,
        max_age: None,
    }
}

/// Batches for `partitions` laid end to end, `records` records each.
pub(crate) fn laid_out(
    topic: TopicId,
    partitions: &[i32],
    records: i32,
    length: u32,
) -> Vec<BatchRef> {
    partitions
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            batch(
                topic,
                p,
                i as u64 * u64::from(length),
                length,
                records,
                1_000 + i as i64,
            )
        })
        .collect()
}
