//! The embedded backend: FoundationDB's transaction semantics on a redb file.
//!
//! redb gives durable, atomic, serialized write transactions and consistent snapshots
//! for reads. On top of it this module adds what FoundationDB clients rely on:
//! optimistic concurrency (reads at a version, writes buffered, commit rejected when a
//! key the transaction read was written after its read version), read-your-writes,
//! atomic adds that do not conflict, FoundationDB's size limits and its five-second
//! window, and a switch that injects conflicts and unknown commit results so the logic
//! above meets FoundationDB's failure modes in every test run.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, Result};
use crate::transaction::{
    Backend, BackendTransaction, KeyValue, RangeOption, RangePage, Transaction, check_key,
    check_value, decode_counter, key_after,
};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const FILE_NAME: &str = "metadata.redb";

/// How long a transaction may run and still commit (FoundationDB's MVCC window).
pub const MVCC_WINDOW: Duration = Duration::from_secs(5);

/// Faults the embedded store injects at commit, to exercise FoundationDB's failure modes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability that a commit fails with [`Error::NotCommitted`] without applying.
    pub conflict_rate: f64,
    /// Probability that a commit returns [`Error::CommitUnknownResult`]; half of those
    /// were applied, half not, as with a real lost reply.
    pub unknown_result_rate: f64,
    /// Seed of the random choices, so a failing run can be replayed.
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    /// Directory holding the store's file; created if missing.
    pub dir: PathBuf,
    pub faults: FaultConfig,
    /// Rows per page of a range read (FoundationDB also answers ranges in pages).
    pub page_rows: usize,
}

impl EmbeddedConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            dir: dir.into(),
            faults: FaultConfig::default(),
            page_rows: 1000,
        }
    }
}

/// The embedded metadata store. Only one process may open a directory at a time.
#[derive(Debug)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    db: redb::Database,
    page_rows: usize,
    /// The version of the newest commit. Published after the data is durable, so a
    /// transaction that reads version `v` sees every commit up to `v` in its snapshot.
    version: AtomicU64,
    commits: Mutex<CommitLog>,
}

/// The recent commits' write ranges, to check new commits against.
#[derive(Debug)]
struct CommitLog {
    recent: VecDeque<CommittedWrites>,
    /// Every commit after this version is in `recent`.
    horizon: u64,
    faults: FaultConfig,
    rng: SmallRng,
}

#[derive(Debug)]
struct CommittedWrites {
    version: u64,
    at: Instant,
    ranges: Vec<KeyRange>,
}

type KeyRange = (Vec<u8>, Vec<u8>);

impl EmbeddedStore {
    pub fn open(config: EmbeddedConfig) -> Result<Self> {
        let path = config.dir.join(FILE_NAME);
        std::fs::create_dir_all(&config.dir).map_err(|e| Error::embedded(&path, e))?;
        let db = redb::Database::create(&path).map_err(|e| Error::embedded(&path, e))?;
        // Create the table up front so every read transaction can open it.
        let tx = db.begin_write().map_err(|e| Error::embedded(&path, e))?;
        tx.open_table(TABLE)
            .map_err(|e| Error::embedded(&path, e))?;
        tx.commit().map_err(|e| Error::embedded(&path, e))?;
        let rng = SmallRng::seed_from_u64(config.faults.seed);
        Ok(EmbeddedStore {
            shared: Arc::new(Shared {
                path,
                db,
                page_rows: config.page_rows.max(1),
                version: AtomicU64::new(0),
                commits: Mutex::new(CommitLog {
                    recent: VecDeque::new(),
                    horizon: 0,
                    faults: config.faults,
                    rng,
                }),
            }),
        })
    }

    /// Changes the injected faults from now on.
    pub fn set_faults(&self, faults: FaultConfig) {
        let mut log = self.shared.commits.lock();
        log.rng = SmallRng::seed_from_u64(faults.seed);
        log.faults = faults;
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl Backend for EmbeddedStore {
    fn begin(&self) -> Result<Transaction> {
        let shared = &self.shared;
        // Load the version before opening the snapshot: the snapshot then holds every
        // commit up to `read_version` (and maybe later ones, which only costs a spurious
        // conflict, never a missed one).
        let read_version = shared.version.load(Ordering::Acquire);
        let snapshot = shared
            .db
            .begin_read()
            .map_err(|e| Error::embedded(&shared.path, e))?;
        let table = snapshot
            .open_table(TABLE)
            .map_err(|e| Error::embedded(&shared.path, e))?;
        Ok(Transaction::new(Arc::new(EmbeddedTransaction {
            shared: shared.clone(),
            read_version,
            table,
            state: Mutex::new(TxState::default()),
        })))
    }
}

struct EmbeddedTransaction {
    shared: Arc<Shared>,
    read_version: u64,
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    state: Mutex<TxState>,
}

impl std::fmt::Debug for EmbeddedTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTransaction")
            .field("read_version", &self.read_version)
            .finish_non_exhaustive()
    }
}

