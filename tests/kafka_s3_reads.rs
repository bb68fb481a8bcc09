//! What reading costs in object-store requests: three consumers reading the same
//! ~100 MB from one agent (a playground on the in-process S3 server, cache cold after a
//! restart) make about one GET per 1 MiB block, however many of them read it, counted
//! by the agent's `weir_object_store_requests_total{op="get"}` on /metrics.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use support::kafka::{self, Record};
use support::s3::S3;
use support::{Playground, free_port};

const BLOCK: u64 = 1024 * 1024;
const PARTITIONS: i32 = 4;

/// One sample of a Prometheus text exposition, e.g. `weir_object_store_requests_total{op="get"}`.
fn metric(http: &str, name: &str) -> f64 {
    let (_, text) = support::http::get(http, "/metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

#[test]
fn three_consumers_cost_about_one_get_per_block() {
    const RECORDS: usize = 10_000;
    const VALUE_BYTES: usize = 10_000;
    let s3 = S3::start();
    let envs = s3.envs();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url();
    let http = format!("127.0.0.1:{}", free_port());
    let mut playground = Playground::start_with(&["--bucket", &url, "--http-listen", &http], &envs);
    let bootstrap = playground.bootstrap();
    let topic = "reads";
    kafka::create_topic(&bootstrap, topic, PARTITIONS);

    // ~100 MB of incompressible values.
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| {
            let mut value = vec![0u8; VALUE_BYTES];
            let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for byte in &mut value {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            Record::new(format!("key-{i}"), value)
        })
        .collect();
    let producer = kafka::producer(&bootstrap);
    kafka::produce_ok(&producer, topic, None, &records);
    drop(producer);
    // Once every record is acknowledged, the produce path's hand-offs hold nothing.
    for gauge in [
        "weir_agent_buffered_produce_bytes",
        "weir_agent_writer_queued_batches",
        "weir_agent_uploading_objects",
        "weir_agent_committing_objects",
    ] {
        assert_eq!(metric(&http, gauge), 0.0, "{gauge} after every ack");
    }

    // A cold cache: restart, then three consumers read everything at once.
    playground.stop();
    playground.restart();
    let gets_before = metric(&http, r#"weir_object_store_requests_total{op="get"}"#);
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let bootstrap = bootstrap.clone();
            std::thread::spawn(move || {
                let consumer = kafka::consumer(&bootstrap);
                let ends: BTreeMap<i32, i64> = (0..PARTITIONS)
                    .map(|p| (p, kafka::watermarks(&consumer, topic, p).1))
                    .collect();
                let consumed = kafka::consume_until(&consumer, topic, &ends);
                consumed.values().map(Vec::len).sum::<usize>()
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().expect("a reader"), RECORDS);
    }
    let gets = metric(&http, r#"weir_object_store_requests_total{op="get"}"#) - gets_before;
    let get_bytes = metric(&http, r#"weir_object_store_bytes_total{op="get"}"#);
    playground.stop();

    let objects = s3.objects();
    let stored: u64 = objects.iter().map(|(_, b)| b.len() as u64).sum();
    let blocks: u64 = objects
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(BLOCK))
        .sum();
    let per_block = gets / blocks as f64;
    eprintln!(
        "three consumers read {} MB in {} objects ({blocks} blocks of 1 MiB): {gets} GETs \
         ({per_block:.3} per block), {:.1} MB fetched",
        stored / 1_000_000,
        objects.len(),
        get_bytes / 1e6
    );
    assert!(
        per_block <= 1.1,
        "at most ~1.1 GETs per block however many consumers read it; got {gets} GETs for {blocks} blocks"
    );
}
