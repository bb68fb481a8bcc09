//! `acks` as DESIGN.md says: acks=1 is treated as acks=all (acknowledged means committed,
//! there is no weaker point), and acks=0 gets no answer at all yet loses nothing on a
//! healthy agent — the connection stays usable for the requests after it.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use rdkafka::producer::FutureProducer;
use support::Playground;
use support::kafka::{self, Record};

const RECORDS: usize = 2_000;

fn records(acks: &str) -> Vec<Record> {
    (0..RECORDS)
        .map(|i| Record {
            timestamp: Some(support::recent_ms() + i as i64),
            ..Record::new(format!("key-{i}"), format!("acks={acks} record {i}"))
        })
        .collect()
}

fn round_trip(acks: &str) {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = format!("acks-{acks}");
    kafka::create_topic(&bootstrap, &topic, 1);
    let producer: FutureProducer = kafka::producer_config(&bootstrap)
        .set("acks", acks)
        .create()
        .expect("create a producer");
    let sent = records(acks);
    let outcomes = kafka::produce(&producer, &topic, Some(0), &sent);
    for (i, outcome) in outcomes.iter().enumerate() {
        let (partition, offset) = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("acks={acks}: record {i} failed: {e}"));
        assert_eq!(*partition, 0);
        if acks != "0" {
            // With an answer, the offset is the committed one; acks=0 reports none.
            assert_eq!(*offset, i as i64, "acks={acks}: record {i}'s offset");
        }
    }
    // Without answers, the producer cannot know when the records are committed: the
    // high watermark tells.
    let consumer = kafka::consumer(&bootstrap);
    let deadline = std::time::Instant::now() + kafka::PATIENCE;
    while kafka::watermarks(&consumer, &topic, 0).1 < RECORDS as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "acks={acks}: records never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ends = BTreeMap::from([(0, RECORDS as i64)]);
    let consumed = kafka::consume_until(&consumer, &topic, &ends);
    kafka::assert_partition(&topic, 0, &consumed[&0], &sent);
}

#[test]
fn acks_0_gets_no_answer_and_loses_nothing() {
    round_trip("0");
}

#[test]
fn acks_1_answers_with_committed_offsets() {
    round_trip("1");
}

/// On the wire: a Produce with acks=0 gets no response frame — the next frame the client
/// reads answers the request after it — and its records are committed all the same.
#[test]
fn acks_0_sends_no_response_frame() {
    use support::wire;
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, "acks-0-wire", 1);
    let mut stream = wire::connect(&bootstrap);
    let batch = wire::record_batch(&[(b"k", b"fire and forget")], support::recent_ms());
    let mut produce = wire::produce_v3(41, "acks-0-wire", 0, &batch);
    // acks follows the frame length, the request header and the null transactional id.
    let acks_at = 4 + wire::request_header(0, 3, 41).len() + 2;
    produce[acks_at..acks_at + 2].copy_from_slice(&0i16.to_be_bytes());
    wire::send(&mut stream, &produce);
    wire::send(&mut stream, &wire::frame(&wire::request_header(18, 0, 42)));
    let wire::Reply::Frame(frame) = wire::read_reply(&mut stream) else {
        panic!("the connection closed after an acks=0 produce");
    };
    let (correlation_id, error, _) = wire::parse_api_versions_v0(&frame);
    assert_eq!(
        correlation_id, 42,
        "the first answer is the ApiVersions one: none for acks=0"
    );
    assert_eq!(error, 0);
    let consumer = kafka::consumer(&bootstrap);
    let deadline = std::time::Instant::now() + kafka::PATIENCE;
    while kafka::watermarks(&consumer, "acks-0-wire", 0).1 < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the acks=0 record was never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
