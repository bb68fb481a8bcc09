//! What a reader of the block cache notices: the bytes it asked for, how many requests
//! reach the object store, how much memory the cache holds, and errors it can act on.

mod common;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{CountingStore, cache, object_bytes, put};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use proptest::prelude::*;
use weir_cache::{BlockCache, ErrorKind};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn data_path() -> Path {
    Path::from("weir/data/01JAAAAAAAAAAAAAAAAAAAAAAA.weir")
}

/// Reads the whole object in consecutive ranges of `step` bytes and joins them.
async fn read_in_steps(cache: &BlockCache, path: &Path, size: u64, step: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    let mut start = 0;
    while start < size {
        let end = (start + step).min(size);
        let bytes = cache
            .read(path, start..end, size)
            .await
            .expect("read a range");
        assert_eq!(bytes.len() as u64, end - start, "range {start}..{end}");
        out.extend_from_slice(&bytes);
        start = end;
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

/// An object, a block size, a capacity of a few blocks (so reads evict as they go),
/// and ranges within the object. The whole object and its last byte are always among
/// the ranges, so every case covers the last (usually partial) block.
fn read_case() -> impl Strategy<Value = (u64, u64, u64, Vec<Range<u64>>)> {
    (1u64..20_000, 1u64..5_000, 1u64..8).prop_flat_map(|(size, block_size, blocks)| {
        let range = (0..size).prop_flat_map(move |start| {
            // Short ranges (single bytes, within a block) as often as long ones.
            prop_oneof![1..=(size - start).min(3), 1..=size - start]
                .prop_map(move |len| start..start + len)
        });
        (
            Just(size),
            Just(block_size),
            Just(block_size * blocks),
            prop::collection::vec(range, 1..12).prop_map(move |mut ranges| {
                ranges.push(0..size);
                ranges.push(size - 1..size);
                ranges
            }),
        )
    })
}

proptest! {
    #[test]
    fn reads_return_exactly_the_requested_bytes(
        (size, block_size, capacity, ranges) in read_case(),
        seed: u64,
    ) {
        let object = object_bytes(size as usize, seed);
        let dir = tempfile::tempdir().expect("create a temp dir");
        let local = LocalFileSystem::new_with_prefix(dir.path()).expect("local store");
        let stores: [(&str, Arc<dyn ObjectStore>); 2] =
            [("memory", Arc::new(InMemory::new())), ("local", Arc::new(local))];
        let path = data_path();
        runtime().block_on(async {
            for (name, store) in stores {
                put(store.as_ref(), &path, &object).await;
                let cache = cache(store, block_size, capacity);
                for range in &ranges {
                    let bytes = cache
                        .read(&path, range.clone(), size)
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
                    let want = &object[range.start as usize..range.end as usize];
                    prop_assert_eq!(&bytes[..], want, "{} store, range {:?}", name, range);
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn an_inserted_object_reads_back_from_memory(
        (size, block_size, _capacity, ranges) in read_case(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        seed: u64,
    ) {
        let object = object_bytes(size as usize, seed);
        // The object as the writer holds it: parts cut at arbitrary points, some empty.
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(size as usize + 1)).collect();
        cuts.sort_unstable();
        let parts: Vec<Bytes> = std::iter::once(0)
            .chain(cuts.iter().copied())
            .zip(cuts.iter().copied().chain(std::iter::once(size as usize)))
            .map(|(start, end)| object.slice(start..end))
            .collect();

        // The store never holds the object: any GET would fail the read.
        let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
        let cache = cache(store.clone(), block_size, size.max(block_size));
        let path = data_path();
        runtime().block_on(async {
            cache.insert_object(&path, &parts).await;
            for range in &ranges {
                let bytes = cache
                    .read(&path, range.clone(), size)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want = &object[range.start as usize..range.end as usize];
                prop_assert_eq!(&bytes[..], want, "range {:?}", range);
            }
            Ok(())
        })?;
        prop_assert_eq!(store.gets(), 0);
        prop_assert_eq!(cache.stats().inserted_bytes, size);
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_readers_of_one_object_fetch_each_block_once() {
    const SIZE: u64 = 8 * MIB;
    let object = object_bytes(SIZE as usize, 7);
    let path = data_path();
    // Each GET takes 20 ms (of paused time), so the readers' loads overlap.
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::from_millis(20));
    put(store.as_ref(), &path, &object).await;
    let cache = cache(store.clone(), MIB, 256 * MIB);

    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (cache, path) = (cache.clone(), path.clone());
            tokio::spawn(async move { read_in_steps(&cache, &path, SIZE, 100 * KIB).await })
        })
        .collect();
    for reader in readers {
        let read = reader.await.expect("reader task");
        assert!(read == object, "a reader got different bytes");
    }

    let blocks = SIZE / MIB;
    assert_eq!(store.gets(), blocks, "each block fetched once");
    let stats = cache.stats();
    assert_eq!(stats.store_gets, blocks);
    assert_eq!(stats.store_get_bytes, SIZE);
    assert_eq!(stats.served_bytes, 3 * SIZE);
    assert!(
        stats.misses >= blocks,
        "the readers met the missing blocks together: {stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_blocks_of_one_read_load_concurrently() {
    const SIZE: u64 = 8 * MIB;
    let object = object_bytes(SIZE as usize, 8);
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::from_millis(20));
    put(store.as_ref(), &path, &object).await;
    let cache = cache(store.clone(), MIB, 256 * MIB);

    let read = cache.read(&path, 0..SIZE, SIZE).await.expect("read");

    assert!(read == object);
    assert_eq!(store.gets(), 8);
    assert_eq!(store.max_in_flight(), 8, "all 8 GETs in flight together");
}

#[tokio::test]
async fn reads_of_an_inserted_object_need_no_get() {
    const SIZE: u64 = 8 * MIB + 12_345;
    let object = object_bytes(SIZE as usize, 9);
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
    put(store.as_ref(), &path, &object).await;
    let cache = cache(store.clone(), MIB, 256 * MIB);
    // As the writer holds it: record batches of uneven sizes.
    let parts: Vec<Bytes> = (0..SIZE)
        .step_by(300_001)
        .map(|start| object.slice(start as usize..(start + 300_001).min(SIZE) as usize))
        .collect();

    cache.insert_object(&path, &parts).await;
    let read = read_in_steps(&cache, &path, SIZE, 100 * KIB).await;

    assert!(read == object);
    assert_eq!(store.gets(), 0);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.inserted_bytes), (0, SIZE));
}

#[tokio::test]
async fn a_read_within_a_block_of_an_inserted_object_shares_the_writers_buffer() {
    let object = object_bytes(10_000, 10);
    let path = data_path();
    let cache = cache(Arc::new(InMemory::new()), 4 * KIB, MIB);
    cache
        .insert_object(&path, std::slice::from_ref(&object))
        .await;

    let bytes = cache.read(&path, 5_000..5_100, 10_000).await.expect("read");

    assert_eq!(bytes, object.slice(5_000..5_100));
    assert_eq!(
        bytes.as_ptr(),
        object[5_000..].as_ptr(),
        "served without a copy"
    );
}

#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    const SIZE: u64 = 64 * KIB;
    let object = object_bytes(SIZE as usize, 11);
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
    put(store.as_ref(), &path, &object).await;
    let cache = cache(store.clone(), KIB, 4 * KIB);

    let read = read_in_steps(&cache, &path, SIZE, KIB).await;
    assert!(read == object);
    cache.run_pending_tasks().await;

    let resident = cache.stats().resident_bytes;
    assert!(
        0 < resident && resident <= 4 * KIB,
        "resident {resident} bytes"
    );
    assert_eq!(store.gets(), 64);
    // The most recent block is still cached; the first was evicted long ago.
    cache
        .read(&path, SIZE - 1..SIZE, SIZE)
        .await
        .expect("read last");
    assert_eq!(store.gets(), 64, "the last block read is still cached");
    cache.read(&path, 0..1, SIZE).await.expect("read first");
    assert_eq!(store.gets(), 65, "the first block was evicted");
}

#[tokio::test]
async fn a_missing_object_is_not_found_and_named() {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let local = LocalFileSystem::new_with_prefix(dir.path()).expect("local store");
    let stores: [Arc<dyn ObjectStore>; 2] = [Arc::new(InMemory::new()), Arc::new(local)];
    for store in stores {
        let name = store.to_string();
        let cache = cache(store, KIB, MIB);

        let err = cache
            .read(&data_path(), 0..10, 5_000)
            .await
            .expect_err("read a missing object");

        assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {err}");
        assert!(
            err.to_string().contains(data_path().as_ref()),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn an_invalid_range_is_rejected_naming_range_and_size() {
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
    put(store.as_ref(), &path, &object_bytes(15, 12)).await;
    let cache = cache(store.clone(), KIB, MIB);

    let past_end = cache.read(&path, 10..20, 15).await.expect_err("past end");
    assert_eq!(past_end.kind(), ErrorKind::Invalid);
    let message = past_end.to_string();
    for part in ["10..20", "15 bytes", path.as_ref(), "past the end"] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }

    let empty = cache.read(&path, 5..5, 15).await.expect_err("empty range");
    assert_eq!(empty.kind(), ErrorKind::Invalid);
    assert!(empty.to_string().contains("5..5"), "{empty}");
    assert!(empty.to_string().contains("empty"), "{empty}");

    assert_eq!(store.gets(), 0, "rejected before reaching the store");
}

#[tokio::test]
async fn a_failed_load_is_not_cached_and_the_next_read_retries() {
    let object = object_bytes(3_000, 13);
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
    put(store.as_ref(), &path, &object).await;
    let cache = cache(store.clone(), KIB, MIB);
    store.fail_next_gets(1);

    let err = cache
        .read(&path, 0..100, 3_000)
        .await
        .expect_err("injected");
    assert_eq!(err.kind(), ErrorKind::Retry, "{err}");
    assert!(err.to_string().contains(path.as_ref()), "{err}");

    let bytes = cache.read(&path, 0..100, 3_000).await.expect("retry");
    assert_eq!(bytes, object.slice(0..100));
    assert_eq!(store.gets(), 2);
}

#[tokio::test]
async fn an_object_shorter_than_its_stated_size_is_reported_not_served() {
    let object = object_bytes(100, 14);
    let path = data_path();
    let store = CountingStore::new(Arc::new(InMemory::new()), Duration::ZERO);
    put(store.as_ref(), &path, &object).await;

    // Loaded from the store: block 1 is 64..128 by the stated size, but only 36
    // bytes exist.
    let loaded = cache(store.clone(), 64, KIB);
    let err = loaded.read(&path, 60..70, 128).await.expect_err("short");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.to_string().contains("not 64"), "{err}");

    // Cached by the writer with its true size, then read with a wrong one.
    let inserted = cache(store.clone(), 64, KIB);
    inserted
        .insert_object(&path, std::slice::from_ref(&object))
        .await;
    let err = inserted.read(&path, 60..70, 128).await.expect_err("short");
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert_eq!(
        inserted.read(&path, 60..70, 100).await.expect("true size"),
        object.slice(60..70)
    );
}
