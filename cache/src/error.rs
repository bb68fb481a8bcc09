//! The block cache's errors.

use std::ops::Range;
use std::sync::Arc;

use object_store::path::Path;

/// What a caller should do about a [`CacheError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient (network, throttling, a store-side 5xx): the same read may succeed
    /// later.
    Retry,
    /// The object does not exist: it was never written or was deleted (retention,
    /// compaction, garbage collection). Retrying will not bring it back; the caller's
    /// index is behind.
    NotFound,
    /// The request is wrong (a bad range or configuration) and will stay wrong.
    Invalid,
    /// A bug, a misconfigured store (credentials, permissions) or data that disagrees
    /// with its index: report it.
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error(
        "invalid block cache config (block_size {block_size}, capacity_bytes {capacity_bytes}): {reason}"
    )]
    InvalidConfig {
        block_size: u64,
        capacity_bytes: u64,
        reason: &'static str,
    },
    /// A `--object-store-faults` spec that does not parse.
    #[error("object-store fault spec {spec:?}: item {item:?}: {reason}")]
    InvalidFaultSpec {
        spec: String,
        item: String,
        reason: String,
    },
    #[error("cannot read bytes {range:?} of {path}, an object of {object_size} bytes: {reason}")]
    InvalidRange {
        path: Path,
        range: Range<u64>,
        object_size: u64,
        reason: &'static str,
    },
    /// The store failed to serve a block. `source` is shared because every reader
    /// waiting on the same single-flight load gets the same error.
    #[error("read bytes {range:?} of {path} from the object store: {source}")]
    Store {
        path: Path,
        range: Range<u64>,
        #[source]
        source: Arc<object_store::Error>,
    },
    #[error(
        "bytes {range:?} of {path} came to {actual} bytes, not {expected}: the object size given ({object_size}) does not match the stored object",
        expected = range.end - range.start
    )]
    SizeMismatch {
        path: Path,
        range: Range<u64>,
        object_size: u64,
        actual: u64,
    },
}

impl CacheError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::InvalidConfig { .. }
            | CacheError::InvalidRange { .. }
            | CacheError::InvalidFaultSpec { .. } => ErrorKind::Invalid,
            CacheError::Store { source, .. } => store_error_kind(source),
            CacheError::SizeMismatch { .. } => ErrorKind::Internal,
        }
    }
}

fn store_error_kind(error: &object_store::Error) -> ErrorKind {
    match error {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        // What the stores report for network failures, throttling and 5xx responses
        // once their own retries are spent.
        object_store::Error::Generic { .. } => ErrorKind::Retry,
        // Credentials and permissions need an operator, not another attempt; the other
        // variants cannot come from a plain ranged GET.
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_error(source: object_store::Error) -> CacheError {
        CacheError::Store {
            path: Path::from("data/x.weir"),
            range: 0..10,
            source: Arc::new(source),
        }
    }

    #[test]
    fn store_errors_map_to_what_the_caller_should_do() {
        let not_found = store_error(object_store::Error::NotFound {
            path: "data/x.weir".into(),
            source: "no such key".into(),
        });
        assert_eq!(not_found.kind(), ErrorKind::NotFound);

        let transient = store_error(object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        });
        assert_eq!(transient.kind(), ErrorKind::Retry);

        let denied = store_error(object_store::Error::PermissionDenied {
            path: "data/x.weir".into(),
            source: "403".into(),
        });
        assert_eq!(denied.kind(), ErrorKind::Internal);
    }

    #[test]
    fn a_size_mismatch_names_both_sizes() {
        let err = CacheError::SizeMismatch {
            path: Path::from("data/x.weir"),
            range: 100..200,
            object_size: 200,
            actual: 40,
        };
        assert_eq!(err.kind(), ErrorKind::Internal);
        let message = err.to_string();
        assert!(message.contains("came to 40 bytes, not 100"), "{message}");
        assert!(message.contains("data/x.weir"), "{message}");
    }
}
