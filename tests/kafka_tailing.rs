//! Consumers that tail: assigned before anything is written, they long-poll at the high
//! watermark and must get every record as it is committed — through the agent that
//! wrote it, and through another agent that learns of commits only from the control
//! plane's watermark watch.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::kafka::{self, Record};
use support::{Cluster, Playground};

const ROUNDS: usize = 5;
const PER_ROUND: usize = 200;

fn round(r: usize) -> Vec<Record> {
    (0..PER_ROUND)
        .map(|i| Record {
            timestamp: Some(support::recent_ms() + (r * PER_ROUND + i) as i64),
            ..Record::new(format!("key-{r}-{i}"), format!("round {r}, record {i}"))
        })
        .collect()
}

/// Starts a consumer at offset 0 of the empty partition 0, then writes `ROUNDS` rounds
/// with pauses between them; the consumer must read all of them, in order.
fn tail(writer_bootstrap: &str, reader_bootstrap: &str, topic: &str) {
    kafka::create_topic(writer_bootstrap, topic, 1);
    let ends = BTreeMap::from([(0, (ROUNDS * PER_ROUND) as i64)]);
    let reader = {
        let (bootstrap, topic, ends) = (
            reader_bootstrap.to_string(),
            topic.to_string(),
            ends.clone(),
        );
        std::thread::spawn(move || {
            let consumer = kafka::consumer(&bootstrap);
            kafka::consume_until(&consumer, &topic, &ends)
        })
    };
    let producer = kafka::producer(writer_bootstrap);
    let mut written = Vec::new();
    for r in 0..ROUNDS {
        // Pauses longer than a long poll's wait, so the consumer sits at the watermark.
        std::thread::sleep(Duration::from_millis(700));
        let records = round(r);
        kafka::produce_ok(&producer, topic, Some(0), &records);
        written.extend(records);
    }
    let consumed = reader.join().expect("the consumer thread");
    kafka::assert_partition(topic, 0, &consumed[&0], &written);
}

#[test]
fn a_tailing_consumer_gets_every_record_as_it_is_committed() {
    let playground = Playground::start();
    tail(&playground.bootstrap(), &playground.bootstrap(), "tailed");
}

#[test]
fn a_consumer_of_another_agent_tails_what_this_one_writes() {
    let cluster = Cluster::start(&["zone-a", "zone-b"]);
    tail(
        &cluster.agents[0].bootstrap(),
        &cluster.agents[1].bootstrap(),
        "tailed-across",
    );
}
