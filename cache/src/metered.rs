//! [`MeteredStore`]: an object store wrapper that counts requests, failures and bytes
//! per operation in Prometheus counters.
//!
//! Object-store requests are what a diskless system pays for (S3 bills per PUT and
//! GET), so operators need them per operation, and benchmarks need them per GiB
//! ingested and read. The wrapper sits just above the real store (or above a
//! [`FaultyStore`](crate::FaultyStore) in tests and benchmarks), so it counts every
//! request the agent makes, whichever part of the agent makes it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::faults::Op;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

/// Per-operation counters of the object store. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct ObjectStoreMetrics {
    requests: Family<OpLabel, Counter>,
    errors: Family<OpLabel, Counter>,
    bytes: Family<OpLabel, Counter>,
}

impl ObjectStoreMetrics {
    /// Creates the counters and registers them as `weir_object_store_requests_total`,
    /// `weir_object_store_errors_total` and `weir_object_store_bytes_total`, each with an
    /// `op` label (put, get, head, list, delete).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ObjectStoreMetrics::default();
        registry.register(
            "weir_object_store_requests",
            "Object-store requests, by operation (failed ones included)",
            metrics.requests.clone(),
        );
        registry.register(
            "weir_object_store_errors",
            "Object-store requests that failed, by operation",
            metrics.errors.clone(),
        );
        registry.register(
            "weir_object_store_bytes",
            "Bytes sent (put) or received (get) by object-store requests that succeeded",
            metrics.bytes.clone(),
        );
        // Every operation shows from the start, at zero, so rates and dashboards need
        // no special case for a series that does not exist yet.
        for op in Op::ALL {
            for family in [&metrics.requests, &metrics.errors, &metrics.bytes] {
                let _ = family.get_or_create(&label(op));
            }
        }
        metrics
    }

    /// Requests of `op` so far.
    pub fn requests(&self, op: Op) -> u64 {
        self.requests.get_or_create(&label(op)).get()
    }

    /// Failed requests of `op` so far.
    pub fn errors(&self, op: Op) -> u64 {
        self.errors.get_or_create(&label(op)).get()
    }

    /// Bytes moved by successful requests of `op` so far.
    pub fn bytes(&self, op: Op) -> u64 {
        self.bytes.get_or_create(&label(op)).get()
    }

    fn record<R>(&self, op: Op, result: &object_store::Result<R>, bytes: impl Fn(&R) -> u64) {
        let label = label(op);
        self.requests.get_or_create(&label).inc();
        match result {
            Ok(r) => {
                self.bytes.get_or_create(&label).inc_by(bytes(r));
            }
            Err(_) => {
                self.errors.get_or_create(&label).inc();
            }
        }
    }
}

fn label(op: Op) -> OpLabel {
    OpLabel { op: op.as_str() }
}

/// Wraps a store and counts its requests in [`ObjectStoreMetrics`].
#[derive(Debug)]
pub struct MeteredStore<T: ObjectStore = Arc<dyn ObjectStore>> {
    inner: T,
    metrics: ObjectStoreMetrics,
}

impl<T: ObjectStore> MeteredStore<T> {
    pub fn new(inner: T, metrics: ObjectStoreMetrics) -> Self {
        MeteredStore { inner, metrics }
    }
}

impl<T: ObjectStore> fmt::Display for MeteredStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeteredStore({})", self.inner)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for MeteredStore<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let size = payload.content_length() as u64;
        let result = self.inner.put_opts(location, payload, opts).await;
        self.metrics.record(Op::Put, &result, |_| size);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let result = self.inner.put_multipart_opts(location, opts).await;
        self.metrics.record(Op::Put, &result, |_| 0);
        result
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        let result = self.inner.get_opts(location, options).await;
        self.metrics.record(op, &result, |got| match op {
            Op::Get => got.range.end - got.range.start,
            _ => 0,
        });
        result
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let result = self.inner.get_range(location, range).await;
        self.metrics
            .record(Op::Get, &result, |bytes| bytes.len() as u64);
        result
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        let result = self.inner.head(location).await;
        self.metrics.record(Op::Head, &result, |_| 0);
        result
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        let result = self.inner.delete(location).await;
        self.metrics.record(Op::Delete, &result, |_| 0);
        result
    }

    /// Counts one request per listing (S3 pages it in requests of 1,000 keys; a listing
    /// of more is undercounted, which is fine for GC's scale).
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let metrics = self.metrics.clone();
        let mut failed = false;
        let mut first = true;
        self.inner
            .list(prefix)
            .map(move |item| {
                if first || (item.is_err() && !failed) {
                    if first {
                        metrics.requests.get_or_create(&label(Op::List)).inc();
                        first = false;
                    }
                    if item.is_err() {
                        failed = true;
                        metrics.errors.get_or_create(&label(Op::List)).inc();
                    }
                }
                item
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await;
        self.metrics.record(Op::List, &result, |_| 0);
        result
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn requests_errors_and_bytes_are_counted_per_operation() {
        let mut registry = Registry::default();
        let metrics = ObjectStoreMetrics::register(&mut registry);
        let store = MeteredStore::new(
            Arc::new(InMemory::new()) as Arc<dyn ObjectStore>,
            metrics.clone(),
        );
        let path = Path::from("data/a.weir");
        store
            .put(&path, PutPayload::from_static(b"0123456789"))
            .await
            .expect("put");
        let got = store.get_range(&path, 2..6).await.expect("get range");
        assert_eq!(&got[..], b"2345");
        store.head(&path).await.expect("head");
        assert!(store.get(&Path::from("data/missing")).await.is_err());
        let listed: Vec<_> = store.list(Some(&Path::from("data"))).collect().await;
        assert_eq!(listed.len(), 1);

        assert_eq!(metrics.requests(Op::Put), 1);
        assert_eq!(metrics.bytes(Op::Put), 10);
        assert_eq!(metrics.requests(Op::Get), 2);
        assert_eq!(metrics.errors(Op::Get), 1);
        assert_eq!(metrics.bytes(Op::Get), 4);
        assert_eq!(metrics.requests(Op::Head), 1);
        assert_eq!(metrics.requests(Op::List), 1);

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            r#"weir_object_store_requests_total{op="put"} 1"#,
            r#"weir_object_store_requests_total{op="get"} 2"#,
            r#"weir_object_store_errors_total{op="get"} 1"#,
            r#"weir_object_store_bytes_total{op="put"} 10"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
