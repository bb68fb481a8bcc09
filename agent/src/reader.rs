//! The read path: index entries become record batches with their real offsets,
//! read through the block cache.

use bytes::BytesMut;
use weir_cache::BlockCache;
use weir_control_plane::proto::IndexEntry;
use weir_metadata::ObjectId;

use crate::batch;
use crate::error::{Error, Result};
use crate::writer::Bucket;

/// Bytes of a batch header up to and including `batchLength`.
const LOG_OVERHEAD: usize = 12;

#[derive(Clone, Debug)]
pub struct Reader {
    bucket: Bucket,
    cache: BlockCache,
}

impl Reader {
    pub fn new(bucket: Bucket, cache: BlockCache) -> Self {
        Reader { bucket, cache }
    }

    /// Appends the batches of `entry` to `out`, each with its base offset set.
    pub async fn read_entry(&self, entry: &IndexEntry, out: &mut BytesMut) -> Result<()> {
        let object = ObjectId::from_slice(&entry.object_id)
            .map_err(|e| Error::CorruptObject(format!("index entry names a bad object id: {e}")))?;
        let path = self.bucket.path(object);
        let bytes = self
            .cache
            .read(
                &path,
                entry.position..entry.position + entry.length,
                entry.object_size,
            )
            .await?;
        let mut offset = entry.base_offset;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            if rest.len() < LOG_OVERHEAD + 49 {
                return Err(corrupt(&path, entry, "truncated batch header"));
            }
            let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
            let total = LOG_OVERHEAD
                + usize::try_from(length)
                    .map_err(|_| corrupt(&path, entry, "negative batch length"))?;
            if total > rest.len() {
                return Err(corrupt(&path, entry, "batch runs past its index entry"));
            }
            let (one, tail) = rest.split_at(total);
            let last_offset_delta = i32::from_be_bytes([one[23], one[24], one[25], one[26]]);
            batch::with_base_offset(one, offset, out);
            offset += i64::from(last_offset_delta) + 1;
            rest = tail;
        }
        Ok(())
    }
}

fn corrupt(path: &object_store::path::Path, entry: &IndexEntry, why: &str) -> Error {
    Error::CorruptObject(format!(
        "object {path} at {}..+{} (offsets from {}): {why}",
        entry.position, entry.length, entry.base_offset
    ))
}
