//! The sequencer on the embedded backend: committed batches per second for objects
//! holding 1, 100 and 10,000 partitions, and commit latency percentiles, with one
//! committer and with 16 concurrent committers (group commit).
//!
//! `cargo bench -p weir-control-plane --bench sequencer`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use hdrhistogram::Histogram;
use tempfile::TempDir;
use tokio::runtime::Runtime;
use weir_control_plane::sequencer::{BatchRef, ObjectCommit, SequencerHandle};
use weir_control_plane::topics::{self, TopicSpec};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::{Database, EmbeddedConfig, EmbeddedStore, ObjectId, Partition, TopicId};

const SIZES: [i32; 3] = [1, 100, 10_000];

struct Setup {
    _dir: TempDir,
    control_plane: ControlPlane,
    topic: TopicId,
}

fn setup(runtime: &Runtime, partitions: i32) -> Setup {
    runtime.block_on(async {
        let dir = TempDir::new().expect("temp dir");
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open");
        let control_plane = ControlPlane::start(
            ControlPlaneConfig::default(),
            Database::new(Arc::new(store)),
        )
        .await
        .expect("start");
        let created = topics::create_topics(
            control_plane.store(),
            vec![TopicSpec {
                name: "bench".into(),
                partitions,
                ..TopicSpec::default()
            }],
            false,
        )
        .await
        .expect("create");
        let topic = created[0].1.as_ref().expect("created").id;
        Setup {
            _dir: dir,
            control_plane,
            topic,
        }
    })
}

/// An object with one 1 KiB batch of 10 records for each of `partitions` partitions.
fn object(topic: TopicId, partitions: i32) -> ObjectCommit {
    let id = ObjectId::new();
    let batches = (0..partitions)
        .map(|p| BatchRef {
            topic,
            partition: Partition(p),
            position: p as u64 * 1024,
            length: 1024,
            record_count: 10,
            max_timestamp: 1_700_000_000_000,
            producer: None,
        })
        .collect();
    ObjectCommit {
        object: id,
        key: format!("data/{id}.weir"),
        size: partitions as u64 * 1024,
        batches,
        max_age: None,
    }
}

async fn commit(sequencer: &SequencerHandle, topic: TopicId, partitions: i32) {
    let outcomes = sequencer
        .commit(object(topic, partitions))
        .await
        .expect("commit");
    assert!(outcomes.iter().all(Result::is_ok));
}

fn bench_commits(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("sequencer_commit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for partitions in SIZES {
        let setup = setup(&runtime, partitions);
        let sequencer = setup.control_plane.sequencer().clone();
        group.throughput(Throughput::Elements(partitions as u64));
        group.bench_with_input(
            BenchmarkId::new("one_committer", partitions),
            &partitions,
            |b, &n| {
                b.to_async(&runtime)
                    .iter(|| commit(&sequencer, setup.topic, n));
            },
        );
        group.throughput(Throughput::Elements(16 * partitions as u64));
        group.bench_with_input(
            BenchmarkId::new("16_committers", partitions),
            &partitions,
            |b, &n| {
                b.to_async(&runtime).iter(|| async {
                    let commits: Vec<_> = (0..16)
                        .map(|_| {
                            let sequencer = sequencer.clone();
                            let topic = setup.topic;
                            tokio::spawn(async move { commit(&sequencer, topic, n).await })
                        })
                        .collect();
                    for c in commits {
                        c.await.expect("commit task");
                    }
                });
            },
        );
        runtime.block_on(setup.control_plane.shutdown());
    }
    group.finish();
}

criterion_group!(benches, bench_commits);

/// Latency percentiles and throughput for a fixed number of commits per size.
fn latency_report() {
    let runtime = Runtime::new().expect("runtime");
    println!("\nsequencer on the embedded store (fsync per group commit)");
    println!(
        "{:>10} {:>11} {:>9} {:>10} {:>10} {:>14}",
        "partitions", "committers", "commits", "p50 ms", "p99 ms", "batches/s"
    );
    for partitions in SIZES {
        for committers in [1usize, 16] {
            let commits_each = match partitions {
                1 => 200,
                100 => 50,
                _ => 4,
            } / committers.min(4);
            let setup = setup(&runtime, partitions);
            let (histogram, elapsed) = runtime.block_on(async {
                let started = Instant::now();
                let tasks: Vec<_> = (0..committers)
                    .map(|_| {
                        let sequencer = setup.control_plane.sequencer().clone();
                        let topic = setup.topic;
                        tokio::spawn(async move {
                            let mut h = Histogram::<u64>::new(3).expect("histogram");
                            for _ in 0..commits_each {
                                let t = Instant::now();
                                commit(&sequencer, topic, partitions).await;
                                h.record(t.elapsed().as_micros() as u64).expect("record");
                            }
                            h
                        })
                    })
                    .collect();
                let mut all = Histogram::<u64>::new(3).expect("histogram");
                for t in tasks {
                    all.add(t.await.expect("task")).expect("add");
                }
                (all, started.elapsed())
            });
            let commits = histogram.len();
            let batches = commits as f64 * f64::from(partitions);
            println!(
                "{:>10} {:>11} {:>9} {:>10.2} {:>10.2} {:>14.0}",
                partitions,
                committers,
                commits,
                histogram.value_at_quantile(0.5) as f64 / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0,
                batches / elapsed.as_secs_f64(),
            );
            runtime.block_on(setup.control_plane.shutdown());
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    latency_report();
}
