//! Block geometry: which fixed-size blocks hold a byte range of an object, and how an
//! object handed over as parts is cut into blocks.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use object_store::path::Path;

/// Names one cached block: the object's key and the block's index in it. Object keys
/// are never reused, so a key names the same bytes for as long as the object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub(crate) path: Path,
    pub(crate) index: u64,
}

/// The blocks of one object: block `i` covers `[i * block_size, min((i + 1) *
/// block_size, object_size))`, so only the last block may be short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    block_size: u64,
    object_size: u64,
}

impl Layout {
    pub(crate) fn new(block_size: u64, object_size: u64) -> Self {
        debug_assert!(block_size > 0, "validated by BlockCacheConfig");
        Layout {
            block_size,
            object_size,
        }
    }

    pub(crate) fn object_size(&self) -> u64 {
        self.object_size
    }

    /// The bytes of the object that block `index` holds. Never reaches past the end
    /// of the object, so a GET for it never asks for bytes that do not exist.
    pub(crate) fn block_range(&self, index: u64) -> Range<u64> {
        let start = index.saturating_mul(self.block_size).min(self.object_size);
        start..start.saturating_add(self.block_size).min(self.object_size)
    }

    /// The indexes of the blocks that hold `range`, which must be non-empty.
    pub(crate) fn blocks_holding(&self, range: &Range<u64>) -> Range<u64> {
        debug_assert!(range.start < range.end, "validated by the caller");
        range.start / self.block_size..(range.end - 1) / self.block_size + 1
    }
}

/// Cuts an object given as consecutive parts into blocks of `block_size` bytes (the
/// last one shorter). A block that lies within one part is a zero-copy slice of it;
/// only a block that spans parts is copied into a buffer of its own.
#[derive(Debug)]
pub(crate) struct Blocks<'a> {
    parts: &'a [Bytes],
    /// Position in `parts[0]`.
    offset: usize,
    /// Bytes not yet handed out.
    remaining: u64,
    block_size: usize,
}

impl<'a> Blocks<'a> {
    pub(crate) fn new(parts: &'a [Bytes], block_size: usize) -> Self {
        debug_assert!(block_size > 0, "validated by BlockCacheConfig");
        Blocks {
            parts,
            offset: 0,
            remaining: parts.iter().map(|part| part.len() as u64).sum(),
            block_size,
        }
    }

    /// Drops parts that are used up (or empty), so `parts[0]` has bytes left if any do.
    fn skip_used_parts(&mut self) {
        while let Some(part) = self.parts.first()
            && self.offset >= part.len()
        {
            self.parts = &self.parts[1..];
            self.offset = 0;
        }
    }
}

impl Iterator for Blocks<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.skip_used_parts();
        let part = self.parts.first()?;
        // The last block is short; `remaining` < `block_size` then, so it fits usize.
        let want = usize::try_from(self.remaining)
            .map_or(self.block_size, |remaining| remaining.min(self.block_size));
        self.remaining -= want as u64;

        if part.len() - self.offset >= want {
            let block = part.slice(self.offset..self.offset + want);
            self.offset += want;
            return Some(block);
        }
        let mut block = BytesMut::with_capacity(want);
        while block.len() < want {
            self.skip_used_parts();
            let part = self
                .parts
                .first()
                .expect("`remaining` counts the bytes left in `parts`");
            let take = (want - block.len()).min(part.len() - self.offset);
            block.extend_from_slice(&part[self.offset..self.offset + take]);
            self.offset += take;
        }
        Some(block.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_block_ends_at_the_object() {
        let layout = Layout::new(10, 25);
        assert_eq!(layout.block_range(0), 0..10);
        assert_eq!(layout.block_range(2), 20..25);
    }

    #[test]
    fn a_range_is_held_by_the_blocks_it_touches() {
        let layout = Layout::new(10, 25);
        assert_eq!(layout.blocks_holding(&(0..1)), 0..1);
        assert_eq!(layout.blocks_holding(&(9..10)), 0..1);
        assert_eq!(layout.blocks_holding(&(9..11)), 0..2);
        assert_eq!(layout.blocks_holding(&(10..25)), 1..3);
        assert_eq!(layout.blocks_holding(&(24..25)), 2..3);
    }

    #[test]
    fn geometry_does_not_overflow_near_u64_max() {
        let layout = Layout::new(1 << 20, u64::MAX);
        let last = layout.blocks_holding(&(u64::MAX - 1..u64::MAX)).start;
        assert_eq!(layout.block_range(last).end, u64::MAX);
    }

    #[test]
    fn a_block_within_one_part_is_not_copied() {
        let part = Bytes::from(vec![7u8; 25]);
        let blocks: Vec<Bytes> = Blocks::new(std::slice::from_ref(&part), 10).collect();
        assert_eq!(
            blocks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(block.as_ptr(), part[i * 10..].as_ptr(), "block {i} copied");
        }
    }

    #[test]
    fn blocks_spanning_parts_join_them_in_order() {
        let parts = [
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"defgh"),
            Bytes::from_static(b"i"),
        ];
        let blocks: Vec<Bytes> = Blocks::new(&parts, 4).collect();
        assert_eq!(blocks, [&b"abcd"[..], b"efgh", b"i"]);
        // "efgh" lies within the third part: sliced, not copied.
        assert_eq!(blocks[1].as_ptr(), parts[2][1..].as_ptr());
    }

    #[test]
    fn no_parts_make_no_blocks() {
        assert_eq!(Blocks::new(&[], 4).count(), 0);
        assert_eq!(Blocks::new(&[Bytes::new()], 4).count(), 0);
    }
}
