//! The agent's errors. Only the agent maps error kinds to Kafka error codes.

use kafka_protocol::error::ResponseError;
use weir_control_plane_api::data::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("control plane: {0}")]
    ControlPlane(#[from] tonic::Status),
    #[error("control plane: {0}")]
    ControlPlaneClient(#[from] weir_control_plane_api::ClientError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("read object bytes: {0}")]
    Cache(#[from] weir_cache::CacheError),
    #[error("invalid record batch: {0}")]
    Batch(#[from] crate::batch::BatchError),
    #[error("invalid object: {0}")]
    Object(#[from] crate::object::ObjectError),
    #[error("corrupt object data: {0}")]
    CorruptObject(String),
    #[error("the agent is shutting down")]
    ShuttingDown,
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Retry,
    Invalid,
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ControlPlane(status) => match status.code() {
                tonic::Code::InvalidArgument
                | tonic::Code::NotFound
                | tonic::Code::AlreadyExists => ErrorKind::Invalid,
                tonic::Code::Internal
                | tonic::Code::Unauthenticated
                | tonic::Code::PermissionDenied => ErrorKind::Internal,
                _ => ErrorKind::Retry,
            },
            Error::ControlPlaneClient(e) if e.is_retriable() => ErrorKind::Retry,
            Error::ControlPlaneClient(_) => ErrorKind::Invalid,
            Error::ObjectStore(_) | Error::Cache(_) | Error::ShuttingDown | Error::Timeout(_) => {
                ErrorKind::Retry
            }
            Error::Batch(_) | Error::Config(_) => ErrorKind::Invalid,
            Error::Object(_) | Error::CorruptObject(_) | Error::Listen { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// Whether an object the index named is not in the bucket.
    pub fn is_missing_object(&self) -> bool {
        match self {
            Error::Cache(e) => e.kind() == weir_cache::ErrorKind::NotFound,
            Error::ObjectStore(object_store::Error::NotFound { .. }) => true,
            _ => false,
        }
    }

    /// The Kafka error a client gets for this failure.
    pub fn kafka_code(&self) -> i16 {
        match self {
            Error::Batch(e) => e.kafka_error_code(),
            Error::Timeout(_) => ResponseError::RequestTimedOut.code(),
            Error::ObjectStore(_) | Error::Cache(_) => ResponseError::KafkaStorageError.code(),
            _ => match self.kind() {
                ErrorKind::Retry => ResponseError::NotEnoughReplicas.code(),
                ErrorKind::Invalid => ResponseError::InvalidRequest.code(),
                ErrorKind::Internal => ResponseError::UnknownServerError.code(),
            },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Kafka error for a control-plane item error.
pub fn kafka_error(code: i32) -> ResponseError {
    match ErrorCode::try_from(code).unwrap_or(ErrorCode::InvalidRequest) {
        ErrorCode::None => ResponseError::Unknown(0),
        ErrorCode::UnknownTopic | ErrorCode::UnknownPartition => {
            ResponseError::UnknownTopicOrPartition
        }
        ErrorCode::TopicAlreadyExists => ResponseError::TopicAlreadyExists,
        ErrorCode::InvalidTopicName => ResponseError::InvalidTopicException,
        ErrorCode::InvalidPartitions => ResponseError::InvalidPartitions,
        ErrorCode::InvalidConfig => ResponseError::InvalidConfig,
        ErrorCode::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        ErrorCode::InvalidBatch => ResponseError::InvalidRecord,
        ErrorCode::InvalidRequest => ResponseError::InvalidRequest,
        ErrorCode::OutOfOrderSequence => ResponseError::OutOfOrderSequenceNumber,
        ErrorCode::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        ErrorCode::ProducerFenced => ResponseError::ProducerFenced,
        // Certainly not committed, and retriable: the records can go again.
        ErrorCode::ObjectTooOld => ResponseError::KafkaStorageError,
        // Not committed, and retriable once the batches before it are in. Kafka has no
        // code of its own for this; clients retry NOT_ENOUGH_REPLICAS in place, knowing
        // nothing was written, where OUT_OF_ORDER_SEQUENCE_NUMBER would make librdkafka
        // resend under a new epoch what it still holds.
        ErrorCode::SequenceAhead => ResponseError::NotEnoughReplicas,
        ErrorCode::InvalidGroupId => ResponseError::InvalidGroupId,
        ErrorCode::UnknownMemberId => ResponseError::UnknownMemberId,
        ErrorCode::IllegalGeneration => ResponseError::IllegalGeneration,
        ErrorCode::RebalanceInProgress => ResponseError::RebalanceInProgress,
        ErrorCode::MemberIdRequired => ResponseError::MemberIdRequired,
        ErrorCode::FencedInstanceId => ResponseError::FencedInstanceId,
        ErrorCode::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        ErrorCode::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        ErrorCode::GroupIdNotFound => ResponseError::GroupIdNotFound,
        ErrorCode::NonEmptyGroup => ResponseError::NonEmptyGroup,
        ErrorCode::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        ErrorCode::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        ErrorCode::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        ErrorCode::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        ErrorCode::PolicyViolation => ResponseError::PolicyViolation,
        // Only the jobs role meets it, and it handles it; no Kafka client should.
        ErrorCode::JobLost => ResponseError::UnknownServerError,
    }
}
