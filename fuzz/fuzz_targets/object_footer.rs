//! An object's trailer and footer as a reader fetches them (`read_trailer`, then
//! `read_footer` on the range the trailer names), and a whole object as compaction and
//! `weir inspect` read it (`read_object`, `describe`). Nothing may panic, and what
//! parses must hold: footer entries that lie inside the object's data section,
//! back to back.
//!
//! The footer's CRC-32C stops random bytes early, so when the input's first byte is
//! odd the rest is also tried with the trailer's magic, version and flags set and its
//! CRC recomputed over the footer it names.

#![no_main]

// The agent binary's allocator, so that allocations behave as in the agent: one of a
// gigabyte or more (kafka-protocol sizes an array's Vec from the count on the wire) is
// reserved address space, not a failed allocation that aborts.
#[path = "../../src/reserve.rs"]
mod reserve;

#[global_allocator]
static ALLOCATOR: reserve::Reserving = reserve::Reserving;

use libfuzzer_sys::fuzz_target;
use weir_agent::object::{self, HEADER_LEN, MAGIC, TRAILER_LEN, VERSION};

fuzz_target!(|data: &[u8]| {
    check(data);
    if let [selector, rest @ ..] = data
        && selector & 1 == 1
        && rest.len() >= TRAILER_LEN
    {
        let mut object = rest.to_vec();
        seal(&mut object);
        check(&object);
    }
});

fn check(object: &[u8]) {
    if let Ok(trailer) = object::read_trailer(object) {
        let range = trailer.footer_range();
        assert!(
            range.start >= HEADER_LEN as u64,
            "the footer follows the header"
        );
        let footer = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(start, end)| object.get(start..end));
        if let Some(footer) = footer
            && let Ok(entries) = object::read_footer(footer, &trailer)
        {
            let mut expected = HEADER_LEN as u64;
            for entry in &entries {
                assert_eq!(entry.position, expected, "entries lie back to back");
                assert!(
                    entry.end() <= trailer.footer_position,
                    "{entry:?} ends in the data"
                );
                assert!(entry.record_count >= 1);
                expected = entry.end();
            }
            assert_eq!(
                expected, trailer.footer_position,
                "entries tile the data section"
            );
        }
    }
    if let Ok(view) = object::read_object(object) {
        assert_eq!(view.size(), object.len() as u64);
        for (entry, batch) in view.batches() {
            assert_eq!(batch.len(), entry.length as usize);
            assert!(entry.end() <= view.trailer().footer_position);
        }
        let described = object::describe(object, None).expect("describes what read_object read");
        assert!(described.contains(&format!("{} batches", view.entries().len())));
    } else {
        assert!(
            object::describe(object, None).is_err(),
            "describe checks as read_object does"
        );
    }
}

/// Makes the trailer's fixed fields right and its CRC match the footer it names.
fn seal(object: &mut [u8]) {
    let at = object.len() - TRAILER_LEN;
    object[at + 16..at + 18].copy_from_slice(&VERSION.to_be_bytes());
    object[at + 18..at + 20].copy_from_slice(&0u16.to_be_bytes());
    object[at + 20..at + 24].copy_from_slice(&MAGIC);
    if object.len() >= HEADER_LEN {
        object[..4].copy_from_slice(&MAGIC);
        object[4..6].copy_from_slice(&VERSION.to_be_bytes());
        object[6..8].copy_from_slice(&0u16.to_be_bytes());
    }
    let position = u64::from_be_bytes(object[at..at + 8].try_into().expect("8 bytes"));
    let length = u32::from_be_bytes(object[at + 8..at + 12].try_into().expect("4 bytes"));
    let start = usize::try_from(position).unwrap_or(usize::MAX);
    let end = start.saturating_add(length as usize);
    if let Some(footer) = object.get(start..end) {
        let crc = crc32c::crc32c(footer);
        object[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
    }
}
