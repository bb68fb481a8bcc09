//! Writes the seed inputs of the fuzz targets (fuzz/fuzz_targets) into a directory,
//! one subdirectory per target: valid requests, batches in every codec, and an object,
//! so that the fuzzer starts from what clients and the agent really produce.
//!
//!   cargo run -p weir-agent --example fuzz_seeds -- fuzz/seeds

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    RequestHeader, RequestKind, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use weir_agent::batch;
use weir_agent::object::{Level, ObjectBuilder};
use weir_agent::versions::SUPPORTED;
use weir_metadata::{Partition, TopicId};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    kafka_request(&out.join("kafka_request"))?;
    record_batch(&out.join("record_batch"))?;
    object_footer(&out.join("object_footer"))?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

/// A producer's batch of three small records.
fn batch(compression: Compression) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = (0..3i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: [(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"v")),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)?;
    Ok(buf.freeze())
}

fn kafka_request(dir: &Path) -> anyhow::Result<()> {
    let topic = TopicName(StrBytes::from_static_str("seed"));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic.clone())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(Compression::None)?)),
                ]),
        ]);
    let fetch = FetchRequest::default()
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic.clone())
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let list_offsets = ListOffsetsRequest::default().with_topics(vec![
        ListOffsetsTopic::default()
            .with_name(topic.clone())
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)]),
    ]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic)),
    ]));
    let requests: [(ApiKey, &[i16], RequestKind); 5] = [
        (ApiKey::Produce, &[3, 9, 11], produce.into()),
        (ApiKey::Fetch, &[4, 12, 17], fetch.into()),
        (ApiKey::ListOffsets, &[1, 7], list_offsets.into()),
        (ApiKey::Metadata, &[1, 12], metadata.into()),
        (
            ApiKey::ApiVersions,
            &[0, 3],
            ApiVersionsRequest::default().into(),
        ),
    ];
    for (key, versions, request) in requests {
        for &version in versions {
            let mut frame = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("seed")))
                .encode(&mut frame, key.request_header_version(version))?;
            request.encode(&mut frame, version)?;
            write(dir, &format!("{key:?}-v{version}"), &frame)?;
            // The target's second form: [odd, index in SUPPORTED, version - min, rest].
            let (index, &(_, min, _)) = SUPPORTED
                .iter()
                .enumerate()
                .find(|(_, (k, _, _))| *k == key)
                .ok_or_else(|| anyhow::anyhow!("{key:?} is served"))?;
            let mut picked = vec![1, u8::try_from(index)?, u8::try_from(version - min)?];
            picked.extend_from_slice(&frame[4..]);
            write(dir, &format!("{key:?}-v{version}-picked"), &picked)?;
        }
    }
    Ok(())
}

fn record_batch(dir: &Path) -> anyhow::Result<()> {
    let plain = batch(Compression::None)?;
    for (codec, compression) in CODECS.into_iter().enumerate() {
        // As sent: [0, batch].
        let mut raw = vec![0];
        raw.extend_from_slice(&batch(compression)?);
        write(dir, &format!("{compression:?}"), &raw)?;
        // Built: [2, codec and flags, record count, uncompressed records].
        for (flags, name) in [(0, "built"), (0x10, "built-unset-max-timestamp")] {
            let mut built = vec![2, u8::try_from(codec)? | flags, 3];
            built.extend_from_slice(&plain[batch::HEADER_LEN..]);
            write(dir, &format!("{compression:?}-{name}"), &built)?;
        }
    }
    // Resealed: [1, batch].
    let mut resealed = vec![1];
    resealed.extend_from_slice(&plain);
    write(dir, "resealed", &resealed)?;
    Ok(())
}

fn object_footer(dir: &Path) -> anyhow::Result<()> {
    let mut builder = ObjectBuilder::new(Level::WRITER);
    let topic = TopicId(uuid::Uuid::from_u128(0x5eed));
    for (partition, compression) in [(0, Compression::None), (1, Compression::Zstd)] {
        let records = batch(compression)?;
        for valid in batch::split(&records, usize::MAX)? {
            builder.push(topic, Partition(partition), valid, ());
        }
    }
    let mut object = BytesMut::new();
    for part in builder.finish().parts {
        object.put_slice(&part);
    }
    for selector in [0u8, 1] {
        let mut input = vec![selector];
        input.extend_from_slice(&object);
        write(dir, &format!("object-{selector}"), &input)?;
    }
    Ok(())
}
