//! `weir-bench null-broker`: the ceiling. A Kafka listener that decodes every Produce
//! request and acknowledges it at once, storing nothing — what the client library and
//! this machine can do at all, so a broker's figures can be read as a share of it.
//!
//! It serves just enough for a producer: ApiVersions, Metadata (itself as the only
//! broker, every topic asked for with `--partitions` partitions), CreateTopics (always
//! succeeds), InitProducerId (for idempotent producers) and Produce (offsets from a per-partition counter, record
//! counts read from each batch header). Requests on a connection are answered in order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsResponse, InitProducerIdResponse,
    MetadataResponse, ProduceResponse, ProducerId, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SERVED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
];

/// Byte offset of `recordsCount` in a RecordBatch v2 header.
const RECORDS_COUNT_AT: usize = 57;

#[derive(Debug, clap::Args)]
pub(crate) struct NullBrokerArgs {
    #[arg(long, default_value = "127.0.0.1:9192")]
    listen: SocketAddr,
    /// Partitions every topic is said to have.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
}

#[derive(Debug, Default)]
struct State {
    /// The next offset of each (topic, partition).
    offsets: Mutex<HashMap<(StrBytes, i32), i64>>,
    producer_ids: AtomicI64,
}

pub(crate) async fn run(args: NullBrokerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("null broker: bootstrap.servers={address}");
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        let partitions = args.partitions;
        tokio::spawn(async move {
            if let Err(e) = serve(stream, address, partitions, &state).await {
                eprintln!("null broker connection: {e:#}");
            }
        });
    }
}

async fn serve(
    mut stream: TcpStream,
    address: SocketAddr,
    partitions: i32,
    state: &State,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = BytesMut::new();
    loop {
        let length = match stream.read_i32().await {
            Ok(length) => length,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        anyhow::ensure!(
            (0..=128 * 1024 * 1024).contains(&length),
            "bad frame length {length}"
        );
        let mut frame = vec![0u8; length as usize];
        stream.read_exact(&mut frame).await?;
        let mut frame = Bytes::from(frame);
        let key = ApiKey::try_from(frame.clone().get_i16())
            .map_err(|()| anyhow::anyhow!("unknown API key"))?;
        let version = frame.clone().slice(2..).get_i16();
        let header = RequestHeader::decode(&mut frame, key.request_header_version(version))?;
        let request = RequestKind::decode(key, &mut frame, version)?;
        let Some(response) = answer(request, address, partitions, state) else {
            continue; // acks=0
        };
        let start = out.len();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, key.response_header_version(version))?;
        response.encode(&mut out, version)?;
        let len = i32::try_from(out.len() - start - 4)?;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&out).await?;
        out.clear();
    }
}

fn answer(
    request: RequestKind,
    address: SocketAddr,
    partitions: i32,
    state: &State,
) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(_) => ApiVersionsResponse::default()
            .with_api_keys(
                SERVED
                    .iter()
                    .map(|&(key, min, max)| {
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
            )
            .into(),
        RequestKind::Metadata(r) => {
            let topics = r.topics.unwrap_or_default();
            MetadataResponse::default()
                .with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(0))
                        .with_host(StrBytes::from_string(address.ip().to_string()))
                        .with_port(i32::from(address.port())),
                ])
                .with_controller_id(BrokerId(0))
                .with_topics(
                    topics
                        .into_iter()
                        .filter_map(|t| t.name)
                        .map(|name| {
                            MetadataResponseTopic::default()
                                .with_name(Some(name))
                                .with_partitions(
                                    (0..partitions)
                                        .map(|p| {
                                            MetadataResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_leader_id(BrokerId(0))
                                                .with_replica_nodes(vec![BrokerId(0)])
                                                .with_isr_nodes(vec![BrokerId(0)])
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
                .into()
        }
        RequestKind::CreateTopics(r) => CreateTopicsResponse::default()
            .with_topics(
                r.topics
                    .into_iter()
                    .map(|t| {
                        CreatableTopicResult::default()
                            .with_name(t.name)
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
                    })
                    .collect(),
            )
            .into(),
        RequestKind::InitProducerId(_) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(
                state.producer_ids.fetch_add(1, Ordering::Relaxed),
            ))
            .with_producer_epoch(0)
            .into(),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let mut offsets = state.offsets.lock();
            let responses = r
                .topic_data
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_data
                        .into_iter()
                        .map(|p| {
                            let records = p.records.map_or(0, |r| record_count(&r));
                            let next = offsets.entry((topic.name.0.clone(), p.index)).or_insert(0);
                            let base = *next;
                            *next += records;
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_base_offset(base)
                                .with_log_append_time_ms(-1)
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(topic.name)
                        .with_partition_responses(partitions)
                })
                .collect();
            if acks == 0 {
                return None;
            }
            ProduceResponse::default().with_responses(responses).into()
        }
        other => {
            eprintln!(
                "null broker: no answer to {:?}",
                std::mem::discriminant(&other)
            );
            return None;
        }
    })
}

/// Records in a run of RecordBatch v2 batches, from their headers.
fn record_count(mut batches: &[u8]) -> i64 {
    let mut records = 0;
    while batches.len() >= RECORDS_COUNT_AT + 4 {
        let length = i32::from_be_bytes(batches[8..12].try_into().expect("4 bytes"));
        let count = i32::from_be_bytes(
            batches[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4]
                .try_into()
                .expect("4 bytes"),
        );
        records += i64::from(count.max(0));
        let next = 12 + usize::try_from(length).unwrap_or(usize::MAX);
        if next > batches.len() {
            break;
        }
        batches = &batches[next..];
    }
    records
}
