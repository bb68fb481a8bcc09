//! The produce path's bounded hand-offs, watched: how much each holds, and a warning
//! when one keeps a producer waiting.
//!
//! A produce request passes four bounds on its way to an answer: the agent-wide buffer
//! of produce bytes (the connection stops reading at it), the writer's queue of
//! batches, the uploads in flight, and the sealed objects waiting for their commit.
//! When the bucket or the control plane slows down, one of them fills and everything
//! before it waits. Each has a gauge of what it holds, and a wait of more than
//! [`SLOW`] logs a warning naming the bound (once per wait, and again with the total
//! when it ends) and counts in `weir_agent_slow_handoffs_total{handoff}`, so an operator can
//! see which one backs up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// A wait longer than this is worth a warning.
pub const SLOW: Duration = Duration::from_secs(1);

/// Which bound a producer waited at.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Handoff {
    /// The agent-wide buffer of produce bytes.
    ProduceBuffer,
    /// The writer's queue of batches.
    WriterQueue,
    /// A slot for one more upload.
    Upload,
    /// A place among the sealed objects waiting for their commit.
    Commit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandoffLabel {
    handoff: Handoff,
}

/// The hand-offs' gauges and slow-wait counters.
#[derive(Clone, Debug, Default)]
pub struct Handoffs {
    pub buffered_produce_bytes: Gauge,
    pub writer_queue: Gauge,
    pub uploads_in_flight: Gauge,
    pub commits_in_flight: Gauge,
    slow: Family<HandoffLabel, Counter>,
}

impl Handoffs {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let handoffs = Handoffs::default();
        registry.register(
            "weir_agent_buffered_produce_bytes",
            "Bytes of produce requests read and not yet answered (bounded by --max-buffered-bytes)",
            handoffs.buffered_produce_bytes.clone(),
        );
        registry.register(
            "weir_agent_writer_queued_batches",
            "Batches handed to the writer and not yet in an object",
            handoffs.writer_queue.clone(),
        );
        registry.register(
            "weir_agent_uploading_objects",
            "Objects being uploaded to the bucket",
            handoffs.uploads_in_flight.clone(),
        );
        registry.register(
            "weir_agent_committing_objects",
            "Sealed objects waiting for their upload and commit",
            handoffs.commits_in_flight.clone(),
        );
        registry.register(
            "weir_agent_slow_handoffs",
            "Waits of over a second at a bounded hand-off of the produce path",
            handoffs.slow.clone(),
        );
        Arc::new(handoffs)
    }

    /// Awaits `wait`, a wait at `handoff`; if it takes longer than [`SLOW`], warns and
    /// counts it.
    pub async fn wait<F: Future>(&self, handoff: Handoff, wait: F) -> F::Output {
        let started = Instant::now();
        tokio::pin!(wait);
        tokio::select! {
            output = &mut wait => return output,
            () = tokio::time::sleep(SLOW) => {}
        }
        self.slow.get_or_create(&HandoffLabel { handoff }).inc();
        tracing::warn!(
            ?handoff,
            "a producer has waited over {SLOW:?} at the {} (it is full)",
            describe(handoff)
        );
        let output = wait.await;
        tracing::warn!(
            ?handoff,
            waited_ms = started.elapsed().as_millis() as u64,
            "the wait at the {} is over",
            describe(handoff)
        );
        output
    }
}

fn describe(handoff: Handoff) -> &'static str {
    match handoff {
        Handoff::ProduceBuffer => "agent's produce buffer",
        Handoff::WriterQueue => "writer's queue",
        Handoff::Upload => "upload slots",
        Handoff::Commit => "queue of objects waiting for their commit",
    }
}

/// Holds `by` in `gauge` until dropped.
#[derive(Debug)]
pub struct Held {
    gauge: Gauge,
    by: i64,
}

impl Held {
    pub fn new(gauge: &Gauge, by: i64) -> Self {
        gauge.inc_by(by);
        Held {
            gauge: gauge.clone(),
            by,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.dec_by(self.by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_count(handoffs: &Handoffs, handoff: Handoff) -> u64 {
        handoffs.slow.get_or_create(&HandoffLabel { handoff }).get()
    }

    #[tokio::test(start_paused = true)]
    async fn only_waits_over_a_second_count_as_slow() {
        let handoffs = Handoffs::default();
        handoffs
            .wait(
                Handoff::Upload,
                tokio::time::sleep(Duration::from_millis(900)),
            )
            .await;
        assert_eq!(slow_count(&handoffs, Handoff::Upload), 0);
        let answer = handoffs
            .wait(Handoff::Upload, async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                7
            })
            .await;
        assert_eq!(answer, 7, "the wait's own output comes back");
        assert_eq!(slow_count(&handoffs, Handoff::Upload), 1);
        assert_eq!(slow_count(&handoffs, Handoff::Commit), 0);
    }

    #[test]
    fn held_amounts_leave_the_gauge_when_dropped() {
        let gauge = Gauge::default();
        let a = Held::new(&gauge, 100);
        let b = Held::new(&gauge, 20);
        assert_eq!(gauge.get(), 120);
        drop(a);
        assert_eq!(gauge.get(), 20);
        drop(b);
        assert_eq!(gauge.get(), 0);
    }
}
