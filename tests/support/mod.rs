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
