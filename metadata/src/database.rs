//! The [`Database`] handle: opens a backend from a URL and runs transactions in a
//! retry loop, as FoundationDB's bindings do.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::error::{Error, ErrorKind, Result};
pub use crate::transaction::Backend;
use crate::transaction::Transaction;

/// Where the metadata lives, parsed from `embedded://DIR` or `fdb://CLUSTER_FILE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataUrl {
    /// The embedded store in a directory of the local disk.
    Embedded(PathBuf),
    /// A FoundationDB cluster; `None` uses the client's default cluster file.
    Fdb(Option<PathBuf>),
}

impl std::str::FromStr for MetadataUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected embedded://DIR or fdb://CLUSTER_FILE"))?;
        match scheme {
            "embedded" if rest.is_empty() => Err(invalid("embedded:// needs a directory")),
            "embedded" => Ok(MetadataUrl::Embedded(PathBuf::from(rest))),
            "fdb" if rest.is_empty() => Ok(MetadataUrl::Fdb(None)),
            "fdb" => Ok(MetadataUrl::Fdb(Some(PathBuf::from(rest)))),
            _ => Err(invalid("unknown scheme; expected embedded:// or fdb://")),
        }
    }
}

impl fmt::Display for MetadataUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataUrl::Embedded(dir) => write!(f, "embedded://{}", dir.display()),
            MetadataUrl::Fdb(None) => write!(f, "fdb://"),
            MetadataUrl::Fdb(Some(file)) => write!(f, "fdb://{}", file.display()),
        }
    }
}

/// How [`Database::run`] retries: exponential backoff with jitter, as FoundationDB's
/// `on_error` does, up to a number of attempts.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 50,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .min_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        // Full jitter keeps retrying transactions from meeting again in lockstep.
        exp.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// An error type that a transaction closure may return: it carries metadata errors,
/// so the retry loop can tell which ones to retry.
pub trait TransactionError: From<Error> {
    fn as_metadata(&self) -> Option<&Error>;
}

impl TransactionError for Error {
    fn as_metadata(&self) -> Option<&Error> {
        Some(self)
    }
}

/// A handle to the metadata store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    backend: Arc<dyn Backend>,
    retry: RetryPolicy,
}

impl Database {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Database {
            backend,
            retry: RetryPolicy::default(),
        }
    }

    /// Opens the store a URL names, with default settings.
    pub async fn open(url: &MetadataUrl) -> Result<Self> {
        match url {
            MetadataUrl::Embedded(dir) => {
                let store = EmbeddedStore::open(EmbeddedConfig::new(dir.clone()))?;
                Ok(Database::new(Arc::new(store)))
            }
            #[cfg(feature = "fdb")]
            MetadataUrl::Fdb(cluster_file) => {
                let store = crate::fdb::FdbStore::open(cluster_file.as_deref())?;
                Ok(Database::new(Arc::new(store)))
            }
            #[cfg(not(feature = "fdb"))]
            MetadataUrl::Fdb(_) => Err(Error::BackendNotCompiled { backend: "fdb" }),
        }
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Starts a transaction that the caller commits itself. Prefer [`Database::run`].
    pub fn begin(&self) -> Result<Transaction> {
        self.backend.begin()
    }

    /// Runs `f` in a transaction and commits it, running it again on retriable errors
    /// (conflicts, too-old reads, unknown commit results). `f` must be idempotent: after
    /// an unknown commit result the first run may have been applied.
    ///
    /// An `Err` from `f` that is not a retriable metadata error ends the loop without
    /// committing.
    pub async fn run<T, E, F, Fut>(&self, mut f: F) -> Result<T, E>
    where
        E: TransactionError,
        F: FnMut(Transaction) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            let outcome = match self.backend.begin() {
                Ok(tx) => match f(tx.clone()).await {
                    Ok(value) => tx.commit().await.map(|()| value).map_err(E::from),
                    Err(err) => Err(err),
                },
                Err(err) => Err(E::from(err)),
            };
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let retryable = err.as_metadata().is_some_and(Error::is_retryable);
            attempt += 1;
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            if let Some(meta) = err.as_metadata() {
                let level = if meta.kind() == ErrorKind::MaybeCommitted {
                    tracing::Level::INFO
                } else {
                    tracing::Level::DEBUG
                };
                if level == tracing::Level::INFO {
                    tracing::info!(attempt, error = %meta, "retrying metadata transaction");
                } else {
                    tracing::debug!(attempt, error = %meta, "retrying metadata transaction");
                }
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_back() {
        let url: MetadataUrl = "embedded:///var/lib/weir".parse().expect("valid");
        assert_eq!(url, MetadataUrl::Embedded("/var/lib/weir".into()));
        assert_eq!(url.to_string(), "embedded:///var/lib/weir");
        let url: MetadataUrl = "embedded://data/meta".parse().expect("valid");
        assert_eq!(url, MetadataUrl::Embedded("data/meta".into()));
        let url: MetadataUrl = "fdb:///etc/foundationdb/fdb.cluster"
            .parse()
            .expect("valid");
        assert_eq!(
            url,
            MetadataUrl::Fdb(Some("/etc/foundationdb/fdb.cluster".into()))
        );
        assert_eq!(
            "fdb://".parse::<MetadataUrl>().expect("valid"),
            MetadataUrl::Fdb(None)
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for bad in ["", "/tmp/x", "embedded://", "postgres://x"] {
            let err = bad.parse::<MetadataUrl>().expect_err(bad);
            assert!(err.to_string().contains("embedded://"), "{bad}: {err}");
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        assert!(policy.backoff(1) <= Duration::from_millis(2));
        assert!(policy.backoff(30) <= policy.max_backoff);
        assert!(policy.backoff(30) >= policy.max_backoff / 2);
    }
}
