//! `weir control-plane` as its own process: offsets survive kill -9 and a restart on the
//! same metadata directory, and `--help` documents every flag.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_control_plane::ControlPlaneClient;
use weir_control_plane::proto;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Process {
    child: Child,
    url: String,
}

impl Process {
    fn start(data: &std::path::Path, grpc: u16, http: u16) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args([
                "control-plane",
                "--listen",
                &format!("127.0.0.1:{grpc}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
                "--metadata",
                &format!("embedded://{}", data.display()),
            ])
            .env("WEIR_CONTROL_PLANE_TOKEN", "t0ken")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn weir control-plane");
        Process {
            child,
            url: format!("http://127.0.0.1:{grpc}"),
        }
    }

    async fn client(&self) -> ControlPlaneClient {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ControlPlaneClient::connect(&self.url, Some("t0ken")).await {
                Ok(client) => return client,
                Err(err) if Instant::now() > deadline => {
                    panic!("control plane did not come up: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn kill9(mut self) {
        // SIGKILL: no chance to flush or release anything.
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn commit(client: &mut ControlPlaneClient, topic: &[u8], records: i32) -> i64 {
    let id = ulid::Ulid::new();
    let response = client
        .sequencer
        .commit_object(proto::CommitObjectRequest {
            object_id: id.to_bytes().to_vec(),
            key: format!("data/{id}.weir"),
            size: 100,
            max_age_ms: 0,
            batches: vec![proto::BatchRef {
                topic_id: topic.to_vec(),
                partition: 0,
                position: 0,
                length: 100,
                record_count: records,
                max_timestamp: 1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            }],
        })
        .await
        .expect("commit")
        .into_inner();
    assert_eq!(
        response.results[0].error, 0,
        "{}",
        response.results[0].message
    );
    response.results[0].base_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_survive_kill_9_and_restart() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let (grpc, http) = (free_port(), free_port());

    let first = Process::start(dir.path(), grpc, http);
    let mut client = first.client().await;
    let created = client
        .topics
        .create_topics(proto::CreateTopicsRequest {
            topics: vec![proto::TopicSpec {
                name: "durable".into(),
                partitions: 1,
                configs: Default::default(),
            }],
            validate_only: false,
        })
        .await
        .expect("create")
        .into_inner();
    let topic = created.results[0].topic.clone().expect("created").id;
    let mut expected = 0;
    for records in [3, 1, 4, 1, 5] {
        assert_eq!(commit(&mut client, &topic, records).await, expected);
        expected += i64::from(records);
    }
    first.kill9();

    let second = Process::start(dir.path(), grpc, http);
    let mut client = second.client().await;
    let index = client
        .index
        .read_index(proto::ReadIndexRequest {
            partitions: vec![proto::PartitionRead {
                topic_id: topic.clone(),
                partition: 0,
                from_offset: 0,
                max_bytes: u64::MAX,
            }],
        })
        .await
        .expect("read index")
        .into_inner();
    let partition = &index.partitions[0];
    assert_eq!(
        partition.high_watermark, expected,
        "every acknowledged commit survived"
    );
    let bases: Vec<_> = partition.entries.iter().map(|e| e.base_offset).collect();
    assert_eq!(bases, [0, 3, 4, 8, 9]);
    // The restarted sequencer continues where the first left off.
    assert_eq!(commit(&mut client, &topic, 2).await, expected);

    let health = http_get(http).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

/// GET /healthz with a bare HTTP/1.1 request (no HTTP client dependency needed).
async fn http_get(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect http");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[test]
fn help_documents_every_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["control-plane", "--help"])
        .output()
        .expect("run weir");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--http-listen",
        "--metadata",
        "--cluster",
        "--instance-id",
        "--token",
        "--lease-ttl-secs",
        "--advertise-url",
        "--tls-cert",
        "--tls-key",
        "--standby-listen",
        "--lease-faults-file",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    for variable in ["WEIR_LISTEN", "WEIR_METADATA", "WEIR_CONTROL_PLANE_TOKEN"] {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
}

#[test]
fn a_bad_metadata_url_is_refused_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["control-plane", "--metadata", "postgres://db"])
        .output()
        .expect("run weir");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("embedded://"),
        "says what is expected: {stderr}"
    );
}
