//! Failover between control-plane instances. Two instances share one metadata store
//! (both in this test process, each on its own runtime, since the embedded store is
//! one process's and FoundationDB cannot run here); a real `weir agent` process is
//! given both URLs, the standby's first, and real librdkafka clients produce, consume
//! and commit through it. The lease holder then crashes as a killed process does: its
//! runtime is dropped with every task and connection, and its lease is never released.
//! What must hold: the standby takes the lease once it expires, the agent follows it,
//! and an idempotent producer and a group carry on with no acknowledged record lost or
//! written twice and every committed offset intact.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::future::pending;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use support::kafka::{self, Record};
use support::process::agent_args;
use support::{WeirProcess, free_port};
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::{Database, MetadataUrl};

const TOKEN: &str = "failover-token";
const LEASE_TTL: Duration = Duration::from_secs(2);
const TOPIC: &str = "failover";
const PARTITIONS: i32 = 4;
const RECORDS_PER_PHASE: usize = 2_000;

/// One control-plane instance on a runtime of its own.
struct Instance {
    url: String,
    http: std::net::SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Instance {
    fn start(db: &Database, name: &str) -> Instance {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("control-plane-{name}"))
            .enable_all()
            .build()
            .expect("a runtime");
        let grpc = std::net::TcpListener::bind("127.0.0.1:0").expect("bind gRPC");
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind HTTP");
        for listener in [&grpc, &http] {
            listener.set_nonblocking(true).expect("non-blocking");
        }
        let url = format!("http://{}", grpc.local_addr().expect("address"));
        let http_addr = http.local_addr().expect("address");
        let config = ControlPlaneConfig {
            instance: name.to_string(),
            advertise_url: url.clone(),
            token: Some(TOKEN.to_string()),
            lease_ttl: LEASE_TTL,
            ..ControlPlaneConfig::default()
        };
        let db = db.clone();
        runtime.block_on(async move {
            let control_plane = Arc::new(
                ControlPlane::start(config, db)
                    .await
                    .expect("start a control plane"),
            );
            let http = tokio::net::TcpListener::from_std(http).expect("HTTP listener");
            tokio::spawn(weir_control_plane::http::serve(
                http,
                control_plane.metrics_registry(),
                control_plane.readiness(),
                pending(),
            ));
            let grpc = tokio::net::TcpListener::from_std(grpc).expect("gRPC listener");
            tokio::spawn(async move { control_plane.serve(grpc, pending()).await });
        });
        Instance {
            url,
            http: http_addr,
            runtime: Some(runtime),
        }
    }

    /// Gone at once, as after kill -9: every task and connection dropped, nothing
    /// released.
    fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// `/readyz`: (status code, body).
    fn readyz(&self) -> (u16, String) {
        support::http::get(&self.http.to_string(), "/readyz")
    }

    fn wait_ready(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.readyz();
            if code == 200 {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "the instance at {} is not ready a minute on: {body}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.crash();
    }
}

fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    kafka::producer_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("an idempotent producer")
}

fn records(phase: &str) -> Vec<Record> {
    (0..RECORDS_PER_PHASE)
        .map(|i| Record {
            timestamp: Some(support::recent_ms() + i as i64),
            ..Record::new(format!("key-{i}"), format!("{phase}-{i}"))
        })
        .collect()
}

/// The records acknowledged for each partition, in offset order.
fn by_partition(
    acked: &mut BTreeMap<i32, Vec<(i64, Record)>>,
    records: &[Record],
    outcomes: &[(i32, i64)],
) {
    for (record, (partition, offset)) in records.iter().zip(outcomes) {
        acked
            .entry(*partition)
            .or_default()
            .push((*offset, record.clone()));
    }
}

fn committed(consumer: &BaseConsumer) -> Vec<(i32, Offset)> {
    let mut wanted = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        wanted.add_partition(TOPIC, partition);
    }
    consumer
        .committed_offsets(wanted, kafka::PATIENCE)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

