//! DescribeCluster: the agents of the client's zone, as brokers.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterResponse};

use super::str_bytes;
use crate::brokers::client_zone;
use crate::context::Context;

pub async fn handle(ctx: &Context, client_id: Option<&str>) -> DescribeClusterResponse {
    let zone = client_zone(client_id).unwrap_or(&ctx.config.zone);
    let brokers = ctx.brokers.in_zone(zone).await;
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(ctx.config.cluster_id.clone()))
        .with_controller_id(BrokerId(brokers.first().map_or(-1, |b| b.node_id)))
        .with_brokers(
            brokers
                .iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(str_bytes(b.host.clone()))
                        .with_port(b.port)
                        .with_rack(Some(str_bytes(b.zone.clone())))
                })
                .collect(),
        )
}
