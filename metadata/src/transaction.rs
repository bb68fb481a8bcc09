//! The transactional ordered key-value API, shaped after FoundationDB's.
//!
//! A [`Transaction`] reads at one consistent version and sees its own writes. Writes are
//! buffered until [`Database::run`](crate::Database::run) commits them; the commit fails
//! with a retriable error when a key the transaction read (other than by a snapshot
//! read) was written by a transaction that committed after this one began.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, MAX_KEY_BYTES, MAX_VALUE_BYTES, Result};

/// One key and its value, as a range read returns them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} bytes",
            crate::error::printable(&self.key),
            self.value.len()
        )
    }
}

/// A range read: keys in `begin..end`, at most `limit` of them, in ascending order or
/// from the end when `reverse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeOption {
    pub begin: Vec<u8>,
    pub end: Vec<u8>,
    pub limit: Option<usize>,
    pub reverse: bool,
}

impl RangeOption {
    pub fn new(range: Range<Vec<u8>>) -> Self {
        RangeOption {
            begin: range.start,
            end: range.end,
            limit: None,
            reverse: false,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        Self::new(prefix.to_vec()..strinc(prefix))
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    /// The range that continues this read after `page`, or `None` when `page` was the last.
    pub fn next_page(&self, page: &RangePage) -> Option<RangeOption> {
        if !page.more {
            return None;
        }
        let last = page.kvs.last()?;
        let limit = match self.limit {
            Some(limit) => Some(limit.checked_sub(page.kvs.len()).filter(|&l| l > 0)?),
            None => None,
        };
        let mut next = self.clone();
        next.limit = limit;
        if self.reverse {
            next.end = last.key.to_vec();
        } else {
            next.begin = key_after(&last.key);
        }
        Some(next)
    }
}

/// One page of a range read. Backends return results in pages, as FoundationDB does;
/// `more` says whether keys remain in the range (within the limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangePage {
    pub kvs: Vec<KeyValue>,
    pub more: bool,
}

/// The first key after `key` in key order.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The first key that does not start with `prefix` (FoundationDB's `strinc`).
pub fn strinc(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only an all-0xff prefix gets here; nothing sorts after it but the system keyspace.
    vec![0xff]
}

/// What a backend implements for one transaction. Callers use [`Transaction`].
#[async_trait]
pub trait BackendTransaction: Send + Sync + fmt::Debug {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Bytes>>;
    async fn get_range(&self, range: &RangeOption, snapshot: bool) -> Result<RangePage>;
    fn set(&self, key: &[u8], value: &[u8]);
    fn clear(&self, key: &[u8]);
    fn clear_range(&self, begin: &[u8], end: &[u8]);
    /// Adds `delta` to the little-endian 64-bit integer at `key` (absent counts as zero)
    /// without reading it: concurrent adds do not conflict.
    fn atomic_add(&self, key: &[u8], delta: i64);
    /// Commits the buffered writes. The caller holds the only reference.
    async fn commit(self: Arc<Self>) -> Result<()>;
}

/// A transaction: consistent reads at one version, buffered writes, read-your-writes.
///
/// Cloning is cheap and shares the transaction; all clones must be dropped before the
/// retry loop commits it.
#[derive(Clone, Debug)]
pub struct Transaction {
    inner: Arc<dyn BackendTransaction>,
}

impl Transaction {
    pub fn new(inner: Arc<dyn BackendTransaction>) -> Self {
        Transaction { inner }
    }

    /// Reads `key`; the read conflicts with concurrent writes to it.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key, false).await
    }

