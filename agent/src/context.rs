//! What every request handler can reach.

use std::sync::Arc;

use tokio::sync::Semaphore;
use weir_control_plane_api::ControlPlaneClient;

use crate::brokers::Brokers;
use crate::config::AgentConfig;
use crate::handoffs::Handoffs;
use crate::index_cache::IndexCache;
use crate::reader::Reader;
use crate::topics::TopicCache;
use crate::watermarks::Watermarks;
use crate::writer::WriterHandle;

#[derive(Debug)]
pub struct Context {
    pub config: AgentConfig,
    pub control: ControlPlaneClient,
    pub topics: TopicCache,
    pub brokers: Arc<Brokers>,
    pub writer: WriterHandle,
    pub reader: Reader,
    pub index_cache: IndexCache,
    pub watermarks: Watermarks,
    /// Produce bytes buffered in the agent, bounded by `max_buffered_bytes`.
    pub produce_bytes: Arc<Semaphore>,
    /// The produce path's bounds, watched.
    pub handoffs: Arc<Handoffs>,
    /// Fetches that found an object the index names missing from the bucket, even
    /// after resolving the offsets again: lost data (`weir_fetch_missing_objects`).
    pub missing_objects: prometheus_client::metrics::counter::Counter,
}
