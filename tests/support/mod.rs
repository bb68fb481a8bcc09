//! Shared helpers of the end-to-end tests (`tests/kafka_*.rs`): real `weir` processes on
//! free loopback ports, real Kafka clients configured for what Weir serves today, the
//! external client tools, and raw Kafka frames for the bad-input tests.
//!
//! Include from a test file with `#[path = "support/mod.rs"] mod support;`.

// Each test file uses a different part of these helpers.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod http;
pub mod kafka;
pub mod process;
pub mod protocol;
pub mod proxy;
pub mod s3;
pub mod scenarios;
pub mod tls;
pub mod tools;
pub mod watchdog;
pub mod wire;

pub use process::{Cluster, Playground, WeirProcess, free_port};

/// A create time for test records that retention leaves alone: an hour before this
/// test process started (a topic keeps 7 days by default; records stamped in 2023 would
/// go at the first retention pass, as a Kafka broker's would).
pub fn recent_ms() -> i64 {
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        now.as_millis() as i64 - 3_600_000
    })
}
