//! The agents' connection to the control plane over TLS: `weir control-plane` serving
//! with a certificate signed by a CA of this test run, and `weir agent`s given an
//! `https://` URL. With the right CA the agent serves Kafka clients; with the wrong CA,
//! the system's roots, or a plaintext URL it refuses to start and says why.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::kafka::{self, Record};
use support::process::run_to_exit;
use support::tls::TestCa;
use support::{WeirProcess, free_port};

const TOKEN: &str = "tls-token";

/// A control plane serving TLS with a certificate `ca` signed; returns it and its port.
fn tls_control_plane(root: &Path, ca: &TestCa) -> (WeirProcess, u16) {
    let (cert, key) = ca.write_server_cert(root);
    let port = free_port();
    let process = WeirProcess::start(
        "weir control-plane",
        &[
            "control-plane".to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
            "--http-listen".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--metadata".to_string(),
            format!("embedded://{}", root.join("metadata").display()),
            "--tls-cert".to_string(),
            cert.display().to_string(),
            "--tls-key".to_string(),
            key.display().to_string(),
        ],
        &[("WEIR_CONTROL_PLANE_TOKEN", TOKEN)],
        "weir control-plane:",
        &root.join("control-plane.log"),
    );
    (process, port)
}

fn agent_args(control_plane: &str, bucket: &Path, port: u16) -> Vec<String> {
    support::process::agent_args(
        control_plane,
        &format!("file://{}", bucket.display()),
        "zone-a",
        port,
        free_port(),
    )
}

#[test]
fn an_agent_given_the_ca_serves_clients_through_a_tls_control_plane() {
    let root = tempfile::TempDir::new().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    let (_control_plane, grpc) = tls_control_plane(root.path(), &ca);
    let ca_file = ca.write_cert(root.path(), "ca.pem");
    let bucket = root.path().join("bucket");
    std::fs::create_dir_all(&bucket).expect("bucket directory");
    let port = free_port();
    let mut args = agent_args(&format!("https://127.0.0.1:{grpc}"), &bucket, port);
    args.extend([
        "--control-plane-ca".to_string(),
        ca_file.display().to_string(),
    ]);
    let _agent = WeirProcess::start(
        "weir agent",
        &args,
        &[("WEIR_CONTROL_PLANE_TOKEN", TOKEN)],
        "weir agent:",
        &root.path().join("agent.log"),
    );
    let bootstrap = format!("127.0.0.1:{port}");
    kafka::create_topic(&bootstrap, "over-tls", 1);
    let records: Vec<Record> = (0..50)
        .map(|i| Record {
            timestamp: Some(support::recent_ms() + i),
            ..Record::new(format!("k{i}"), format!("v{i}"))
        })
        .collect();
    kafka::produce_ok(&kafka::producer(&bootstrap), "over-tls", Some(0), &records);
    let consumed = kafka::consume_until(
        &kafka::consumer(&bootstrap),
        "over-tls",
        &BTreeMap::from([(0, records.len() as i64)]),
    );
    kafka::assert_partition("over-tls", 0, &consumed[&0], &records);
}

#[test]
fn a_wrong_ca_the_system_roots_or_a_plaintext_url_refuse_to_start_and_say_why() {
    let root = tempfile::TempDir::new().expect("temp dir");
    let ca = TestCa::new("weir test CA");
    let (_control_plane, grpc) = tls_control_plane(root.path(), &ca);
    let other = TestCa::new("some other CA");
    let other_file = other.write_cert(root.path(), "other-ca.pem");
    let bucket = root.path().join("bucket");
    std::fs::create_dir_all(&bucket).expect("bucket directory");
    let https = format!("https://127.0.0.1:{grpc}");
    let refused = |args: Vec<String>, expect: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_to_exit(&args, &[("WEIR_CONTROL_PLANE_TOKEN", TOKEN)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} refuses to start; it said:\n{stderr}"
        );
        eprintln!("refused as expected:\n{stderr}");
        for words in expect {
            assert!(
                stderr.contains(words),
                "{args:?}: the error says {words:?}; it said:\n{stderr}"
            );
        }
    };

    let mut wrong_ca = agent_args(&https, &bucket, free_port());
    wrong_ca.extend([
        "--control-plane-ca".to_string(),
        other_file.display().to_string(),
    ]);
    refused(wrong_ca, &[&https, "certificate", "--control-plane-ca"]);

    // The test CA is in no system store.
    refused(
        agent_args(&https, &bucket, free_port()),
        &[&https, "certificate", "system's roots"],
    );

    let plaintext = format!("http://127.0.0.1:{grpc}");
    refused(
        agent_args(&plaintext, &bucket, free_port()),
        &[&plaintext, "https://"],
    );

    let mut not_pem = agent_args(&https, &bucket, free_port());
    let bogus = root.path().join("not-a-ca.pem");
    std::fs::write(&bogus, "hello").expect("write");
    not_pem.extend([
        "--control-plane-ca".to_string(),
        bogus.display().to_string(),
    ]);
    refused(not_pem, &["--control-plane-ca", "not a PEM file"]);
}
