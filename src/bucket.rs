//! Bucket URLs to object stores: `s3://bucket/prefix` (endpoint, region, keys and
//! path-style from the standard `AWS_*` variables, so MinIO works), `file:///dir`,
//! `memory://`.
//!
//! S3 client settings (object_store's HTTP client, one connection pool per process,
//! HTTP/1.1, idle connections kept with reqwest's defaults): request timeout 10 s,
//! connect timeout 5 s, and at most 3 retries within 10 s (see [`retry_config`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use object_store::aws::AmazonS3ConfigKey;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use weir_agent::Bucket;

pub(crate) fn open(url: &str) -> anyhow::Result<Bucket> {
    let parsed = url::Url::parse(url).with_context(|| {
        format!("bucket URL {url:?}: expected s3://BUCKET/PREFIX, file:///DIR or memory://")
    })?;
    let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
        "s3" => {
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_config(client_key(ClientConfigKey::Timeout), "10s")
                .with_config(client_key(ClientConfigKey::ConnectTimeout), "5s")
                .with_retry(retry_config())
                .build()
                .with_context(|| format!("configure bucket {url}"))?;
            (Arc::new(store), Path::from(parsed.path().trim_matches('/')))
        }
        "file" => {
            let dir = parsed
                .to_file_path()
                .map_err(|()| anyhow::anyhow!("bucket URL {url:?}: not a local path"))?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("create bucket directory {}", dir.display()))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .with_context(|| format!("open bucket directory {}", dir.display()))?;
            (Arc::new(store), Path::default())
        }
        "memory" => (
            Arc::new(object_store::memory::InMemory::new()),
            Path::default(),
        ),
        "gs" | "az" | "abfs" => {
            bail!("bucket URL {url:?}: this build of weir supports s3://, file:// and memory://")
        }
        other => bail!(
            "bucket URL {url:?}: unknown scheme {other:?}; expected s3://, file:// or memory://"
        ),
    };
    Ok(Bucket { store, prefix })
}

fn client_key(key: ClientConfigKey) -> AmazonS3ConfigKey {
    AmazonS3ConfigKey::Client(key)
}

/// object_store retries a failed request (5xx, SlowDown, a timeout, a reset
/// connection) itself, by default up to 10 times within 3 minutes. The agent has its
/// own retry loop around each upload, bounded by the produce timeout (30 s by default),
/// and a consumer's fetch is retried by its client; so one call here must fail well
/// within that timeout rather than hold the producers' answer: 3 retries, none started
/// after 10 s, each request cut at 10 s (object_store's default is 30 s; AWS advises
/// ~2 s for latency-sensitive small requests, but objects are up to 8 MiB).
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}

/// Fails with the bucket's name and the store's error if the bucket cannot be listed.
pub(crate) async fn check(url: &str, bucket: &Bucket) -> anyhow::Result<()> {
    bucket
        .store
        .list_with_delimiter(Some(&bucket.prefix))
        .await
        .with_context(|| {
            format!("bucket {url} is not usable (check its name, endpoint and credentials)")
        })?;
    Ok(())
}
