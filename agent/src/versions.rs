//! The Kafka APIs and versions this agent serves: the one table ApiVersions
//! advertises and the dispatcher checks. Lowest versions follow KIP-896's baseline
//! (Kafka 2.1), except the group APIs, served from the codec's lowest so old clients
//! (Sarama) can join groups; highest are those the newest Java client and librdkafka use.

use kafka_protocol::messages::ApiKey;

pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 5),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// The versions of `key` served, if any.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::*;

    /// A default request and response of an API.
    fn defaults(key: ApiKey) -> (RequestKind, ResponseKind) {
        macro_rules! pair {
            ($req:ident, $resp:ident) => {
                (
                    RequestKind::from($req::default()),
                    ResponseKind::from($resp::default()),
                )
            };
        }
        match key {
            ApiKey::Produce => pair!(ProduceRequest, ProduceResponse),
            ApiKey::Fetch => pair!(FetchRequest, FetchResponse),
            ApiKey::ListOffsets => pair!(ListOffsetsRequest, ListOffsetsResponse),
            ApiKey::Metadata => pair!(MetadataRequest, MetadataResponse),
            ApiKey::ApiVersions => pair!(ApiVersionsRequest, ApiVersionsResponse),
            ApiKey::CreateTopics => pair!(CreateTopicsRequest, CreateTopicsResponse),
            ApiKey::DeleteTopics => pair!(DeleteTopicsRequest, DeleteTopicsResponse),
            ApiKey::DeleteRecords => pair!(DeleteRecordsRequest, DeleteRecordsResponse),
            ApiKey::DescribeConfigs => pair!(DescribeConfigsRequest, DescribeConfigsResponse),
            ApiKey::AlterConfigs => pair!(AlterConfigsRequest, AlterConfigsResponse),
            ApiKey::IncrementalAlterConfigs => {
                pair!(
                    IncrementalAlterConfigsRequest,
                    IncrementalAlterConfigsResponse
                )
            }
            ApiKey::CreatePartitions => pair!(CreatePartitionsRequest, CreatePartitionsResponse),
            ApiKey::DescribeCluster => pair!(DescribeClusterRequest, DescribeClusterResponse),
            ApiKey::InitProducerId => pair!(InitProducerIdRequest, InitProducerIdResponse),
            ApiKey::FindCoordinator => pair!(FindCoordinatorRequest, FindCoordinatorResponse),
            ApiKey::JoinGroup => pair!(JoinGroupRequest, JoinGroupResponse),
            ApiKey::SyncGroup => pair!(SyncGroupRequest, SyncGroupResponse),
            ApiKey::Heartbeat => pair!(HeartbeatRequest, HeartbeatResponse),
            ApiKey::LeaveGroup => pair!(LeaveGroupRequest, LeaveGroupResponse),
            ApiKey::OffsetCommit => pair!(OffsetCommitRequest, OffsetCommitResponse),
            ApiKey::OffsetFetch => pair!(OffsetFetchRequest, OffsetFetchResponse),
            ApiKey::OffsetDelete => pair!(OffsetDeleteRequest, OffsetDeleteResponse),
            ApiKey::DescribeGroups => pair!(DescribeGroupsRequest, DescribeGroupsResponse),
            ApiKey::ListGroups => pair!(ListGroupsRequest, ListGroupsResponse),
            ApiKey::DeleteGroups => pair!(DeleteGroupsRequest, DeleteGroupsResponse),
            other => panic!("{other:?} is advertised but has no test defaults"),
        }
    }

    #[test]
    fn every_advertised_version_is_within_the_codec_and_round_trips() {
        for &(key, min, max) in SUPPORTED {
            let codec = key.valid_versions();
            assert!(
                codec.min <= min && max <= codec.max,
                "{key:?} {min}..={max} outside {codec}"
            );
            for version in min..=max {
                // A default request and response of every version encode and decode.
                let (request, response) = defaults(key);
                let mut buf = BytesMut::new();
                request.encode(&mut buf, version).expect("encode request");
                let mut bytes = buf.freeze();
                RequestKind::decode(key, &mut bytes, version).expect("decode request");
                let mut buf = BytesMut::new();
                response.encode(&mut buf, version).expect("encode response");
                let mut bytes = buf.freeze();
                ResponseKind::decode(key, &mut bytes, version).expect("decode response");
            }
        }
    }
}
