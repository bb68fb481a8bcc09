//! weir-bench against a real playground, briefly: what it reports producing and
//! consuming must be what the broker holds. (Figures are never asserted.)

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The `weir` binary beside this one: `cargo test --workspace` builds it first.
fn weir_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_weir-bench"));
    let weir = bench.with_file_name("weir");
    assert!(
        weir.exists(),
        "{} is missing: build it first (cargo build --bin weir) or run the workspace's tests",
        weir.display()
    );
    weir
}

struct Playground {
    child: Child,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Playground {
    fn start() -> Playground {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bootstrap = format!("127.0.0.1:{port}");
        let mut child = Command::new(weir_binary())
            .args(["playground", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen", &bootstrap])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start weir playground");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("bootstrap.servers="));
        assert!(ready, "the playground never said it was ready");
        // Keep reading, so the playground never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Playground {
            child,
            bootstrap,
            _dir: dir,
        }
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
        .args(args)
        .output()
        .expect("run weir-bench");
    assert!(
        out.status.success(),
        "weir-bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("weir-bench prints JSON")
}

fn count(value: &serde_json::Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

#[test]
fn what_weir_bench_reports_is_what_the_broker_holds() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap.as_str();

    let produced = bench(&[
        "produce",
        "--bootstrap",
        bootstrap,
        "--topic",
        "smoke",
        "--partitions",
        "3",
        "--record-bytes",
        "100",
        "--seconds",
        "2",
        "--in-flight",
        "1000",
        "--topic-config",
        "retention.ms=3600000",
    ]);
    let acked = count(&produced, "records_acked");
    assert!(acked > 0, "{produced}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("client");
    let held: i64 = (0..3)
        .map(|p| {
            consumer
                .fetch_watermarks("smoke", p, Duration::from_secs(30))
                .expect("ListOffsets")
                .1
        })
        .sum();
    assert_eq!(held, acked as i64, "every acknowledged record, no other");
    assert_eq!(
        retention_ms(bootstrap, "smoke").as_deref(),
        Some("3600000"),
        "the topic was created with --topic-config"
    );

    let one = bench(&[
        "consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        "smoke",
        "--partition",
        "1",
    ]);
    let (_, in_one) = consumer
        .fetch_watermarks("smoke", 1, Duration::from_secs(30))
        .expect("ListOffsets");
    assert_eq!(
        count(&one, "records") as i64,
        in_one,
        "partition 1, and only it: {one}"
    );

    let e2e = bench(&[
        "e2e",
        "--bootstrap",
        bootstrap,
        "--topic",
        "smoke-e2e",
        "--partitions",
        "2",
        "--rate",
        "500",
        "--seconds",
        "2",
        "--record-bytes",
        "64",
    ]);
    let sent = count(&e2e, "records_sent");
    assert!(sent > 0, "{e2e}");
    assert_eq!(count(&e2e, "records_acked"), sent, "{e2e}");
    assert_eq!(count(&e2e, "records_consumed"), sent, "{e2e}");
}

/// The topic's retention.ms as DescribeConfigs shows it.
fn retention_ms(bootstrap: &str, topic: &str) -> Option<String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let described = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()))
        .expect("DescribeConfigs");
    let resource = described.into_iter().next()?.ok()?;
    resource.get("retention.ms")?.value.clone()
}
