//! The conformance suite every metadata backend must pass. Each case gets a database
//! and a key prefix of its own, writes only under that prefix, and checks behaviour a
//! caller relies on: read-your-writes, range reads, conflicts, atomic adds, limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use weir_metadata::{
    Database, Error, ErrorKind, MAX_KEY_BYTES, MAX_VALUE_BYTES, RangeOption, decode_counter,
};

pub(crate) struct Fixture {
    pub(crate) db: Database,
    pub(crate) prefix: Vec<u8>,
}

impl Fixture {
    pub(crate) fn k(&self, suffix: &str) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(suffix.as_bytes());
        key
    }

    fn all(&self) -> RangeOption {
        RangeOption::prefix(&self.prefix)
    }

    async fn put(&self, pairs: &[(&str, &str)]) {
        let tx = self.db.begin().expect("begin");
        for (k, v) in pairs {
            tx.set(&self.k(k), v.as_bytes());
        }
        tx.commit().await.expect("commit");
    }

    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        let tx = self.db.begin().expect("begin");
        tx.get(&self.k(key)).await.expect("get").map(|v| v.to_vec())
    }

    /// The keys under the prefix, without it, as strings.
    async fn keys(&self, range: RangeOption) -> Vec<String> {
        let tx = self.db.begin().expect("begin");
        let kvs = tx.get_range(&range).await.expect("range");
        kvs.iter()
            .map(|kv| String::from_utf8_lossy(&kv.key[self.prefix.len()..]).into_owned())
            .collect()
    }
}

/// Declares one `#[tokio::test]` per case, each with a fixture from `$fixture`
/// (an async function taking the case's name).
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:path) => {
        $crate::conformance_suite!(@cases $fixture;
            set_get_and_clear, read_your_writes, range_reads_page_limit_and_reverse,
            clear_range_removes_only_the_range, atomic_adds_do_not_conflict,
            read_write_conflict_fails_the_later_commit, snapshot_reads_do_not_conflict,
            range_reads_conflict_with_inserts_inside_them, blind_writes_do_not_conflict,
            limits_are_enforced_and_nothing_is_written, retry_loop_prevents_lost_updates,
            failed_closure_commits_nothing);
    };
    (@cases $fixture:path; $($case:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            if let Some(fixture) = $fixture(stringify!($case)).await {
                conformance::$case(fixture).await;
            }
        }
    )*};
}

