//! A topic's `compression.type`: batches whose codec differs from the topic's are
//! recompressed before they are stored, as Kafka's broker does.
//!
//! In a v2 batch the codec applies to the records section as a whole and the records'
//! encoding does not depend on it, so recompression inflates that section, compresses
//! it with the topic's codec, and writes a new header (codec bits, batchLength, CRC).
//! Every other field — producer id, epoch and sequence, timestamps, counts — and every
//! record byte (duplicate header keys included) stay as the producer sent them.

use std::io::Write;

use bytes::{BufMut, BytesMut};
use kafka_protocol::records::Compression;

use crate::batch::{
    self, ATTRIBUTES_AT, BatchError, CODEC_MASK, CRC_AT, CRC_START, HEADER_LEN,
    MAX_INFLATED_BATCH_BYTES, ValidBatch, XERIAL_HEADER,
};

/// The codec a topic's `compression.type` asks for; `None` for `producer` (keep the
/// producer's) or a value Weir does not know.
pub fn topic_codec(compression_type: &str) -> Option<Compression> {
    match compression_type {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// `batch` with its records compressed with `codec` at `level` (the topic's
/// `compression.<codec>.level`; `None` for the codec's default): the batch itself when
/// it already is, else a new one (checked by [`batch::split`] already, so it inflates).
/// As in Kafka, the level matters only when the batch is recompressed.
pub fn to_codec(
    batch: ValidBatch,
    codec: Compression,
    level: Option<i32>,
) -> Result<ValidBatch, BatchError> {
    if batch.header.compression() == Some(codec) {
        return Ok(batch);
    }
    let from = batch
        .header
        .compression()
        .ok_or_else(|| BatchError::Corrupt {
            reason: "unknown compression codec".into(),
        })?;
    let records = batch::inflate(&batch.bytes[HEADER_LEN..], from, MAX_INFLATED_BATCH_BYTES)?;
    let compressed = compress(&records, codec, level).map_err(|e| BatchError::Corrupt {
        reason: format!("cannot compress records with {codec:?}: {e}"),
    })?;

    let mut bytes = BytesMut::with_capacity(HEADER_LEN + compressed.len());
    bytes.put_slice(&batch.bytes[..HEADER_LEN]);
    bytes.put_slice(&compressed);
    let batch_length =
        i32::try_from(bytes.len() - batch::LOG_OVERHEAD).map_err(|_| BatchError::TooLarge {
            size: bytes.len(),
            max: i32::MAX as usize,
        })?;
    let attributes = (batch.header.attributes & !CODEC_MASK) | codec_id(codec);
    bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
    bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[CRC_AT..CRC_START].copy_from_slice(&crc.to_be_bytes());
    Ok(ValidBatch {
        header: batch::BatchHeader {
            batch_length,
            attributes,
            crc,
            ..batch.header
        },
        bytes: bytes.freeze(),
        ..batch
    })
}

fn codec_id(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Compresses a records section as Kafka's Java producer would: gzip, snappy in
/// snappy-java's framing, LZ4 frames, zstd; at `level` where the codec has levels.
fn compress(records: &[u8], codec: Compression, level: Option<i32>) -> std::io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(records.to_vec()),
        Compression::Gzip => {
            let level = level
                .and_then(|l| u32::try_from(l).ok())
                .map_or_else(flate2::Compression::default, flate2::Compression::new);
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(records)?;
            encoder.finish()
        }
        Compression::Snappy => {
            // snappy-java's framing: its header, then blocks of up to 32 KiB, each a
            // big-endian length and raw snappy.
            let mut out = XERIAL_HEADER.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(32 * 1024) {
                let compressed = encoder.compress_vec(block).map_err(std::io::Error::other)?;
                let length = u32::try_from(compressed.len()).map_err(std::io::Error::other)?;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut builder = lz4::EncoderBuilder::new();
            if let Some(level) = level.and_then(|l| u32::try_from(l).ok()) {
                builder.level(level);
            }
            let mut encoder = builder.build(Vec::new())?;
            encoder.write_all(records)?;
            let (out, result) = encoder.finish();
            result.map(|()| out)
        }
        Compression::Zstd => zstd::encode_all(records, level.unwrap_or(3)),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::batch::testing::{COMPRESSIONS, Spec, encode};

    /// Every codec to every codec: the result passes the produce checks, says its new
    /// codec, and decodes (with kafka-protocol's own decoder) to the same records.
    #[test]
    fn every_codec_recompresses_to_every_other_keeping_every_record() {
        for from in COMPRESSIONS {
            for to in COMPRESSIONS {
                let spec = Spec::plain(&[1_000, 3_000, 2_000]).compressed(from);
                let original = batch::split(&encode(&spec), usize::MAX)
                    .expect("valid")
                    .remove(0);
                let converted = to_codec(original.clone(), to, None).expect("recompress");
                let checked = batch::split(&converted.bytes, usize::MAX)
                    .expect("the recompressed batch is valid")
                    .remove(0);
                assert_eq!(checked.header, converted.header, "{from:?} -> {to:?}");
                assert_eq!(checked.header.compression(), Some(to));
                assert_eq!(checked.header.record_count, 3);
                assert_eq!(checked.header.max_timestamp, 3_000);
                let decode = |bytes: &Bytes| {
                    let mut bytes = bytes.clone();
                    let set = RecordBatchDecoder::decode(&mut bytes).expect("decodes");
                    set.records
                        .iter()
                        .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(decode(&converted.bytes), decode(&original.bytes));
            }
        }
    }

    #[test]
    fn topic_codecs_follow_kafkas_names() {
        assert_eq!(topic_codec("zstd"), Some(Compression::Zstd));
        assert_eq!(topic_codec("uncompressed"), Some(Compression::None));
        assert_eq!(topic_codec("producer"), None);
    }
}
