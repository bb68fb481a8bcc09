//! The control plane's errors. Per-item problems (an unknown topic in a batch) are not
//! errors of the call: they travel as an [`ItemError`] in the item's result.

use weir_metadata::ErrorKind as MetadataKind;

use crate::proto::ErrorCode;

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: try again (maybe at another control plane).
    Retry,
    /// The request is wrong and will stay wrong.
    Invalid,
    /// A bug or a broken store.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata store: {0}")]
    Metadata(#[from] weir_metadata::Error),
    #[error(
        "this control plane is a standby: the sequencer lease is held by {holder:?} for another {remaining_ms} ms"
    )]
    Standby { holder: String, remaining_ms: i64 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("object has {count} batches; one commit takes at most {max}: seal objects sooner")]
    TooManyBatches { count: usize, max: usize },
    #[error("the control plane is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Unavailable(String),
    #[error("serve the control plane API: {0}")]
    Serve(#[source] tonic::transport::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Metadata(e) => match e.kind() {
                MetadataKind::Retry | MetadataKind::MaybeCommitted => ErrorKind::Retry,
                MetadataKind::Invalid => ErrorKind::Invalid,
                MetadataKind::Internal => ErrorKind::Internal,
            },
            Error::Standby { .. } | Error::ShuttingDown | Error::Unavailable(_) => ErrorKind::Retry,
            Error::Serve(_) => ErrorKind::Internal,
            Error::Internal(_) => ErrorKind::Internal,
            Error::InvalidRequest(_) | Error::TooManyBatches { .. } => ErrorKind::Invalid,
        }
    }
}

impl weir_metadata::TransactionError for Error {
    fn as_metadata(&self) -> Option<&weir_metadata::Error> {
        match self {
            Error::Metadata(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match (&err, err.kind()) {
            (Error::Standby { .. } | Error::ShuttingDown, _) => tonic::Status::unavailable(message),
            (_, ErrorKind::Retry) => tonic::Status::unavailable(message),
            (_, ErrorKind::Invalid) => tonic::Status::invalid_argument(message),
            (_, ErrorKind::Internal) => {
                tracing::error!(error = %err, "control plane call failed");
                tonic::Status::internal(message)
            }
        }
    }
}

/// Why one item of a batched call (a topic, a batch, a partition) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub code: ErrorCode,
    pub message: String,
}

impl ItemError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ItemError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
