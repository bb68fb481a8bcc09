//! High-watermark advances pushed by the control plane, so a long-polling Fetch wakes
//! within milliseconds of a commit rather than on a timer.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weir_control_plane_api::ControlPlaneClient;
use weir_control_plane_api::data::WatermarkUpdate;

use crate::index_cache::IndexCache;

/// Bumps a counter on every advance; fetches waiting for data watch it.
#[derive(Clone, Debug)]
pub struct Watermarks {
    changed: watch::Receiver<u64>,
}

impl Watermarks {
    /// Follows the control plane's watch until `cancel`, reconnecting when it breaks.
    pub fn follow(
        control: ControlPlaneClient,
        index: IndexCache,
        cancel: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, changed) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                match control.watch_high_watermarks().await {
                    Ok(stream) => {
                        let mut stream = std::pin::pin!(stream);
                        loop {
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                update = stream.next() => match update {
                                    Some(Ok(WatermarkUpdate::Resync)) => {
                                        index.forget_watermarks();
                                        sender.send_modify(|n| *n += 1);
                                    }
                                    Some(Ok(WatermarkUpdate::Advances(advances))) => {
                                        // Log-start advances and replaced entries are
                                        // not followed yet: only the high watermark.
                                        for a in advances {
                                            index.advance(a.topic, a.partition, a.high_watermark);
                                        }
                                        sender.send_modify(|n| *n += 1);
                                    }
                                    Some(Err(status)) => { tracing::warn!(error = %status, "watermark watch broke"); break; }
                                    None => break,
                                },
                            }
                        }
                    }
                    Err(status) => tracing::warn!(error = %status, "watch watermarks"),
                }
                // Advances may be missed while disconnected: forget what the watch vouched
                // for, and wake every waiter to read afresh.
                index.forget_watermarks();
                sender.send_modify(|n| *n += 1);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
        (Watermarks { changed }, task)
    }

    /// A receiver that sees the next advance.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut receiver = self.changed.clone();
        receiver.mark_unchanged();
        receiver
    }
}
