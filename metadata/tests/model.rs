//! The embedded backend against a `BTreeMap` model: random transactions of sets,
//! clears, range clears, atomic adds and reads, run through the retry loop with
//! injected conflicts (and, for idempotent transactions, unknown results). Every read
//! inside a transaction must match the model plus that transaction's own writes, and
//! the store must equal the model afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use tempfile::TempDir;
use weir_metadata::{
    Database, EmbeddedConfig, EmbeddedStore, Error, FaultConfig, RangeOption, decode_counter,
};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8),
    Clear(u8),
    ClearRange(u8, u8),
    Add(u8, i8),
    Get(u8),
    Range {
        from: u8,
        to: u8,
        limit: Option<usize>,
        reverse: bool,
    },
}

fn key(k: u8) -> Vec<u8> {
    // A small key space so operations collide often.
    vec![b'k', k % 16]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => any::<u8>().prop_map(Op::Clear),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::ClearRange(a, b)),
        2 => (any::<u8>(), any::<i8>()).prop_map(|(k, d)| Op::Add(k, d)),
        3 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), any::<u8>(), proptest::option::of(1usize..6), any::<bool>())
            .prop_map(|(from, to, limit, reverse)| Op::Range { from, to, limit, reverse }),
    ]
}

fn apply(model: &mut Model, op: &Op) {
    match *op {
        Op::Set(k, v) => {
            model.insert(key(k), vec![v]);
        }
        Op::Clear(k) => {
            model.remove(&key(k));
        }
        Op::ClearRange(a, b) => {
            let (a, b) = (key(a), key(b));
            model.retain(|k, _| !(a <= *k && *k < b));
        }
        Op::Add(k, d) => {
            let current = model.get(&key(k)).map_or(0, |v| decode_counter(v));
            model.insert(key(k), (current + i64::from(d)).to_le_bytes().to_vec());
        }
        Op::Get(_) | Op::Range { .. } => {}
    }
}

fn expected_range(
    model: &Model,
    from: u8,
    to: u8,
    limit: Option<usize>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (a, b) = (key(from), key(to));
    let mut kvs: Vec<_> = model
        .iter()
        .filter(|(k, _)| a <= **k && **k < b)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        kvs.reverse();
    }
    kvs.truncate(limit.unwrap_or(usize::MAX));
    kvs
}

/// Runs `txs` one after another through the retry loop; returns the final store.
fn run(txs: Vec<Vec<Op>>, faults: FaultConfig) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = TempDir::new().expect("temp dir");
        let mut config = EmbeddedConfig::new(dir.path());
        config.faults = faults;
        config.page_rows = 3; // small pages, so multi-page reads are exercised
        let db = Database::new(Arc::new(EmbeddedStore::open(config).expect("open")));
        let mut model = Model::new();
        for ops in txs {
            let committed = model.clone();
            let ops = Arc::new(ops);
            let outcome = db
                .run(|tx| {
                    let ops = ops.clone();
                    let mut view = committed.clone();
                    async move {
                        for op in ops.iter() {
                            match *op {
                                Op::Set(k, v) => tx.set(&key(k), &[v]),
                                Op::Clear(k) => tx.clear(&key(k)),
                                Op::ClearRange(a, b) => tx.clear_range(&key(a), &key(b)),
                                Op::Add(k, d) => tx.atomic_add(&key(k), i64::from(d)),
                                Op::Get(k) => {
                                    let got = tx.get(&key(k)).await?.map(|v| v.to_vec());
                                    if got.as_ref() != view.get(&key(k)) {
                                        return Ok(Err(format!(
                                            "get {k}: {got:?} != {:?}",
                                            view.get(&key(k))
                                        )));
                                    }
                                }
                                Op::Range {
                                    from,
                                    to,
                                    limit,
                                    reverse,
                                } => {
                                    let mut range =
                                        RangeOption::new(key(from)..key(to)).reverse(reverse);
                                    range.limit = limit;
                                    let got: Vec<_> = tx
                                        .get_range(&range)
                                        .await?
                                        .into_iter()
                                        .map(|kv| (kv.key.to_vec(), kv.value.to_vec()))
                                        .collect();
                                    let want = expected_range(&view, from, to, limit, reverse);
                                    if got != want {
                                        return Ok(Err(format!("{op:?}: {got:?} != {want:?}")));
                                    }
                                }
                            }
                            apply(&mut view, op);
                        }
                        Ok::<_, Error>(Ok(view))
                    }
                })
                .await
                .expect("the retry loop gets every transaction through");
            model = outcome.map_err(TestCaseError::fail)?;
        }
        let tx = db.begin().expect("begin");
        let stored: Model = tx
            .get_range(&RangeOption::prefix(b"k"))
            .await
            .expect("range")
            .into_iter()
            .map(|kv| (kv.key.to_vec(), kv.value.to_vec()))
            .collect();
        prop_assert_eq!(stored, model);
        Ok(())
    })
}

/// Keeps the blind, idempotent writes of a transaction: after an unknown result the
/// retry may see its own first run applied, so reads and adds are left out.
fn blind_writes(tx: Vec<Op>) -> Vec<Op> {
    tx.into_iter()
        .filter(|op| matches!(op, Op::Set(..) | Op::Clear(..) | Op::ClearRange(..)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_the_model_under_injected_conflicts(
        txs in proptest::collection::vec(proptest::collection::vec(op(), 1..12), 1..12),
        seed in any::<u64>(),
    ) {
        run(txs, FaultConfig { conflict_rate: 0.3, unknown_result_rate: 0.0, seed })?;
    }

    #[test]
    fn idempotent_transactions_survive_unknown_results(
        txs in proptest::collection::vec(proptest::collection::vec(op(), 1..12), 1..12)
            .prop_map(|txs| txs.into_iter().map(blind_writes).collect::<Vec<_>>()),
        seed in any::<u64>(),
    ) {
        run(txs, FaultConfig { conflict_rate: 0.2, unknown_result_rate: 0.2, seed })?;
    }
}
