//! The read path: index entries become record batches with their real offsets,
//! read through the block cache.

use bytes::BytesMut;
use weir_cache::BlockCache;
use weir_control_plane_api::data::IndexEntry;
use weir_metadata::Offset;

use crate::batch::{self, BatchHeader};
use crate::bucket::Bucket;
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Reader {
    bucket: Bucket,
    cache: BlockCache,
}

impl Reader {
    pub fn new(bucket: Bucket, cache: BlockCache) -> Self {
        Reader { bucket, cache }
    }

    /// Appends the batches of `entry` that hold offsets at or after `from` to `out`,
    /// each with its base offset set. (An entry starting before a fetch's offset holds
    /// batches the consumer has read; Kafka answers from the batch holding the offset.)
    pub async fn read_entry(
        &self,
        entry: &IndexEntry,
        from: Offset,
        out: &mut BytesMut,
    ) -> Result<()> {
        let path = self.bucket.path(entry.object);
        let bytes = self
            .cache
            .read(
                &path,
                entry.position..entry.position + entry.length,
                entry.object_size,
            )
            .await?;
        // The batches were validated on the way in; only their offsets are new.
        let mut offset = entry.base_offset.0;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest)
                .ok_or_else(|| corrupt(&path, entry, "truncated batch header"))?;
            let size = header.size();
            if size < batch::HEADER_LEN || size > rest.len() {
                return Err(corrupt(&path, entry, "batch runs past its index entry"));
            }
            let (one, tail) = rest.split_at(size);
            let next = offset + i64::from(header.last_offset_delta) + 1;
            if next > from.0 {
                batch::with_base_offset(one, offset, out);
            }
            offset = next;
            rest = tail;
        }
        Ok(())
    }
}

fn corrupt(path: &object_store::path::Path, entry: &IndexEntry, why: &str) -> Error {
    Error::CorruptObject(format!(
        "object {path} at {}..+{} (offsets from {}): {why}",
        entry.position, entry.length, entry.base_offset.0
    ))
}
