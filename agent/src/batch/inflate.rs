//! Inflating a batch's compressed records, bounded: a decompression bomb is refused
//! once the limit is passed, never inflated whole.

use std::borrow::Cow;
use std::io::{self, Read};

use kafka_protocol::records::Compression;

use super::{BatchError, XERIAL_HEADER, corrupt};

/// A batch's records, inflated unless they are uncompressed. Records that inflate past
/// `limit` bytes are refused once `limit + 1` bytes are out (snappy's before any are).
pub(crate) fn inflate(
    payload: &[u8],
    compression: Compression,
    limit: usize,
) -> Result<Cow<'_, [u8]>, BatchError> {
    let inflated = match compression {
        Compression::None => return Ok(Cow::Borrowed(payload)),
        Compression::Gzip => inflate_gzip(payload, limit),
        Compression::Snappy => inflate_snappy(payload, limit),
        Compression::Lz4 => lz4::Decoder::new(payload)
            .map_err(Inflate::from)
            .and_then(|decoder| read_at_most(decoder, limit)),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(payload)
            .map_err(Inflate::from)
            .and_then(|decoder| read_at_most(decoder, limit)),
    };
    match inflated {
        Ok(records) => Ok(Cow::Owned(records)),
        Err(Inflate::OverLimit) => Err(BatchError::InflatesTooLarge {
            codec: compression,
            max: limit,
        }),
        Err(Inflate::Malformed(e)) => Err(corrupt(format!(
            "cannot decompress {compression:?} records: {e}"
        ))),
    }
}

/// Why compressed records were not inflated.
enum Inflate {
    /// They inflate past the limit.
    OverLimit,
    /// They are not a stream of their codec.
    Malformed(io::Error),
}

impl From<io::Error> for Inflate {
    fn from(e: io::Error) -> Self {
        Inflate::Malformed(e)
    }
}

impl From<snap::Error> for Inflate {
    fn from(e: snap::Error) -> Self {
        Inflate::Malformed(e.into())
    }
}

fn malformed(reason: String) -> Inflate {
    Inflate::Malformed(io::Error::new(io::ErrorKind::InvalidData, reason))
}

/// Reads `decoder` to its end, unless it has more than `limit` bytes.
fn read_at_most(decoder: impl Read, limit: usize) -> Result<Vec<u8>, Inflate> {
    let mut records = Vec::new();
    let one_past_limit = u64::try_from(limit).map_or(u64::MAX, |limit| limit.saturating_add(1));
    decoder.take(one_past_limit).read_to_end(&mut records)?;
    if records.len() > limit {
        return Err(Inflate::OverLimit);
    }
    Ok(records)
}

/// One gzip member, as producers write it, and nothing after it.
fn inflate_gzip(payload: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    // Over a `&[u8]`, the decoder consumes exactly its member: what is left follows it.
    let mut decoder = flate2::bufread::GzDecoder::new(payload);
    let records = read_at_most(&mut decoder, limit)?;
    let after = decoder.get_ref().len();
    if after > 0 {
        return Err(malformed(format!("{after} bytes follow the gzip stream")));
    }
    Ok(records)
}

/// Snappy as snappy-java frames it ([`XERIAL_HEADER`], then length-prefixed blocks),
/// or, without that header, one raw snappy block, as snappy-java and kafka-protocol
/// read it.
fn inflate_snappy(payload: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    let mut records = Vec::new();
    let Some(mut blocks) = payload.strip_prefix(XERIAL_HEADER.as_slice()) else {
        append_snappy_block(payload, &mut records, limit)?;
        return Ok(records);
    };
    while !blocks.is_empty() {
        let (length, rest) = blocks.split_first_chunk::<4>().ok_or_else(|| {
            malformed(format!(
                "{} bytes left, too few for a snappy block length",
                blocks.len()
            ))
        })?;
        let length = u32::from_be_bytes(*length);
        let Some(block) = usize::try_from(length).ok().and_then(|len| rest.get(..len)) else {
            return Err(malformed(format!(
                "snappy block of {length} bytes but {} bytes are left",
                rest.len()
            )));
        };
        append_snappy_block(block, &mut records, limit)?;
        blocks = &rest[block.len()..];
    }
    Ok(records)
}

/// Inflates one raw snappy block onto `records`, checking the length its header states
/// against `limit` before making room for it.
fn append_snappy_block(block: &[u8], records: &mut Vec<u8>, limit: usize) -> Result<(), Inflate> {
    let length = snap::raw::decompress_len(block)?;
    if length > limit - records.len() {
        return Err(Inflate::OverLimit);
    }
    let start = records.len();
    records.resize(start + length, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut records[start..])?;
    records.truncate(start + written);
    Ok(())
}
