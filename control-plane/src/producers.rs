//! Idempotent producers: producer ids, epochs, and the sequence check that turns a
//! producer's retries into no-ops.
//!
//! A producer gets an id and an epoch from [`init_producer_id`] and numbers the records
//! it sends to each partition from 0. The sequencer keeps, per (producer, partition),
//! the epoch and the sequence ranges of the last [`RECENT_BATCHES`] batches appended, and
//! runs [`check`] on every batch inside the commit transaction, as Kafka's
//! `ProducerAppendInfo` does on a partition leader:
//!
//! - a batch seen among the recent ones is a retry: it is answered with the offset it
//!   got the first time and appended nothing;
//! - a batch ahead of the next expected sequence is early: `SEQUENCE_AHEAD`, retriable.
//!   The batches between may still be on their way through another agent (a producer
//!   whose partition moved keeps requests in flight to both), and Kafka's answer,
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER`, makes librdkafka bump its epoch and send everything
//!   it holds again as new records — a batch that was in fact committed included;
//! - a batch behind it that is not one of the recent ones is out of order:
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//! - an older epoch than the partition has seen is a fenced producer:
//!   `INVALID_PRODUCER_EPOCH`; a newer epoch starts again at sequence 0, and a later
//!   batch of it is early.
//!
//! Five, because a Kafka producer keeps at most five requests in flight per partition
//! with idempotence on, so a retry is always of one of the last five batches.
//!
//! State nobody touches for `producer_state_expiry` is removed by [`spawn_expiry`]; a
//! producer coming back after that is taken at its word for its first batch, as Kafka
//! (≥ 2.5) does when a producer's state has expired.

use std::collections::VecDeque;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_metadata::keyspace::{self, ProducerRecord, ProducerStateRecord, SequenceRange};
use weir_metadata::{Offset, ProducerId, RangeOption, Transaction, decode_counter, key_after};

use crate::error::{Error, ItemError, Result};
use crate::lease::Lease;
use crate::proto::ErrorCode;
use crate::store::Store;

/// Sequence ranges kept per (producer, partition): a Kafka producer's most in-flight
/// requests per connection with idempotence on.
pub const RECENT_BATCHES: usize = 5;

/// Keys the expiry pass reads in one transaction, to stay far within the store's
/// transaction limits however many producers there are.
const EXPIRY_PAGE: usize = 1000;

/// How often the expiry pass runs.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// The producer fields of a batch header, for a batch of an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub id: ProducerId,
    pub epoch: i16,
    pub base_sequence: i32,
}

/// One appended batch: its sequence range and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: Offset,
}

/// What the sequencer knows of one producer on one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionProducer {
    pub epoch: i16,
    /// Oldest first, at most [`RECENT_BATCHES`].
    pub recent: VecDeque<Appended>,
}

/// What to do with one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A new batch: give it offsets.
    Append,
    /// A retry of a batch already appended at this offset: answer that, append nothing.
    Duplicate(Offset),
    /// Refused: out of order, or a stale epoch.
    Reject(ItemError),
}

/// The sequence of the last record of a batch: sequences wrap from `i32::MAX` to 0.
pub fn last_sequence(base_sequence: i32, record_count: i32) -> i32 {
    let span = i64::from(record_count.max(1)) - 1;
    let last = (i64::from(base_sequence) + span) % (i64::from(i32::MAX) + 1);
    i32::try_from(last).expect("a value modulo i32::MAX + 1 fits in i32")
}

/// The sequence that follows `sequence`.
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// Decides what to do with a batch of `record_count` records, given the producer's
/// state on the batch's partition (`None`: never seen, or expired).
pub fn check(
    state: Option<&PartitionProducer>,
    batch: ProducerBatch,
    record_count: i32,
) -> Verdict {
    let Some(state) = state else {
        return Verdict::Append;
    };
    if batch.epoch < state.epoch {
        return Verdict::Reject(ItemError::new(
            ErrorCode::InvalidProducerEpoch,
            format!(
                "producer {} has epoch {} but this partition has seen epoch {}: a newer instance of the producer has taken over",
                batch.id, batch.epoch, state.epoch
            ),
        ));
    }
    if batch.epoch > state.epoch {
        return if batch.base_sequence == 0 {
            Verdict::Append
        } else {
            Verdict::Reject(ahead(batch, 0))
        };
    }
    let last = last_sequence(batch.base_sequence, record_count);
    if let Some(seen) = state
        .recent
        .iter()
        .find(|a| a.first_sequence == batch.base_sequence && a.last_sequence == last)
    {
        return Verdict::Duplicate(seen.base_offset);
    }
    match state.recent.back() {
        None => Verdict::Append,
        Some(newest) if next_sequence(newest.last_sequence) == batch.base_sequence => {
            Verdict::Append
        }
        Some(newest) => {
            let expected = next_sequence(newest.last_sequence);
            if is_ahead(batch.base_sequence, expected) {
                Verdict::Reject(ahead(batch, expected))
            } else {
                Verdict::Reject(ItemError::new(
                    ErrorCode::OutOfOrderSequence,
                    format!(
                        "producer {} epoch {}: expected sequence {expected}, got {}, which is neither next nor one of the last {RECENT_BATCHES} batches",
                        batch.id, batch.epoch, batch.base_sequence
                    ),
                ))
            }
        }
    }
}

/// Whether `sequence` lies after `expected`, in the half of the wrapping sequence space
/// that follows it.
fn is_ahead(sequence: i32, expected: i32) -> bool {
    let distance = (i64::from(sequence) - i64::from(expected)).rem_euclid(1 << 31);
    distance < 1 << 30
}

/// The answer to a batch that came before the ones it follows.
fn ahead(batch: ProducerBatch, expected: i32) -> ItemError {
    ItemError::new(
        ErrorCode::SequenceAhead,
        format!(
            "producer {} epoch {}: sequence {} came before sequence {expected}, which is not committed yet (it may still be on its way through another agent); retry",
            batch.id, batch.epoch, batch.base_sequence
        ),
    )
}

/// The state after appending `batch` (which [`check`] answered `Append`) at `base`.
pub fn appended(
    state: Option<PartitionProducer>,
    batch: ProducerBatch,
    record_count: i32,
    base: Offset,
) -> PartitionProducer {
    let mut state = match state {
        Some(state) if state.epoch == batch.epoch => state,
        _ => PartitionProducer {
            epoch: batch.epoch,
            recent: VecDeque::with_capacity(RECENT_BATCHES),
        },
    };
    state.recent.push_back(Appended {
        first_sequence: batch.base_sequence,
        last_sequence: last_sequence(batch.base_sequence, record_count),
        base_offset: base,
    });
    while state.recent.len() > RECENT_BATCHES {
        state.recent.pop_front();
    }
    state
}

impl PartitionProducer {
    pub fn from_record(key: &[u8], record: &ProducerStateRecord) -> Result<Self> {
        let epoch = i16::try_from(record.epoch)
            .map_err(|_| weir_metadata::Error::corrupt(key, "producer epoch out of i16 range"))?;
        Ok(PartitionProducer {
            epoch,
            recent: record
                .batches
                .iter()
                .map(|b| Appended {
                    first_sequence: b.first_sequence,
                    last_sequence: b.last_sequence,
                    base_offset: Offset(b.base_offset),
                })
                .collect(),
        })
    }

    pub fn to_record(&self, updated_ms: i64) -> ProducerStateRecord {
        ProducerStateRecord {
            epoch: i32::from(self.epoch),
            batches: self
                .recent
                .iter()
                .map(|a| SequenceRange {
                    first_sequence: a.first_sequence,
                    last_sequence: a.last_sequence,
                    base_offset: a.base_offset.0,
                })
                .collect(),
            updated_ms,
        }
    }
}

/// InitProducerId: a new producer id at epoch 0, or, given the producer's current id and
/// epoch (KIP-360, after a failed batch), the same id at the next epoch.
///
/// A bump whose epoch is not the current one is refused with `PRODUCER_FENCED`: another
/// instance bumped first. A bump of an id the store no longer knows (its record expired)
/// gets a new id, as Kafka gives every non-transactional producer. An id whose epochs
/// are used up also gets a new id.
pub async fn init_producer_id(
    store: &Store,
    current: Option<(ProducerId, i16)>,
) -> Result<Result<(ProducerId, i16), ItemError>> {
    store
        .db
        .run(|tx| async move {
            let now = store.clock.now_ms();
            if let Some((id, epoch)) = current {
                let key = store.ks.producer(id);
                if let Some(value) = tx.get(&key).await? {
                    let record: ProducerRecord = keyspace::decode(&key, &value)?;
                    if record.epoch != i32::from(epoch) {
                        return Ok(Err(ItemError::new(
                            ErrorCode::ProducerFenced,
                            format!(
                                "producer {id} asked to bump epoch {epoch}, but its epoch is {}: another instance of the producer has taken over",
                                record.epoch
                            ),
                        )));
                    }
                    // Kafka keeps i16::MAX out of use; past that the id is exhausted.
                    if epoch < i16::MAX - 1 {
                        let bumped = epoch + 1;
                        tx.set(
                            &key,
                            &keyspace::encode(&ProducerRecord {
                                epoch: i32::from(bumped),
                                updated_ms: now,
                            }),
                        );
                        return Ok(Ok((id, bumped)));
                    }
                }
            }
            Ok::<_, Error>(Ok((allocate(&tx, store, now).await?, 0)))
        })
        .await
}

/// Takes the next producer id from the counter and records it at epoch 0.
async fn allocate(tx: &Transaction, store: &Store, now: i64) -> Result<ProducerId> {
    let counter = store.ks.producer_ids();
    let last = tx.get(&counter).await?.map_or(-1, |v| decode_counter(&v));
    let id = ProducerId(last + 1);
    tx.set(&counter, &id.0.to_le_bytes());
    tx.set(
        &store.ks.producer(id),
        &keyspace::encode(&ProducerRecord {
            epoch: 0,
            updated_ms: now,
        }),
    );
    Ok(id)
}

/// Removes producer states and producer records untouched for `expiry`, a page per
/// transaction; returns how many it removed.
pub async fn expire(store: &Store, expiry: Duration) -> Result<usize> {
    let cutoff = store
        .clock
        .now_ms()
        .saturating_sub(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX));
    let mut removed = 0;
    for range in [store.ks.producer_states(), store.ks.producers()] {
        let mut next = Some(range.limit(EXPIRY_PAGE));
        while let Some(page) = next {
            let (cleared, more) = expire_page(store, &page, cutoff).await?;
            removed += cleared;
            next = more;
        }
    }
    Ok(removed)
}

/// One page of [`expire`]: reads (with conflicts, so a concurrent append wins) and clears
/// what is older than `cutoff`; returns the count and the next page.
async fn expire_page(
    store: &Store,
    page: &RangeOption,
    cutoff: i64,
) -> Result<(usize, Option<RangeOption>)> {
    store
        .db
        .run(|tx| async move {
            let read = tx.get_range_page(page, false).await?;
            let mut cleared = 0;
            for kv in &read.kvs {
                // Both records keep their last use in field 2 or 3; decode each by shape.
                let updated_ms = match decode_updated_ms(store, &kv.key, &kv.value) {
                    Ok(ms) => ms,
                    Err(err) => {
                        tracing::warn!(error = %err, "skip an undecodable producer record");
                        continue;
                    }
                };
                if updated_ms < cutoff {
                    tx.clear(&kv.key);
                    cleared += 1;
                }
            }
            // Continue after the last key read, whether the page ended at its limit or
            // the backend paged on its own.
            let next = match read.kvs.last() {
                Some(last) if read.more || read.kvs.len() >= EXPIRY_PAGE => {
                    let mut next = page.clone();
                    next.begin = key_after(&last.key);
                    Some(next)
                }
                _ => None,
            };
            Ok::<_, Error>((cleared, next))
        })
        .await
}

fn decode_updated_ms(store: &Store, key: &[u8], value: &[u8]) -> Result<i64> {
    let states = store.ks.producer_states();
    if states.begin.as_slice() <= key && key < states.end.as_slice() {
        Ok(keyspace::decode::<ProducerStateRecord>(key, value)?.updated_ms)
    } else {
        Ok(keyspace::decode::<ProducerRecord>(key, value)?.updated_ms)
    }
}

/// Runs [`expire`] every minute until `cancel` fires.
pub fn spawn_expiry(
    store: Store,
    lease: Lease,
    expiry: Duration,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EXPIRY_INTERVAL);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // One instance is enough; standbys leave it to the lease holder.
            if !lease.holds() {
                continue;
            }
            match expire(&store, expiry).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired idle producer state"),
                Err(err) => tracing::warn!(error = %err, "expire idle producer state"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, base_sequence: i32) -> ProducerBatch {
        ProducerBatch {
            id: ProducerId(1),
            epoch,
            base_sequence,
        }
    }

    fn code(verdict: &Verdict) -> Option<ErrorCode> {
        match verdict {
            Verdict::Reject(e) => Some(e.code),
            _ => None,
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX, 1), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 2), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 5), 2);
        assert_eq!(next_sequence(i32::MAX), 0);
        let state = appended(None, batch(0, i32::MAX - 1), 2, Offset(0));
        assert_eq!(check(Some(&state), batch(0, 0), 3), Verdict::Append);
        assert_eq!(
            code(&check(Some(&state), batch(0, 1), 3)),
            Some(ErrorCode::SequenceAhead),
            "ahead across the wrap"
        );
        assert_eq!(
            code(&check(Some(&state), batch(0, i32::MAX - 5), 1)),
            Some(ErrorCode::OutOfOrderSequence),
            "behind across the wrap"
        );
    }

    #[test]
    fn unknown_state_takes_any_first_sequence() {
        assert_eq!(check(None, batch(3, 1234), 10), Verdict::Append);
    }

    #[test]
    fn a_retry_of_a_recent_batch_gets_its_offset_and_an_old_one_is_out_of_order() {
        let mut state = None;
        for i in 0..7 {
            let b = batch(0, i * 2);
            assert_eq!(check(state.as_ref(), b, 2), Verdict::Append);
            state = Some(appended(state, b, 2, Offset(100 + i64::from(i) * 2)));
        }
        let state = state.expect("appended");
        assert_eq!(state.recent.len(), RECENT_BATCHES);
        assert_eq!(
            check(Some(&state), batch(0, 12), 2),
            Verdict::Duplicate(Offset(112))
        );
        assert_eq!(
            check(Some(&state), batch(0, 4), 2),
            Verdict::Duplicate(Offset(104))
        );
        // Older than the last five: Kafka answers out of order too.
        assert_eq!(
            code(&check(Some(&state), batch(0, 2), 2)),
            Some(ErrorCode::OutOfOrderSequence)
        );
        // Same start, different length: not the same batch.
        assert_eq!(
            code(&check(Some(&state), batch(0, 12), 3)),
            Some(ErrorCode::OutOfOrderSequence)
        );
    }

    #[test]
    fn epochs_fence_and_restart_at_zero() {
        let state = appended(None, batch(2, 0), 1, Offset(0));
        assert_eq!(
            code(&check(Some(&state), batch(1, 1), 1)),
            Some(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            code(&check(Some(&state), batch(3, 5), 1)),
            Some(ErrorCode::SequenceAhead),
            "sequence 0 of epoch 3 may still be on its way"
        );
        assert_eq!(check(Some(&state), batch(3, 0), 1), Verdict::Append);
        let bumped = appended(Some(state), batch(3, 0), 1, Offset(1));
        assert_eq!(bumped.epoch, 3);
        assert_eq!(
            bumped.recent.len(),
            1,
            "a new epoch forgets the old batches"
        );
    }

    #[test]
    fn records_round_trip() {
        let state = appended(None, batch(7, 40), 3, Offset(9));
        let record = state.to_record(5);
        assert_eq!(record.updated_ms, 5);
        assert_eq!(
            PartitionProducer::from_record(b"k", &record).expect("decodes"),
            state
        );
    }
}
