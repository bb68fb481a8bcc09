//! Weir's metadata store: an FDB-shaped transactional ordered key-value API with an
//! embedded backend (redb, the default) and a FoundationDB backend (feature `fdb`),
//! and the keyspace the control plane keeps in it.
//!
//! All logic lives above [`Transaction`]; backends only store keys and values, so the
//! embedded backend's tests cover what runs on FoundationDB.

mod database;
mod embedded;
mod error;
#[cfg(feature = "fdb")]
mod fdb;
mod ids;
pub mod keyspace;
mod transaction;

#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
mod records {
    include!(concat!(env!("OUT_DIR"), "/weir.metadata.v1.rs"));
}

pub use database::{Backend, Database, MetadataUrl, RetryPolicy, TransactionError};
pub use embedded::{EmbeddedConfig, EmbeddedStore, FaultConfig, MVCC_WINDOW};
pub use error::{Error, ErrorKind, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES, Result};
#[cfg(feature = "fdb")]
pub use fdb::FdbStore;
pub use ids::{AgentId, BadId, JobId, ObjectId, Offset, Partition, ProducerId, TopicId};
pub use keyspace::Keyspace;
pub use transaction::{
    BackendTransaction, KeyValue, RangeOption, RangePage, Transaction, decode_counter, key_after,
    strinc,
};
