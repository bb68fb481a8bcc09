//! Shared test helpers: a counting, fault-injecting object store wrapper and
//! deterministic object contents.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use prometheus_client::registry::Registry;
use weir_cache::{BlockCache, BlockCacheConfig, CacheMetrics};

/// An object's bytes: a pseudo-random sequence (xorshift), so that a read from the
/// wrong offset or block shows up as different bytes.
pub(crate) fn object_bytes(size: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

pub(crate) async fn put(store: &dyn ObjectStore, path: &Path, bytes: &Bytes) {
    store
        .put(path, PutPayload::from_bytes(bytes.clone()))
        .await
        .expect("put test object");
}

pub(crate) fn cache(
    store: Arc<dyn ObjectStore>,
    block_size: u64,
    capacity_bytes: u64,
) -> BlockCache {
    let metrics = CacheMetrics::register(&mut Registry::default());
    let config = BlockCacheConfig {
        block_size,
        capacity_bytes,
    };
    BlockCache::new(store, config, metrics).expect("valid cache config")
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = object_store::Result<T>> + Send + 'a>>;

/// Wraps a real store, counting the GETs that reach it (every ranged read goes
/// through `get_opts`), optionally delaying each GET (so that concurrent readers
/// overlap under tokio's paused clock) and failing the next few with a transient error.
///
/// `ObjectStore` is an `#[async_trait]` trait and `async-trait` is not a dependency of
/// this crate, so the methods below are written in the form the macro expands to.
#[derive(Debug)]
pub(crate) struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    latency: Duration,
    gets: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    failures_left: AtomicU32,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, latency: Duration) -> Arc<Self> {
        Arc::new(CountingStore {
            inner,
            latency,
            gets: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            failures_left: AtomicU32::new(0),
        })
    }

    /// GETs received so far (HEADs excluded).
    pub(crate) fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// The most GETs that were in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Makes the next `n` GETs fail as a network error would.
    pub(crate) fn fail_next_gets(&self, n: u32) {
        self.failures_left.store(n, Ordering::SeqCst);
    }

    async fn counted_get(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if !options.head {
            self.gets.fetch_add(1, Ordering::SeqCst);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let result = if failing {
            Err(object_store::Error::Generic {
                store: "CountingStore",
                source: "injected: connection reset by peer".into(),
            })
        } else {
            self.inner.get_opts(location, options).await
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

impl ObjectStore for CountingStore {
    fn get_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        options: GetOptions,
    ) -> StoreFuture<'async_trait, GetResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.counted_get(location, options))
    }

    fn put_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreFuture<'async_trait, PutResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.put_opts(location, payload, opts)
    }

    fn put_multipart_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        opts: PutMultipartOptions,
    ) -> StoreFuture<'async_trait, Box<dyn MultipartUpload>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.put_multipart_opts(location, opts)
    }

    fn delete<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.delete(location)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_delimiter<'life0, 'life1, 'async_trait>(
        &'life0 self,
        prefix: Option<&'life1 Path>,
    ) -> StoreFuture<'async_trait, ListResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.list_with_delimiter(prefix)
    }

    fn copy<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        from: &'life1 Path,
        to: &'life2 Path,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.copy(from, to)
    }

    fn copy_if_not_exists<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        from: &'life1 Path,
        to: &'life2 Path,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.copy_if_not_exists(from, to)
    }
}