/// A buffered write to one key.
#[derive(Clone, Debug)]
enum Write {
    Set(Bytes),
    Clear,
    /// Add to whatever the key holds at commit.
    Add(i64),
}

#[derive(Debug, Default)]
struct TxState {
    /// Writes to single keys, after any cleared range that covers them.
    writes: BTreeMap<Vec<u8>, Write>,
    /// Ranges cleared, sorted and disjoint; applied before `writes`.
    cleared: Vec<KeyRange>,
    read_conflicts: Vec<KeyRange>,
    size: usize,
    /// The first invalid write; the commit fails with it, as FoundationDB's does.
    invalid: Option<Error>,
}

impl TxState {
    fn is_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(b, e)| b.as_slice() <= key && key < e.as_slice())
    }

    /// Records the first invalid write; returns whether this one is valid.
    fn check(&mut self, problem: Option<Error>) -> bool {
        match problem {
            None => true,
            Some(err) => {
                self.invalid.get_or_insert(err);
                false
            }
        }
    }

    fn add_clear_range(&mut self, begin: &[u8], end: &[u8]) {
        let keys: Vec<_> = self
            .writes
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.writes.remove(&key);
        }
        self.cleared.push((begin.to_vec(), end.to_vec()));
        self.cleared = coalesce(std::mem::take(&mut self.cleared));
    }
}

/// Sorts ranges and merges those that touch or overlap.
fn coalesce(mut ranges: Vec<KeyRange>) -> Vec<KeyRange> {
    ranges.sort();
    let mut merged: Vec<KeyRange> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match merged.last_mut() {
            Some((_, last_end)) if begin <= *last_end => {
                if end > *last_end {
                    *last_end = end;
                }
            }
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// Whether two sorted, disjoint lists of ranges intersect.
fn intersects(a: &[KeyRange], b: &[KeyRange]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ab, ae) = &a[i];
        let (bb, be) = &b[j];
        if ab < be && bb < ae {
            return true;
        }
        if ae <= be {
            i += 1;
        } else {
            j += 1;
        }
    }
    false
}

fn add_to(base: Option<&[u8]>, delta: i64) -> Bytes {
    let current = base.map_or(0, decode_counter);
    Bytes::copy_from_slice(&current.wrapping_add(delta).to_le_bytes())
}

