//! A producer's batches through the object format and back out to a consumer: split
//! and check the produce request, seal an object, store it as a file, read it back,
//! give batches their offsets, and decode what a consumer would get.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_agent::batch::{self, first_record_at_or_after, with_base_offset};
use weir_agent::object::{FooterEntry, Level, ObjectBuilder, describe, read_object};
use weir_metadata::{Partition, TopicId};

const MAX_BATCH_BYTES: usize = 1 << 20;

/// One producer batch: values `first..first + count`, timestamped 1000 × value.
fn produce(first: u32, count: u32, compression: Compression) -> Bytes {
    let records: Vec<Record> = (first..first + count)
        .map(|n| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(n - first),
            sequence: -1 + (n - first) as i32,
            timestamp: 1000 * i64::from(n),
            key: Some(Bytes::from(format!("key-{n}"))),
            value: Some(Bytes::from(format!("value-{n}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode a batch");
    buf.freeze()
}

#[test]
fn produced_batches_reach_a_consumer_through_a_stored_object() {
    let orders = (TopicId::random(), Partition(0));
    let clicks = (TopicId::random(), Partition(3));
    let requests = [
        (orders, produce(0, 3, Compression::Zstd)),
        (clicks, produce(100, 2, Compression::None)),
        (orders, produce(3, 4, Compression::Gzip)),
        (clicks, produce(102, 1, Compression::Snappy)),
        (orders, produce(7, 2, Compression::Lz4)),
    ];

    let mut builder = ObjectBuilder::new(Level::WRITER);
    for (request, ((topic, partition), records)) in requests.iter().enumerate() {
        for batch in batch::split(records, MAX_BATCH_BYTES).expect("valid produce request") {
            builder.push(*topic, *partition, batch, request);
        }
    }
    let sealed = builder.finish();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("object.weir");
    std::fs::write(&path, sealed.parts.concat()).expect("store the object");
    let object = std::fs::read(&path).expect("read the object back");
    assert_eq!(object.len() as u64, sealed.size);

    // The sequencer's part: each partition's batches get consecutive offsets from 0.
    let mut high_watermarks: HashMap<(TopicId, Partition), i64> = HashMap::new();
    let mut base_offsets: HashMap<FooterEntry, i64> = HashMap::new();
    for (entry, _) in &sealed.batches {
        let high_watermark = high_watermarks
            .entry((entry.topic, entry.partition))
            .or_default();
        base_offsets.insert(*entry, *high_watermark);
        *high_watermark += i64::from(entry.record_count);
    }

    // The fetch path: each partition's batches, rewritten with their offsets.
    let view = read_object(&object).expect("a sealed object reads back");
    let mut fetched: HashMap<(TopicId, Partition), BytesMut> = HashMap::new();
    for (entry, bytes) in view.batches() {
        let out = fetched.entry((entry.topic, entry.partition)).or_default();
        with_base_offset(bytes, base_offsets[entry], out);
    }

    for ((partition, first_value, count), label) in
        [((orders, 0, 9), "orders"), ((clicks, 100, 3), "clicks")]
    {
        let mut log = fetched[&partition].clone().freeze();
        let log_bytes = log.clone();
        let records: Vec<Record> = RecordBatchDecoder::decode_all(&mut log)
            .expect("a consumer decodes the fetched batches")
            .into_iter()
            .flat_map(|set| set.records)
            .collect();
        let seen: Vec<(i64, String)> = records
            .iter()
            .map(|r| {
                let value = r.value.clone().expect("a value");
                (r.offset, String::from_utf8(value.to_vec()).expect("utf-8"))
            })
            .collect();
        let expected: Vec<(i64, String)> = (0..count)
            .map(|i| (i64::from(i), format!("value-{}", first_value + i)))
            .collect();
        assert_eq!(seen, expected, "{label}");

        // ListOffsets by timestamp over the same bytes.
        let third = 1000 * i64::from(first_value + 2);
        let found = first_record_at_or_after(&log_bytes, third - 1).expect("valid batches");
        assert_eq!(found, Some((2, third)), "{label}");
    }

    let lookup = |entry: &FooterEntry| base_offsets.get(entry).copied();
    let text = describe(&object, Some(&lookup)).expect("describe the object");
    for topic in [orders.0, clicks.0] {
        assert!(text.contains(&topic.to_string()), "{text}");
    }
    assert!(
        text.contains("5 batches, 12 records, 2 partitions"),
        "{text}"
    );
}
