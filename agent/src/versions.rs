//! The Kafka APIs and versions this agent serves: the one table ApiVersions
//! advertises and the dispatcher checks. Lowest versions follow KIP-896's baseline
//! (Kafka 2.1); highest are those the newest Java client and librdkafka use.

use kafka_protocol::messages::ApiKey;

pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
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
            ApiKey::DescribeConfigs => pair!(DescribeConfigsRequest, DescribeConfigsResponse),
            ApiKey::CreatePartitions => pair!(CreatePartitionsRequest, CreatePartitionsResponse),
            ApiKey::DescribeCluster => pair!(DescribeClusterRequest, DescribeClusterResponse),
            ApiKey::InitProducerId => pair!(InitProducerIdRequest, InitProducerIdResponse),
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
