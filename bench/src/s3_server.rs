//! `weir-bench s3-server`: a real S3 HTTP server for side-by-side runs — `s3s-fs`
//! (objects as files under `--dir`) behind `s3s`, which checks every request's SigV4
//! signature against one key, as the end-to-end tests' server does. Point `weir` at it
//! with the `AWS_*` variables it prints.

use std::net::SocketAddr;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

#[derive(Debug, clap::Args)]
pub(crate) struct S3ServerArgs {
    #[arg(long, default_value = "127.0.0.1:19000")]
    listen: SocketAddr,
    /// Directory holding the buckets (one subdirectory each).
    #[arg(long)]
    dir: std::path::PathBuf,
    /// Bucket to create if missing.
    #[arg(long, default_value = "weir-bench")]
    bucket: String,
    #[arg(long, default_value = "weir-bench-access-key")]
    access_key: String,
    #[arg(long, default_value = "weir-bench-secret-key")]
    secret_key: String,
}

pub(crate) async fn run(args: S3ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(args.dir.join(&args.bucket))
        .with_context(|| format!("create bucket directory under {}", args.dir.display()))?;
    let fs = s3s_fs::FileSystem::new(&args.dir)
        .map_err(|e| anyhow::anyhow!("serve the S3 directory {}: {e:?}", args.dir.display()))?;
    let service = {
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(
            args.access_key.as_str(),
            args.secret_key.as_str(),
        ));
        builder.build()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!(
        "S3 server: bucket s3://{bucket} with AWS_ENDPOINT_URL=http://{address} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true",
        args.access_key,
        args.secret_key,
        bucket = args.bucket,
    );
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await.context("accept")?;
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