    /// Reads `key` without a read conflict: a concurrent write to it does not fail this
    /// transaction.
    pub async fn snapshot_get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key, true).await
    }

    /// Reads one page of `range`; continue with [`RangeOption::next_page`].
    pub async fn get_range_page(&self, range: &RangeOption, snapshot: bool) -> Result<RangePage> {
        self.inner.get_range(range, snapshot).await
    }

    /// Reads all of `range` (up to its limit), page by page.
    pub async fn get_range(&self, range: &RangeOption) -> Result<Vec<KeyValue>> {
        self.collect_range(range, false).await
    }

    /// Reads all of `range` (up to its limit) without read conflicts.
    pub async fn snapshot_get_range(&self, range: &RangeOption) -> Result<Vec<KeyValue>> {
        self.collect_range(range, true).await
    }

    async fn collect_range(&self, range: &RangeOption, snapshot: bool) -> Result<Vec<KeyValue>> {
        let mut page = self.inner.get_range(range, snapshot).await?;
        let mut next = range.next_page(&page);
        let mut all = std::mem::take(&mut page.kvs);
        while let Some(range) = next {
            let mut page = self.inner.get_range(&range, snapshot).await?;
            next = range.next_page(&page);
            all.append(&mut page.kvs);
        }
        Ok(all)
    }

    pub fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value)
    }

    pub fn clear(&self, key: &[u8]) {
        self.inner.clear(key)
    }

    /// Clears every key in `begin..end`.
    pub fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end)
    }

    /// Adds `delta` to the little-endian i64 counter at `key` without a read conflict.
    pub fn atomic_add(&self, key: &[u8], delta: i64) {
        self.inner.atomic_add(key, delta)
    }

    /// Commits this transaction. [`Database::run`](crate::Database::run) calls this; use
    /// it directly only for a transaction from [`Database::begin`](crate::Database::begin).
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await
    }
}

/// Checks a key against FoundationDB's rules: at most [`MAX_KEY_BYTES`], and not in the
/// system keyspace (`0xff…`). Backends report the first failed check at commit.
pub(crate) fn check_key(key: &[u8]) -> Option<Error> {
    if key.len() > MAX_KEY_BYTES {
        Some(Error::KeyTooLarge { size: key.len() })
    } else if key.first() == Some(&0xff) {
        Some(Error::KeyOutsideLegalRange)
    } else {
        None
    }
}

/// Checks a value against FoundationDB's [`MAX_VALUE_BYTES`].
pub(crate) fn check_value(value: &[u8]) -> Option<Error> {
    (value.len() > MAX_VALUE_BYTES).then_some(Error::ValueTooLarge { size: value.len() })
}

/// Decodes a counter written by [`Transaction::atomic_add`]: little-endian, zero-extended.
pub fn decode_counter(value: &[u8]) -> i64 {
    let mut bytes = [0u8; 8];
    let n = value.len().min(8);
    bytes[..n].copy_from_slice(&value[..n]);
    i64::from_le_bytes(bytes)
}

/// What a backend implements: a source of transactions.
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn begin(&self) -> Result<Transaction>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strinc_skips_trailing_ff() {
        assert_eq!(strinc(b"ab"), b"ac");
        assert_eq!(strinc(&[1, 0xff, 0xff]), vec![2]);
    }

    #[test]
    fn counters_decode_short_and_long_values() {
        assert_eq!(decode_counter(&[]), 0);
        assert_eq!(decode_counter(&[5]), 5);
        assert_eq!(decode_counter(&(-3i64).to_le_bytes()), -3);
        assert_eq!(decode_counter(&[1, 0, 0, 0, 0, 0, 0, 0, 9]), 1);
    }

    #[test]
    fn next_page_honours_the_limit_and_direction() {
        let kv = |k: &[u8]| KeyValue {
            key: Bytes::copy_from_slice(k),
            value: Bytes::new(),
        };
        let range = RangeOption::new(b"a".to_vec()..b"z".to_vec()).limit(3);
        let page = RangePage {
            kvs: vec![kv(b"b"), kv(b"c")],
            more: true,
        };
        let next = range
            .next_page(&page)
            .expect("one key left within the limit");
        assert_eq!(next.begin, b"c\0");
        assert_eq!(next.limit, Some(1));
        let reverse = range.clone().reverse(true).limit(2);
        assert_eq!(reverse.next_page(&page), None, "limit reached");
        let reverse = range.reverse(true).limit(10);
        assert_eq!(reverse.next_page(&page).expect("more").end, b"c");
    }
}
