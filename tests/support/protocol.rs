//! Well-formed Kafka requests sent by hand, encoded and decoded with `kafka-protocol`:
//! for tests that must aim a call precisely (a wrong generation, a stranger's
//! SyncGroup) or read what no client library exposes (a group's assignments).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DescribeGroupsRequest, GroupId, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::wire;

/// A connection that sends requests, one at a time or pipelined, and reads their
/// responses.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    correlation_id: i32,
    /// Correlation ids of the requests sent and not yet answered, oldest first.
    unanswered: VecDeque<i32>,
}

impl Connection {
    pub fn open(bootstrap: &str) -> Connection {
        Connection {
            stream: wire::connect(bootstrap),
            correlation_id: 0,
            unanswered: VecDeque::new(),
        }
    }

    /// Sends `request` at `version` and returns its response; panics if the server
    /// closes the connection instead of answering.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.send(version, request);
        self.receive::<R>(version)
    }

    /// Sends `request` without waiting for its answer: requests sent one after another
    /// are pipelined, as clients send them. [`Connection::receive`] reads the answers,
    /// in the same order.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-e2e-protocol")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode request header");
        request.encode(&mut body, version).expect("encode request");
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).expect("send request");
        self.unanswered.push_back(self.correlation_id);
    }

    /// Reads the answer to the oldest request not yet answered, which was an `R` sent at
    /// `version`; panics if the server closes the connection or answers out of order.
    pub fn receive<R: Request>(&mut self, version: i16) -> R::Response {
        let expected = self
            .unanswered
            .pop_front()
            .expect("a request is waiting for its answer");
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .expect("the server answers (read length)");
        let mut response = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream
            .read_exact(&mut response)
            .expect("the server answers (read body)");
        let mut response = bytes::Bytes::from(response);
        let header = ResponseHeader::decode(
            &mut response,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .expect("decode response header");
        assert_eq!(
            header.correlation_id, expected,
            "answers come in request order"
        );
        let decoded = R::Response::decode(&mut response, version).expect("decode response");
        assert!(!response.has_remaining(), "the whole response was decoded");
        decoded
    }
}

/// A group as DescribeGroups shows it: its state and each member's assigned
/// (topic, partition)s, decoded from the consumer protocol's assignment.
#[derive(Debug)]
pub struct GroupView {
    pub state: String,
    pub members: Vec<(String, Vec<(String, i32)>)>,
}

pub fn describe_group(connection: &mut Connection, group: &str) -> GroupView {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let response = connection.call(5, &request);
    let described = response.groups.into_iter().next().expect("one group");
    assert_eq!(described.error_code, 0, "DescribeGroups {group}");
    let members = described
        .members
        .into_iter()
        .map(|m| {
            let mut assignment = m.member_assignment.clone();
            let mut partitions = Vec::new();
            // Anything but a consumer-protocol assignment counts as no partitions.
            let decoded = (assignment.len() >= 2)
                .then(|| {
                    let version = assignment.get_i16();
                    ConsumerProtocolAssignment::decode(&mut assignment, version.clamp(0, 3)).ok()
                })
                .flatten();
            if let Some(decoded) = decoded {
                for topic in decoded.assigned_partitions {
                    for p in topic.partitions {
                        partitions.push((topic.topic.to_string(), p));
                    }
                }
            }
            (m.member_id.to_string(), partitions)
        })
        .collect();
    GroupView {
        state: described.group_state.to_string(),
        members,
    }
}