#[test]
fn when_the_lease_holder_dies_the_agent_follows_the_lease_and_nothing_is_lost() {
    let root = tempfile::TempDir::new().expect("temp dir");
    let metadata = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let db = metadata
        .block_on(Database::open(&MetadataUrl::Embedded(
            root.path().join("metadata"),
        )))
        .expect("open the metadata store");

    // The first to start takes the lease; the second stands by.
    let mut holder = Instance::start(&db, "a");
    let standby = Instance::start(&db, "b");
    let body = holder.wait_ready();
    assert!(body.contains("a holds the sequencer lease"), "{body}");
    let (code, body) = standby.readyz();
    assert_eq!(code, 503, "a standby is not ready: {body}");
    assert!(
        body.contains(&holder.url),
        "the standby names where the holder serves: {body}"
    );

    // The agent is given the standby first: it must find the holder by itself.
    let bucket = root.path().join("bucket");
    std::fs::create_dir_all(&bucket).expect("bucket directory");
    let port = free_port();
    let agent = WeirProcess::start(
        "weir agent",
        &agent_args(
            &format!("{},{}", standby.url, holder.url),
            &format!("file://{}", bucket.display()),
            "zone-a",
            port,
            free_port(),
        ),
        &[("WEIR_CONTROL_PLANE_TOKEN", TOKEN)],
        "weir agent:",
        &root.path().join("agent.log"),
    );
    let bootstrap = format!("127.0.0.1:{port}");
    kafka::create_topic(&bootstrap, TOPIC, PARTITIONS);

    let producer = idempotent_producer(&bootstrap);
    let mut acked = BTreeMap::new();
    let before = records("before");
    let outcomes = kafka::produce_ok(&producer, TOPIC, None, &before);
    by_partition(&mut acked, &before, &outcomes);

    // A group commits what it read before the crash.
    let group = kafka::consumer_config(&bootstrap)
        .set("group.id", "failover-group")
        .create::<BaseConsumer>()
        .expect("a group consumer");
    let mut positions = TopicPartitionList::new();
    for (partition, records) in &acked {
        positions
            .add_partition_offset(TOPIC, *partition, Offset::Offset(records.len() as i64))
            .expect("offset");
    }
    group
        .commit(&positions, CommitMode::Sync)
        .expect("commit before the crash");
    let committed_before = committed(&group);

    let crashed = Instant::now();
    holder.crash();
    let body = standby.wait_ready();
    eprintln!(
        "the standby was ready {} ms after the holder crashed (lease TTL {LEASE_TTL:?})",
        crashed.elapsed().as_millis()
    );
    assert!(
        body.contains("b holds the sequencer lease"),
        "the standby took the lease: {body}"
    );

    // The same producer carries on through the failover, its sequence numbers and all.
    let after = records("after");
    let outcomes = kafka::produce_ok(&producer, TOPIC, None, &after);
    by_partition(&mut acked, &after, &outcomes);
    eprintln!(
        "{RECORDS_PER_PHASE} records produced through the failover were all acknowledged {} ms after the crash",
        crashed.elapsed().as_millis()
    );

    assert_eq!(
        committed(&group),
        committed_before,
        "the offsets committed before the failover are still committed"
    );
    let mut moved = TopicPartitionList::new();
    for (partition, records) in &acked {
        moved
            .add_partition_offset(TOPIC, *partition, Offset::Offset(records.len() as i64))
            .expect("offset");
    }
    group
        .commit(&moved, CommitMode::Sync)
        .expect("commit after the failover");
    let expected_after: Vec<(i32, Offset)> = (0..PARTITIONS)
        .map(|p| {
            let n = acked.get(&p).map_or(0, Vec::len);
            (
                p,
                if n == 0 {
                    Offset::Invalid
                } else {
                    Offset::Offset(n as i64)
                },
            )
        })
        .collect();
    assert_eq!(
        committed(&group),
        expected_after,
        "a commit after the failover takes effect"
    );

    // Every acknowledged record is there once, at the offset it was acknowledged at.
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, acked.get(&p).map_or(0, |r| r.len() as i64)))
        .collect();
    let reader = kafka::consumer(&bootstrap);
    let consumed = kafka::consume_until(&reader, TOPIC, &ends);
    for (partition, records) in &acked {
        let offsets: Vec<i64> = records.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(
            offsets,
            (0..records.len() as i64).collect::<Vec<_>>(),
            "partition {partition}: the acknowledged offsets are dense, none given twice"
        );
        let expected: Vec<Record> = records.iter().map(|(_, r)| r.clone()).collect();
        kafka::assert_partition(TOPIC, *partition, &consumed[partition], &expected);
    }
    let log = std::fs::read_to_string(agent.log_path()).expect("the agent's log");
    assert!(
        log.contains(&format!("following the lease to {}", holder.url)),
        "the agent, given the standby first, followed the lease to the holder"
    );
    drop(metadata);
}
