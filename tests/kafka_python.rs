//! confluent-kafka for Python (librdkafka 2.16) against a real `weir playground`: the
//! script `tests/clients/confluent_roundtrip.py` creates a topic, produces with every
//! codec, reads everything back through `assign`, and checks watermarks and offset
//! lookups by time; see the script for each check.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use support::Playground;
use support::tools;

#[test]
fn confluent_kafka_python_produces_and_consumes() {
    let playground = Playground::start();
    let script = tools::clients_dir().join("confluent_roundtrip.py");
    let out = tools::run(
        Command::new(tools::python())
            .arg(&script)
            .arg(playground.bootstrap())
            .arg("python-records"),
        b"",
    );
    assert!(
        out.lines().any(|line| line.starts_with("ok 10000 records")),
        "the script reports every record checked: {out:?}"
    );
}