pub(crate) async fn set_get_and_clear(f: Fixture) {
    f.put(&[("a", "1"), ("b", "2")]).await;
    assert_eq!(f.read("a").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(f.read("missing").await, None);
    let tx = f.db.begin().expect("begin");
    tx.clear(&f.k("a"));
    tx.set(&f.k("b"), b"3");
    tx.commit().await.expect("commit");
    assert_eq!(f.read("a").await, None);
    assert_eq!(f.read("b").await.as_deref(), Some(&b"3"[..]));
}

pub(crate) async fn read_your_writes(f: Fixture) {
    f.put(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])
        .await;
    let tx = f.db.begin().expect("begin");
    tx.set(&f.k("a"), b"new");
    tx.clear(&f.k("b"));
    tx.clear_range(&f.k("c"), &f.k("d"));
    tx.set(&f.k("bb"), b"inserted");
    tx.atomic_add(&f.k("n"), 5);
    tx.atomic_add(&f.k("n"), 2);
    assert_eq!(
        tx.get(&f.k("a")).await.expect("get").as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(tx.get(&f.k("b")).await.expect("get"), None);
    assert_eq!(tx.get(&f.k("c")).await.expect("get"), None);
    assert_eq!(
        decode_counter(&tx.get(&f.k("n")).await.expect("get").expect("set")),
        7
    );
    let kvs = tx.get_range(&f.all()).await.expect("range");
    let keys: Vec<_> = kvs
        .iter()
        .map(|kv| kv.key[f.prefix.len()..].to_vec())
        .collect();
    assert_eq!(
        keys,
        vec![b"a".to_vec(), b"bb".to_vec(), b"d".to_vec(), b"n".to_vec()]
    );
    let reversed = tx.get_range(&f.all().reverse(true)).await.expect("range");
    let rkeys: Vec<_> = reversed
        .iter()
        .map(|kv| kv.key[f.prefix.len()..].to_vec())
        .collect();
    assert_eq!(rkeys, keys.iter().rev().cloned().collect::<Vec<_>>());
    // A key cleared by a range and then set again is visible.
    tx.clear_range(&f.k("a"), &f.k("z"));
    tx.set(&f.k("c"), b"again");
    assert_eq!(f.keys_in(&tx).await, vec!["c"]);
    tx.commit().await.expect("commit");
    assert_eq!(f.keys(f.all()).await, vec!["c"]);
}

impl Fixture {
    async fn keys_in(&self, tx: &weir_metadata::Transaction) -> Vec<String> {
        let kvs = tx.get_range(&self.all()).await.expect("range");
        kvs.iter()
            .map(|kv| String::from_utf8_lossy(&kv.key[self.prefix.len()..]).into_owned())
            .collect()
    }
}

pub(crate) async fn range_reads_page_limit_and_reverse(f: Fixture) {
    // Enough keys that every backend answers in more than one page.
    let n = 2500;
    let tx = f.db.begin().expect("begin");
    for i in 0..n {
        tx.set(&f.k(&format!("{i:05}")), &[7u8; 100]);
    }
    tx.commit().await.expect("commit");

    let all = f.keys(f.all()).await;
    assert_eq!(all.len(), n);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending order");

    let tx = f.db.begin().expect("begin");
    let first = tx.get_range_page(&f.all(), false).await.expect("page");
    assert!(!first.kvs.is_empty());
    if first.kvs.len() < n {
        assert!(first.more, "a partial page says there is more");
    }
    let mut paged = 0;
    let mut range = Some(f.all());
    while let Some(r) = range {
        let page = tx.get_range_page(&r, false).await.expect("page");
        paged += page.kvs.len();
        range = r.next_page(&page);
    }
    assert_eq!(paged, n);

    assert_eq!(
        f.keys(f.all().limit(3)).await,
        vec!["00000", "00001", "00002"]
    );
    assert_eq!(
        f.keys(f.all().limit(2).reverse(true)).await,
        vec![format!("{:05}", n - 1), format!("{:05}", n - 2)]
    );
    let limited = f.keys(f.all().limit(1500).reverse(true)).await;
    assert_eq!(limited.len(), 1500);
    assert_eq!(limited.last().map(String::as_str), Some("01000"));
    let middle = RangeOption::new(f.k("00010")..f.k("00013"));
    assert_eq!(f.keys(middle).await, vec!["00010", "00011", "00012"]);
    let empty = RangeOption::new(f.k("b")..f.k("a"));
    assert!(f.keys(empty).await.is_empty(), "an inverted range is empty");
}

pub(crate) async fn clear_range_removes_only_the_range(f: Fixture) {
    f.put(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")])
        .await;
    let tx = f.db.begin().expect("begin");
    tx.clear_range(&f.k("b"), &f.k("d"));
    tx.commit().await.expect("commit");
    assert_eq!(f.keys(f.all()).await, vec!["a", "d"]);
}

pub(crate) async fn atomic_adds_do_not_conflict(f: Fixture) {
    let key = f.k("counter");
    let t1 = f.db.begin().expect("begin");
    let t2 = f.db.begin().expect("begin");
    t1.atomic_add(&key, 10);
    t2.atomic_add(&key, -3);
    t1.commit().await.expect("first add commits");
    t2.commit()
        .await
        .expect("a concurrent add does not conflict");
    let value = f.read("counter").await.expect("counter exists");
    assert_eq!(decode_counter(&value), 7);
}

pub(crate) async fn read_write_conflict_fails_the_later_commit(f: Fixture) {
    f.put(&[("k", "0")]).await;
    let reader = f.db.begin().expect("begin");
    assert!(reader.get(&f.k("k")).await.expect("get").is_some());
    reader.set(&f.k("derived"), b"from k");
    f.put(&[("k", "1")]).await;
    let err = reader.commit().await.expect_err("must conflict");
    assert!(matches!(err, Error::NotCommitted), "{err}");
    assert_eq!(err.kind(), ErrorKind::Retry);
    assert_eq!(f.read("derived").await, None, "nothing of it was applied");
}

pub(crate) async fn snapshot_reads_do_not_conflict(f: Fixture) {
    f.put(&[("k", "0")]).await;
    let reader = f.db.begin().expect("begin");
    assert!(reader.snapshot_get(&f.k("k")).await.expect("get").is_some());
    let _ = reader.snapshot_get_range(&f.all()).await.expect("range");
    reader.set(&f.k("derived"), b"x");
    f.put(&[("k", "1"), ("j", "new")]).await;
    reader
        .commit()
        .await
        .expect("snapshot reads add no conflicts");
    assert_eq!(f.read("derived").await.as_deref(), Some(&b"x"[..]));
}

pub(crate) async fn range_reads_conflict_with_inserts_inside_them(f: Fixture) {
    f.put(&[("a", "1"), ("m", "2")]).await;
    let inside = f.db.begin().expect("begin");
    let _ = inside
        .get_range(&RangeOption::new(f.k("a")..f.k("n")))
        .await
        .expect("range");
    inside.set(&f.k("z1"), b"x");
    let outside = f.db.begin().expect("begin");
    let _ = outside
        .get_range(&RangeOption::new(f.k("a")..f.k("c")))
        .await
        .expect("range");
    outside.set(&f.k("z2"), b"x");
    f.put(&[("e", "phantom")]).await;
    let err = inside
        .commit()
        .await
        .expect_err("a key appeared inside the range read");
    assert!(matches!(err, Error::NotCommitted), "{err}");
    outside
        .commit()
        .await
        .expect("the insert was outside the range read");
}

pub(crate) async fn blind_writes_do_not_conflict(f: Fixture) {
    let t1 = f.db.begin().expect("begin");
    let t2 = f.db.begin().expect("begin");
    t1.set(&f.k("k"), b"1");
    t2.set(&f.k("k"), b"2");
    t1.commit().await.expect("commit");
    t2.commit()
        .await
        .expect("write-only transactions do not conflict");
    assert_eq!(
        f.read("k").await.as_deref(),
        Some(&b"2"[..]),
        "last commit wins"
    );
}

pub(crate) async fn limits_are_enforced_and_nothing_is_written(f: Fixture) {
    let big_key = f.k(&"k".repeat(MAX_KEY_BYTES));
    let tx = f.db.begin().expect("begin");
    tx.set(&f.k("ok"), b"1");
    tx.set(&big_key, b"v");
    let err = tx.commit().await.expect_err("key over the limit");
    assert!(matches!(err, Error::KeyTooLarge { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid);

    let tx = f.db.begin().expect("begin");
    tx.set(&f.k("ok"), b"1");
    tx.set(&f.k("v"), &vec![0u8; MAX_VALUE_BYTES + 1]);
    let err = tx.commit().await.expect_err("value over the limit");
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("100000"),
        "the message names the limit: {err}"
    );

    let tx = f.db.begin().expect("begin");
    tx.set(&f.k("v"), &vec![0u8; MAX_VALUE_BYTES]);
    tx.commit().await.expect("a value at the limit is fine");

    let tx = f.db.begin().expect("begin");
    for i in 0..110 {
        tx.set(&f.k(&format!("big{i:03}")), &vec![1u8; MAX_VALUE_BYTES]);
    }
    let err = tx.commit().await.expect_err("transaction over the limit");
    assert!(matches!(err, Error::TransactionTooLarge { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid);

    let tx = f.db.begin().expect("begin");
    tx.set(&[0xff, b'x'], b"system");
    let err = tx.commit().await.expect_err("system keyspace");
    assert!(matches!(err, Error::KeyOutsideLegalRange), "{err}");

    assert_eq!(
        f.keys(f.all()).await,
        vec!["v"],
        "no failed transaction wrote anything"
    );
}

pub(crate) async fn retry_loop_prevents_lost_updates(f: Fixture) {
    let key = Arc::new(f.k("counter"));
    let attempts = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (db, key, attempts) = (f.db.clone(), key.clone(), attempts.clone());
            tokio::spawn(async move {
                for _ in 0..10 {
                    db.run(|tx| {
                        let key = key.clone();
                        let attempts = attempts.clone();
                        async move {
                            attempts.fetch_add(1, Ordering::Relaxed);
                            let current = tx.get(&key).await?.map_or(0, |v| decode_counter(&v));
                            tokio::task::yield_now().await;
                            tx.set(&key, &(current + 1).to_le_bytes());
                            Ok::<_, Error>(())
                        }
                    })
                    .await
                    .expect("increment");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let value = f.read("counter").await.expect("counter");
    assert_eq!(decode_counter(&value), 80, "every increment counted once");
    assert!(attempts.load(Ordering::Relaxed) >= 80);
}

pub(crate) async fn failed_closure_commits_nothing(f: Fixture) {
    #[derive(Debug)]
    enum AppError {
        Refused,
        Meta(Error),
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Meta(e)
        }
    }
    impl weir_metadata::TransactionError for AppError {
        fn as_metadata(&self) -> Option<&Error> {
            match self {
                AppError::Meta(e) => Some(e),
                AppError::Refused => None,
            }
        }
    }
    let calls = AtomicU32::new(0);
    let result: Result<(), AppError> =
        f.db.run(|tx| {
            calls.fetch_add(1, Ordering::Relaxed);
            let key = f.k("k");
            async move {
                tx.set(&key, b"should not land");
                Err(AppError::Refused)
            }
        })
        .await;
    assert!(matches!(result, Err(AppError::Refused)));
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "an application error is not retried"
    );
    assert_eq!(f.read("k").await, None);
}
