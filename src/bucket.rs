//! Bucket URLs to object stores: `s3://bucket/prefix` (endpoint, region, keys and
//! path-style from the standard `AWS_*` variables, so MinIO works), `file:///dir`,
//! `memory://`.

use std::sync::Arc;

use anyhow::{Context, bail};
use object_store::ObjectStore;
use object_store::path::Path;
use weir_agent::Bucket;

pub(crate) fn open(url: &str) -> anyhow::Result<Bucket> {
    let parsed = url::Url::parse(url).with_context(|| {
        format!("bucket URL {url:?}: expected s3://BUCKET/PREFIX, file:///DIR or memory://")
    })?;
    let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
        "s3" => {
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
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
