//! The metadata store's errors, shaped after FoundationDB's so that the logic above
//! the store meets the same failure modes whichever backend runs underneath.

use std::time::Duration;

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: run the transaction again (the retry loop does this).
    Retry,
    /// The commit may or may not have been applied. Retrying is safe only for an
    /// idempotent transaction; the retry loop retries, so closures must be idempotent.
    MaybeCommitted,
    /// The request itself is wrong (a key or transaction over a limit); retrying will
    /// not help.
    Invalid,
    /// A bug or a broken store: report it.
    Internal,
}

/// FoundationDB's limit on a key, in bytes.
pub const MAX_KEY_BYTES: usize = 10_000;
/// FoundationDB's limit on a value, in bytes.
pub const MAX_VALUE_BYTES: usize = 100_000;
/// FoundationDB's limit on the mutations of one transaction, in bytes.
pub const MAX_TRANSACTION_BYTES: usize = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("transaction conflicted with a concurrent commit and was not committed")]
    NotCommitted,
    #[error("the commit's outcome is unknown: it may or may not have been applied")]
    CommitUnknownResult,
    #[error("transaction is older than the {window:?} window in which it may commit")]
    TransactionTooOld { window: Duration },
    #[error("key of {size} bytes is over the limit of {MAX_KEY_BYTES} bytes")]
    KeyTooLarge { size: usize },
    #[error("value of {size} bytes is over the limit of {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge { size: usize },
    #[error("transaction of {size} bytes is over the limit of {MAX_TRANSACTION_BYTES} bytes")]
    TransactionTooLarge { size: usize },
    #[error("key starts with 0xff, the system keyspace, which is not writable")]
    KeyOutsideLegalRange,
    #[error("transaction handle was still held elsewhere at commit")]
    HandleEscaped,
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
    #[error("invalid metadata URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "metadata backend {backend:?} is not compiled into this build (enable the `{backend}` feature)"
    )]
    BackendNotCompiled { backend: &'static str },
    #[error("embedded metadata store at {path}: {source}")]
    Embedded {
        path: String,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("FoundationDB error {code}: {message}")]
    Fdb {
        code: i32,
        message: String,
        retryable: bool,
        maybe_committed: bool,
    },
    #[error("corrupt metadata record under key {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotCommitted | Error::TransactionTooOld { .. } => ErrorKind::Retry,
            Error::CommitUnknownResult => ErrorKind::MaybeCommitted,
            Error::KeyTooLarge { .. }
            | Error::ValueTooLarge { .. }
            | Error::TransactionTooLarge { .. }
            | Error::KeyOutsideLegalRange
            | Error::InvalidUrl { .. }
            | Error::BackendNotCompiled { .. } => ErrorKind::Invalid,
            Error::Fdb {
                maybe_committed: true,
                ..
            } => ErrorKind::MaybeCommitted,
            Error::Fdb {
                retryable: true, ..
            } => ErrorKind::Retry,
            Error::RetriesExhausted { last, .. } => match last.kind() {
                ErrorKind::Invalid => ErrorKind::Invalid,
                _ => ErrorKind::Internal,
            },
            Error::Fdb { .. }
            | Error::HandleEscaped
            | Error::Embedded { .. }
            | Error::Corrupt { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the retry loop runs the transaction again after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Retry | ErrorKind::MaybeCommitted)
    }

    pub(crate) fn embedded(path: &std::path::Path, source: impl Into<redb::Error>) -> Self {
        Error::Embedded {
            path: path.display().to_string(),
            source: Box::new(source.into()),
        }
    }

    pub fn corrupt(key: &[u8], reason: impl ToString) -> Self {
        Error::Corrupt {
            key: printable(key),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A key as FoundationDB prints it: printable ASCII as is, other bytes as `\xNN`.
pub fn printable(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
