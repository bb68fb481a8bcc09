//! The Weir agent: a Kafka listener whose produce path pools batches into objects on
//! object storage and whose fetch path reads them back, with the control plane
//! sequencing offsets.

pub mod agent;
pub mod batch;
pub mod brokers;
pub mod bucket;
pub mod config;
pub mod connection;
pub mod context;
pub mod error;
pub mod frame;
pub mod gc;
pub mod handlers;
pub mod handoffs;
pub mod index_cache;
pub mod jobs;
pub mod object;
pub mod ordering;
pub mod produce_rules;
pub mod reader;
pub mod recompress;
pub mod topics;
pub mod versions;
pub mod watermarks;
pub mod writer;

pub use agent::Agent;
pub use bucket::Bucket;
pub use config::AgentConfig;
pub use error::{Error, ErrorKind, Result};
