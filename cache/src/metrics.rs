//! The block cache's Prometheus metrics, defined here and passed in.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Counters of the block cache. Cloning shares the counters.
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) served_bytes: Counter,
    pub(crate) store_gets: Counter,
    pub(crate) store_get_bytes: Counter,
    pub(crate) inserted_bytes: Counter,
}

impl CacheMetrics {
    /// Creates the counters and registers them. prometheus-client appends `_total` to
    /// counter names, so `weir_cache_hits` is exposed as `weir_cache_hits_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = CacheMetrics::unregistered();
        registry.register(
            "weir_cache_hits",
            "Blocks found in the cache when a read asked for them",
            metrics.hits.clone(),
        );
        registry.register(
            "weir_cache_misses",
            "Blocks not in the cache when a read asked for them (readers that joined a load in flight included)",
            metrics.misses.clone(),
        );
        registry.register(
            "weir_cache_served_bytes",
            "Bytes returned to readers",
            metrics.served_bytes.clone(),
        );
        registry.register(
            "weir_cache_store_gets",
            "Ranged GETs issued to the object store",
            metrics.store_gets.clone(),
        );
        registry.register(
            "weir_cache_store_get_bytes",
            "Bytes fetched from the object store",
            metrics.store_get_bytes.clone(),
        );
        registry.register(
            "weir_cache_inserted_bytes",
            "Bytes of freshly written objects put into the cache by their writer",
            metrics.inserted_bytes.clone(),
        );
        metrics
    }

    /// Counters that no registry exposes, for callers that only want [`CacheStats`].
    pub fn unregistered() -> Self {
        CacheMetrics {
            hits: Counter::default(),
            misses: Counter::default(),
            served_bytes: Counter::default(),
            store_gets: Counter::default(),
            store_get_bytes: Counter::default(),
            inserted_bytes: Counter::default(),
        }
    }

    pub(crate) fn stats(&self, resident_bytes: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            served_bytes: self.served_bytes.get(),
            store_gets: self.store_gets.get(),
            store_get_bytes: self.store_get_bytes.get(),
            inserted_bytes: self.inserted_bytes.get(),
            resident_bytes,
        }
    }
}

/// A snapshot of the cache's counters, for tests and benchmarks: object-store GETs
/// per byte served is `store_gets as f64 / served_bytes as f64`.
///
/// The counters are those of the [`CacheMetrics`] passed to the cache, so caches that
/// share one `CacheMetrics` share their counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Blocks found in the cache when a read asked for them.
    pub hits: u64,
    /// Blocks not in the cache when a read asked for them. Readers that joined a load
    /// already in flight count here but issue no GET, so `misses >= store_gets`.
    pub misses: u64,
    /// Bytes returned by reads.
    pub served_bytes: u64,
    /// GETs issued to the object store (one per block loaded, failures included).
    pub store_gets: u64,
    /// Bytes the object store returned.
    pub store_get_bytes: u64,
    /// Bytes put into the cache by [`insert_object`](crate::BlockCache::insert_object).
    pub inserted_bytes: u64,
    /// Bytes of blocks held by this cache, as of its last maintenance (call
    /// [`run_pending_tasks`](crate::BlockCache::run_pending_tasks) first for an exact
    /// figure).
    pub resident_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_under_their_documented_names() {
        let mut registry = Registry::default();
        let metrics = CacheMetrics::register(&mut registry);
        metrics.hits.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode metrics");
        for name in [
            "weir_cache_hits_total 1",
            "weir_cache_misses_total 0",
            "weir_cache_served_bytes_total 0",
            "weir_cache_store_gets_total 0",
            "weir_cache_store_get_bytes_total 0",
            "weir_cache_inserted_bytes_total 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
