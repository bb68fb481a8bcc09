//! Domain integers that cross crate boundaries.

use std::fmt;

use ulid::Ulid;
use uuid::Uuid;

/// Kafka's topic id: a UUID, fixed when the topic is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub Uuid);

/// A partition number within a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition(pub i32);

/// A record offset within a partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offset(pub i64);

/// An idempotent producer's id, allocated by the control plane; Kafka's `producerId`
/// (`-1` in a batch means no idempotent producer, so valid ids are `>= 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProducerId(pub i64);

/// An uploaded object, named by a ULID (time-ordered, unique without coordination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub Ulid);

/// A registered agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub Ulid);

/// A compaction job, planned by the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub Ulid);

/// Bytes that should have held a 16-byte id did not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a 16-byte id, got {0} bytes")]
pub struct BadId(pub usize);

fn sixteen(bytes: &[u8]) -> Result<[u8; 16], BadId> {
    bytes.try_into().map_err(|_| BadId(bytes.len()))
}

impl TopicId {
    pub fn random() -> Self {
        TopicId(Uuid::new_v4())
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, BadId> {
        Ok(TopicId(Uuid::from_bytes(sixteen(bytes)?)))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

/// Ids named by a ULID: time-ordered, unique without coordination, 16 bytes stored.
macro_rules! ulid_id {
    ($($ty:ident),*) => {$(
        impl $ty {
            pub fn new() -> Self {
                $ty(Ulid::new())
            }

            pub fn from_slice(bytes: &[u8]) -> Result<Self, BadId> {
                Ok($ty(Ulid::from_bytes(sixteen(bytes)?)))
            }

            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_bytes()
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }
    )*};
}
ulid_id!(ObjectId, AgentId, JobId);

macro_rules! display_inner {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(
    TopicId, Partition, Offset, ObjectId, AgentId, JobId, ProducerId
);
