//! The conformance suite and the embedded backend's own guarantees: durability across
//! reopen and the injected FoundationDB failure modes.

mod conformance;

use std::sync::Arc;

use tempfile::TempDir;
use weir_metadata::{
    Database, EmbeddedConfig, EmbeddedStore, Error, FaultConfig, RangeOption, decode_counter,
};

/// A fresh embedded store per case; the directory lives as long as the process.
async fn fixture(_case: &str) -> Option<conformance::Fixture> {
    let dir = TempDir::new().expect("temp dir").keep();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir)).expect("open");
    Some(conformance::Fixture {
        db: Database::new(Arc::new(store)),
        prefix: b"conformance/".to_vec(),
    })
}

conformance_suite!(fixture);

#[tokio::test]
async fn commits_survive_reopening_the_store() {
    let dir = TempDir::new().expect("temp dir");
    {
        let db = Database::new(Arc::new(
            EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open"),
        ));
        let tx = db.begin().expect("begin");
        tx.set(b"k", b"v");
        tx.atomic_add(b"n", 41);
        tx.commit().await.expect("commit");
    }
    let db = Database::new(Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("reopen"),
    ));
    let tx = db.begin().expect("begin");
    assert_eq!(tx.get(b"k").await.expect("get").as_deref(), Some(&b"v"[..]));
    assert_eq!(
        decode_counter(&tx.get(b"n").await.expect("get").expect("n")),
        41
    );
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_store() {
    let dir = TempDir::new().expect("temp dir");
    let _first = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open");
    let err = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect_err("already open");
    let message = err.to_string();
    assert!(
        message.contains("metadata.redb"),
        "names the file: {message}"
    );
}

#[tokio::test]
async fn injected_conflicts_fail_commits_without_applying_them() {
    let dir = TempDir::new().expect("temp dir");
    let mut config = EmbeddedConfig::new(dir.path());
    config.faults = FaultConfig {
        conflict_rate: 1.0,
        unknown_result_rate: 0.0,
        seed: 7,
    };
    let store = EmbeddedStore::open(config).expect("open");
    let db = Database::new(Arc::new(store));
    let tx = db.begin().expect("begin");
    tx.set(b"k", b"v");
    assert!(matches!(tx.commit().await, Err(Error::NotCommitted)));
    let tx = db.begin().expect("begin");
    assert_eq!(tx.get(b"k").await.expect("get"), None);
}

#[tokio::test]
async fn unknown_results_sometimes_applied_and_the_retry_loop_reruns() {
    let dir = TempDir::new().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("open"));
    store.set_faults(FaultConfig {
        conflict_rate: 0.0,
        unknown_result_rate: 1.0,
        seed: 11,
    });
    let db = Database::new(store.clone());
    let mut applied = 0;
    for i in 0..40u32 {
        let tx = db.begin().expect("begin");
        tx.set(&i.to_be_bytes(), b"v");
        assert!(matches!(tx.commit().await, Err(Error::CommitUnknownResult)));
        let tx = db.begin().expect("begin");
        applied += usize::from(tx.get(&i.to_be_bytes()).await.expect("get").is_some());
    }
    assert!(
        (5..=35).contains(&applied),
        "an unknown result is sometimes applied, sometimes not: {applied}/40"
    );

    // With a lower rate, the retry loop gets an idempotent transaction through.
    store.set_faults(FaultConfig {
        conflict_rate: 0.3,
        unknown_result_rate: 0.3,
        seed: 12,
    });
    for i in 100..120u32 {
        db.run(|tx| async move {
            tx.set(&i.to_be_bytes(), b"retried");
            Ok::<_, Error>(())
        })
        .await
        .expect("retried until committed");
    }
    let tx = db.begin().expect("begin");
    let range = RangeOption::new(100u32.to_be_bytes().to_vec()..120u32.to_be_bytes().to_vec());
    assert_eq!(tx.get_range(&range).await.expect("range").len(), 20);
}
