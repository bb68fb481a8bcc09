//! Orphan collection over a bucket whose listings are cut short: every pass settles
//! what it listed before the cut, so the next pass goes on from there and the orphans
//! are all collected, though no listing of the whole bucket ever succeeds.
//!
//! (tests/kafka_gc.rs covers collection end to end through a playground on a real S3
//! server; this one drives the collector directly, over an in-memory store wrapped in
//! the fault injector, against a real control plane on embedded metadata.)

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_agent::Bucket;
use weir_agent::gc::{self, CHECK_CHUNK, GcConfig, GcMetrics};
use weir_cache::{FaultConfig, FaultyStore};
use weir_control_plane::sequencer::{BatchRef, ObjectCommit};
use weir_control_plane::topics::{self, TopicSpec};
use weir_control_plane::{ControlPlane, ControlPlaneClient, ControlPlaneConfig};
use weir_metadata::{Database, EmbeddedConfig, EmbeddedStore, ObjectId, Partition};

/// Objects in the bucket; every fifth is committed.
const OBJECTS: usize = 2_500;
/// Keys each listing yields before it fails.
const CUT: usize = 1_200;
const GRACE: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_whose_listing_is_cut_short_keeps_what_it_settled() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let db = Database::new(Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open the metadata store"),
    ));
    let control_plane = Arc::new(
        ControlPlane::start(ControlPlaneConfig::default(), db)
            .await
            .expect("start the control plane"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let stop = CancellationToken::new();
    let serving = {
        let (control_plane, stop) = (control_plane.clone(), stop.clone());
        tokio::spawn(async move { control_plane.serve(listener, stop.cancelled_owned()).await })
    };
    let control = ControlPlaneClient::connect(&url, None)
        .await
        .expect("connect to the control plane");
    let topic = topics::create_topics(
        control_plane.store(),
        vec![TopicSpec {
            name: "gc".into(),
            partitions: 1,
            ..TopicSpec::default()
        }],
        false,
    )
    .await
    .expect("create the topic")[0]
        .1
        .as_ref()
        .expect("created")
        .id;

    let memory = Arc::new(InMemory::new());
    let faults = FaultConfig::parse(&format!("list.cut_after={CUT}")).expect("fault spec");
    let bucket = Bucket {
        store: Arc::new(FaultyStore::new(
            memory.clone() as Arc<dyn ObjectStore>,
            faults,
        )),
        prefix: Path::from("weir"),
    };
    let mut commits = Vec::new();
    let mut orphans = BTreeSet::new();
    for i in 0..OBJECTS {
        let id = ObjectId::new();
        let key = format!("data/{id}.weir");
        memory
            .put(
                &Path::from(format!("weir/{key}")),
                PutPayload::from_static(b"WEIR"),
            )
            .await
            .expect("put an object");
        if i % 5 == 0 {
            commits.push(ObjectCommit {
                object: id,
                key,
                size: 4,
                batches: vec![BatchRef {
                    topic,
                    partition: Partition(0),
                    position: 0,
                    length: 4,
                    record_count: 1,
                    max_timestamp: 0,
                    producer: None,
                }],
                max_age: None,
            });
        } else {
            orphans.insert(format!("weir/{key}"));
        }
    }
    let committed: BTreeSet<String> = commits.iter().map(|c| format!("weir/{}", c.key)).collect();
    let sequencer = control_plane.sequencer();
    for outcome in futures::future::join_all(commits.into_iter().map(|c| sequencer.commit(c))).await
    {
        assert!(
            outcome.expect("commit").iter().all(Result::is_ok),
            "every batch committed"
        );
    }
    tokio::time::sleep(GRACE * 2).await;

    let cancel = CancellationToken::new();
    let (collector, task) = gc::spawn(
        GcConfig {
            grace: GRACE,
            interval: Duration::from_secs(3600),
        },
        bucket,
        control,
        GcMetrics::default(),
        cancel.clone(),
    );
    let keys = || async {
        memory
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect::<BTreeSet<String>>()
            .await
            .expect("list the bucket")
    };

    // The first listing is cut after CUT keys: the pass fails, but the first full
    // chunk of keys it listed is settled.
    let everything = keys().await;
    let settled: BTreeSet<&String> = everything.iter().take(CHECK_CHUNK).collect();
    let err = collector.run_now().await.expect_err("the listing was cut");
    assert!(err.to_string().contains("cut after"), "{err}");
    let left = keys().await;
    let expected: BTreeSet<String> = everything
        .iter()
        .filter(|key| committed.contains(*key) || !settled.contains(key))
        .cloned()
        .collect();
    assert_eq!(
        left.len(),
        expected.len(),
        "after one cut pass, the orphans among the first {CHECK_CHUNK} keys are gone"
    );
    assert_eq!(left, expected);

    // Each pass resumes after the last key settled, so passes that fail still progress
    // and the collection ends with every orphan gone and every committed object kept.
    let mut passes = 1;
    let report = loop {
        passes += 1;
        assert!(passes <= 4, "the collection did not finish in 4 passes");
        if let Ok(report) = collector.run_now().await {
            break report;
        }
    };
    assert_eq!(passes, 3, "2,500 keys cut every 1,200 take three passes");
    let last_orphans = everything
        .iter()
        .skip(2 * CHECK_CHUNK)
        .filter(|key| !committed.contains(*key))
        .count();
    assert_eq!(
        report.deleted as usize, last_orphans,
        "the last pass deleted the orphans past the second chunk"
    );
    let left = keys().await;
    assert_eq!(left, committed, "only the committed objects are left");
    assert!(orphans.is_disjoint(&left));

    cancel.cancel();
    task.await.expect("the collector stops");
    stop.cancel();
    serving
        .await
        .expect("serve task")
        .expect("serve the control plane");
}
