//! [`BlockCache`]: byte ranges of objects served from cached fixed-size blocks.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::future::try_join_all;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::block::{BlockKey, Blocks, Layout};
use crate::config::BlockCacheConfig;
use crate::error::CacheError;
use crate::metrics::{CacheMetrics, CacheStats};

/// A byte-bounded cache of fixed-size blocks of objects, loading missing blocks from
/// the object store once however many readers want them. Cheap to clone: clones share
/// the cache.
///
/// Eviction is least-recently-used. moka's default (TinyLFU) refuses to admit a new
/// block when the cache is full of blocks read more often, which in steady state would
/// turn away exactly the freshly written objects that tailing consumers are about to
/// read. The price of LRU is that a consumer catching up from far behind can push the
/// tail out of the cache.
///
/// Memory: blocks are weighed by their length. A block put in by
/// [`insert_object`](Self::insert_object) may be a slice of a larger buffer (the
/// request it arrived in) and keeps that buffer alive while cached. The blocks of an
/// object are inserted together and, under LRU, age together, so the memory not
/// counted is roughly the buffers of the object currently being evicted.
#[derive(Clone)]
pub struct BlockCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    config: BlockCacheConfig,
    /// `config.block_size` as a `usize`, for cutting buffers.
    block_len: usize,
    blocks: Cache<BlockKey, Bytes>,
    metrics: CacheMetrics,
}

