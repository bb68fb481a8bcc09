//! Batches built with kafka-protocol's encoder, as a producer would send them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

/// What one producer batch holds.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) compression: Compression,
    /// One `(timestamp, value)` per record.
    pub(crate) records: Vec<(i64, Vec<u8>)>,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
}

impl Spec {
    /// An uncompressed batch of records with these timestamps.
    pub(crate) fn plain(timestamps: &[i64]) -> Spec {
        Spec {
            compression: Compression::None,
            records: timestamps
                .iter()
                .map(|&ts| (ts, format!("value at {ts}").into_bytes()))
                .collect(),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }

    pub(crate) fn compressed(mut self, compression: Compression) -> Spec {
        self.compression = compression;
        self
    }
}

pub(crate) const COMPRESSIONS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Encodes `spec` as one batch with baseOffset 0, as producers send it.
pub(crate) fn encode(spec: &Spec) -> Bytes {
    let records: Vec<Record> = spec
        .records
        .iter()
        .enumerate()
        .map(|(i, (timestamp, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: spec.base_sequence.wrapping_add(i as i32),
            timestamp: *timestamp,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(value.clone())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: spec.compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode a test batch");
    buf.freeze()
}

/// Recomputes a batch's CRC after a test edited a covered field.
pub(crate) fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

pub(crate) fn specs() -> impl Strategy<Value = Spec> {
    let record = (
        0i64..2_000_000_000_000,
        prop::collection::vec(any::<u8>(), 0..40),
    );
    (
        prop::sample::select(COMPRESSIONS.to_vec()),
        prop::collection::vec(record, 1..8),
        prop_oneof![
            Just((-1i64, -1i16, -1i32)),
            (0i64..1 << 40, 0i16..10, 0i32..1000)
        ],
    )
        .prop_map(
            |(compression, records, (producer_id, producer_epoch, base_sequence))| Spec {
                compression,
                records,
                producer_id,
                producer_epoch,
                base_sequence,
            },
        )
}