impl EmbeddedTransaction {
    fn stored(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let value = self
            .table
            .get(key)
            .map_err(|e| Error::embedded(&self.shared.path, e))?;
        Ok(value.map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// The value of `key` as this transaction sees it: stored value, cleared ranges and
    /// buffered writes. Returns whether the stored value was consulted.
    fn visible(&self, state: &TxState, key: &[u8]) -> Result<(Option<Bytes>, bool)> {
        match state.writes.get(key) {
            Some(Write::Set(value)) => Ok((Some(value.clone()), false)),
            Some(Write::Clear) => Ok((None, false)),
            Some(Write::Add(delta)) => {
                let base = self.stored(key)?;
                Ok((Some(add_to(base.as_deref(), *delta)), true))
            }
            None if state.is_cleared(key) => Ok((None, false)),
            None => Ok((self.stored(key)?, true)),
        }
    }
}

#[async_trait]
impl BackendTransaction for EmbeddedTransaction {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Bytes>> {
        let mut state = self.state.lock();
        let (value, read_store) = self.visible(&state, key)?;
        if read_store && !snapshot {
            state.read_conflicts.push((key.to_vec(), key_after(key)));
        }
        Ok(value)
    }

    async fn get_range(&self, range: &RangeOption, snapshot: bool) -> Result<RangePage> {
        let mut state = self.state.lock();
        if range.begin >= range.end {
            return Ok(RangePage::default());
        }
        let want = range.limit.unwrap_or(usize::MAX).min(self.shared.page_rows);
        let bounds = (
            Bound::Included(range.begin.as_slice()),
            Bound::Excluded(range.end.as_slice()),
        );
        let stored = self
            .table
            .range::<&[u8]>(bounds)
            .map_err(|e| Error::embedded(&self.shared.path, e))?;
        let mut stored: Box<dyn Iterator<Item = _>> = if range.reverse {
            Box::new(stored.rev())
        } else {
            Box::new(stored)
        };
        let written = state.writes.range::<[u8], _>(bounds);
        let mut written: Box<dyn Iterator<Item = (&Vec<u8>, &Write)>> = if range.reverse {
            Box::new(written.rev())
        } else {
            Box::new(written)
        };

        // Merge the stored keys (less cleared ones) with the buffered writes, in order.
        let before = |a: &[u8], b: &[u8]| if range.reverse { a > b } else { a < b };
        let mut kvs = Vec::new();
        let mut next_stored = stored
            .next()
            .transpose()
            .map_err(|e| Error::embedded(&self.shared.path, e))?;
        let mut next_written = written.next();
        let mut more = false;
        loop {
            let stored_key = next_stored.as_ref().map(|(k, _)| k.value());
            let take_written = match (stored_key, next_written) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(s), Some((w, _))) => !before(s, w),
            };
            if kvs.len() == want {
                more = true;
                break;
            }
            if take_written {
                let (key, write) = next_written.expect("chosen because present");
                let same = stored_key == Some(key.as_slice());
                let value = match write {
                    Write::Set(value) => Some(value.clone()),
                    Write::Clear => None,
                    Write::Add(delta) => {
                        let base = if same {
                            next_stored.as_ref().map(|(_, v)| v.value())
                        } else {
                            None
                        };
                        Some(add_to(base, *delta))
                    }
                };
                if let Some(value) = value {
                    kvs.push(KeyValue {
                        key: Bytes::copy_from_slice(key),
                        value,
                    });
                }
                if same {
                    next_stored = stored
                        .next()
                        .transpose()
                        .map_err(|e| Error::embedded(&self.shared.path, e))?;
                }
                next_written = written.next();
            } else {
                let (key, value) = next_stored.take().expect("chosen because present");
                if !state.is_cleared(key.value()) {
                    kvs.push(KeyValue {
                        key: Bytes::copy_from_slice(key.value()),
                        value: Bytes::copy_from_slice(value.value()),
                    });
                }
                next_stored = stored
                    .next()
                    .transpose()
                    .map_err(|e| Error::embedded(&self.shared.path, e))?;
            }
        }
        drop(written);
        if !snapshot {
            // Conflict on what was read: the whole range, or up to the last key returned.
            let conflict = match (more, kvs.last()) {
                (true, Some(last)) if range.reverse => (last.key.to_vec(), range.end.clone()),
                (true, Some(last)) => (range.begin.clone(), key_after(&last.key)),
                _ => (range.begin.clone(), range.end.clone()),
            };
            state.read_conflicts.push(conflict);
        }
        Ok(RangePage { kvs, more })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let mut state = self.state.lock();
        if !state.check(check_key(key).or_else(|| check_value(value))) {
            return;
        }
        state.size += key.len() + value.len();
        state
            .writes
            .insert(key.to_vec(), Write::Set(Bytes::copy_from_slice(value)));
    }

    fn clear(&self, key: &[u8]) {
        let mut state = self.state.lock();
        if !state.check(check_key(key)) {
            return;
        }
        state.size += key.len();
        state.writes.insert(key.to_vec(), Write::Clear);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        let mut state = self.state.lock();
        // An end past the user keyspace is fine; clamp it to where user keys stop.
        let end = if end.first() == Some(&0xff) {
            &[0xff][..]
        } else {
            end
        };
        let end_too_large =
            (end.len() > MAX_KEY_BYTES).then(|| Error::KeyTooLarge { size: end.len() });
        if !state.check(check_key(begin).or(end_too_large)) || begin >= end {
            return;
        }
        state.size += begin.len() + end.len();
        state.add_clear_range(begin, end);
    }

    fn atomic_add(&self, key: &[u8], delta: i64) {
        let mut state = self.state.lock();
        if !state.check(check_key(key)) {
            return;
        }
        state.size += key.len() + 8;
        let write = match state.writes.get(key) {
            Some(Write::Set(value)) => Write::Set(add_to(Some(value), delta)),
            Some(Write::Clear) => Write::Set(add_to(None, delta)),
            Some(Write::Add(previous)) => Write::Add(previous.wrapping_add(delta)),
            None if state.is_cleared(key) => Write::Set(add_to(None, delta)),
            None => Write::Add(delta),
        };
        state.writes.insert(key.to_vec(), write);
    }

