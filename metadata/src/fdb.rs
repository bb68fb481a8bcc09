//! The FoundationDB backend: a thin layer over the `foundationdb` crate (API 7.3).
//!
//! Only key/value operations live here; everything Weir builds on them lives above
//! [`Transaction`], where the embedded backend's tests cover it. Writes are checked
//! against the same limits as the embedded backend first, so both report the same
//! errors.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use foundationdb::options::{MutationType, StreamingMode};
use foundationdb::{FdbError, KeySelector};
use parking_lot::Mutex;

use crate::error::{Error, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, Result};
use crate::transaction::{
    Backend, BackendTransaction, KeyValue, RangeOption, RangePage, Transaction, check_key,
    check_value,
};

/// FoundationDB's client network thread runs once per process and is never restarted.
static NETWORK: OnceLock<Mutex<foundationdb::api::NetworkAutoStop>> = OnceLock::new();

fn boot_network() {
    NETWORK.get_or_init(|| {
        // SAFETY: `boot` must be called at most once per process and its guard must
        // outlive every use of the client; the guard lives in a process-wide static.
        #[allow(unsafe_code)]
        let network = unsafe { foundationdb::boot() };
        Mutex::new(network)
    });
}

/// A FoundationDB cluster.
pub struct FdbStore {
    db: foundationdb::Database,
}

impl std::fmt::Debug for FdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FdbStore")
    }
}

impl FdbStore {
    /// Connects through a cluster file (`None`: the client's default cluster file).
    pub fn open(cluster_file: Option<&Path>) -> Result<Self> {
        boot_network();
        let path = cluster_file.map(|p| p.to_string_lossy().into_owned());
        let db = foundationdb::Database::new(path.as_deref()).map_err(fdb_error)?;
        Ok(FdbStore { db })
    }
}

impl Backend for FdbStore {
    fn begin(&self) -> Result<Transaction> {
        let trx = self.db.create_trx().map_err(fdb_error)?;
        Ok(Transaction::new(Arc::new(FdbTransaction {
            trx,
            checks: Mutex::new(Checks::default()),
        })))
    }
}

#[derive(Debug, Default)]
struct Checks {
    size: usize,
    invalid: Option<Error>,
}

impl Checks {
    fn accept(&mut self, problem: Option<Error>, bytes: usize) -> bool {
        match problem {
            None => {
                self.size += bytes;
                true
            }
            Some(err) => {
                self.invalid.get_or_insert(err);
                false
            }
        }
    }
}

struct FdbTransaction {
    trx: foundationdb::Transaction,
    checks: Mutex<Checks>,
}

impl std::fmt::Debug for FdbTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FdbTransaction")
    }
}

fn fdb_error(err: FdbError) -> Error {
    match err.code() {
        1020 => Error::NotCommitted,
        1021 => Error::CommitUnknownResult,
        1007 => Error::TransactionTooOld {
            window: crate::embedded::MVCC_WINDOW,
        },
        code => Error::Fdb {
            code,
            message: err.message().to_string(),
            retryable: err.is_retryable(),
            maybe_committed: err.is_maybe_committed(),
        },
    }
}

#[async_trait]
impl BackendTransaction for FdbTransaction {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Bytes>> {
        let value = self.trx.get(key, snapshot).await.map_err(fdb_error)?;
        Ok(value.map(|v| Bytes::copy_from_slice(&v)))
    }

    async fn get_range(&self, range: &RangeOption, snapshot: bool) -> Result<RangePage> {
        if range.begin >= range.end {
            return Ok(RangePage::default());
        }
        let option = foundationdb::RangeOption {
            begin: KeySelector::first_greater_or_equal(range.begin.as_slice()),
            end: KeySelector::first_greater_or_equal(range.end.as_slice()),
            limit: range.limit,
            reverse: range.reverse,
            mode: StreamingMode::Iterator,
            ..foundationdb::RangeOption::default()
        };
        let values = self
            .trx
            .get_range(&option, 1, snapshot)
            .await
            .map_err(fdb_error)?;
        let more = values.more();
        let kvs = values
            .iter()
            .map(|kv| KeyValue {
                key: Bytes::copy_from_slice(kv.key()),
                value: Bytes::copy_from_slice(kv.value()),
            })
            .collect();
        Ok(RangePage { kvs, more })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let problem = check_key(key).or_else(|| check_value(value));
        if self.checks.lock().accept(problem, key.len() + value.len()) {
            self.trx.set(key, value);
        }
    }

    fn clear(&self, key: &[u8]) {
        if self.checks.lock().accept(check_key(key), key.len()) {
            self.trx.clear(key);
        }
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        let end_too_large =
            (end.len() > MAX_KEY_BYTES).then(|| Error::KeyTooLarge { size: end.len() });
        let problem = check_key(begin).or(end_too_large);
        if self.checks.lock().accept(problem, begin.len() + end.len()) && begin < end {
            self.trx.clear_range(begin, end);
        }
    }

    fn atomic_add(&self, key: &[u8], delta: i64) {
        if self.checks.lock().accept(check_key(key), key.len() + 8) {
            self.trx
                .atomic_op(key, &delta.to_le_bytes(), MutationType::Add);
        }
    }

    async fn commit(self: Arc<Self>) -> Result<()> {
        let tx = Arc::try_unwrap(self).map_err(|_| Error::HandleEscaped)?;
        let checks = tx.checks.into_inner();
        if let Some(err) = checks.invalid {
            return Err(err);
        }
        if checks.size > MAX_TRANSACTION_BYTES {
            return Err(Error::TransactionTooLarge { size: checks.size });
        }
        match tx.trx.commit().await {
            Ok(_) => Ok(()),
            Err(err) if err.code() == 2101 => Err(Error::TransactionTooLarge { size: checks.size }),
            Err(err) => Err(fdb_error(*err)),
        }
    }
}
