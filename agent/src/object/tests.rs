use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use uuid::Uuid;
use weir_metadata::{Partition, TopicId};

use super::format::write_footer;
use super::*;
use crate::batch::testing::{Spec, encode, specs};
use crate::batch::{self, ValidBatch};

fn topic(n: u8) -> TopicId {
    TopicId(Uuid::from_bytes([n; 16]))
}

fn valid(bytes: Bytes) -> ValidBatch {
    let mut batches = batch::split(&bytes, usize::MAX).expect("a producer's batch");
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

fn concat<T>(sealed: &SealedObject<T>) -> Vec<u8> {
    sealed.parts.concat()
}

/// Five batches pushed interleaved into three partitions of two topics, tagged a to e.
fn sample() -> SealedObject<char> {
    let mut builder = ObjectBuilder::new(Level::WRITER);
    let pushes = [
        (topic(2), 0, 'a', [10, 20]),
        (topic(1), 1, 'b', [30, 40]),
        (topic(1), 0, 'c', [50, 60]),
        (topic(2), 0, 'd', [70, 80]),
        (topic(1), 1, 'e', [90, 95]),
    ];
    for (topic, partition, tag, timestamps) in pushes {
        let batch = valid(encode(&Spec::plain(&timestamps)));
        builder.push(topic, Partition(partition), batch, tag);
    }
    builder.finish()
}

/// `object` with its footer replaced by one listing `entries`.
fn with_entries(object: &[u8], entries: &[FooterEntry]) -> Vec<u8> {
    let trailer = read_trailer(object).expect("a valid object");
    let data = &object[..trailer.footer_position as usize];
    let mut out = BytesMut::from(data);
    write_footer(
        entries.iter(),
        trailer.footer_position,
        trailer.level,
        &mut out,
    );
    out.to_vec()
}

fn entries_of(object: &[u8]) -> Vec<FooterEntry> {
    read_object(object)
        .expect("a valid object")
        .entries()
        .to_vec()
}

#[test]
fn partitions_are_laid_out_in_order_with_batches_in_push_order() {
    let sealed = sample();
    let order: Vec<(TopicId, i32, char)> = sealed
        .batches
        .iter()
        .map(|(entry, tag)| (entry.topic, entry.partition.0, *tag))
        .collect();
    assert_eq!(
        order,
        [
            (topic(1), 0, 'c'),
            (topic(1), 1, 'b'),
            (topic(1), 1, 'e'),
            (topic(2), 0, 'a'),
            (topic(2), 0, 'd'),
        ]
    );
    let mut position = HEADER_LEN as u64;
    for (i, (entry, _)) in sealed.batches.iter().enumerate() {
        assert_eq!(
            entry.position, position,
            "batch {i} follows the previous one"
        );
        assert_eq!(sealed.parts[i + 1].len(), entry.length as usize);
        position = entry.end();
    }
}

#[test]
fn size_counts_header_footer_and_trailer() {
    let mut builder = ObjectBuilder::<()>::new(Level::WRITER);
    assert!(builder.is_empty());
    assert_eq!(builder.size(), (HEADER_LEN + 4 + TRAILER_LEN) as u64);

    let batch = valid(encode(&Spec::plain(&[1, 2, 3])));
    let batch_len = batch.bytes.len() as u64;
    builder.push(topic(1), Partition(0), batch.clone(), ());
    builder.push(topic(1), Partition(0), batch, ());
    assert_eq!(builder.batch_count(), 2);
    let expected = (HEADER_LEN + 4 + 2 * ENTRY_LEN + TRAILER_LEN) as u64 + 2 * batch_len;
    assert_eq!(builder.size(), expected);

    let sealed = builder.finish();
    assert_eq!(sealed.size, expected);
    assert_eq!(concat(&sealed).len() as u64, expected);
}

#[test]
fn an_empty_object_reads_back_empty() {
    let object = concat(&ObjectBuilder::<()>::new(Level::WRITER).finish());
    assert!(entries_of(&object).is_empty());
}

#[test]
fn the_trailer_and_footer_alone_give_the_entries() {
    let object = concat(&sample());
    let trailer = read_trailer(&object[object.len() - TRAILER_LEN..]).expect("trailer");
    assert_eq!(trailer.object_size(), object.len() as u64);
    let range = trailer.footer_range();
    let footer = &object[range.start as usize..range.end as usize];
    let entries = read_footer(footer, &trailer).expect("footer");
    assert_eq!(entries, entries_of(&object));
}

#[test]
fn every_truncation_fails_cleanly() {
    let object = concat(&sample());
    for len in 0..object.len() {
        assert!(
            read_object(&object[..len]).is_err(),
            "kept the first {len} bytes"
        );
        assert!(
            read_object(&object[object.len() - len..]).is_err(),
            "kept the last {len} bytes"
        );
    }
}

#[test]
fn a_flipped_footer_byte_is_a_crc_error_naming_both_values() {
    let object = concat(&sample());
    let trailer = read_trailer(&object).expect("trailer");
    let range = trailer.footer_range();
    for at in range.start as usize..range.end as usize {
        let mut damaged = object.clone();
        damaged[at] ^= 0x10;
        let computed = crc32c::crc32c(&damaged[range.start as usize..range.end as usize]);
        let err = read_object(&damaged).expect_err("damaged footer");
        assert_eq!(
            err,
            ObjectError::FooterCrc {
                stored: trailer.footer_crc,
                computed
            }
        );
        let message = err.to_string();
        assert!(message.contains(&format!("{computed:#010x}")), "{message}");
        assert!(
            message.contains(&format!("{:#010x}", trailer.footer_crc)),
            "{message}"
        );
    }
}

/// Nothing checks a stored batch's baseOffset (the fetch path overwrites it) nor its
/// partitionLeaderEpoch; a change to any other byte must not go unnoticed.
#[test]
fn every_flipped_byte_is_caught_but_base_offset_and_leader_epoch() {
    let object = concat(&sample());
    let entries = entries_of(&object);
    let unchecked = |at: u64| {
        entries.iter().any(|e| {
            let offset = at.wrapping_sub(e.position);
            offset < 8 || (12..16).contains(&offset)
        })
    };
    for at in 0..object.len() {
        let mut damaged = object.clone();
        damaged[at] ^= 0x01;
        let result = read_object(&damaged);
        if unchecked(at as u64) {
            assert!(result.is_ok(), "byte {at}: {result:?}");
        } else {
            assert!(
                result.is_err(),
                "byte {at} changed but the object was accepted"
            );
        }
    }
}

#[test]
fn a_foreign_file_is_not_a_weir_object() {
    let mut object = concat(&sample());
    object[..4].copy_from_slice(b"PAR1");
    let err = read_object(&object).expect_err("not ours");
    assert!(
        matches!(
            err,
            ObjectError::BadMagic {
                place: "header",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"PAR1\""), "{err}");
}

#[test]
fn a_future_version_or_unknown_flag_is_refused() {
    let object = concat(&sample());
    let mut future = object.clone();
    future[4..6].copy_from_slice(&2u16.to_be_bytes());
    let err = read_object(&future).expect_err("version 2");
    assert_eq!(err, ObjectError::UnsupportedVersion { version: 2 });

    let mut future = object.clone();
    let trailer_version = object.len() - 8;
    future[trailer_version..trailer_version + 2].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(
        read_trailer(&future),
        Err(ObjectError::UnsupportedVersion { version: 2 })
    );

    let mut flagged = object;
    flagged[6..8].copy_from_slice(&0x10u16.to_be_bytes());
    assert_eq!(
        read_object(&flagged).expect_err("flag"),
        ObjectError::UnsupportedFlags { flags: 0x10 }
    );
}

/// `object` with both its header's and its trailer's flags set to `flags`.
fn with_flags(object: &[u8], flags: u16) -> Vec<u8> {
    let mut flagged = object.to_vec();
    let trailer_flags = flagged.len() - 6;
    flagged[6..8].copy_from_slice(&flags.to_be_bytes());
    flagged[trailer_flags..trailer_flags + 2].copy_from_slice(&flags.to_be_bytes());
    flagged
}

#[test]
fn every_level_reads_back_and_describes_itself() {
    for n in 0..=15 {
        let level = Level::new(n).expect("bits 0-3 hold levels 0 to 15");
        let mut builder = ObjectBuilder::new(level);
        builder.push(
            topic(1),
            Partition(0),
            valid(encode(&Spec::plain(&[5]))),
            (),
        );
        let object = concat(&builder.finish());
        assert_eq!(object[6..8], (n as u16).to_be_bytes(), "header flags");
        let view = read_object(&object).expect("an object of any level reads back");
        assert_eq!(view.level(), level);
        assert_eq!(read_trailer(&object).expect("trailer").level, level);
        let text = describe(&object, None).expect("describe");
        assert!(text.contains(&format!("compaction level {n},")), "{text}");
    }
    assert_eq!(Level::new(16), None);
    assert_eq!(Level::default(), Level::WRITER);
}

#[test]
fn flag_bits_above_the_level_are_refused_in_header_and_trailer() {
    let object = concat(&ObjectBuilder::<()>::new(Level::new(2).expect("level 2")).finish());
    for bit in 4..16 {
        let flags = 2 | 1u16 << bit;
        let flagged = with_flags(&object, flags);
        assert_eq!(
            read_object(&flagged).expect_err("an unknown flag"),
            ObjectError::UnsupportedFlags { flags },
            "bit {bit}"
        );
        assert_eq!(
            read_trailer(&flagged),
            Err(ObjectError::UnsupportedFlags { flags }),
            "bit {bit}"
        );
    }
}

#[test]
fn a_header_and_trailer_that_disagree_on_the_level_are_refused() {
    let object = concat(&sample());
    let mut header_says_one = object.clone();
    header_says_one[6..8].copy_from_slice(&1u16.to_be_bytes());
    let err = read_object(&header_says_one).expect_err("levels disagree");
    assert_eq!(
        err,
        ObjectError::LevelMismatch {
            header: Level::new(1).expect("level 1"),
            trailer: Level::WRITER,
        }
    );
    assert!(err.to_string().contains("level 1"), "{err}");
}

#[test]
fn a_footer_that_misdescribes_a_batch_is_refused() {
    let object = concat(&sample());
    let mut entries = entries_of(&object);
    entries[2].record_count += 1;
    let err = read_object(&with_entries(&object, &entries)).expect_err("wrong count");
    assert_eq!(
        err,
        ObjectError::EntryMismatch {
            position: entries[2].position,
            field: "record count",
            footer: 3,
            batch: 2,
        }
    );
}

/// Compaction plans from the footer alone, so the footer's checks must not lean on
/// the batches' headers.
#[test]
fn an_entry_no_batch_could_have_is_refused_from_the_footer_alone() {
    let object = concat(&sample());
    let mut entries = entries_of(&object);
    entries[1].record_count = 0;
    let damaged = with_entries(&object, &entries);
    let trailer = read_trailer(&damaged).expect("trailer");
    let range = trailer.footer_range();
    let footer = &damaged[range.start as usize..range.end as usize];
    let err = read_footer(footer, &trailer).expect_err("no batch has 0 records");
    assert!(
        matches!(err, ObjectError::EntryInvalid { index: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("record count is 0"), "{err}");
}

#[test]
fn entries_out_of_order_or_out_of_place_are_refused() {
    let object = concat(&sample());
    let entries = entries_of(&object);

    // Topic 2's batches listed (and laid out) first: the footer's order is checked.
    let mut reordered = entries.clone();
    reordered.rotate_left(3);
    let mut position = HEADER_LEN as u64;
    for entry in &mut reordered {
        entry.position = position;
        position = entry.end();
    }
    let err = read_object(&with_entries(&object, &reordered)).expect_err("out of order");
    assert!(
        matches!(err, ObjectError::EntryOrder { index: 2, .. }),
        "{err:?}"
    );

    let mut shifted = entries.clone();
    shifted[1].position += 1;
    let err = read_object(&with_entries(&object, &shifted)).expect_err("misplaced");
    assert!(
        matches!(err, ObjectError::EntryMisplaced { index: 1, .. }),
        "{err:?}"
    );

    let last = entries[entries.len() - 1];
    let err = read_object(&with_entries(&object, &entries[..entries.len() - 1]))
        .expect_err("a batch no entry lists");
    assert_eq!(
        err,
        ObjectError::DataGap {
            end: last.position,
            data_end: last.end()
        }
    );

    let mut longer = entries;
    longer[4].length += 1;
    let err = read_object(&with_entries(&object, &longer)).expect_err("past the data");
    assert!(
        matches!(err, ObjectError::EntryOutOfBounds { index: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn describe_lists_every_partition_and_batch() {
    let sealed = sample();
    let object = concat(&sealed);
    let offsets =
        |entry: &FooterEntry| (entry.topic == topic(1)).then_some(entry.position as i64 * 10);
    let text = describe(&object, Some(&offsets)).expect("a valid object");

    assert!(text.contains(&format!("{} bytes", object.len())), "{text}");
    assert!(
        text.contains("5 batches, 10 records, 3 partitions"),
        "{text}"
    );
    let (partitions, batches) = text.split_once("\nbatches\n").expect("two tables");
    let rows = |table: &str| -> Vec<Vec<String>> {
        table
            .lines()
            .filter(|line| line.starts_with("  ") && !line.trim_start().starts_with("topic"))
            .map(|line| line.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let partition_rows = rows(partitions);
    let expected = [
        (topic(1), "0", "1", "2", "50", "60"),
        (topic(1), "1", "2", "4", "30", "95"),
        (topic(2), "0", "2", "4", "10", "80"),
    ];
    assert_eq!(partition_rows.len(), expected.len(), "{text}");
    for (row, (topic, partition, count, records, base, max)) in partition_rows.iter().zip(expected)
    {
        let fields = [topic.to_string().as_str(), partition, count, records].map(str::to_string);
        assert_eq!(row[..4], fields, "{text}");
        assert_eq!(row[5..], [base.to_string(), max.to_string()], "{text}");
    }

    let batch_rows = rows(batches);
    assert_eq!(batch_rows.len(), sealed.batches.len(), "{text}");
    for (row, (entry, _)) in batch_rows.iter().zip(&sealed.batches) {
        assert_eq!(row[0], entry.topic.to_string());
        assert_eq!(row[2], entry.position.to_string());
        assert_eq!(row[3], entry.length.to_string());
        let offset = offsets(entry).map_or("-".to_string(), |o| o.to_string());
        assert_eq!(row[10], offset, "{text}");
    }
    for table in [partitions, batches] {
        let widths: Vec<usize> = table
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(str::len)
            .collect();
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "aligned columns:\n{table}"
        );
    }

    let plain = describe(&object, None).expect("a valid object");
    assert!(
        !plain.contains("offset"),
        "no offset column without an index:\n{plain}"
    );
}

#[test]
fn describe_refuses_a_damaged_object() {
    let mut object = concat(&sample());
    let last = object.len() - 1;
    object[last] = b'X';
    assert!(describe(&object, None).is_err());
}

/// A batch pushed into the builder, with what it should read back as.
#[derive(Debug, Clone)]
struct Pushed {
    topic: TopicId,
    partition: Partition,
    spec: Spec,
}

fn pushes() -> impl Strategy<Value = Vec<Pushed>> {
    let push = (0u8..3, 0i32..3, specs()).prop_map(|(t, partition, spec)| Pushed {
        topic: topic(t),
        partition: Partition(partition),
        spec,
    });
    prop::collection::vec(push, 0..12)
}

proptest! {
    #[test]
    fn sealed_objects_read_back_batch_for_batch_without_copying(pushes in pushes()) {
        let mut builder = ObjectBuilder::new(Level::WRITER);
        let mut sent = Vec::new();
        for (tag, push) in pushes.iter().enumerate() {
            let bytes = encode(&push.spec);
            sent.push(bytes.clone());
            builder.push(push.topic, push.partition, valid(bytes), tag);
        }
        let size = builder.size();
        let sealed = builder.finish();
        let object = concat(&sealed);
        prop_assert_eq!(sealed.size, size);
        prop_assert_eq!(object.len() as u64, size);

        let view = read_object(&object).expect("a sealed object reads back");
        let entries: Vec<FooterEntry> = sealed.batches.iter().map(|(e, _)| *e).collect();
        prop_assert_eq!(view.entries(), &entries[..]);
        let mut last_tag: Option<(TopicId, Partition, usize)> = None;
        for (i, ((entry, bytes), (_, tag))) in view.batches().zip(&sealed.batches).enumerate() {
            let push = &pushes[*tag];
            prop_assert_eq!((entry.topic, entry.partition), (push.topic, push.partition));
            prop_assert_eq!(entry.record_count as usize, push.spec.records.len());
            prop_assert_eq!(bytes, &sent[*tag][..]);
            prop_assert_eq!(sealed.parts[i + 1].as_ptr(), sent[*tag].as_ptr(), "not copied");
            if let Some((topic, partition, previous)) = last_tag {
                let key = (entry.topic, entry.partition);
                prop_assert!((topic, partition) <= key, "partitions in order");
                prop_assert!((topic, partition) != key || previous < *tag, "push order kept");
            }
            last_tag = Some((entry.topic, entry.partition, *tag));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = read_object(&bytes);
        if let Ok(trailer) = read_trailer(&bytes) {
            let _ = read_footer(&bytes, &trailer);
        }
    }

    /// Footers with a valid CRC but made-up entries, and trailers pointing anywhere,
    /// reach the layout checks: they must fail cleanly.
    #[test]
    fn made_up_footers_and_trailers_never_panic_a_reader(
        edits in prop::collection::vec((0usize..5, 0u8..5, any::<u64>()), 0..4),
        trailer_edit in prop::option::of((any::<u64>(), any::<u32>())),
    ) {
        let object = concat(&sample());
        let mut entries = entries_of(&object);
        for (index, field, value) in edits {
            let entry = &mut entries[index];
            match field {
                0 => entry.position = value,
                1 => entry.length = value as u32,
                2 => entry.record_count = value as i32,
                3 => entry.partition = Partition(value as i32),
                _ => entry.topic = topic(value as u8),
            }
        }
        let mut object = with_entries(&object, &entries);
        if let Some((footer_position, footer_length)) = trailer_edit {
            let trailer = object.len() - TRAILER_LEN;
            object[trailer..trailer + 8].copy_from_slice(&footer_position.to_be_bytes());
            object[trailer + 8..trailer + 12].copy_from_slice(&footer_length.to_be_bytes());
        }
        let _ = read_object(&object);
        let _ = describe(&object, None);
    }
}
