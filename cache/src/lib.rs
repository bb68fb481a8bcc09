//! Weir's block cache over object storage (DESIGN.md, read path step 2).
//!
//! Fetch reads byte ranges of immutable objects. Asking the object store for each range
//! would cost one GET per consumer per fetch; instead [`BlockCache`] reads whole
//! fixed-size blocks, keeps them in a byte-bounded in-memory cache keyed by
//! (object, block), and serves ranges out of them:
//!
//! - concurrent readers of a missing block share one GET (single-flight), so a burst
//!   of consumers on the same data costs one request per block;
//! - the agent that wrote an object puts it straight into its cache
//!   ([`BlockCache::insert_object`]), so tailing consumers never touch the store;
//! - objects are never overwritten (fresh key per upload), so a cached block never
//!   goes stale and needs no invalidation.
//!
//! The crate also holds the object-store wrappers the agent stacks under the cache:
//! [`MeteredStore`] (request counters per operation, for operators and benchmarks) and
//! [`FaultyStore`] (injected latency and failures, for tests and benchmarks).
//!
//! Peer fetch (not built yet): within a zone each object will be owned by one agent,
//! chosen by rendezvous hashing over the zone's live agents. It belongs in the block
//! loader of [`BlockCache`] (`block_cache.rs`): a miss on an object owned by another
//! agent asks that agent for the block over the internal port and falls back to the
//! object store when the owner is unreachable; the single-flight and the cache above
//! the loader stay as they are.

mod block;
mod block_cache;
mod config;
mod error;
mod faults;
mod metered;
mod metrics;

pub use block_cache::BlockCache;
pub use config::{BlockCacheConfig, DEFAULT_BLOCK_SIZE, DEFAULT_CAPACITY_BYTES};
pub use error::{CacheError, ErrorKind};
pub use faults::{
    FaultConfig, FaultyStore, InjectedError, InjectedFault, Latency, Op, OpFaults, OpStats,
};
pub use metered::{MeteredStore, ObjectStoreMetrics};
pub use metrics::{CacheMetrics, CacheStats};
