//! Why a job was not done. The runner gives the job back with the message
//! (`FailJob`), so it names the object and, for bad input, the partition and offset.

use std::ops::Range;

use weir_metadata::{ObjectId, Offset, Partition, TopicId};

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An input was deleted from the bucket: no attempt of this job can succeed.
    #[error("input object {object} ({key}) is not in the bucket: the job is abandoned")]
    InputMissing { object: ObjectId, key: String },
    #[error("read input object {object} ({key}): {source}")]
    ReadInput {
        object: ObjectId,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("read input object {object}: asked for bytes {range:?}, got {got}")]
    ShortRead {
        object: ObjectId,
        range: Range<u64>,
        got: u64,
    },
    /// What the job says of an input does not match its bytes, or itself.
    #[error(
        "input object {object}, topic {topic} partition {partition}, entry at offset {offset}: {reason}"
    )]
    BadInput {
        object: ObjectId,
        topic: TopicId,
        partition: Partition,
        offset: Offset,
        reason: String,
    },
    #[error("output level {0} does not fit an object's flags, which hold levels 0 to 15")]
    BadLevel(u32),
    #[error("upload output object {object}: {source}")]
    Upload {
        object: ObjectId,
        #[source]
        source: object_store::Error,
    },
    #[error("control plane: {0}")]
    ControlPlane(#[from] tonic::Status),
}

impl JobError {
    /// `Retry` when another attempt may succeed as it is; `Invalid` when the job itself
    /// is wrong (its next attempt, with the index as it is then, may still succeed).
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::ReadInput { .. }
            | JobError::ShortRead { .. }
            | JobError::Upload { .. }
            | JobError::ControlPlane(_) => ErrorKind::Retry,
            JobError::InputMissing { .. } | JobError::BadInput { .. } | JobError::BadLevel(_) => {
                ErrorKind::Invalid
            }
        }
    }
}
