//! The conformance suite against FoundationDB, when `FDB_CLUSTER_FILE` names a cluster.
//! Without it (or without the `fdb` feature) every case reports that it was skipped.

mod conformance;

#[cfg(feature = "fdb")]
async fn fixture(case: &str) -> Option<conformance::Fixture> {
    use std::sync::Arc;
    let Some(cluster_file) = std::env::var_os("FDB_CLUSTER_FILE") else {
        eprintln!("SKIPPED fdb conformance {case}: FDB_CLUSTER_FILE is not set");
        return None;
    };
    let store = weir_metadata::FdbStore::open(Some(std::path::Path::new(&cluster_file)))
        .expect("connect to FoundationDB");
    let db = weir_metadata::Database::new(Arc::new(store));
    let prefix = format!("weir-conformance/{case}/{}/", ulid::Ulid::new()).into_bytes();
    Some(conformance::Fixture { db, prefix })
}

#[cfg(not(feature = "fdb"))]
async fn fixture(case: &str) -> Option<conformance::Fixture> {
    eprintln!("SKIPPED fdb conformance {case}: built without the `fdb` feature");
    None
}

conformance_suite!(fixture);
