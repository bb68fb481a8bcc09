//! High-watermark advances, fanned out to every watching agent.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use weir_metadata::{Offset, Partition, TopicId};

/// A partition's bounds after a commit, a retention pass, DeleteRecords or a
/// compaction swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advance {
    pub topic: TopicId,
    pub partition: Partition,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// Compaction replaced some of its index entries.
    pub entries_replaced: bool,
}

/// What a watcher receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatermarkUpdate {
    Advances(Arc<Vec<Advance>>),
    /// Advances were missed (the watcher fell behind, or just subscribed): drop every
    /// cached watermark and read afresh.
    Resync,
}

/// Publishes each commit's advances to every subscriber. A slow subscriber misses
/// advances and is told to resync; it never slows the sequencer.
#[derive(Clone, Debug)]
pub struct WatermarkHub {
    sender: broadcast::Sender<Arc<Vec<Advance>>>,
}

impl WatermarkHub {
    pub fn new(capacity: usize) -> Self {
        WatermarkHub {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }

    pub fn publish(&self, advances: Vec<Advance>) {
        if !advances.is_empty() {
            // No subscribers is fine: nobody is waiting.
            let _ = self.sender.send(Arc::new(advances));
        }
    }

    /// Updates from now on, starting with a [`WatermarkUpdate::Resync`].
    pub fn subscribe(&self) -> Pin<Box<dyn Stream<Item = WatermarkUpdate> + Send>> {
        let updates = BroadcastStream::new(self.sender.subscribe()).map(|item| match item {
            Ok(advances) => WatermarkUpdate::Advances(advances),
            Err(BroadcastStreamRecvError::Lagged(_)) => WatermarkUpdate::Resync,
        });
        Box::pin(futures::stream::once(async { WatermarkUpdate::Resync }).chain(updates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance(hwm: i64) -> Vec<Advance> {
        vec![Advance {
            topic: TopicId(uuid::Uuid::nil()),
            partition: Partition(0),
            high_watermark: Offset(hwm),
            log_start_offset: Offset(0),
            entries_replaced: false,
        }]
    }

    #[tokio::test]
    async fn subscribers_get_a_resync_then_advances_and_a_resync_when_behind() {
        let hub = WatermarkHub::new(2);
        let mut updates = hub.subscribe();
        assert_eq!(updates.next().await, Some(WatermarkUpdate::Resync));
        hub.publish(advance(1));
        assert_eq!(
            updates.next().await,
            Some(WatermarkUpdate::Advances(Arc::new(advance(1))))
        );
        for hwm in 2..10 {
            hub.publish(advance(hwm));
        }
        assert_eq!(updates.next().await, Some(WatermarkUpdate::Resync));
        assert_eq!(
            updates.next().await,
            Some(WatermarkUpdate::Advances(Arc::new(advance(8))))
        );
    }
}
