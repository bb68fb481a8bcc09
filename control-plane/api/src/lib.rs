//! What agents and the control plane share, and nothing else: the gRPC protocol
//! (`proto/`, compiled here), a client that follows the sequencer lease between
//! instances ([`client`]) with the data path's calls in domain types ([`data`]), the
//! bearer token ([`auth`]), the table of topic configs ([`topic_config`]) and Kafka's
//! rules for names ([`names`]). Ids come from `weir-metadata`.
//!
//! The agent depends on this crate and never on `weir-control-plane`, so it compiles
//! none of the sequencer, the group coordinator or the metadata store.

pub mod admin;
pub mod auth;
pub mod client;
pub mod data;
mod error;
pub mod jobs;
pub mod names;
pub mod topic_config;

#[allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    tonic::include_proto!("weir.controlplane.v1");
}

pub use client::{ClientOptions, ControlPlaneClient};
pub use error::ClientError;

/// The response header in which a standby names where the lease holder serves; the
/// client moves there.
pub const LEASE_HOLDER_HEADER: &str = "weir-lease-holder";

/// Kafka's type for the consumer groups the control plane coordinates (KIP-848's
/// `consumer` groups are not served), as ListGroups and DescribeGroups report it.
pub const GROUP_TYPE: &str = "classic";
