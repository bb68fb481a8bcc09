//! kcat (Debian's, on librdkafka 2.0.2 — an older client, picky about ApiVersions)
//! against a real `weir playground`: it produces with every codec to an auto-created
//! topic and reads everything back, and its offset-by-timestamp queries (`-Q`) return
//! the offset of the first record at or after the timestamp.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use support::Playground;
use support::kafka::{self, Record};
use support::tools;

const PER_CODEC: usize = 1_000;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}

fn kcat(bootstrap: &str) -> Command {
    let mut command = Command::new(tools::kcat());
    command.args([
        "-b",
        bootstrap,
        "-m",
        "30",
        "-X",
        "api.version.request=true",
    ]);
    command
}

/// `kcat -Q -t topic:partition:timestamp`: the offset it prints.
fn offset_for_time(bootstrap: &str, topic: &str, partition: i32, timestamp: i64) -> i64 {
    let out = tools::run(
        kcat(bootstrap).args(["-Q", "-t", &format!("{topic}:{partition}:{timestamp}")]),
        b"",
    );
    let prefix = format!("{topic} [{partition}] offset ");
    let line = out
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("kcat -Q printed no offset for {topic}/{partition}: {out:?}"));
    line[prefix.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("kcat -Q printed {line:?}: {e}"))
}

fn line(i: usize) -> (String, String) {
    (
        format!("key-{i}"),
        format!("value {i} {}", "x".repeat(i % 50)),
    )
}

#[test]
fn kcat_produces_with_every_codec_and_reads_everything_back() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "kcat-records"; // auto-created by kcat's first Metadata request

    let mut runs = Vec::new();
    for (run, codec) in CODECS.iter().enumerate() {
        let input: String = (run * PER_CODEC..(run + 1) * PER_CODEC)
            .map(|i| {
                let (key, value) = line(i);
                format!("{key}\t{value}\n")
            })
            .collect();
        let before = now_ms();
        tools::run(
            kcat(&bootstrap).args([
                "-P",
                "-t",
                topic,
                "-K",
                "\t",
                "-H",
                &format!("codec={codec}"),
                "-X",
                &format!("compression.codec={codec}"),
                "-X",
                "enable.idempotence=false",
            ]),
            input.as_bytes(),
        );
        runs.push((codec, before, now_ms()));
    }

    let out = tools::run(
        kcat(&bootstrap).args([
            "-C",
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o\t%k\t%s\t%h\t%T\n",
        ]),
        b"",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        CODECS.len() * PER_CODEC,
        "kcat reads back every record it produced, once"
    );
    let mut timestamps = Vec::new();
    for (i, got) in lines.iter().enumerate() {
        let fields: Vec<&str> = got.split('\t').collect();
        let (codec, before, after) = runs[i / PER_CODEC];
        let (key, value) = line(i);
        assert_eq!(
            fields[..4],
            [
                i.to_string().as_str(),
                key.as_str(),
                value.as_str(),
                format!("codec={codec}").as_str()
            ],
            "record {i}: offset, key, value and header read back by kcat"
        );
        let timestamp: i64 = fields[4].parse().expect("a timestamp");
        assert!(
            (before..=after).contains(&timestamp),
            "record {i}: its create time {timestamp} is within its kcat run [{before}, {after}]"
        );
        timestamps.push(timestamp);
    }

    // Queries by the timestamps kcat stamped: the first offset at or after each.
    for at in [0, 1, PER_CODEC + 1, 2 * PER_CODEC, lines.len() - 1] {
        let t = timestamps[at];
        let first = timestamps
            .iter()
            .position(|ts| *ts >= t)
            .expect("one at least") as i64;
        assert_eq!(
            offset_for_time(&bootstrap, topic, 0, t),
            first,
            "kcat -Q {topic}:0:{t}: the first offset with a timestamp at or after it"
        );
    }
    let last = *timestamps.iter().max().expect("records");
    assert_eq!(
        offset_for_time(&bootstrap, topic, 0, last + 1),
        -1,
        "kcat -Q after the last record's timestamp: no such offset"
    );
}

#[test]
fn kcat_offset_queries_by_timestamp_return_the_first_record_at_or_after() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "kcat-times";
    kafka::create_topic(&bootstrap, topic, 2);

    // Partition 1: three batches of ten records, create times base, base+10, …, base+290,
    // chosen by the producer.
    let base = support::recent_ms();
    let producer = kafka::producer(&bootstrap);
    for batch in 0..3 {
        let records: Vec<Record> = (batch * 10..batch * 10 + 10)
            .map(|i| Record {
                timestamp: Some(base + 10 * i),
                ..Record::new(format!("k{i}"), format!("v{i}"))
            })
            .collect();
        let acked = kafka::produce_ok(&producer, topic, Some(1), &records);
        assert_eq!(acked.first(), Some(&(1, batch * 10)));
    }

    for (timestamp, expected) in [
        (0, 0),
        (base - 1, 0),
        (base, 0),
        (base + 1, 1),
        (base + 10, 1),
        (base + 55, 6),
        (base + 95, 10), // the first record of the second batch
        (base + 100, 10),
        (base + 101, 11),
        (base + 290, 29), // the last record
        (base + 291, -1), // after every record
    ] {
        assert_eq!(
            offset_for_time(&bootstrap, topic, 1, timestamp),
            expected,
            "kcat -Q {topic}:1:{timestamp}"
        );
    }
    // An empty partition has no offset for any time.
    assert_eq!(
        offset_for_time(&bootstrap, topic, 0, base),
        -1,
        "kcat -Q on an empty partition"
    );
}