    async fn commit(self: Arc<Self>) -> Result<()> {
        let tx = Arc::try_unwrap(self).map_err(|_| Error::HandleEscaped)?;
        let read_version = tx.read_version;
        let shared = tx.shared.clone();
        let state = tx.state.into_inner();
        // Release the snapshot before committing.
        drop(tx.table);
        if let Some(err) = state.invalid {
            return Err(err);
        }
        if state.writes.is_empty() && state.cleared.is_empty() {
            return Ok(());
        }
        if state.size > MAX_TRANSACTION_BYTES {
            return Err(Error::TransactionTooLarge { size: state.size });
        }
        tokio::task::spawn_blocking(move || shared.commit(read_version, state))
            .await
            .map_err(|e| Error::Corrupt {
                key: String::new(),
                reason: format!("commit task failed: {e}"),
            })?
    }
}

impl Shared {
    fn commit(&self, read_version: u64, state: TxState) -> Result<()> {
        let mut log = self.commits.lock();
        let now = Instant::now();
        while log
            .recent
            .front()
            .is_some_and(|c| now.duration_since(c.at) > MVCC_WINDOW)
        {
            let pruned = log.recent.pop_front().expect("front exists");
            log.horizon = pruned.version;
        }
        if read_version < log.horizon {
            return Err(Error::TransactionTooOld {
                window: MVCC_WINDOW,
            });
        }
        let reads = coalesce(state.read_conflicts.clone());
        if log
            .recent
            .iter()
            .filter(|c| c.version > read_version)
            .any(|c| intersects(&reads, &c.ranges))
        {
            return Err(Error::NotCommitted);
        }

        let faults = log.faults.clone();
        let (inject_conflict, inject_unknown, apply_anyway) = (
            log.rng.random_bool(faults.conflict_rate.clamp(0.0, 1.0)),
            log.rng
                .random_bool(faults.unknown_result_rate.clamp(0.0, 1.0)),
            log.rng.random_bool(0.5),
        );
        if inject_conflict {
            return Err(Error::NotCommitted);
        }
        if inject_unknown && !apply_anyway {
            return Err(Error::CommitUnknownResult);
        }

        let mut written: Vec<KeyRange> = state.cleared.clone();
        written.extend(state.writes.keys().map(|k| (k.clone(), key_after(k))));
        self.apply(state)
            .map_err(|e| Error::embedded(&self.path, e))?;
        let version = self.version.load(Ordering::Relaxed) + 1;
        self.version.store(version, Ordering::Release);
        log.recent.push_back(CommittedWrites {
            version,
            at: now,
            ranges: coalesce(written),
        });
        if inject_unknown {
            return Err(Error::CommitUnknownResult);
        }
        Ok(())
    }

    fn apply(&self, state: TxState) -> std::result::Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            for (begin, end) in &state.cleared {
                table.retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false)?;
            }
            for (key, write) in &state.writes {
                match write {
                    Write::Set(value) => {
                        table.insert(key.as_slice(), value.as_ref())?;
                    }
                    Write::Clear => {
                        table.remove(key.as_slice())?;
                    }
                    Write::Add(delta) => {
                        let value = {
                            let base = table.get(key.as_slice())?;
                            add_to(base.as_ref().map(|v| v.value()), *delta)
                        };
                        table.insert(key.as_slice(), value.as_ref())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(b: &str, e: &str) -> KeyRange {
        (b.as_bytes().to_vec(), e.as_bytes().to_vec())
    }

    #[test]
    fn coalesce_merges_touching_ranges() {
        assert_eq!(
            coalesce(vec![r("c", "d"), r("a", "b"), r("b", "c"), r("x", "z")]),
            vec![r("a", "d"), r("x", "z")]
        );
    }

    #[test]
    fn intersection_of_sorted_ranges() {
        assert!(intersects(&[r("a", "c")], &[r("b", "d")]));
        assert!(!intersects(&[r("a", "b")], &[r("b", "c")]));
        assert!(intersects(
            &[r("a", "b"), r("m", "n")],
            &[r("c", "d"), r("mm", "z")]
        ));
        assert!(!intersects(
            &[r("a", "b"), r("m", "n")],
            &[r("c", "d"), r("x", "z")]
        ));
    }
}
