//! A Kafka request frame (without its length prefix) through the agent's own decoder,
//! `connection::decode_request`: header, API key and version checks, then the body.
//! Any input must decode or be refused with an error that closes the connection;
//! a panic here would be a panic in the agent's read loop.
//!
//! Most random bytes name no API the agent serves, so when the first byte is odd the
//! next one picks an (API key, version) from the agent's own table and the rest of
//! the input follows it: the body decoders get the fuzzer's attention.

#![no_main]

// The agent binary's allocator, so that allocations behave as in the agent: one of a
// gigabyte or more (kafka-protocol sizes an array's Vec from the count on the wire) is
// reserved address space, not a failed allocation that aborts.
#[path = "../../src/reserve.rs"]
mod reserve;

#[global_allocator]
static ALLOCATOR: reserve::Reserving = reserve::Reserving;

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use weir_agent::connection::{Close, Decoded, decode_request};
use weir_agent::versions::{self, SUPPORTED};

fuzz_target!(|data: &[u8]| {
    check(Bytes::copy_from_slice(data));
    if let [selector, pick, version, rest @ ..] = data
        && selector & 1 == 1
    {
        let (key, min, max) = SUPPORTED[usize::from(*pick) % SUPPORTED.len()];
        let span = u16::try_from(max - min + 1).expect("a small version range");
        let version = min + i16::try_from(u16::from(*version) % span).expect("in range");
        let mut frame = BytesMut::with_capacity(rest.len() + 4);
        frame.put_i16(key as i16);
        frame.put_i16(version);
        frame.put_slice(rest);
        check(frame.freeze());
    }
});

fn check(frame: Bytes) {
    let len = frame.len();
    match decode_request(frame) {
        Ok(Decoded::Request(request)) => {
            // Only what the agent serves reaches a handler.
            assert!(versions::is_supported(request.key, request.version));
            assert_eq!(
                request.size, len,
                "the frame's size is what produce backpressure counts"
            );
        }
        Ok(Decoded::Answer(answer)) => {
            // The KIP-511 answer is a whole length-prefixed frame.
            let prefix = answer.get(..4).expect("a length prefix");
            let prefix = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
            assert_eq!(usize::try_from(prefix).ok(), Some(answer.len() - 4));
        }
        Err(
            Close::FrameTooShort(_)
            | Close::UnknownApiKey(_)
            | Close::UnsupportedVersion(..)
            | Close::Malformed(..),
        ) => {}
        Err(other) => panic!("a decoded frame cannot fail with {other}"),
    }
}
