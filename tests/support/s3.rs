//! A real S3 HTTP server for the end-to-end tests: `s3s-fs` (objects as files under a
//! temporary directory) behind `s3s`, which checks every request's SigV4 signature
//! against one fixed key. It runs on a loopback port in a thread with its own tokio
//! runtime, for as long as the [`S3`] value lives.
//!
//! With `WEIR_TEST_S3_ENDPOINT` set (and `WEIR_TEST_S3_BUCKET`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_REGION`), [`S3::start`] uses that server
//! instead — MinIO, or moto_server — and the bucket must exist. moto_server accepts any
//! signature: set `WEIR_TEST_S3_IGNORES_SIGNATURES=1` with it, which skips the wrong-key
//! test.
//!
//! Every [`S3`] hands out its own prefix, so tests sharing an external bucket never see
//! each other's objects.

use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::sync::oneshot;

const ACCESS_KEY: &str = "weir-test-access-key";
const SECRET_KEY: &str = "weir-test-secret-key-0123456789";
const REGION: &str = "us-east-1";
const BUCKET: &str = "weir-test";

/// One S3 endpoint, a bucket on it and a fresh prefix in that bucket.
#[derive(Debug)]
pub struct S3 {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub bucket: String,
    /// This instance's prefix in the bucket (no slashes at either end).
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// The directory holding the bucket's objects, for the in-process server.
    pub bucket_dir: Option<PathBuf>,
    /// Whether the server rejects a request signed with the wrong secret key.
    pub checks_signatures: bool,
    stop: Option<oneshot::Sender<()>>,
    // Last, so the server is gone before its directory is removed.
    _root: Option<tempfile::TempDir>,
}

impl S3 {
    /// The external server named by `WEIR_TEST_S3_ENDPOINT`, else an in-process one.
    pub fn start() -> S3 {
        match std::env::var("WEIR_TEST_S3_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => S3::external(endpoint),
            _ => S3::in_process(),
        }
    }

    fn external(endpoint: String) -> S3 {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("WEIR_TEST_S3_ENDPOINT is set, so {name} must be set too")
            })
        };
        S3 {
            endpoint,
            bucket: var("WEIR_TEST_S3_BUCKET"),
            prefix: fresh_prefix(),
            access_key: var("AWS_ACCESS_KEY_ID"),
            secret_key: var("AWS_SECRET_ACCESS_KEY"),
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| REGION.to_string()),
            bucket_dir: None,
            checks_signatures: std::env::var_os("WEIR_TEST_S3_IGNORES_SIGNATURES").is_none(),
            stop: None,
            _root: None,
        }
    }

    fn in_process() -> S3 {
        let root = tempfile::TempDir::new().expect("temp dir for the S3 server");
        let bucket_dir = root.path().join(BUCKET);
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir(&bucket_dir).expect("create the bucket directory");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the S3 server");
        listener
            .set_nonblocking(true)
            .expect("make the S3 listener non-blocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let fs = s3s_fs::FileSystem::new(root.path()).expect("serve the S3 directory");
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("s3-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the S3 server");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the S3 listener");
                    let http = ConnBuilder::new(TokioExecutor::new());
                    loop {
                        let socket = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((socket, _)) => socket,
                                Err(e) => {
                                    eprintln!("S3 server: accept: {e}");
                                    continue;
                                }
                            },
                            _ = &mut stop_rx => break,
                        };
                        let conn = http
                            .serve_connection(TokioIo::new(socket), service.clone())
                            .into_owned();
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                });
            })
            .expect("spawn the S3 server thread");
        S3 {
            endpoint,
            bucket: BUCKET.to_string(),
            prefix: fresh_prefix(),
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
            region: REGION.to_string(),
            bucket_dir: Some(bucket_dir),
            checks_signatures: true,
            stop: Some(stop_tx),
            _root: Some(root),
        }
    }

    /// `s3://BUCKET/PREFIX`, for `--bucket`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The `AWS_*` variables that point `weir` (object_store) at this server, path-style
    /// over plain HTTP.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false".to_string()),
        ]
    }

    /// Every object under this instance's prefix: (key, bytes), read back through the
    /// S3 API with the same credentials `weir` uses.
    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.store();
        let prefix = ObjectPath::from(self.prefix.as_str());
        super::kafka::block_on(async move {
            use futures::TryStreamExt as _;
            let listed: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("list the test bucket");
            let mut objects = Vec::new();
            for meta in listed {
                let bytes = store
                    .get(&meta.location)
                    .await
                    .expect("get an object")
                    .bytes()
                    .await
                    .expect("read an object");
                objects.push((meta.location.to_string(), bytes.to_vec()));
            }
            objects
        })
    }

    /// Every object under this instance's prefix with its bytes, skipping any deleted
    /// between the listing and its read (the agents' deletions run meanwhile).
    pub fn objects_present(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.store();
        let prefix = ObjectPath::from(self.prefix.as_str());
        super::kafka::block_on(async move {
            use futures::TryStreamExt as _;
            let listed: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("list the test bucket");
            let mut objects = Vec::new();
            for meta in listed {
                let read = match store.get(&meta.location).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                };
                match read {
                    Ok(bytes) => objects.push((meta.location.to_string(), bytes.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => panic!("read {}: {e}", meta.location),
                }
            }
            objects
        })
    }

    /// The keys under this instance's prefix, listed only (objects may go while a
    /// collector runs).
    pub fn keys(&self) -> Vec<String> {
        let store = self.store();
        let prefix = ObjectPath::from(self.prefix.as_str());
        super::kafka::block_on(async move {
            use futures::TryStreamExt as _;
            let listed: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("list the test bucket");
            listed.into_iter().map(|m| m.location.to_string()).collect()
        })
    }

    /// Writes `bytes` under `key` (relative to this instance's prefix), as a test that
    /// plays an agent would.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        let store = self.store();
        let path = ObjectPath::from(format!("{}/{key}", self.prefix));
        super::kafka::block_on(async move {
            store
                .put(&path, bytes.into())
                .await
                .expect("put a test object");
        });
    }

    /// An S3 client for the bucket, with the credentials `weir` uses.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_bucket_name(&self.bucket)
                .with_access_key_id(&self.access_key)
                .with_secret_access_key(&self.secret_key)
                .with_region(&self.region)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false)
                .build()
                .expect("an S3 client for the test"),
        )
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A prefix no other test run uses.
fn fresh_prefix() -> String {
    format!("weir-test-{:016x}", rand::random::<u64>())
}
