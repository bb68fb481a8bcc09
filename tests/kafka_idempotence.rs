//! Idempotent producers end to end: librdkafka with `enable.idempotence=true` through a
//! proxy that cuts its connections mid-flight retries until every record is written,
//! and a consumer then finds each record exactly once, in order; a Produce replayed by
//! hand is answered with the original offset and stores no second copy, and gaps and
//! stale epochs get Kafka's error codes.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rdkafka::producer::FutureProducer;
use support::kafka::{self, Record};
use support::proxy::{Cutting, Proxy};
use support::{Playground, WeirProcess, free_port, wire};

const PARTITIONS: i32 = 3;
const RECORDS: usize = 12_000;

/// The seed of the proxy's cuts: `WEIR_TEST_SEED`, or a fixed one.
fn seed() -> u64 {
    std::env::var("WEIR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_122)
}

#[test]
fn an_idempotent_producer_whose_connections_are_cut_writes_each_record_once_in_order() {
    let seed = seed();
    eprintln!("proxy seed {seed} (set WEIR_TEST_SEED to replay)");
    let agent_port = free_port();
    let agent: SocketAddr = format!("127.0.0.1:{agent_port}").parse().expect("address");
    let proxy = Proxy::start(
        agent,
        Cutting {
            seed,
            min_bytes: 1024,
            max_bytes: 48 * 1024,
            max_cuts: 60,
        },
    );
    // Clients learn brokers from Metadata: the playground advertises the proxy.
    let root = tempfile::TempDir::new().expect("temp dir");
    let args: Vec<String> = [
        "playground",
        "--data-dir",
        &root.path().join("data").display().to_string(),
        "--listen",
        &agent.to_string(),
        "--advertise",
        &proxy.addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _playground = WeirProcess::start(
        "weir playground behind a cutting proxy",
        &args,
        &[],
        "Weir playground: bootstrap.servers=",
        &root.path().join("playground.log"),
    );
    let bootstrap = proxy.addr.to_string();
    let topic = "idempotent-cut";
    kafka::create_topic(&bootstrap, topic, PARTITIONS);

    let producer: FutureProducer = kafka::producer_config(&bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("batch.num.messages", "200")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "20")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200")
        .create()
        .expect("create an idempotent producer");
    let sent: BTreeMap<i32, Vec<Record>> = (0..PARTITIONS)
        .map(|p| {
            let records = (0..RECORDS / PARTITIONS as usize)
                .map(|i| Record {
                    timestamp: Some(support::recent_ms() + i as i64),
                    ..Record::new(format!("key-{p}-{i}"), format!("partition {p} record {i}"))
                })
                .collect();
            (p, records)
        })
        .collect();

    proxy.arm(true);
    // Interleave partitions so that every request carries several of them.
    std::thread::scope(|scope| {
        for (p, records) in &sent {
            let producer = &producer;
            scope.spawn(move || {
                for (chunk, records) in records.chunks(500).enumerate() {
                    let outcomes = kafka::produce(producer, topic, Some(*p), records);
                    for (i, outcome) in outcomes.iter().enumerate() {
                        let at = chunk * 500 + i;
                        let (partition, _) = outcome.as_ref().unwrap_or_else(|e| {
                            panic!("partition {p} record {at} was not acknowledged: {e}")
                        });
                        assert_eq!(partition, p);
                    }
                }
            });
        }
    });
    proxy.arm(false);
    let cuts = proxy.cuts();
    eprintln!("the proxy cut {cuts} connections");
    assert!(
        cuts >= 10,
        "the proxy cut only {cuts} connections: the test did not test retries"
    );

    let consumer = kafka::consumer(&bootstrap);
    let mut ends = BTreeMap::new();
    for (p, records) in &sent {
        let (_, high) = kafka::watermarks(&consumer, topic, *p);
        assert_eq!(
            high,
            records.len() as i64,
            "partition {p} holds each record once: no duplicates from retries"
        );
        ends.insert(*p, high);
    }
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    for (p, records) in &sent {
        kafka::assert_partition(topic, *p, &consumed[p], records);
    }
}

#[test]
fn a_produce_replayed_by_hand_gets_its_original_offset() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "idempotent-replay";
    kafka::create_topic(&bootstrap, topic, 1);
    let mut stream = wire::connect(&bootstrap);

    wire::send(&mut stream, &wire::init_producer_id_v0(1));
    let wire::Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("InitProducerId got no answer");
    };
    let (correlation, error, producer_id, epoch) = wire::parse_init_producer_id_v0(&frame);
    assert_eq!((correlation, error), (1, 0));
    assert!(producer_id >= 0, "a producer id: {producer_id}");

    let produce = |stream: &mut std::net::TcpStream, correlation: i32, batch: &[u8]| {
        wire::send(stream, &wire::produce_v3(correlation, topic, 0, batch));
        let wire::Reply::Frame(frame) = wire::read_reply(stream) else {
            panic!("Produce {correlation} got no answer");
        };
        let (got, mut answers) = wire::parse_produce_v3(&frame);
        assert_eq!(got, correlation);
        let answer = answers.pop().expect("one partition");
        (answer.error_code, answer.base_offset)
    };
    let records: [(&[u8], &[u8]); 3] = [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")];
    let first =
        wire::idempotent_record_batch(&records, support::recent_ms(), producer_id, epoch, 0);
    assert_eq!(produce(&mut stream, 2, &first), (0, 0));
    let other = wire::record_batch(&[(b"x", b"plain")], support::recent_ms());
    assert_eq!(produce(&mut stream, 3, &other), (0, 3));
    assert_eq!(
        produce(&mut stream, 4, &first),
        (0, 0),
        "the replay is answered with the offset the batch got the first time"
    );
    let ahead =
        wire::idempotent_record_batch(&records, support::recent_ms(), producer_id, epoch, 7);
    assert_eq!(
        produce(&mut stream, 5, &ahead).0,
        19,
        "a batch ahead of the sequence is NOT_ENOUGH_REPLICAS: retriable, nothing written"
    );
    let behind =
        wire::idempotent_record_batch(&records, support::recent_ms(), producer_id, epoch, 1);
    assert_eq!(
        produce(&mut stream, 6, &behind).0,
        45,
        "a batch behind it, and none of the last five, is OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    // A newer epoch (as after a KIP-360 bump) starts again at 0 and fences the old one.
    let newer = wire::idempotent_record_batch(
        &records[..1],
        support::recent_ms(),
        producer_id,
        epoch + 1,
        0,
    );
    assert_eq!(produce(&mut stream, 7, &newer), (0, 4));
    let stale =
        wire::idempotent_record_batch(&records[..1], support::recent_ms(), producer_id, epoch, 3);
    assert_eq!(
        produce(&mut stream, 8, &stale).0,
        47,
        "the old epoch is INVALID_PRODUCER_EPOCH"
    );

    let consumer = kafka::consumer(&bootstrap);
    assert_eq!(
        kafka::watermarks(&consumer, topic, 0),
        (0, 5),
        "three records, one, and one: no second copy, nothing refused"
    );
    let ends = BTreeMap::from([(0, 5)]);
    let consumed = kafka::consume_until(&consumer, topic, &ends);
    let values: Vec<_> = consumed[&0]
        .iter()
        .map(|c| {
            String::from_utf8_lossy(c.record.value.as_deref().unwrap_or_default()).into_owned()
        })
        .collect();
    assert_eq!(values, ["v0", "v1", "v2", "plain", "v0"]);
}