impl BlockCache {
    /// A cache over `store`, after checking `config`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        config: BlockCacheConfig,
        metrics: CacheMetrics,
    ) -> Result<Self, CacheError> {
        config.validate()?;
        let block_len = usize::try_from(config.block_size)
            .expect("validate() bounds block_size by u32::MAX, which fits usize");
        let blocks = Cache::builder()
            .name("weir-block-cache")
            .max_capacity(config.capacity_bytes)
            .weigher(|_key: &BlockKey, block: &Bytes| {
                u32::try_from(block.len()).expect("blocks are at most block_size <= u32::MAX")
            })
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Ok(BlockCache {
            inner: Arc::new(Inner {
                store,
                config,
                block_len,
                blocks,
                metrics,
            }),
        })
    }

    pub fn config(&self) -> BlockCacheConfig {
        self.inner.config
    }

    /// Returns exactly the bytes `range` of the object at `path`, which is
    /// `object_size` bytes long.
    ///
    /// The blocks holding the range are taken from the cache or loaded from the store,
    /// all of them concurrently; a block that another reader is already loading is
    /// awaited, not fetched again. A range within one block comes back as a slice of
    /// the cached block (no copy); a range across blocks is copied once into a new
    /// buffer.
    ///
    /// `object_size` must be the object's true size (from the index): it decides where
    /// the last block ends, and a disagreement with the store is reported as
    /// [`CacheError::SizeMismatch`] rather than served.
    pub async fn read(
        &self,
        path: &Path,
        range: Range<u64>,
        object_size: u64,
    ) -> Result<Bytes, CacheError> {
        let invalid = |reason| CacheError::InvalidRange {
            path: path.clone(),
            range: range.clone(),
            object_size,
            reason,
        };
        if range.start >= range.end {
            return Err(invalid("the range is empty"));
        }
        if range.end > object_size {
            return Err(invalid("the range ends past the end of the object"));
        }

        let layout = Layout::new(self.inner.config.block_size, object_size);
        let indexes = layout.blocks_holding(&range);
        let blocks =
            try_join_all(indexes.clone().map(|index| self.block(path, layout, index))).await?;

        let pieces: Vec<Bytes> = indexes
            .zip(blocks)
            .map(|(index, block)| {
                let held = layout.block_range(index);
                let start = range.start.max(held.start) - held.start;
                let end = range.end.min(held.end) - held.start;
                // Both are within the block, whose length block() checked.
                block.slice(start as usize..end as usize)
            })
            .collect();
        let bytes = match pieces.as_slice() {
            [piece] => piece.clone(),
            pieces => {
                let mut joined = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
                for piece in pieces {
                    joined.extend_from_slice(piece);
                }
                joined.freeze()
            }
        };
        self.inner.metrics.served_bytes.inc_by(bytes.len() as u64);
        Ok(bytes)
    }

    /// Puts a freshly written object into the cache, block by block, so that readers
    /// of it (tailing consumers) need no GET. `parts` are the object's bytes in order,
    /// as they were uploaded; blocks within one part share its buffer, and only blocks
    /// that span parts are copied.
    ///
    /// Async because the cache's insert is; the blocks are readable once it returns.
    pub async fn insert_object(&self, path: &Path, parts: &[Bytes]) {
        let mut inserted = 0;
        for (index, block) in (0u64..).zip(Blocks::new(parts, self.inner.block_len)) {
            inserted += block.len() as u64;
            let key = BlockKey {
                path: path.clone(),
                index,
            };
            self.inner.blocks.insert(key, block).await;
        }
        self.inner.metrics.inserted_bytes.inc_by(inserted);
    }

    /// The counters so far, and the bytes of blocks held.
    pub fn stats(&self) -> CacheStats {
        self.inner.metrics.stats(self.inner.blocks.weighted_size())
    }

    /// Runs the cache's deferred maintenance (evictions, size accounting) now, so that
    /// [`stats`](Self::stats) reports an exact resident size. The cache does this by
    /// itself as it is used; tests call it before checking sizes.
    pub async fn run_pending_tasks(&self) {
        self.inner.blocks.run_pending_tasks().await;
    }

    /// Block `index` of the object, from the cache or, once for all concurrent
    /// readers, from the store.
    async fn block(&self, path: &Path, layout: Layout, index: u64) -> Result<Bytes, CacheError> {
        let range = layout.block_range(index);
        let key = BlockKey {
            path: path.clone(),
            index,
        };
        let metrics = &self.inner.metrics;
        let block = match self.inner.blocks.get(&key).await {
            Some(block) => {
                metrics.hits.inc();
                block
            }
            None => {
                metrics.misses.inc();
                // Errors are not cached: the next reader tries the store again.
                self.inner
                    .blocks
                    .try_get_with(key, self.load(path, range.clone(), layout))
                    .await
                    .map_err(Arc::unwrap_or_clone)?
            }
        };
        // A cached block can disagree with this reader's idea of the object's size
        // (the block came from the writer or another reader); never slice past it.
        check_size(path, &range, layout, block.len())?;
        Ok(block)
    }

    /// One GET for the bytes of one block.
    async fn load(
        &self,
        path: &Path,
        range: Range<u64>,
        layout: Layout,
    ) -> Result<Bytes, CacheError> {
        let metrics = &self.inner.metrics;
        metrics.store_gets.inc();
        let block = self
            .inner
            .store
            .get_range(path, range.clone())
            .await
            .map_err(|source| CacheError::Store {
                path: path.clone(),
                range: range.clone(),
                source: Arc::new(source),
            })?;
        metrics.store_get_bytes.inc_by(block.len() as u64);
        // Keep a short (or long) block out of the cache, where it would fail every
        // later read too.
        check_size(path, &range, layout, block.len())?;
        Ok(block)
    }
}

fn check_size(
    path: &Path,
    range: &Range<u64>,
    layout: Layout,
    actual: usize,
) -> Result<(), CacheError> {
    if actual as u64 == range.end - range.start {
        return Ok(());
    }
    Err(CacheError::SizeMismatch {
        path: path.clone(),
        range: range.clone(),
        object_size: layout.object_size(),
        actual: actual as u64,
    })
}

impl fmt::Debug for BlockCache {
    /// Sizes only: the derived form would print every cached block.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("store", &self.inner.store.to_string())
            .field("config", &self.inner.config)
            .field("blocks", &self.inner.blocks.entry_count())
            .field("resident_bytes", &self.inner.blocks.weighted_size())
            .finish()
    }
}
